/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_PKI_T_H
#define FEDGATE_CA_PKI_T_H

#include <stdint.h>
#include <openssl/types.h>
#include <openssl/x509v3.h>

/* X.520's upper bound for a CommonName, in characters. */
#define FG_PKI_CN_MAX 64

/* What fg_pki_issue() makes. */
struct fg_pki_issue {
	/*
	 * Subject CN (and O if @org). A leaf's is left out when empty or over
	 * FG_PKI_CN_MAX characters; its SANs are then critical.
	 */
	const char *cn;
	const char *org;
	EVP_PKEY *pubkey;	       /* subject public key */
	X509 *issuer;		       /* NULL: self-signed */
	EVP_PKEY *issuer_key;	       /* signs */
	int64_t not_before, not_after; /* seconds since the epoch */
	int ca;			       /* CA:TRUE, keyCertSign|cRLSign */
	int pathlen;		       /* CA only; < 0: none */
	const GENERAL_NAMES *sans;     /* leaf only */
};

#endif
