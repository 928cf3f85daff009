/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_X509NAME_H
#define FEDGATE_X509NAME_H

/*
 * The one way fedgate reads a name or a fingerprint out of a certificate.
 * Every comparison of a CN (allow rules, roots[] constraints, duplicate-root
 * checks, CA token checks) goes through fg_x509_cn(), so that a CN encoded as
 * BMPString, UniversalString or T61String compares exactly as its UTF8String
 * twin does: one conversion to UTF-8, then byte comparison.
 */
#include <stddef.h>
#include <openssl/x509.h>

#define FG_X509_SHA256_HEX 65 /* 64 lowercase hex digits and a NUL */

/*
 * The first commonName of @name, converted to UTF-8, into @out (@len bytes).
 * Returns 0; -ENOENT when @name (or it is NULL) has no commonName; -EINVAL when
 * it cannot be converted, holds a NUL, or does not fit in @len. @out is "" on
 * every failure, so a name that cannot be read never matches a rule.
 */
int fg_x509_cn(const X509_NAME *name, char *out, size_t len);

/* Lowercase hex SHA-256 of @x's DER encoding into @hex. 0, or -EINVAL. */
int fg_x509_sha256(const X509 *x, char hex[FG_X509_SHA256_HEX]);

#endif
