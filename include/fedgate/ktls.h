/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_KTLS_H
#define FEDGATE_KTLS_H

#include "fedgate/keys-t.h"
#include "fedgate/ktls-t.h"

/*
 * Probes kernel TLS once: TCP_ULP "tls" on an established loopback socket.
 * Returns 0 when the kernel accepts it, else a negative errno (-ENOENT: no tls
 * module) with a human explanation in @why.
 */
int fg_ktls_probe(const char **why);

/*
 * Installs kernel TLS on established socket @fd from @keys: TCP_ULP "tls",
 * then TLS_TX and TLS_RX for TLS 1.3 with the exported key, IV and starting
 * record sequence numbers. Returns 0, or a negative errno with @why saying
 * which step failed and what the errno means there (-ENOENT: no tls module;
 * -ENOTCONN: not established; -EINVAL/-ENOPROTOOPT: cipher unsupported;
 * -EEXIST: a ULP is already set; -EBUSY: keys already installed).
 */
int fg_ktls_install(int fd, const struct fg_session_keys *keys, const char **why);

#endif
