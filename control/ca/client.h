/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_CLIENT_H
#define FEDGATE_CA_CLIENT_H

/*
 * A client of a step-ca compatible CA (fedgate's or smallstep's): its API
 * over fg_ca_request() (https.h: the pin, the deadline, the errors), JSON
 * answers, certificates as PEM text. Calls return 0 or -errno; on failure
 * @err->msg names the problem and @err->status holds the CA's HTTP status
 * when it answered (0 when it did not: connection, TLS or timeout). PEM
 * outputs are malloc'd; free() them (the private key PEM after
 * OPENSSL_cleanse()).
 */
#include <stddef.h>
#include <openssl/evp.h>

#include "control/ca/https.h"
#include "control/ca/password-t.h"
#include "control/ca/pki.h"

/*
 * POST /1.0/sign {"csr","ott"[,"notBefore","notAfter"]}: @chain_pem gets the
 * leaf then the intermediate. @key (optional) must match the leaf.
 */
int fg_ca_sign(struct fg_ca_client *c, const char *csr_pem, const char *ott,
	       const char *not_before, const char *not_after, EVP_PKEY *key, char **chain_pem,
	       struct fg_err *err);

/*
 * Enrolls: a new P-256 key, a CSR for CN @subject with the token's "sans"
 * claim (as `step ca certificate` does), then fg_ca_sign(). Before anything
 * is sent the token must be for @subject and, with @sans (NULL: any), for
 * exactly @sans: a CA issues what the token says, so a mismatch would spend
 * the token on a certificate the caller refuses. @key_pem gets the
 * unencrypted PKCS#8 key, @chain_pem the chain.
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

/*
 * The provisioner key of `step ca token` without a ca.json: GET /provisioners,
 * the JWK provisioner named @name (NULL: the only one with an "encryptedKey"),
 * GET /provisioners/KID/encrypted-key, decrypted with @pw (read only then:
 * fg_password_get()) and checked to be the key /provisioners lists. @prov gets
 * its name.
 */
int fg_ca_provisioner_key(struct fg_ca_client *c, const char *name, struct fg_password *pw,
			  EVP_PKEY **key, char **prov, struct fg_err *err);

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
