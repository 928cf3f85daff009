// SPDX-License-Identifier: MIT
/* Certificates made from scratch: roots, intermediates and leaves (see fg_pki_issue()). */
#include <errno.h>
#include <stdio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "control/ca/pki.h"

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -ENOMEM;
}

static int set_serial(X509 *x)
{
	unsigned char raw[16];
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn;
	int ret = -ENOMEM;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	raw[0] &= 0x7f; /* positive */
	raw[0] |= 0x40; /* and of a fixed length */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (ai && X509_set_serialNumber(x, ai))
		ret = 0;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ret;
}

int fg_pki_cn_fits(const char *cn)
{
	size_t n = 0;

	for (const char *s = cn; s && *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80; /* continuation bytes are not characters */
	return n > 0 && n <= FG_PKI_CN_MAX;
}

/* The subject; @cn NULL leaves the CN out. */
static X509_NAME *make_name(const char *org, const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (!n)
		return NULL;
	if (org && !X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
					       (const unsigned char *)org, -1, -1, 0))
		goto fail;
	if (cn && !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					      (const unsigned char *)cn, -1, -1, 0))
		goto fail;
	return n;
fail:
	X509_NAME_free(n);
	return NULL;
}

X509 *fg_pki_issue(const struct fg_pki_issue *req, struct fg_err *err)
{
	/*
	 * A leaf's CN is only a label, its SANs carry the identity: a subject that
	 * cannot be a CN (empty, or over X.520's 64 characters, as SPIFFE IDs often
	 * are) is left out, and the SANs are then critical (RFC 5280 4.2.1.6).
	 */
	int no_cn = !req->ca && req->sans && sk_GENERAL_NAME_num(req->sans) > 0 &&
		    !fg_pki_cn_fits(req->cn);
	X509 *x = X509_new();
	X509_NAME *subject = make_name(req->org, no_cn ? NULL : req->cn);
	const char *ku = "critical,digitalSignature";
	char bc[64];
	int ok;

	if (!x || !subject)
		goto fail;
	ok = X509_set_version(x, X509_VERSION_3) && !set_serial(x) &&
	     X509_set_subject_name(x, subject) &&
	     X509_set_issuer_name(x, req->issuer ? X509_get_subject_name(req->issuer) : subject) &&
	     ASN1_TIME_set(X509_getm_notBefore(x), (time_t)req->not_before) &&
	     ASN1_TIME_set(X509_getm_notAfter(x), (time_t)req->not_after) &&
	     X509_set_pubkey(x, req->pubkey);
	if (!ok)
		goto fail;
	if (req->ca) {
		if (req->pathlen >= 0)
			snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", req->pathlen);
		else
			snprintf(bc, sizeof(bc), "critical,CA:TRUE");
		ok = !add_ext(x, req->issuer, NID_basic_constraints, bc) &&
		     !add_ext(x, req->issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		/* As step's default leaf template: RSA keys may also do key transport. */
		if (EVP_PKEY_is_a(req->pubkey, "RSA"))
			ku = "critical,digitalSignature,keyEncipherment";
		ok = !add_ext(x, req->issuer, NID_basic_constraints, "critical,CA:FALSE") &&
		     !add_ext(x, req->issuer, NID_key_usage, ku) &&
		     !add_ext(x, req->issuer, NID_ext_key_usage, "serverAuth,clientAuth");
		if (ok && req->sans)
			ok = X509_add1_ext_i2d(x, NID_subject_alt_name, (void *)req->sans, no_cn,
					       X509V3_ADD_DEFAULT) == 1;
	}
	ok = ok && !add_ext(x, req->issuer, NID_subject_key_identifier, "hash");
	if (ok && req->issuer)
		ok = !add_ext(x, req->issuer, NID_authority_key_identifier, "keyid:always");
	if (!ok || !X509_sign(x, req->issuer_key, EVP_sha256()))
		goto fail;
	X509_NAME_free(subject);
	return x;
fail:
	fg_err_set(err, -EINVAL, "cannot issue the certificate for '%.100s'",
		   req->cn ? req->cn : "");
	fg_err_ssl(err);
	X509_NAME_free(subject);
	X509_free(x);
	return NULL;
}
