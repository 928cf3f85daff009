/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_PKI_H
#define FEDGATE_CA_PKI_H

/*
 * Helpers shared by the CA (fedgate ca ...) and its client: P-256 keys
 * (encrypted at rest) and certificates, in files and as PEM (pki.c), and
 * certificates made from scratch (certgen.c). Everything returns 0 or -errno
 * and names the problem in the struct fg_err the caller passes. The file,
 * password, duration and URL helpers have their own headers, included here
 * for the callers that take them all from this one.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "control/ca/duration.h"
#include "control/ca/files.h"
#include "control/ca/password.h"
#include "control/ca/pki-t.h"
#include "control/ca/url.h"
#include "fedgate/err.h"

/* A fresh ECDSA P-256 key, or NULL. */
EVP_PKEY *fg_pki_keygen(void);

/*
 * Writes @key as PKCS#8 PEM to @path (mode 0600, atomically): encrypted with
 * AES-256-CBC under PBKDF2 (PBES2) when @pw is given, plain otherwise.
 */
int fg_pki_write_key(const char *path, EVP_PKEY *key, struct fg_password *pw,
		     struct fg_err *err);

/* Reads a PEM private key, asking @pw (may be NULL) only if it is encrypted. */
EVP_PKEY *fg_pki_read_key(const char *path, struct fg_password *pw, struct fg_err *err);

/* Every certificate of a PEM file; at least one or an error. */
STACK_OF(X509) *fg_pki_read_certs(const char *path, struct fg_err *err);
/* The same from PEM text. */
STACK_OF(X509) *fg_pki_certs_from_pem(const char *pem, size_t len, struct fg_err *err);

/* PEM text of @x (malloc'd), or NULL. */
char *fg_pki_cert_pem(X509 *x);
/* Unencrypted PKCS#8 PEM of @key (malloc'd; wipe it before free), or NULL. */
char *fg_pki_key_pem(EVP_PKEY *key);
/* PEM text of every certificate of @sk concatenated (malloc'd), or NULL. */
char *fg_pki_certs_pem(STACK_OF(X509) *sk);

/* 1 if @cn (UTF-8) can be a CommonName: 1 to FG_PKI_CN_MAX characters. */
int fg_pki_cn_fits(const char *cn);

/*
 * Issues a certificate (SHA-256 signature, random 128-bit serial, SKI and AKI).
 * Leaves get digitalSignature (plus keyEncipherment for RSA keys), serverAuth
 * and clientAuth.
 */
X509 *fg_pki_issue(const struct fg_pki_issue *req, struct fg_err *err);

#endif
