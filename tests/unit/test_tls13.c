/* SPDX-License-Identifier: MIT */
/*
 * Key schedule tests: fg_cipher_params(), fg_tls13_expand_label(),
 * fg_tls13_traffic_keys() and fg_tls13_key_update().
 *
 * The TLS_AES_128_GCM_SHA256 vectors are RFC 8448 section 3 ("Simple 1-RTT
 * Handshake"). The SHA-384 and ChaCha20 vectors, and the "traffic upd" ones,
 * are not in RFC 8448: they were computed independently (Python hmac/hashlib
 * HKDF-Expand-Label and `openssl kdf HKDF`) and, for "traffic upd" on the RFC
 * secrets, agree with Botan's test_tls_cipher_state.cpp.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "fedgate/keys-t.h"
#include "fedgate/tls13.h"
#include "unit.h"

/* RFC 8448 3: {server} derive secret "tls13 s hs traffic" */
static const char rfc_s_hs_secret[] = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4"
				      "e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
/* {server} derive write traffic keys for handshake data */
static const char rfc_s_hs_key[] = "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc";
static const char rfc_s_hs_iv[] = "5d 31 3e b2 67 12 76 ee 13 00 0b 30";

/* {client} derive secret "tls13 c hs traffic" */
static const char rfc_c_hs_secret[] = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f"
				      "3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
/* {client} derive write traffic keys for handshake data */
static const char rfc_c_hs_key[] = "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01";
static const char rfc_c_hs_iv[] = "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f";

/* {server} derive secret "tls13 s ap traffic" */
static const char rfc_s_ap_secret[] = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32"
				      "82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
/* {server} derive write traffic keys for application data */
static const char rfc_s_ap_key[] = "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56";
static const char rfc_s_ap_iv[] = "cf 78 2b 88 dd 83 54 9a ad f1 e9 84";

/* {server} derive secret "tls13 c ap traffic" */
static const char rfc_c_ap_secret[] = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52"
				      "87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";
/* {client} derive write traffic keys for application data */
static const char rfc_c_ap_key[] = "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51";
static const char rfc_c_ap_iv[] = "5b 78 92 3d ee 08 57 90 33 e5 23 d9";

/* HKDF-Expand-Label(secret, "traffic upd", "", 32): not in RFC 8448. */
static const char c_ap_secret_1[] = "fc df cc 72 72 5a ae e4 8b f6 4e 4f d8 b7 49 cd"
				    "bd ba b3 9d 90 da 0b 26 e2 24 5c a6 ea 16 72 07";
static const char s_ap_secret_1[] = "51 92 1b 8a a3 00 19 76 eb 40 1d 0a 43 19 a8 51"
				    "64 16 a6 c5 60 01 a3 57 e5 d1 62 03 1e 84 f9 16";

/* RFC 8448 3: {server} derive secret for handshake "tls13 derived" */
static const char rfc_early_secret[] = "33 ad 0a 1c 60 7e c0 3b 09 e6 cd 98 93 68 0c e2"
				       "10 ad f3 00 aa 1f 26 60 e1 b2 2e 10 f1 70 f9 2a";
static const char sha256_empty[] = "e3 b0 c4 42 98 fc 1c 14 9a fb f4 c8 99 6f b9 24"
				   "27 ae 41 e4 64 9b 93 4c a4 95 99 1b 78 52 b8 55";
static const char rfc_derived[] = "6f 26 15 a1 08 c7 02 c5 67 8f 54 fc 9d ba b6 97"
				  "16 c0 76 18 9c 48 25 0c eb ea c3 57 6c 36 11 ba";

/* {server} extract secret "handshake" and the ClientHello..ServerHello hash */
static const char rfc_hs_secret[] = "1d c8 26 e9 36 06 aa 6f dc 0a ad c1 2f 74 1b 01"
				    "04 6a a6 b9 9f 69 1e d2 21 a9 f0 ca 04 3f be ac";
