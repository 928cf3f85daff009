/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_UNIT_X509_H
#define FEDGATE_UNIT_X509_H

/* Certificates the unit tests make for themselves. */
#include <openssl/evp.h>
#include <openssl/x509.h>

/* A self-signed certificate for @cn under @key, valid for a day from now; the caller frees it. */
static inline X509 *unit_self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, key);
	X509_sign(x, key, EVP_sha256());
	return x;
}

#endif
