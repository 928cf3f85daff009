/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_T_H
#define FEDGATE_CA_T_H

/* The CA's types: see ca.h. */
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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
	char *encrypted_key; /* step's: the private JWK as a PBES2 JWE, for `ca token` */
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
	/* "authority.provisioners" as GET /provisioners lists them (without fedgate's keyFile) */
	struct cJSON *provisioners;
};

/* One HTTP request as the server read it. @client: the peer's certificate, if any. */
struct fg_ca_request {
	const char *method, *path;
	const char *body;
	size_t body_len;
	X509 *client;
	STACK_OF(X509) *client_chain; /* what the peer sent after its leaf; may be NULL */
};

#endif