static const char rfc_hash_ch_sh[] = "86 0c 06 ed c0 78 58 ee 8e 78 f0 e7 42 8c 58 ed"
				     "d6 b4 3f 2c a3 e6 e9 5f 02 ed 06 3c f0 e1 ca d8";

/* {server} calculate finished "tls13 finished": finished key */
static const char rfc_s_finished_key[] = "00 8d 3b 66 f8 16 ea 55 9f 96 b5 37 e8 85 c3 1f"
					 "c0 68 bf 49 2c 65 2f 01 f2 88 a1 d8 cd c1 9f c8";

/* SHA-384 (TLS_AES_256_GCM_SHA384), secret = 00 01 .. 2f. */
static const char s384_key[] = "68 77 d0 22 f1 c6 1d 24 eb b7 48 7c 16 75 2d 9a"
			       "47 98 e4 04 31 c7 5b 39 32 0e 53 7c 90 e2 32 25";
static const char s384_iv[] = "42 82 25 31 a0 fe 88 64 8f c0 9e 9f";
static const char s384_upd[] = "40 13 31 b6 3e 9d 59 f2 02 e8 f0 41 04 2d 95 16"
			       "f4 cd 7f a2 e2 ee 14 63 1d 3b 49 fc 34 0d 7a f3"
			       "7f c2 c0 c9 f2 52 d8 03 6f 81 ec 5b 85 cb e5 db";

/* SHA-256 (TLS_CHACHA20_POLY1305_SHA256), secret = 00 01 .. 1f. */
static const char cc_key[] = "2f fb c4 49 e8 78 44 05 1c 77 68 f6 1f fd 8a d0"
			     "70 83 0f 01 ec 2c 52 0e f6 5f 08 e8 29 6d ff a0";
static const char cc_iv[] = "2f 41 c8 46 a4 31 a1 63 81 4b cd 71";

static size_t hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = unit_hex(s, out, cap);

	CHECK(n <= cap);
	return n;
}

static void check_traffic_keys(uint16_t cipher, const char *secret, const char *key, const char *iv)
{
	struct fg_traffic_keys tk;
	uint8_t want_key[FG_KEY_MAX], want_iv[FG_IV_LEN], want_secret[FG_SECRET_MAX];
	size_t key_len, secret_len;

	memset(&tk, 0, sizeof(tk));
	secret_len = hex(secret, tk.secret, sizeof(tk.secret));
	memcpy(want_secret, tk.secret, sizeof(want_secret));
	key_len = hex(key, want_key, sizeof(want_key));
	CHECK_EQ(hex(iv, want_iv, sizeof(want_iv)), FG_IV_LEN);

	CHECK_EQ(fg_tls13_traffic_keys(cipher, &tk), 0);
	CHECK_MEM(tk.key, want_key, key_len);
	CHECK_MEM(tk.iv, want_iv, FG_IV_LEN);
	/* The secret is an input only. */
	CHECK_MEM(tk.secret, want_secret, secret_len);
}

UNIT_TEST(cipher_params_known)
{
	size_t key_len = 0, secret_len = 0;

	CHECK_EQ(fg_cipher_params(FG_AES_128_GCM, &key_len, &secret_len), 0);
	CHECK_EQ(key_len, 16);
	CHECK_EQ(secret_len, 32);

	key_len = secret_len = 0;
	CHECK_EQ(fg_cipher_params(FG_AES_256_GCM, &key_len, &secret_len), 0);
	CHECK_EQ(key_len, 32);
	CHECK_EQ(secret_len, 48);

	key_len = secret_len = 0;
	CHECK_EQ(fg_cipher_params(FG_CHACHA20_POLY1305, &key_len, &secret_len), 0);
	CHECK_EQ(key_len, 32);
	CHECK_EQ(secret_len, 32);

	/* Whatever is carried fits the fixed-size buffers. */
	CHECK(key_len <= FG_KEY_MAX);
	CHECK(secret_len <= FG_SECRET_MAX);
}

