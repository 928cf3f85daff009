// SPDX-License-Identifier: MIT
/* Names and fingerprints of certificates, for comparison: see x509name.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

#include "fedgate/x509name.h"

int fg_x509_cn(const X509_NAME *name, char *out, size_t len)
{
	unsigned char *utf8 = NULL;
	int i, n, ret = -ENOENT;

	if (len)
		out[0] = '\0';
	i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	if (i < 0)
		goto out;
	ret = -EINVAL;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	/* A NUL inside would make two different names compare equal as C strings. */
	if (n < 0 || (size_t)n >= len || memchr(utf8, 0, (size_t)n))
		goto out;
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	ret = 0;
out:
	OPENSSL_free(utf8);
	return ret;
}

int fg_x509_sha256(const X509 *x, char hex[FG_X509_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	hex[0] = '\0';
	if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}
