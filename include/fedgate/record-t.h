/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_RECORD_T_H
#define FEDGATE_RECORD_T_H

#include <stdint.h>
#include "fedgate/keys-t.h"

#define FG_TLS_HDR 5
#define FG_TLS_TAG 16
#define FG_TLS_MAX_PLAIN 16384		   /* 2^14, RFC 8446 5.1 */
#define FG_TLS_MAX_CIPHER (16384 + 256)	   /* 2^14 + 256, RFC 8446 5.2 */
#define FG_TLS_RECORD_MAX (FG_TLS_HDR + FG_TLS_MAX_CIPHER)
/* A full-size record that fedgate itself seals: data + type byte + tag. */
#define FG_TLS_SEAL_MAX (FG_TLS_HDR + FG_TLS_MAX_PLAIN + 1 + FG_TLS_TAG)

enum fg_content_type {
	FG_CT_CHANGE_CIPHER_SPEC = 20,
	FG_CT_ALERT = 21,
	FG_CT_HANDSHAKE = 22,
	FG_CT_APPLICATION_DATA = 23,
};

/*
 * One direction of the userspace record layer. A zeroed struct is empty;
 * fg_record_init() fills it, fg_record_exit() wipes it.
 */
struct fg_record_dir {
	/* NULL while parked; else a gcry_cipher_hd_t or an EVP_CIPHER_CTX (fg_record_aead_lib) */
	void *ctx;
	uint16_t cipher;
	int encrypt;
	struct fg_traffic_keys k;
};

#endif