UNIT_TEST(cipher_params_unknown)
{
	size_t key_len = 0, secret_len = 0;

	CHECK_EQ(fg_cipher_params(0x1304, &key_len, &secret_len), -EINVAL); /* AES_128_CCM */
	CHECK_EQ(fg_cipher_params(0x1305, &key_len, &secret_len), -EINVAL);
	CHECK_EQ(fg_cipher_params(FG_CIPHER_NONE, &key_len, &secret_len), -EINVAL);
	CHECK_EQ(fg_cipher_params(0xc02f, &key_len, &secret_len), -EINVAL); /* a TLS 1.2 suite */
	CHECK_EQ(fg_cipher_params(0xffff, &key_len, &secret_len), -EINVAL);
}

UNIT_TEST(cipher_names)
{
	CHECK(strcmp(fg_cipher_name(FG_AES_128_GCM), "TLS_AES_128_GCM_SHA256") == 0);
	CHECK(strcmp(fg_cipher_name(FG_AES_256_GCM), "TLS_AES_256_GCM_SHA384") == 0);
	CHECK(strcmp(fg_cipher_name(FG_CHACHA20_POLY1305), "TLS_CHACHA20_POLY1305_SHA256") == 0);
	CHECK(strcmp(fg_cipher_name(0x1304), "unknown") == 0);
	CHECK(strcmp(fg_cipher_name(FG_CIPHER_NONE), "unknown") == 0);
}

/* Expand-Label with an empty context: the server finished key. */
UNIT_TEST(expand_label_rfc8448_finished_key)
{
	uint8_t secret[32], want[32], out[32];

	hex(rfc_s_hs_secret, secret, sizeof(secret));
	hex(rfc_s_finished_key, want, sizeof(want));
	memset(out, 0xa5, sizeof(out));
	CHECK_EQ(
	    fg_tls13_expand_label(FG_AES_128_GCM, secret, "finished", NULL, 0, out, sizeof(out)),
	    0);
	CHECK_MEM(out, want, sizeof(want));
}

/* Expand-Label with a context: Derive-Secret(., "derived", "") and "s hs traffic". */
UNIT_TEST(expand_label_rfc8448_with_context)
{
	uint8_t secret[32], ctx[32], want[32], out[32];

	hex(rfc_early_secret, secret, sizeof(secret));
	hex(sha256_empty, ctx, sizeof(ctx));
	hex(rfc_derived, want, sizeof(want));
	CHECK_EQ(fg_tls13_expand_label(FG_AES_128_GCM, secret, "derived", ctx, sizeof(ctx), out,
				       sizeof(out)),
		 0);
	CHECK_MEM(out, want, sizeof(want));

	hex(rfc_hs_secret, secret, sizeof(secret));
	hex(rfc_hash_ch_sh, ctx, sizeof(ctx));
	hex(rfc_s_hs_secret, want, sizeof(want));
	CHECK_EQ(fg_tls13_expand_label(FG_AES_128_GCM, secret, "s hs traffic", ctx, sizeof(ctx),
				       out, sizeof(out)),
		 0);
	CHECK_MEM(out, want, sizeof(want));

	hex(rfc_c_hs_secret, want, sizeof(want));
	CHECK_EQ(fg_tls13_expand_label(FG_AES_128_GCM, secret, "c hs traffic", ctx, sizeof(ctx),
				       out, sizeof(out)),
		 0);
	CHECK_MEM(out, want, sizeof(want));
}

/* Expand-Label writes exactly out_len bytes: the RFC key and iv lengths. */
UNIT_TEST(expand_label_rfc8448_key_iv)
{
	uint8_t secret[32], want[16], out[20];

	hex(rfc_s_ap_secret, secret, sizeof(secret));
	hex(rfc_s_ap_key, want, sizeof(want));
	memset(out, 0xa5, sizeof(out));
	CHECK_EQ(fg_tls13_expand_label(FG_AES_128_GCM, secret, "key", NULL, 0, out, 16), 0);
	CHECK_MEM(out, want, 16);
	CHECK_EQ(out[16], 0xa5);

	hex(rfc_s_ap_iv, want, sizeof(want));
	memset(out, 0xa5, sizeof(out));
	CHECK_EQ(fg_tls13_expand_label(FG_AES_128_GCM, secret, "iv", NULL, 0, out, 12), 0);
	CHECK_MEM(out, want, 12);
	CHECK_EQ(out[12], 0xa5);
}

