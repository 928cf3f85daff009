/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_IDENT_ISSUED_H
#define FEDGATE_IDENT_ISSUED_H

/*
 * What a CA issued to the gateway (identity.ca): checked before it is
 * trusted, written so that the certificate and key on disk always match.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "control/config-t.h"
#include "control/tls-t.h"

/* @t as Unix time; 0 when it cannot be read. */
int64_t fg_ident_cert_time(const ASN1_TIME *t);

/*
 * Whether @leaf (with @chain) is what was asked of @ca: valid now (notBefore
 * a little ahead allowed, for clock skew), chaining to the root the CA is
 * pinned to, with the subject and SANs asked for: for an enrollment
 * (@current NULL) the config's, for a renewal those of @current. A CA that
 * is wrong or compromised cannot replace the identity with something else.
 * Returns 0, or -EINVAL with the reason in @why.
 */
int fg_ident_issued_verify(const struct fg_ca_identity *ca, X509 *current, X509 *leaf,
			   STACK_OF(X509) * chain, char *why, size_t len);

/*
 * Writes @chain_pem to cfg->cert_file and, for an enrollment, @key_pem to
 * cfg->key_file (a renewal, @key_pem NULL, keeps its key), so that no
 * failure leaves a certificate and a key that do not match. Returns 0 or a
 * negative errno with @err set.
 */
int fg_ident_issued_write(const struct fg_config *cfg, const char *key_pem, const char *chain_pem,
			  struct fg_err *err);

/*
 * After a crash between the two renames of fg_ident_issued_write(), the new
 * key sits with the previous certificate and the previous key is KEY.prev:
 * when KEY.prev matches cfg->cert_file, loads the pair into @m and puts the
 * key back. Returns 0, or a negative errno (@m freed) when there is nothing
 * to restore.
 */
int fg_ident_issued_recover_key(const struct fg_config *cfg, struct fg_material *m);

#endif
