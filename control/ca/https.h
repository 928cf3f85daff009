/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_HTTPS_H
#define FEDGATE_CA_HTTPS_H

/*
 * HTTPS to a step-ca compatible CA, on libcurl: HTTP/1.1 over TLS 1.2+, the
 * CA's root pinned (the only trust anchor: no system store) and the CA's
 * name checked against the URL's host, one connection a request, no proxy,
 * no redirects followed, answers of at most 1 MiB.
 *
 * Every request (name resolution, connect, TLS handshake, sending, reading
 * the answer to its end) must finish within c->timeout_ms in all, however
 * slowly the server trickles its bytes; past that it fails with -ETIMEDOUT
 * and @err->msg names the CA URL and the step that ran out of time. Calls
 * return 0 or -errno; on failure @err->msg names the problem. Safe to use
 * from any thread, one struct fg_ca_client per thread at a time.
 */
#include <stdint.h>
#include <openssl/x509.h>

#include "control/ca/https-t.h"
#include "fedgate/err.h"

/*
 * Sets up @c for @ca_url ("https://host[:port][/path]"), pinned to the certificates of
 * @root_file.
 */
int fg_ca_client_init(struct fg_ca_client *c, const char *ca_url, const char *root_file,
		      struct fg_err *err);
/*
 * The SO_MARK every later CA connection of this process carries (0, the
 * default: none), so that a gateway's own capture rules or programs never
 * catch them; a socket the mark cannot be set on fails its request. Safe
 * from any thread.
 */
void fg_ca_client_set_mark(uint32_t mark);

/* Undoes fg_ca_client_init(); @c may be NULL or zeroed. */
void fg_ca_client_exit(struct fg_ca_client *c);

/*
 * One request: @method @path (after the URL's own path) with the JSON @body
 * (NULL: none) and, when @cert is set, the TLS client certificate @cert (+
 * @chain) with @key, handed to OpenSSL from memory. On 0, @status and @resp
 * (malloc'd, NUL-terminated) hold the answer, whatever its status; @err->status
 * is 0 either way (the caller judges the status).
 */
int fg_ca_request(struct fg_ca_client *c, const char *method, const char *path, const char *body,
		  X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key, int *status, char **resp,
		  struct fg_err *err);

#endif
