/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONFIG_H
#define FEDGATE_CONFIG_H

#include "control/config-t.h"

/*
 * Parses and checks @path into @cfg (which must be zeroed). Names, types,
 * ranges and addresses are checked here; certificates and keys by the TLS
 * setup. Returns 0, or -EINVAL / -ENOENT / -ENOMEM with @err holding
 * "FILE: $.json.path: problem". @cfg is then empty (fg_config_free done).
 */
int fg_config_load(const char *path, struct fg_config *cfg, struct fg_err *err);

/*
 * The pure parser: @len bytes of config text (any bytes; a NUL byte or a
 * \u0000 escape in a string is refused) into @cfg (zeroed), with no I/O. @file names
 * the config in messages, @dir is what relative paths in it are relative to.
 * What needs I/O (files that must be readable, addresses to resolve) is
 * appended to @checks (zeroed) instead, for fg_config_load to run in order.
 * Returns 0, or -EINVAL / -ENOMEM with @err set as for fg_config_load. Either
 * way @cfg and @checks hold what was parsed up to there: the caller frees both
 * (fg_config_free, fg_conf_checks_free), and on an error the checks met before
 * it still come first.
 */
int fg_config_parse(const char *buf, size_t len, const char *file, const char *dir,
		    struct fg_config *cfg, struct fg_conf_checks *checks, struct fg_err *err);

/* Frees what @checks owns and zeroes it. Accepts NULL and a zeroed list. */
void fg_conf_checks_free(struct fg_conf_checks *checks);

/* Frees what @cfg owns and zeroes it. Accepts NULL and a zeroed config. */
void fg_config_free(struct fg_config *cfg);

/* Formats "@cfg->path: @jpath: fmt..." into @err. Returns -EINVAL. */
int fg_conf_fail(struct fg_err *err, const char *file, const char *jpath, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));

/* "AES-128-GCM" or "TLS_AES_128_GCM_SHA256" etc. to enum fg_cipher, 0 if unknown. */
uint16_t fg_cipher_from_name(const char *name);

const char *fg_offload_name(enum fg_offload o);

#endif
