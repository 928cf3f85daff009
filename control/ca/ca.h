/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_H
#define FEDGATE_CA_H

/*
 * fedgate's online CA: step-ca's ca.json, HTTP API and one-time tokens (JWK
 * provisioners, ES256). See README "The CA" and shared/notes/step-ca-api.md.
 *
 * config.c loads ca.json; serve.c serves HTTPS; routes.c answers a request,
 * through issuance.c for /sign and /renew, which checks tokens with tokens.c
 * (spent in jti.c's store) and names with sans.c. Types are in ca-t.h.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/ca/ca-t.h"
#include "control/ca/pki.h"

/*
 * Loads @path (step-ca's ca.json; keys we do not use are ignored). With
 * @want_key the intermediate key is decrypted with @pw (asked only if the key
 * is encrypted). Returns 0 or -errno with @err naming the file and key.
 */
int fg_ca_load(struct fg_ca *ca, const char *path, int want_key, struct fg_password *pw,
	       struct fg_err *err);
void fg_ca_free(struct fg_ca *ca);

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