UNIT_TEST(expand_label_unknown_cipher)
{
	uint8_t secret[48] = {0}, out[32];

	CHECK_EQ(fg_tls13_expand_label(0x1304, secret, "key", NULL, 0, out, 16), -EINVAL);
	CHECK_EQ(fg_tls13_expand_label(FG_CIPHER_NONE, secret, "key", NULL, 0, out, 16), -EINVAL);
}

UNIT_TEST(traffic_keys_rfc8448_server_app)
{
	check_traffic_keys(FG_AES_128_GCM, rfc_s_ap_secret, rfc_s_ap_key, rfc_s_ap_iv);
}

UNIT_TEST(traffic_keys_rfc8448_client_app)
{
	check_traffic_keys(FG_AES_128_GCM, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv);
}

UNIT_TEST(traffic_keys_rfc8448_server_handshake)
{
	check_traffic_keys(FG_AES_128_GCM, rfc_s_hs_secret, rfc_s_hs_key, rfc_s_hs_iv);
}

UNIT_TEST(traffic_keys_rfc8448_client_handshake)
{
	check_traffic_keys(FG_AES_128_GCM, rfc_c_hs_secret, rfc_c_hs_key, rfc_c_hs_iv);
}

/* AES-256-GCM: SHA-384, 48-byte secret, 32-byte key. */
UNIT_TEST(traffic_keys_aes256_sha384)
{
	struct fg_traffic_keys tk;
	uint8_t want[32];

	memset(&tk, 0, sizeof(tk));
	for (int i = 0; i < 48; i++)
		tk.secret[i] = (uint8_t)i;
	CHECK_EQ(fg_tls13_traffic_keys(FG_AES_256_GCM, &tk), 0);
	hex(s384_key, want, sizeof(want));
	CHECK_MEM(tk.key, want, 32);
	hex(s384_iv, want, sizeof(want));
	CHECK_MEM(tk.iv, want, FG_IV_LEN);

	/* Expand-Label agrees with the traffic keys for this hash too. */
	CHECK_EQ(fg_tls13_expand_label(FG_AES_256_GCM, tk.secret, "key", NULL, 0, want, 32), 0);
	CHECK_MEM(tk.key, want, 32);
}

/* ChaCha20-Poly1305: SHA-256, 32-byte secret, 32-byte key. */
UNIT_TEST(traffic_keys_chacha20)
{
	struct fg_traffic_keys tk;
	uint8_t want[32];

	memset(&tk, 0, sizeof(tk));
	for (int i = 0; i < 32; i++)
		tk.secret[i] = (uint8_t)i;
	CHECK_EQ(fg_tls13_traffic_keys(FG_CHACHA20_POLY1305, &tk), 0);
	hex(cc_key, want, sizeof(want));
	CHECK_MEM(tk.key, want, 32);
	hex(cc_iv, want, sizeof(want));
	CHECK_MEM(tk.iv, want, FG_IV_LEN);
}

UNIT_TEST(traffic_keys_unknown_cipher)
{
	struct fg_traffic_keys tk;

	memset(&tk, 0, sizeof(tk));
	CHECK_EQ(fg_tls13_traffic_keys(0x1304, &tk), -EINVAL);
}

