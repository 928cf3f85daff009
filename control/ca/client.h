/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_CLIENT_H
#define FEDGATE_CA_CLIENT_H

/*
 * A client of a step-ca compatible CA (fedgate's or smallstep's): HTTPS with
 * the CA's root pinned (the only trust anchor, and the CA's name checked
 * against the URL's host), JSON answers (framed by Content-Length or
 * chunked, as Go sends them), certificates as PEM text.
 *
 * Every request (connect, TLS handshake, sending, reading the answer to its
 * end) must finish within c->timeout_ms in all, however slowly the server
 * trickles its bytes; past that it fails with -ETIMEDOUT and @err->msg names
 * the CA URL and the step that ran out of time. Name resolution
 * (getaddrinfo()) is outside that bound. Calls return 0 or -errno; on
 * failure @err->msg names the problem and @err->status holds the CA's HTTP
 * status when it answered (0 when it did not: connection, TLS or timeout).
 * PEM outputs are malloc'd; free() them (the private key PEM after
 * OPENSSL_cleanse()).
 */
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "control/ca/pki.h"

struct fg_ca_client {
	char *url; /* the CA URL without a trailing '/' */
	char host[256], port[8];
	char *prefix; /* a path after the host, "" usually */
	SSL_CTX *ctx; /* TLS 1.2+, trust = the pinned root file only */
	int timeout_ms; /* the deadline of one whole request; fg_ca_client_init(): 15000 */
};

/* Sets up @c for @ca_url ("https://host[:port]") pinned to the certificates in @root_file. */
int fg_ca_client_init(struct fg_ca_client *c, const char *ca_url, const char *root_file,
		      struct fg_err *err);
void fg_ca_client_exit(struct fg_ca_client *c);

/*
 * One request: @method @path with @body (NULL: none) and, when @cert is set,
 * the TLS client certificate @cert (+ @chain) with @key. On 0, @status and
 * @resp (malloc'd, NUL-terminated) hold the answer, whatever its status.
 */
int fg_ca_request(struct fg_ca_client *c, const char *method, const char *path, const char *body,
		  X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key, int *status, char **resp,
		  struct fg_err *err);

/*
 * POST /1.0/sign {"csr","ott"[,"notBefore","notAfter"]}: @chain_pem gets the
 * leaf then the intermediate. @key (optional) must match the leaf.
 */
int fg_ca_sign(struct fg_ca_client *c, const char *csr_pem, const char *ott,
	       const char *not_before, const char *not_after, EVP_PKEY *key, char **chain_pem,
	       struct fg_err *err);

/*
 * Enrolls: a new P-256 key, a CSR for CN @subject with @sans (NULL: the
 * token's "sans" claim, as `step ca certificate` does), then fg_ca_sign().
 * @key_pem gets the unencrypted PKCS#8 key, @chain_pem the chain.
 */
int fg_ca_enroll(struct fg_ca_client *c, const char *subject, const char *const *sans,
		 size_t n_sans, const char *ott, const char *not_before, const char *not_after,
		 char **key_pem, char **chain_pem, struct fg_err *err);

/* POST /1.0/renew authenticated by @chain_pem (leaf first) and @key over mTLS. */
int fg_ca_renew(struct fg_ca_client *c, const char *chain_pem, EVP_PKEY *key, char **new_chain,
		struct fg_err *err);

/* GET /federation (or /roots): the certificates as one PEM bundle, each checked to parse. */
int fg_ca_federation(struct fg_ca_client *c, char **bundle_pem, struct fg_err *err);
int fg_ca_roots(struct fg_ca_client *c, char **bundle_pem, struct fg_err *err);

/*
 * A CSR (PEM) for CN @subject with @sans, signed by @key. A @subject longer
 * than a CN may be (64 characters) is left out when there are SANs.
 */
int fg_ca_csr(EVP_PKEY *key, const char *subject, const char *const *sans, size_t n_sans,
	      char **csr_pem, struct fg_err *err);

/* What fg_ca_token() puts in a one-time token, the way `step ca token` does. */
struct fg_ca_token_req {
	const char *subject;	   /* "sub" */
	const char *const *sans;   /* "sans"; none: [subject] */
	size_t n_sans;
	const char *ca_url;	   /* "aud" = ca_url + "/1.0/sign" */
	const char *root_file;	   /* "sha" = SHA-256 of its first certificate */
	const char *provisioner;   /* "iss" */
	EVP_PKEY *key;		   /* the provisioner's P-256 key; "kid" = its thumbprint */
	int lifetime_s;		   /* exp - nbf; 0: 300 (step's 5 minutes) */
};

int fg_ca_token(const struct fg_ca_token_req *r, char **token, struct fg_err *err);

#endif
