/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_KEYS_H
#define FEDGATE_KEYS_H

/*
 * The TLS 1.3 session keys of a control-process handshake, for the data
 * plane: OpenSSL's keylog callback yields the application traffic secrets,
 * its message callback counts the records already sent and received under
 * them, and fg_keys_export() turns both into fg_session_keys through lib's
 * key schedule (fedgate/tls13.h). The secrets live in the connection's
 * fg_tls_conn until the export or fg_tls_conn_exit() wipes them.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "control/tls-t.h"

/* Reserves the SSL slot that points an SSL at its fg_tls_conn (once). 0 or -ENOMEM. */
int fg_keys_init(void);

/* Handshakes on @ctx hand their traffic secrets to the fg_tls_conn of their SSL. */
void fg_keys_capture(SSL_CTX *ctx);

/*
 * Points @ssl at @st (the caller's, outliving @ssl) and counts @ssl's records
 * into it. Returns 0 or -ENOMEM. Needs fg_keys_init().
 */
int fg_keys_bind(SSL *ssl, struct fg_tls_conn *st);

/* The fg_tls_conn @ssl is bound to, or NULL. */
struct fg_tls_conn *fg_keys_conn(const SSL *ssl);

/*
 * After a completed handshake: fills @keys (cipher, per-direction secret, key,
 * iv and the next sequence number) and wipes the secrets in @st.
 * Returns 0, -ENOKEY when the keylog never delivered a secret, -EINVAL for an
 * unsupported cipher; @keys is wiped on failure.
 */
int fg_keys_export(SSL *ssl, struct fg_tls_conn *st, struct fg_session_keys *keys);

/*
 * Reads one NSS keylog line, "LABEL <client_random hex> <secret hex>". When
 * LABEL is @label: the secret's bytes (at most FG_SECRET_MAX, up to the first
 * character that is not a hex pair) go to @out and their count to @out_len,
 * and it returns 0. Returns -ENOENT for another label, -EINVAL for a line
 * without the secret (then @out and @out_len are untouched). Pure.
 */
int fg_keylog_secret(const char *line, const char *label, uint8_t *out, size_t *out_len);

/* Wipes the secrets in @st. Accepts NULL. */
void fg_tls_conn_exit(struct fg_tls_conn *st);

#endif
