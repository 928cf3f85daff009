/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_PKI_H
#define FEDGATE_CA_PKI_H

/*
 * Helpers shared by the CA (fedgate ca ...) and its client: error reports,
 * passwords, P-256 keys (encrypted at rest), certificates, Go-style
 * durations. Everything returns 0 or -errno and names the problem in the
 * struct fg_err the caller passes.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fedgate/err.h"


/*
 * Where a password comes from: the first line of @file, or a prompt on the
 * terminal (/dev/tty) when @file is NULL. Read once, on first use, then kept
 * (and wiped by fg_password_exit()).
 */
struct fg_password {
	const char *file;
	const char *prompt;  /* e.g. "Password for the CA keys" */
	int confirm;	     /* prompt twice (when creating keys) */
	int have;
	char buf[256];
	size_t len;
};

int fg_password_get(struct fg_password *pw, struct fg_err *err);
void fg_password_exit(struct fg_password *pw);
/* pem_password_cb for OpenSSL; @u is a struct fg_password. Asks only when a key is encrypted. */
int fg_password_cb(char *buf, int size, int rwflag, void *u);

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

/* Writes @len bytes to @path through a temporary file and rename(2), with @mode. */
int fg_pki_write_file(const char *path, const void *data, size_t len, mode_t mode,
		      struct fg_err *err);

/* Reads a whole file (at most @max bytes) into a NUL-terminated malloc'd buffer. */
int fg_pki_read_file(const char *path, size_t max, char **out, size_t *len,
		     struct fg_err *err);

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

/* X.520's upper bound for a CommonName, in characters. */
#define FG_PKI_CN_MAX 64

/* 1 if @cn (UTF-8) can be a CommonName: 1 to FG_PKI_CN_MAX characters. */
int fg_pki_cn_fits(const char *cn);

/* What fg_pki_issue() makes. */
struct fg_pki_issue {
	/*
	 * Subject CN (and O if @org). A leaf's is left out when empty or over
	 * FG_PKI_CN_MAX characters; its SANs are then critical.
	 */
	const char *cn;
	const char *org;
	EVP_PKEY *pubkey;	   /* subject public key */
	X509 *issuer;		   /* NULL: self-signed */
	EVP_PKEY *issuer_key;	   /* signs */
	int64_t not_before, not_after; /* seconds since the epoch */
	int ca;			   /* CA:TRUE, keyCertSign|cRLSign */
	int pathlen;		   /* CA only; < 0: none */
	const GENERAL_NAMES *sans; /* leaf only */
};

/*
 * Issues a certificate (SHA-256 signature, random 128-bit serial, SKI and AKI).
 * Leaves get digitalSignature (plus keyEncipherment for RSA keys), serverAuth
 * and clientAuth.
 */
X509 *fg_pki_issue(const struct fg_pki_issue *req, struct fg_err *err);

/* Parses a Go duration ("24h", "2m", "1h30m", "90s", "500ms"; a leading '-' allowed). */
int fg_duration_parse(const char *s, int64_t *ms);

/* Parses RFC 3339 time ("2026-01-02T03:04:05Z", offsets, fractions) to epoch seconds. */
int fg_time_parse(const char *s, int64_t *t);

/*
 * Parses a "host:port" URL authority of an https:// URL: @host gets the host
 * (brackets removed for IPv6), @port the port ("443" if absent), @rest the
 * path after the authority ("" if none). Returns 0 or -EINVAL.
 */
int fg_url_parse(const char *url, char *host, size_t host_len, char *port, size_t port_len,
		 const char **rest);

#endif
