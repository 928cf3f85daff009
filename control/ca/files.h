/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_FILES_H
#define FEDGATE_CA_FILES_H

/* Whole files for the CA's keys, certificates, configuration and used tokens. */
#include <stddef.h>
#include <sys/types.h>

#include "fedgate/err.h"

/*
 * Writes @len bytes to @path through a fresh temporary file beside it,
 * fsync(2) and rename(2), with @mode: readers see the old file or the whole
 * new one. Returns 0 or -errno with @err set.
 */
int fg_pki_write_file(const char *path, const void *data, size_t len, mode_t mode,
		      struct fg_err *err);

/*
 * fg_file_read() (fedgate/file.h): a whole regular file (at most @max bytes,
 * else -EFBIG) into a NUL-terminated malloc'd buffer @out the caller frees;
 * @len (may be NULL) gets its length. A FIFO, directory or device at @path
 * is refused at once. On failure what was read is wiped (it may be a
 * password). Returns 0 or -errno with @err set.
 */
int fg_pki_read_file(const char *path, size_t max, char **out, size_t *len,
		     struct fg_err *err);

#endif
