/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_H
#define FEDGATE_CA_H

/*
 * fedgate's online CA: step-ca's ca.json, HTTP API and one-time tokens (JWK
 * provisioners, ES256). See README "The CA" and shared/notes/step-ca-api.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/ca/pki.h"

#define FG_CA_MAX_PROVISIONERS 16
#define FG_CA_MAX_DNS 32
#define FG_CA_TOKEN_LEEWAY_S 60 /* nbf/exp leeway, as step-ca's (one minute) */
/*
 * The furthest a token's "exp" may lie ahead. Used token IDs are remembered
 * until their token expires, so this bounds that memory (and the window in
 * which a stolen token is good); `step ca token` mints 5-minute tokens.
 */
#define FG_CA_TOKEN_MAX_LIFETIME_S 3600

struct fg_ca_provisioner {
	char *name; /* the token's "iss" */
	char kid[48];
	EVP_PKEY *pub;
	int64_t min_ms, max_ms, default_ms; /* leaf lifetimes */
	char *key_file; /* fedgate extension: the encrypted private key, for `ca token` */
};

struct fg_jti_store;
struct cJSON;

struct fg_ca {
	char *path, *dir; /* ca.json and its directory (relative paths are relative to it) */
	STACK_OF(X509) *roots;	    /* "root": ours */
	STACK_OF(X509) *federation; /* ours + "federatedRoots", deduplicated by SHA-256 */
	X509 *intermediate;	    /* "crt" */
	EVP_PKEY *intermediate_key; /* "key" (NULL when loaded for `ca token`) */
	X509_STORE *store;	    /* our roots: what /renew client certificates must chain to */
	char *address;		    /* "address" */
	char *dns[FG_CA_MAX_DNS];   /* "dnsNames" */
	size_t n_dns;
	struct fg_ca_provisioner prov[FG_CA_MAX_PROVISIONERS];
	size_t n_prov;
	/*
	 * /renew keeps the old leaf's lifetime within these: the smallest minimum
	 * and the largest maximum of the authority's and its provisioners' claims
	 * (the leaf came from one of them; /renew does not say which).
	 */
	int64_t renew_min_ms, renew_max_ms;
	int request_timeout_ms;	  /* fedgate extension "requestTimeout" (default 10s) */
	struct fg_jti_store *jti; /* tokens already used */
	/* fedgate extension "usedTokensFile" (default "used_tokens" next to ca.json) */
	char *jti_path;
	struct cJSON *tls_options; /* step-ca's "tlsOptions" of /sign and /renew answers */
};

/*
 * Loads @path (step-ca's ca.json; keys we do not use are ignored). With
 * @want_key the intermediate key is decrypted with @pw (asked only if the key
 * is encrypted). Returns 0 or -errno with @err naming the file and key.
 */
int fg_ca_load(struct fg_ca *ca, const char *path, int want_key, struct fg_password *pw,
	       struct fg_err *err);
void fg_ca_free(struct fg_ca *ca);

/* One HTTP request as the server read it. @client: the peer's certificate, if any. */
struct fg_ca_request {
	const char *method, *path;
	const char *body;
	size_t body_len;
	X509 *client;
	STACK_OF(X509) *client_chain; /* what the peer sent after its leaf; may be NULL */
};

/*
 * Answers @req: sets @status and @body (malloc'd JSON, or PEM for /roots.pem)
 * and @content_type. Never fails short of memory: errors are answers too.
 * Returns 0 or -ENOMEM.
 */
int fg_ca_handle(struct fg_ca *ca, const struct fg_ca_request *req, int *status, char **body,
		 const char **content_type);

/*
 * Issues a leaf from @ca's intermediate for @pub with subject CN @cn (left out
 * when it cannot be a CN, see struct fg_pki_issue) and @sans, valid
 * [@not_before, @not_after] but never past the intermediate's notAfter.
 * Returns the certificate, or NULL with @err set. Used by /sign, /renew and
 * the server's own certificate.
 */
X509 *fg_ca_issue_leaf(struct fg_ca *ca, const char *cn, const GENERAL_NAMES *sans,
		       EVP_PKEY *pub, int64_t not_before, int64_t not_after,
		       struct fg_err *err);

/*
 * Serves HTTPS on ca->address until SIGINT/SIGTERM: TLS 1.3, a certificate
 * for ca->dns issued at start (and again before it expires), client
 * certificates asked for but optional. @address_file (may be NULL) receives
 * "HOST:PORT\n" once listening. Returns 0 after a signal, -errno on failure.
 */
int fg_ca_serve(struct fg_ca *ca, const char *address_file, struct fg_err *err);

/*
 * Single-use token IDs (kept as SHA-256 hex), remembered until the token
 * expires. In memory only, until fg_ca_jti_open() ties the store to a file.
 */
struct fg_jti_store *fg_ca_jti_new(void);
void fg_ca_jti_free(struct fg_jti_store *s);
/*
 * Loads the IDs still live at @now from @path (missing: none yet), rewrites
 * the file without the expired ones, and appends every later use to it
 * (fsync'd before the token is accepted). Returns 0 or -errno with @err set.
 */
int fg_ca_jti_open(struct fg_jti_store *s, const char *path, int64_t now,
		   struct fg_err *err);
/*
 * Records @jti (valid until @exp). Returns 0, -EALREADY if seen before,
 * -ENOSPC if full, -EIO (or another -errno) if the file cannot record it.
 */
int fg_ca_jti_use(struct fg_jti_store *s, const char *jti, int64_t exp, int64_t now);

/*
 * SANs from strings the way step splits them: an IP address, an e-mail
 * address (has '@'), a URI (has ':'), else a DNS name.
 */
GENERAL_NAMES *fg_ca_sans(const char *const *names, size_t n, struct fg_err *err);

/* `fedgate ca ...`: its own table of subcommands. */
int fg_ca_main(int argc, char **argv);

#endif
