/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_KEYS_T_H
#define FEDGATE_KEYS_T_H

#include <stdint.h>

/* TLS 1.3 cipher suites, by their IANA code points. */
enum fg_cipher {
	FG_CIPHER_NONE = 0,
	FG_AES_128_GCM = 0x1301,
	FG_AES_256_GCM = 0x1302,
	FG_CHACHA20_POLY1305 = 0x1303,
};

#define FG_SECRET_MAX 48
#define FG_KEY_MAX 32
#define FG_IV_LEN 12

/*
 * One direction of a TLS 1.3 connection after the handshake. @secret is the
 * current application traffic secret (kept so KeyUpdate can be followed), @key
 * and @iv are derived from it, @seq is the number of records already protected
 * with this key (so the next record uses @seq).
 */
struct fg_traffic_keys {
	uint8_t secret[FG_SECRET_MAX];
	uint8_t key[FG_KEY_MAX];
	uint8_t iv[FG_IV_LEN];
	uint64_t seq;
};

/* What the control process exports and both offload backends consume. */
struct fg_session_keys {
	uint16_t cipher; /* enum fg_cipher */
	struct fg_traffic_keys tx;
	struct fg_traffic_keys rx;
};

#endif