static void check_key_update(uint16_t cipher, const uint8_t *secret, size_t secret_len,
			     const char *want_hex)
{
	struct fg_traffic_keys tk, fresh;
	uint8_t old[FG_SECRET_MAX], want[FG_SECRET_MAX], want2[FG_SECRET_MAX];

	memset(&tk, 0, sizeof(tk));
	memcpy(tk.secret, secret, secret_len);
	CHECK_EQ(fg_tls13_traffic_keys(cipher, &tk), 0);
	tk.seq = 12345;
	memcpy(old, tk.secret, sizeof(old));

	CHECK_EQ(fg_tls13_expand_label(cipher, old, "traffic upd", NULL, 0, want, secret_len), 0);
	if (want_hex) {
		CHECK_EQ(hex(want_hex, want2, sizeof(want2)), secret_len);
		CHECK_MEM(want, want2, secret_len);
	}

	CHECK_EQ(fg_tls13_key_update(cipher, &tk), 0);
	CHECK_EQ(tk.seq, 0);
	CHECK_MEM(tk.secret, want, secret_len);
	CHECK(memcmp(tk.secret, old, secret_len) != 0);

	/* key and iv follow the new secret. */
	memset(&fresh, 0, sizeof(fresh));
	memcpy(fresh.secret, tk.secret, sizeof(fresh.secret));
	CHECK_EQ(fg_tls13_traffic_keys(cipher, &fresh), 0);
	CHECK_MEM(tk.key, fresh.key, FG_KEY_MAX);
	CHECK_MEM(tk.iv, fresh.iv, FG_IV_LEN);

	/* A second update moves on again. */
	memcpy(old, tk.secret, sizeof(old));
	CHECK_EQ(fg_tls13_expand_label(cipher, old, "traffic upd", NULL, 0, want, secret_len), 0);
	tk.seq = 7;
	CHECK_EQ(fg_tls13_key_update(cipher, &tk), 0);
	CHECK_EQ(tk.seq, 0);
	CHECK_MEM(tk.secret, want, secret_len);
}

UNIT_TEST(key_update_rfc8448_client_app)
{
	uint8_t secret[32];

	hex(rfc_c_ap_secret, secret, sizeof(secret));
	check_key_update(FG_AES_128_GCM, secret, sizeof(secret), c_ap_secret_1);
}

UNIT_TEST(key_update_rfc8448_server_app)
{
	uint8_t secret[32];

	hex(rfc_s_ap_secret, secret, sizeof(secret));
	check_key_update(FG_AES_128_GCM, secret, sizeof(secret), s_ap_secret_1);
}

UNIT_TEST(key_update_aes256_sha384)
{
	uint8_t secret[48];

	for (int i = 0; i < 48; i++)
		secret[i] = (uint8_t)i;
	check_key_update(FG_AES_256_GCM, secret, sizeof(secret), s384_upd);
}

UNIT_TEST(key_update_chacha20)
{
	uint8_t secret[32];

	for (int i = 0; i < 32; i++)
		secret[i] = (uint8_t)(0xff - i);
	check_key_update(FG_CHACHA20_POLY1305, secret, sizeof(secret), NULL);
}

UNIT_TEST(key_update_unknown_cipher)
{
	struct fg_traffic_keys tk;

	memset(&tk, 0, sizeof(tk));
	tk.secret[0] = 1;
	CHECK_EQ(fg_tls13_key_update(0x1304, &tk), -EINVAL);
}

UNIT_MAIN("tls13", UNIT_CASE(cipher_params_known), UNIT_CASE(cipher_params_unknown),
	  UNIT_CASE(cipher_names), UNIT_CASE(expand_label_rfc8448_finished_key),
	  UNIT_CASE(expand_label_rfc8448_with_context), UNIT_CASE(expand_label_rfc8448_key_iv),
	  UNIT_CASE(expand_label_unknown_cipher), UNIT_CASE(traffic_keys_rfc8448_server_app),
	  UNIT_CASE(traffic_keys_rfc8448_client_app),
	  UNIT_CASE(traffic_keys_rfc8448_server_handshake),
	  UNIT_CASE(traffic_keys_rfc8448_client_handshake), UNIT_CASE(traffic_keys_aes256_sha384),
	  UNIT_CASE(traffic_keys_chacha20), UNIT_CASE(traffic_keys_unknown_cipher),
	  UNIT_CASE(key_update_rfc8448_client_app), UNIT_CASE(key_update_rfc8448_server_app),
	  UNIT_CASE(key_update_aes256_sha384), UNIT_CASE(key_update_chacha20),
	  UNIT_CASE(key_update_unknown_cipher))
