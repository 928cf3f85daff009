/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_TLS_H
#define FEDGATE_TLS_H

#include "control/config-t.h"
#include "control/tls-t.h"

/* Drops the contexts; NULL and a zeroed @t are fine. */
void fg_tls_exit(struct fg_tls *t);

/* @dst gets its own references to @src's contexts (fg_tls_exit() drops them). */
int fg_tls_share(struct fg_tls *dst, const struct fg_tls *src);

/*
 * Builds both contexts from @cfg and the material @m (which stays the caller's;
 * the contexts take their own references): TLS 1.3 only, the configured cipher
 * suites, the certificate chain and key (which must match), the trust bundle
 * (at least one certificate), peer verification required both ways, no
 * tickets unless a connection asks (control/resume.h), no read-ahead, no kTLS. Returns 0 or
 * -EINVAL/-ENOMEM with @err set, naming $.identity.* of @cfg.
 */
int fg_tls_build(struct fg_tls *t, const struct fg_config *cfg, const struct fg_material *m,
		 struct fg_err *err);

/*
 * Reads the chain from @cert_file and the key from @key_file into @m and
 * checks they match; errors name $.identity.cert / $.identity.key of @cfg.
 * Reads PEM text instead when @cert_pem / @key_pem are set (then the file
 * names are only for messages).
 */
int fg_material_load_identity(struct fg_material *m, const struct fg_config *cfg,
			      const char *cert_file, const char *key_file, const char *cert_pem,
			      const char *key_pem, struct fg_err *err);

/* Reads every certificate of @file (or @pem text) into @m->roots; none is an error. */
int fg_material_load_trust(struct fg_material *m, const struct fg_config *cfg, const char *file,
			   const char *pem, struct fg_err *err);

/* Frees what @m holds and zeroes it. Accepts NULL. */
void fg_material_free(struct fg_material *m);

/* "CN, serial HEX, valid until DATE" of @x, for log lines. */
void fg_cert_describe(X509 *x, char *out, size_t len);

/*
 * Makes an SSL for socket @fd on the context of @is_server, bound to @st
 * (owned by the caller, outliving the SSL; keys.h fills, exports and wipes
 * it). The socket is wrapped in a plain socket BIO: OpenSSL 3.0's
 * SSL_set_fd() would set TCP_ULP "tls" on it.
 * @expect_name (client side) is sent as SNI and checked against the peer.
 * Returns the SSL or NULL.
 */
SSL *fg_tls_conn_new(struct fg_tls *t, int is_server, int fd, const char *expect_name,
		     struct fg_tls_conn *st);

/* The verified peer's identity. Returns 0, or -EACCES when the peer is not verified. */
int fg_tls_peer(SSL *ssl, struct fg_peer_id *peer);

/*
 * Verifies @leaf with the chain the peer sent (@sent) again against @t's
 * context for the side @is_server (the terminate side verifies clients), as
 * its handshake would now: the context's store, purpose, depth, flags and
 * security level, @expect_name (NULL: none) as the name it must hold; but
 * validity as of @at (Unix time, the handshake's), so that a certificate that
 * expired while its tunnel ran does not close it. Returns 0 with *@verified
 * (the chain built; the caller frees it with sk_X509_pop_free), -EACCES with
 * the reason in @why (@len bytes), or -ENOMEM (also for an internal error).
 */
int fg_tls_verify_again(struct fg_tls *t, int is_server, X509 *leaf, STACK_OF(X509) * sent,
			const char *expect_name, int64_t at, STACK_OF(X509) * *verified, char *why,
			size_t len);

/*
 * The identity of @leaf as @verified (the chain a verification built, leaf
 * first, its anchor last) vouches for it. 0, or -EACCES (no chain).
 */
int fg_tls_peer_of(X509 *leaf, STACK_OF(X509) * verified, struct fg_peer_id *peer);

/* Describes the first queued OpenSSL error (and clears the queue) into @buf. */
const char *fg_tls_error(char *buf, size_t len);

#endif
