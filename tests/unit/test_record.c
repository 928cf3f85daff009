/* SPDX-License-Identifier: MIT */
/*
 * Record layer tests: fg_record_init/exit/seal/open/key_update.
 *
 * The known-answer records are RFC 8448 section 3 ("Simple 1-RTT Handshake",
 * TLS_AES_128_GCM_SHA256). Each was checked before use: it authenticates
 * under the RFC's key and iv (AES-GCM tag) and decrypts to the RFC payload.
 * Records the RFC does not give (padding, all-zero inner plaintext, a high
 * sequence number) are built here with EVP directly, independently of the
 * code under test, and sealed records are also opened that way.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "fedgate/keys-t.h"
#include "fedgate/record-t.h"
#include "fedgate/record.h"
#include "fedgate/tls13.h"
#include "unit.h"

/* RFC 8448 3: application traffic secrets and their write keys. */
static const char rfc_c_ap_secret[] = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52"
				      "87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";
static const char rfc_c_ap_key[] = "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51";
static const char rfc_c_ap_iv[] = "5b 78 92 3d ee 08 57 90 33 e5 23 d9";
static const char rfc_s_ap_secret[] = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32"
				      "82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
static const char rfc_s_ap_key[] = "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56";
static const char rfc_s_ap_iv[] = "cf 78 2b 88 dd 83 54 9a ad f1 e9 84";

/* Handshake traffic secrets and their write keys. */
static const char rfc_s_hs_secret[] = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4"
				      "e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
static const char rfc_s_hs_key[] = "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc";
static const char rfc_s_hs_iv[] = "5d 31 3e b2 67 12 76 ee 13 00 0b 30";
static const char rfc_c_hs_secret[] = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f"
				      "3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
static const char rfc_c_hs_key[] = "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01";
static const char rfc_c_hs_iv[] = "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f";

/*
 * Client application traffic secret 1 = Expand-Label(secret 0, "traffic upd")
 * and its key and iv; not in RFC 8448 (computed independently, and the secret
 * matches Botan's test vectors).
 */
static const char c_ap_secret_1[] = "fc df cc 72 72 5a ae e4 8b f6 4e 4f d8 b7 49 cd"
				    "bd ba b3 9d 90 da 0b 26 e2 24 5c a6 ea 16 72 07";
static const char c_ap_key_1[] = "38 79 d8 2f 5f 14 05 6e 62 3f 2c e5 bf c6 6f ce";
static const char c_ap_iv_1[] = "5d fb 2c 59 38 c3 37 9b 6c c5 d1 f2";

/*
 * {server} send handshake record: EncryptedExtensions, Certificate,
 * CertificateVerify, Finished under the server handshake key, seq 0.
 * Complete record (679 octets) and payload (657 octets).
 */
static const char rfc_s_hs_record[] = "17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 "
				      "cc 87 b5 80 23 3f 50 0f 45 e4 89 e7 f3 3a f3 5e "
				      "df 78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca "
				      "07 61 2e f9 f9 45 cb 96 0b 40 68 90 51 23 ea 78 "
				      "b1 11 b4 29 ba 91 91 cd 05 d2 a3 89 28 0f 52 61 "
				      "34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b "
				      "d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 "
				      "02 07 16 cf b9 b1 18 3e f3 ab 20 e3 7d 57 a6 b9 "
				      "d7 47 76 09 ae e6 e1 22 a4 cf 51 42 73 25 25 0c "
				      "7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d 2e "
				      "d6 5b 0e 3c dd 0c ba e8 bf 2d 0b 22 78 12 cb b3 "
				      "60 98 72 55 cc 74 41 10 c4 53 ba a4 fc d6 10 92 "
				      "8d 80 98 10 e4 b7 ed 1a 8f d9 91 f0 6a a6 24 82 "
				      "04 79 7e 36 a6 a7 3b 70 a2 55 9c 09 ea d6 86 94 "
				      "5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8 "
				      "94 41 ac 66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 "
				      "45 96 c9 60 bd 59 6e ea 52 0a 56 a8 d6 50 f5 63 "
				      "aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e a5 e2 2f "
				      "44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 "
				      "4e d6 54 0c 84 83 8d 89 f7 2c 24 46 1a ad 6d 26 "
				      "f5 9e ca ba 9a cb bb 31 7b 66 d9 02 f4 f2 92 a3 "
				      "6a c1 b6 39 c6 37 ce 34 31 17 b6 59 62 22 45 31 "
				      "7b 49 ee da 0c 62 58 f1 00 d7 d9 61 ff b1 38 64 "
				      "7e 92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd 7e "
				      "1b 7a 6c 71 78 af 36 87 90 18 e3 f2 52 10 7f 24 "
				      "3d 24 3d c7 33 9d 56 84 c8 b0 37 8b f3 02 44 da "
				      "8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c "
				      "f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7 d4 "
				      "61 e6 6f 99 88 2b d8 9f c5 08 00 be cc a6 2d 6c "
				      "74 11 6d bd 29 72 fd a1 fa 80 f8 5d f8 81 ed be "
				      "5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69 18 "
				      "a3 96 fa 48 a1 81 d6 b6 fa 4f 9d 62 d5 13 af bb "
				      "99 2f 2b 99 2f 67 f8 af e6 7f 76 91 3f a3 88 cb "
				      "56 30 c8 ca 01 e0 c6 5d 11 c6 6a 1e 2a c4 c8 59 "
				      "77 b7 c7 a6 99 9b bf 10 dc 35 ae 69 f5 51 56 14 "
				      "63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38 "
				      "eb ba 42 f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 "
				      "8c 31 7f c9 fa 66 a7 3f 60 f0 50 4d e9 3b 5b 84 "
				      "5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd d5 02 78 "
				      "40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 "
				      "d2 af 93 98 28 fd 4a e3 79 4e 44 f9 4d f5 a6 31 "
				      "ed e4 2c 17 19 bf da bf 02 53 fe 51 75 be 89 8e "
				      "75 0e dc 53 37 0d 2b";
static const char rfc_s_hs_payload[] = "08 00 00 24 00 22 00 0a 00 14 00 12 00 1d 00 17 "
				       "00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 1c "
				       "00 02 40 01 00 00 00 00 0b 00 01 b9 00 00 01 b5 "
				       "00 01 b0 30 82 01 ac 30 82 01 15 a0 03 02 01 02 "
				       "02 01 02 30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b "
				       "05 00 30 0e 31 0c 30 0a 06 03 55 04 03 13 03 72 "
				       "73 61 30 1e 17 0d 31 36 30 37 33 30 30 31 32 33 "
				       "35 39 5a 17 0d 32 36 30 37 33 30 30 31 32 33 35 "
				       "39 5a 30 0e 31 0c 30 0a 06 03 55 04 03 13 03 72 "
				       "73 61 30 81 9f 30 0d 06 09 2a 86 48 86 f7 0d 01 "
				       "01 01 05 00 03 81 8d 00 30 81 89 02 81 81 00 b4 "
				       "bb 49 8f 82 79 30 3d 98 08 36 39 9b 36 c6 98 8c "
				       "0c 68 de 55 e1 bd b8 26 d3 90 1a 24 61 ea fd 2d "
				       "e4 9a 91 d0 15 ab bc 9a 95 13 7a ce 6c 1a f1 9e "
				       "aa 6a f9 8c 7c ed 43 12 09 98 e1 87 a8 0e e0 cc "
				       "b0 52 4b 1b 01 8c 3e 0b 63 26 4d 44 9a 6d 38 e2 "
				       "2a 5f da 43 08 46 74 80 30 53 0e f0 46 1c 8c a9 "
				       "d9 ef bf ae 8e a6 d1 d0 3e 2b d1 93 ef f0 ab 9a "
				       "80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f 7f 1e 3f 02 "
				       "03 01 00 01 a3 1a 30 18 30 09 06 03 55 1d 13 04 "
				       "02 30 00 30 0b 06 03 55 1d 0f 04 04 03 02 05 a0 "
				       "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00 03 "
				       "81 81 00 85 aa d2 a0 e5 b9 27 6b 90 8c 65 f7 3a "
				       "72 67 17 06 18 a5 4c 5f 8a 7b 33 7d 2d f7 a5 94 "
				       "36 54 17 f2 ea e8 f8 a5 8c 8f 81 72 f9 31 9c f3 "
				       "6b 7f d6 c5 5b 80 f2 1a 03 01 51 56 72 60 96 fd "
				       "33 5e 5e 67 f2 db f1 02 70 2e 60 8c ca e6 be c1 "
				       "fc 63 a4 2a 99 be 5c 3e b7 10 7c 3c 54 e9 b9 eb "
				       "2b d5 20 3b 1c 3b 84 e0 a8 b2 f7 59 40 9b a3 ea "
				       "c9 d9 1d 40 2d cc 0c c8 f8 96 12 29 ac 91 87 b4 "
				       "2b 4d e1 00 00 0f 00 00 84 08 04 00 80 5a 74 7c "
				       "5d 88 fa 9b d2 e5 5a b0 85 a6 10 15 b7 21 1f 82 "
				       "4c d4 84 14 5a b3 ff 52 f1 fd a8 47 7b 0b 7a bc "
				       "90 db 78 e2 d3 3a 5c 14 1a 07 86 53 fa 6b ef 78 "
				       "0c 5e a2 48 ee aa a7 85 c4 f3 94 ca b6 d3 0b be "
				       "8d 48 59 ee 51 1f 60 29 57 b1 54 11 ac 02 76 71 "
				       "45 9e 46 44 5c 9e a5 8c 18 1e 81 8e 95 b8 c3 fb "
				       "0b f3 27 84 09 d3 be 15 2a 3d a5 04 3e 06 3d da "
				       "65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3 14 00 00 "
				       "20 9b 9b 14 1d 90 63 37 fb d2 cb dc e7 1d f4 de "
				       "da 4a b4 2c 30 95 72 cb 7f ff ee 54 54 b7 8f 07 "
				       "18";

/* {client} send handshake record: Finished under the client handshake key. */
static const char rfc_c_fin_record[] = "17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 "
				       "a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc "
				       "44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c "
				       "ae ac ab 68 67 d7 26 c4 05 46";
static const char rfc_c_fin_payload[] = "14 00 00 20 a8 ec 43 6d 67 76 34 ae 52 5a c1 fc "
					"eb e1 1a 03 9e c1 76 94 fa c6 e9 85 27 b6 42 f2 "
					"ed d5 ce 61";

/*
 * {server} send handshake record: NewSessionTicket under the server
 * application key, seq 0 (227 octets; payload 205 octets).
 */
static const char rfc_s_nst_record[] = "17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 "
				       "87 68 0d e5 13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 "
				       "1d 6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a "
				       "01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88 91 a3 "
				       "8e fb cf 57 53 ad 8e f1 70 ad 3c 73 53 d1 6d 9d "
				       "a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0 "
				       "9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 "
				       "9b 29 99 ce 13 06 46 15 13 98 91 d5 e4 c5 b4 06 "
				       "f1 6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77 "
				       "f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 "
				       "9d 86 cb ee ac 87 aa c3 47 d1 43 f9 60 5d 64 f6 "
				       "50 db 4d 02 3e 70 e9 52 ca 49 fe 51 37 12 1c 74 "
				       "bc 26 97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 "
				       "86 96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b f1 59 "
				       "85 68 4f";
static const char rfc_s_nst_payload[] = "04 00 00 c9 00 00 00 1e fa d6 aa c5 02 00 00 00 "
					"b2 2c 03 5d 82 93 59 ee 5f f7 af 4e c9 00 00 00 "
					"00 26 2a 64 94 dc 48 6d 2c 8a 34 cb 33 fa 90 bf "
					"1b 00 70 ad 3c 49 88 83 c9 36 7c 09 a2 be 78 5a "
					"bc 55 cd 22 60 97 a3 a9 82 11 72 83 f8 2a 03 a1 "
					"43 ef d3 ff 5d d3 6d 64 e8 61 be 7f d6 1d 28 27 "
					"db 27 9c ce 14 50 77 d4 54 a3 66 4d 4e 6d a4 d2 "
					"9e e0 37 25 a6 a4 da fc d0 fc 67 d2 ae a7 05 29 "
					"51 3e 3d a2 67 7f a5 90 6c 5b 3f 7d 8f 92 f2 28 "
					"bd a4 0d da 72 14 70 f9 fb f2 97 b5 ae a6 17 64 "
					"6f ac 5c 03 27 2e 97 07 27 c6 21 a7 91 41 ef 5f "
					"7d e6 50 5e 5b fb c3 88 e9 33 43 69 40 93 93 4a "
					"e4 d3 57 00 08 00 2a 00 04 00 00 04 00";

/*
 * {client} send application_data record (72 octets), payload 00 01 .. 31
 * (50 octets), client application key, seq 0.
 */
static const char rfc_c_app_record[] = "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe "
				       "82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f "
				       "2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b "
				       "62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 "
				       "3a ee bb 21 69 49 15 e4";

/* {server} send application_data record (72 octets), same payload, seq 1. */
static const char rfc_s_app_record[] = "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad "
				       "36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 "
				       "e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 "
				       "fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 "
				       "0d d0 32 e1 67 c2 95 5d";

#define CAPP_LEN 72
#define SAPP_LEN 72
#define NST_LEN 227
#define NST_PAYLOAD_LEN 205
#define SHS_LEN 679
#define SHS_PAYLOAD_LEN 657
#define CFIN_LEN 58
#define CFIN_PAYLOAD_LEN 36
#define APP_PAYLOAD_LEN 50

static const uint16_t all_ciphers[] = {FG_AES_128_GCM, FG_AES_256_GCM, FG_CHACHA20_POLY1305};

static size_t hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = unit_hex(s, out, cap);

	CHECK(n <= cap);
	return n;
}

static void app_payload(uint8_t *p)
{
	for (int i = 0; i < APP_PAYLOAD_LEN; i++)
		p[i] = (uint8_t)i;
}

/* Key material straight from the RFC's "key expanded"/"iv expanded" lines. */
static void rfc_keys(struct fg_traffic_keys *tk, const char *secret, const char *key,
		     const char *iv, uint64_t seq)
{
	memset(tk, 0, sizeof(*tk));
	CHECK_EQ(hex(secret, tk->secret, sizeof(tk->secret)), 32);
	CHECK_EQ(hex(key, tk->key, sizeof(tk->key)), 16);
	CHECK_EQ(hex(iv, tk->iv, sizeof(tk->iv)), FG_IV_LEN);
	tk->seq = seq;
}

static int rfc_dir(struct fg_record_dir *d, const char *secret, const char *key, const char *iv,
		   uint64_t seq, int encrypt)
{
	struct fg_traffic_keys tk;
	int ret;

	memset(d, 0, sizeof(*d));
	rfc_keys(&tk, secret, key, iv, seq);
	ret = fg_record_init(d, FG_AES_128_GCM, &tk, encrypt);
	CHECK_EQ(ret, 0);
	return ret;
}

static void random_keys(struct fg_traffic_keys *tk, uint64_t seq)
{
	memset(tk, 0, sizeof(*tk));
	CHECK_EQ(RAND_bytes(tk->secret, sizeof(tk->secret)), 1);
	CHECK_EQ(RAND_bytes(tk->key, sizeof(tk->key)), 1);
	CHECK_EQ(RAND_bytes(tk->iv, sizeof(tk->iv)), 1);
	tk->seq = seq;
}

static const EVP_CIPHER *evp_aead(uint16_t cipher)
{
	switch (cipher) {
	case FG_AES_128_GCM:
		return EVP_aes_128_gcm();
	case FG_AES_256_GCM:
		return EVP_aes_256_gcm();
	case FG_CHACHA20_POLY1305:
		return EVP_chacha20_poly1305();
	}
	return NULL;
}

static void nonce(const struct fg_traffic_keys *k, uint64_t seq, uint8_t *n)
{
	memcpy(n, k->iv, FG_IV_LEN);
	for (int i = 0; i < 8; i++)
		n[FG_IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

/*
 * Independent reference: protects @inner (the whole TLSInnerPlaintext, type
 * byte and padding included) at @seq into @out. Returns the record length.
 */
static size_t manual_seal(uint16_t cipher, const struct fg_traffic_keys *k, uint64_t seq,
			  const uint8_t *inner, size_t inner_len, uint8_t *out)
{
	size_t clen = inner_len + FG_TLS_TAG;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t n[FG_IV_LEN];
	int outl = 0, ok;

	nonce(k, seq, n);
	out[0] = FG_CT_APPLICATION_DATA;
	out[1] = 0x03;
	out[2] = 0x03;
	out[3] = (uint8_t)(clen >> 8);
	out[4] = (uint8_t)clen;
	ok = ctx && EVP_EncryptInit_ex(ctx, evp_aead(cipher), NULL, k->key, n) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &outl, out, FG_TLS_HDR) == 1 &&
	     (inner_len == 0 ||
	      EVP_EncryptUpdate(ctx, out + FG_TLS_HDR, &outl, inner, (int)inner_len) == 1) &&
	     EVP_EncryptFinal_ex(ctx, out + FG_TLS_HDR + inner_len, &outl) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, FG_TLS_TAG,
				 out + FG_TLS_HDR + inner_len) == 1;
	CHECK(ok);
	EVP_CIPHER_CTX_free(ctx);
	return FG_TLS_HDR + clen;
}

/* Independent reference: opens @rec at @seq; returns the inner length or -1. */
static long manual_open(uint16_t cipher, const struct fg_traffic_keys *k, uint64_t seq,
			const uint8_t *rec, size_t len, uint8_t *inner)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t n[FG_IV_LEN], tag[FG_TLS_TAG];
	size_t clen;
	int outl = 0, ok;

	if (len < FG_TLS_HDR + FG_TLS_TAG || (size_t)(rec[3] << 8 | rec[4]) != len - FG_TLS_HDR)
		return -1;
	clen = len - FG_TLS_HDR - FG_TLS_TAG;
	memcpy(tag, rec + len - FG_TLS_TAG, FG_TLS_TAG);
	nonce(k, seq, n);
	ctx = EVP_CIPHER_CTX_new();
	ok =
	    ctx && EVP_DecryptInit_ex(ctx, evp_aead(cipher), NULL, k->key, n) == 1 &&
	    EVP_DecryptUpdate(ctx, NULL, &outl, rec, FG_TLS_HDR) == 1 &&
	    (clen == 0 || EVP_DecryptUpdate(ctx, inner, &outl, rec + FG_TLS_HDR, (int)clen) == 1) &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FG_TLS_TAG, tag) == 1 &&
	    EVP_DecryptFinal_ex(ctx, inner + clen, &outl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? (long)clen : -1;
}

/* ---- RFC 8448 known answers ---- */

UNIT_TEST(rfc8448_client_app_seal)
{
	struct fg_record_dir d;
	uint8_t payload[APP_PAYLOAD_LEN], want[CAPP_LEN], out[256];

	app_payload(payload);
	CHECK_EQ(hex(rfc_c_app_record, want, sizeof(want)), CAPP_LEN);
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 1))
		return;
	memset(out, 0, sizeof(out));
	CHECK_EQ(
	    fg_record_seal(&d, FG_CT_APPLICATION_DATA, payload, sizeof(payload), out, sizeof(out)),
	    CAPP_LEN);
	CHECK_MEM(out, want, CAPP_LEN);
	CHECK_EQ(d.k.seq, 1);
	fg_record_exit(&d);
}

UNIT_TEST(rfc8448_client_app_open)
{
	struct fg_record_dir d;
	uint8_t payload[APP_PAYLOAD_LEN], rec[CAPP_LEN + 10], out[FG_TLS_MAX_PLAIN + 1];
	uint8_t type = 0;
	size_t plain_len = 0;

	app_payload(payload);
	CHECK_EQ(hex(rfc_c_app_record, rec, sizeof(rec)), CAPP_LEN);
	/* Bytes of a following record must not be consumed. */
	memset(rec + CAPP_LEN, 0x17, 10);
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 CAPP_LEN);
	CHECK_EQ(type, FG_CT_APPLICATION_DATA);
	CHECK_EQ(plain_len, APP_PAYLOAD_LEN);
	CHECK_MEM(out, payload, APP_PAYLOAD_LEN);
	CHECK_EQ(d.k.seq, 1);
	fg_record_exit(&d);
}

/* NewSessionTicket (seq 0) then application data (seq 1), back to back. */
UNIT_TEST(rfc8448_server_app_open_stream)
{
	struct fg_record_dir d;
	uint8_t stream[NST_LEN + SAPP_LEN], nst[NST_PAYLOAD_LEN], payload[APP_PAYLOAD_LEN];
	uint8_t out[FG_TLS_MAX_PLAIN + 1], type = 0;
	size_t plain_len = 0;
	ssize_t n;

	CHECK_EQ(hex(rfc_s_nst_record, stream, NST_LEN), NST_LEN);
	CHECK_EQ(hex(rfc_s_app_record, stream + NST_LEN, SAPP_LEN), SAPP_LEN);
	CHECK_EQ(hex(rfc_s_nst_payload, nst, sizeof(nst)), NST_PAYLOAD_LEN);
	app_payload(payload);
	if (rfc_dir(&d, rfc_s_ap_secret, rfc_s_ap_key, rfc_s_ap_iv, 0, 0))
		return;

	n = fg_record_open(&d, stream, sizeof(stream), out, sizeof(out), &type, &plain_len);
	CHECK_EQ(n, NST_LEN);
	CHECK_EQ(type, FG_CT_HANDSHAKE);
	CHECK_EQ(plain_len, NST_PAYLOAD_LEN);
	CHECK_MEM(out, nst, NST_PAYLOAD_LEN);
	CHECK_EQ(d.k.seq, 1);
	if (n != NST_LEN)
		goto out;

	type = 0;
	plain_len = 0;
	memset(out, 0, sizeof(out));
	CHECK_EQ(
	    fg_record_open(&d, stream + n, sizeof(stream) - n, out, sizeof(out), &type, &plain_len),
	    SAPP_LEN);
	CHECK_EQ(type, FG_CT_APPLICATION_DATA);
	CHECK_EQ(plain_len, APP_PAYLOAD_LEN);
	CHECK_MEM(out, payload, APP_PAYLOAD_LEN);
	CHECK_EQ(d.k.seq, 2);
out:
	fg_record_exit(&d);
}

/* The RFC records carry no padding, so sealing reproduces them exactly. */
UNIT_TEST(rfc8448_server_app_seal)
{
	struct fg_record_dir d;
	uint8_t nst[NST_PAYLOAD_LEN], payload[APP_PAYLOAD_LEN], want[NST_LEN], out[512];

	CHECK_EQ(hex(rfc_s_nst_payload, nst, sizeof(nst)), NST_PAYLOAD_LEN);
	app_payload(payload);
	if (rfc_dir(&d, rfc_s_ap_secret, rfc_s_ap_key, rfc_s_ap_iv, 0, 1))
		return;

	CHECK_EQ(hex(rfc_s_nst_record, want, sizeof(want)), NST_LEN);
	CHECK_EQ(fg_record_seal(&d, FG_CT_HANDSHAKE, nst, sizeof(nst), out, sizeof(out)), NST_LEN);
	CHECK_MEM(out, want, NST_LEN);
	CHECK_EQ(d.k.seq, 1);

	CHECK_EQ(hex(rfc_s_app_record, want, sizeof(want)), SAPP_LEN);
	CHECK_EQ(
	    fg_record_seal(&d, FG_CT_APPLICATION_DATA, payload, sizeof(payload), out, sizeof(out)),
	    SAPP_LEN);
	CHECK_MEM(out, want, SAPP_LEN);
	CHECK_EQ(d.k.seq, 2);
	fg_record_exit(&d);
}

/* Server application data alone, starting from seq 1 in the keys handed over. */
UNIT_TEST(rfc8448_server_app_open_from_seq1)
{
	struct fg_record_dir d;
	uint8_t rec[SAPP_LEN], payload[APP_PAYLOAD_LEN], out[FG_TLS_MAX_PLAIN + 1], type = 0;
	size_t plain_len = 0;

	CHECK_EQ(hex(rfc_s_app_record, rec, sizeof(rec)), SAPP_LEN);
	app_payload(payload);
	if (rfc_dir(&d, rfc_s_ap_secret, rfc_s_ap_key, rfc_s_ap_iv, 1, 0))
		return;
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 SAPP_LEN);
	CHECK_EQ(type, FG_CT_APPLICATION_DATA);
	CHECK_EQ(plain_len, APP_PAYLOAD_LEN);
	CHECK_MEM(out, payload, APP_PAYLOAD_LEN);
	CHECK_EQ(d.k.seq, 2);
	fg_record_exit(&d);
}

UNIT_TEST(rfc8448_server_handshake_record)
{
	static uint8_t rec[SHS_LEN], want[SHS_PAYLOAD_LEN], out[FG_TLS_SEAL_MAX];
	struct fg_record_dir d;
	uint8_t type = 0;
	size_t plain_len = 0;

	CHECK_EQ(hex(rfc_s_hs_record, rec, sizeof(rec)), SHS_LEN);
	CHECK_EQ(hex(rfc_s_hs_payload, want, sizeof(want)), SHS_PAYLOAD_LEN);

	if (rfc_dir(&d, rfc_s_hs_secret, rfc_s_hs_key, rfc_s_hs_iv, 0, 0))
		return;
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 SHS_LEN);
	CHECK_EQ(type, FG_CT_HANDSHAKE);
	CHECK_EQ(plain_len, SHS_PAYLOAD_LEN);
	CHECK_MEM(out, want, SHS_PAYLOAD_LEN);
	CHECK_EQ(d.k.seq, 1);
	fg_record_exit(&d);

	if (rfc_dir(&d, rfc_s_hs_secret, rfc_s_hs_key, rfc_s_hs_iv, 0, 1))
		return;
	CHECK_EQ(fg_record_seal(&d, FG_CT_HANDSHAKE, want, sizeof(want), out, sizeof(out)),
		 SHS_LEN);
	CHECK_MEM(out, rec, SHS_LEN);
	fg_record_exit(&d);
}

UNIT_TEST(rfc8448_client_finished_record)
{
	struct fg_record_dir d;
	uint8_t rec[CFIN_LEN], want[CFIN_PAYLOAD_LEN], out[FG_TLS_MAX_PLAIN + 1], type = 0;
	size_t plain_len = 0;

	CHECK_EQ(hex(rfc_c_fin_record, rec, sizeof(rec)), CFIN_LEN);
	CHECK_EQ(hex(rfc_c_fin_payload, want, sizeof(want)), CFIN_PAYLOAD_LEN);

	if (rfc_dir(&d, rfc_c_hs_secret, rfc_c_hs_key, rfc_c_hs_iv, 0, 0))
		return;
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 CFIN_LEN);
	CHECK_EQ(type, FG_CT_HANDSHAKE);
	CHECK_EQ(plain_len, CFIN_PAYLOAD_LEN);
	CHECK_MEM(out, want, CFIN_PAYLOAD_LEN);
	fg_record_exit(&d);

	if (rfc_dir(&d, rfc_c_hs_secret, rfc_c_hs_key, rfc_c_hs_iv, 0, 1))
		return;
	CHECK_EQ(fg_record_seal(&d, FG_CT_HANDSHAKE, want, sizeof(want), out, sizeof(out)),
		 CFIN_LEN);
	CHECK_MEM(out, rec, CFIN_LEN);
	fg_record_exit(&d);
}

/* ---- init / exit ---- */

UNIT_TEST(init_copies_keys)
{
	struct fg_record_dir d;
	struct fg_traffic_keys tk;
	uint8_t payload[APP_PAYLOAD_LEN], want[CAPP_LEN], out[256];

	app_payload(payload);
	hex(rfc_c_app_record, want, sizeof(want));
	memset(&d, 0, sizeof(d));
	rfc_keys(&tk, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0);
	CHECK_EQ(fg_record_init(&d, FG_AES_128_GCM, &tk, 1), 0);
	CHECK_EQ(d.cipher, FG_AES_128_GCM);
	CHECK_MEM(d.k.key, tk.key, 16);
	CHECK_MEM(d.k.iv, tk.iv, FG_IV_LEN);
	CHECK_MEM(d.k.secret, tk.secret, 32);
	CHECK_EQ(d.k.seq, 0);
	/* The caller's copy may go away. */
	memset(&tk, 0xee, sizeof(tk));
	CHECK_EQ(
	    fg_record_seal(&d, FG_CT_APPLICATION_DATA, payload, sizeof(payload), out, sizeof(out)),
	    CAPP_LEN);
	CHECK_MEM(out, want, CAPP_LEN);
	fg_record_exit(&d);
}

UNIT_TEST(init_unknown_cipher)
{
	struct fg_record_dir d;
	struct fg_traffic_keys tk;

	random_keys(&tk, 0);
	memset(&d, 0, sizeof(d));
	CHECK_EQ(fg_record_init(&d, 0x1304, &tk, 1), -EINVAL);
	fg_record_exit(&d);
	memset(&d, 0, sizeof(d));
	CHECK_EQ(fg_record_init(&d, FG_CIPHER_NONE, &tk, 0), -EINVAL);
	fg_record_exit(&d);
}

UNIT_TEST(exit_wipes_keys)
{
	static const uint8_t zero[sizeof(struct fg_traffic_keys)];
	struct fg_record_dir d;
	struct fg_traffic_keys tk;

	/* A zeroed direction is accepted. */
	memset(&d, 0, sizeof(d));
	fg_record_exit(&d);
	CHECK(d.ctx == NULL);

	random_keys(&tk, 5);
	CHECK_EQ(fg_record_init(&d, FG_AES_256_GCM, &tk, 1), 0);
	CHECK(d.ctx != NULL);
	fg_record_exit(&d);
	CHECK_MEM(d.k.secret, zero, sizeof(d.k.secret));
	CHECK_MEM(d.k.key, zero, sizeof(d.k.key));
	CHECK_MEM(d.k.iv, zero, sizeof(d.k.iv));
}

/* ---- open: framing and errors ---- */

UNIT_TEST(open_truncated_needs_more)
{
	struct fg_record_dir d;
	uint8_t rec[CAPP_LEN], payload[APP_PAYLOAD_LEN], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;

	app_payload(payload);
	hex(rfc_c_app_record, rec, sizeof(rec));
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;
	for (size_t len = 0; len < CAPP_LEN; len++) {
		ssize_t n = fg_record_open(&d, rec, len, out, sizeof(out), &type, &plain_len);

		if (n != 0)
			fprintf(stderr, "    prefix of %zu bytes:\n", len);
		CHECK_EQ(n, 0);
		CHECK_EQ(d.k.seq, 0);
	}
	/* Nothing was lost: the whole record still opens at seq 0. */
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 CAPP_LEN);
	CHECK_EQ(plain_len, APP_PAYLOAD_LEN);
	CHECK_MEM(out, payload, APP_PAYLOAD_LEN);
	CHECK_EQ(d.k.seq, 1);
	fg_record_exit(&d);
}

/* A length field over 2^14 + 256, with the whole claimed record present. */
UNIT_TEST(open_oversized_length)
{
	static const uint16_t lens[] = {FG_TLS_MAX_CIPHER + 1, 0x5000, 0xffff};
	struct fg_record_dir d;
	uint8_t *rec = calloc(1, FG_TLS_HDR + 0xffff), *out = malloc(FG_TLS_MAX_PLAIN + 1);
	uint8_t type;
	size_t plain_len;

	CHECK(rec && out);
	if (!rec || !out || rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		goto out;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		rec[0] = FG_CT_APPLICATION_DATA;
		rec[1] = 0x03;
		rec[2] = 0x03;
		rec[3] = (uint8_t)(lens[i] >> 8);
		rec[4] = (uint8_t)lens[i];
		CHECK_EQ(fg_record_open(&d, rec, FG_TLS_HDR + lens[i], out, FG_TLS_MAX_PLAIN + 1,
					&type, &plain_len),
			 -EMSGSIZE);
		CHECK_EQ(d.k.seq, 0);
	}
	fg_record_exit(&d);
out:
	free(rec);
	free(out);
}

/*
 * Only the header of an oversized record has arrived. Such a record can never
 * become whole, so waiting for more ("0") would stall the stream for good.
 */
UNIT_TEST(open_oversized_header_only)
{
	struct fg_record_dir d;
	uint8_t hdr[FG_TLS_HDR] = {FG_CT_APPLICATION_DATA, 0x03, 0x03, (FG_TLS_MAX_CIPHER + 1) >> 8,
				   (FG_TLS_MAX_CIPHER + 1) & 0xff};
	uint8_t out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;

	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;
	CHECK_EQ(fg_record_open(&d, hdr, sizeof(hdr), out, sizeof(out), &type, &plain_len),
		 -EMSGSIZE);
	CHECK_EQ(d.k.seq, 0);
	fg_record_exit(&d);
}

/* An authentic record whose TLSInnerPlaintext is 2^14 + 2 bytes. */
UNIT_TEST(open_inner_plaintext_too_long)
{
	struct fg_record_dir d;
	struct fg_traffic_keys tk;
	size_t inner_len = FG_TLS_MAX_PLAIN + 2;
	uint8_t *inner = calloc(1, inner_len), *rec = malloc(FG_TLS_RECORD_MAX);
	uint8_t *out = malloc(FG_TLS_MAX_PLAIN + 1), type;
	size_t rlen, plain_len;

	CHECK(inner && rec && out);
	if (!inner || !rec || !out)
		goto out;
	memset(inner, 'x', FG_TLS_MAX_PLAIN);
	inner[FG_TLS_MAX_PLAIN] = FG_CT_APPLICATION_DATA; /* then one byte of padding */
	random_keys(&tk, 0);
	rlen = manual_seal(FG_AES_128_GCM, &tk, 0, inner, inner_len, rec);
	memset(&d, 0, sizeof(d));
	if (fg_record_init(&d, FG_AES_128_GCM, &tk, 0))
		goto out;
	CHECK_EQ(fg_record_open(&d, rec, rlen, out, FG_TLS_MAX_PLAIN + 1, &type, &plain_len),
		 -EMSGSIZE);
	CHECK_EQ(d.k.seq, 0);
	fg_record_exit(&d);
out:
	free(inner);
	free(rec);
	free(out);
}

UNIT_TEST(open_corrupt_ciphertext_and_tag)
{
	struct fg_record_dir d;
	uint8_t rec[CAPP_LEN], bad[CAPP_LEN], payload[APP_PAYLOAD_LEN];
	uint8_t out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;

	app_payload(payload);
	hex(rfc_c_app_record, rec, sizeof(rec));
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;
	for (size_t i = FG_TLS_HDR; i < CAPP_LEN; i++) {
		ssize_t n;

		memcpy(bad, rec, sizeof(bad));
		bad[i] ^= 0x01;
		n = fg_record_open(&d, bad, sizeof(bad), out, sizeof(out), &type, &plain_len);
		if (n != -EBADMSG)
			fprintf(stderr, "    byte %zu flipped:\n", i);
		CHECK_EQ(n, -EBADMSG);
		CHECK_EQ(d.k.seq, 0);
	}
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 CAPP_LEN);
	CHECK_MEM(out, payload, APP_PAYLOAD_LEN);
	fg_record_exit(&d);
}

/* The header is the AEAD's additional data. */
UNIT_TEST(open_corrupt_header)
{
	struct fg_record_dir d;
	uint8_t rec[CAPP_LEN], bad[CAPP_LEN], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;

	hex(rfc_c_app_record, rec, sizeof(rec));
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;

	/* A length one short: a whole, well-formed record that does not authenticate. */
	memcpy(bad, rec, sizeof(bad));
	bad[4] = CAPP_LEN - FG_TLS_HDR - 1;
	CHECK_EQ(fg_record_open(&d, bad, sizeof(bad), out, sizeof(out), &type, &plain_len),
		 -EBADMSG);
	CHECK_EQ(d.k.seq, 0);

	/* A bad legacy_record_version. */
	memcpy(bad, rec, sizeof(bad));
	bad[2] = 0x01;
	CHECK_EQ(fg_record_open(&d, bad, sizeof(bad), out, sizeof(out), &type, &plain_len),
		 -EPROTO);
	memcpy(bad, rec, sizeof(bad));
	bad[1] = 0x02;
	CHECK_EQ(fg_record_open(&d, bad, sizeof(bad), out, sizeof(out), &type, &plain_len),
		 -EPROTO);
	CHECK_EQ(d.k.seq, 0);

	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 CAPP_LEN);
	fg_record_exit(&d);
}

UNIT_TEST(open_wrong_outer_type)
{
	static const uint8_t types[] = {
	    FG_CT_HANDSHAKE, FG_CT_ALERT, FG_CT_CHANGE_CIPHER_SPEC, 0, 24, 0xff};
	struct fg_record_dir d;
	uint8_t rec[CAPP_LEN], bad[CAPP_LEN], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;

	hex(rfc_c_app_record, rec, sizeof(rec));
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;
	for (size_t i = 0; i < sizeof(types); i++) {
		memcpy(bad, rec, sizeof(bad));
		bad[0] = types[i];
		CHECK_EQ(fg_record_open(&d, bad, sizeof(bad), out, sizeof(out), &type, &plain_len),
			 -EPROTO);
		CHECK_EQ(d.k.seq, 0);
	}
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 CAPP_LEN);
	fg_record_exit(&d);
}

UNIT_TEST(open_shorter_than_tag)
{
	struct fg_record_dir d;
	uint8_t rec[FG_TLS_HDR + FG_TLS_TAG], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;

	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;
	for (size_t clen = 0; clen < FG_TLS_TAG; clen++) {
		memset(rec, 0x5a, sizeof(rec));
		rec[0] = FG_CT_APPLICATION_DATA;
		rec[1] = 0x03;
		rec[2] = 0x03;
		rec[3] = 0;
		rec[4] = (uint8_t)clen;
		CHECK_EQ(
		    fg_record_open(&d, rec, FG_TLS_HDR + clen, out, sizeof(out), &type, &plain_len),
		    -EPROTO);
		CHECK_EQ(d.k.seq, 0);
	}
	fg_record_exit(&d);
}

/* Authentic records whose inner plaintext has no non-zero byte. */
UNIT_TEST(open_no_content_type)
{
	static const size_t lens[] = {0, 1, 5, 100};
	struct fg_record_dir d;
	struct fg_traffic_keys tk;
	uint8_t inner[100], rec[256], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t rlen, plain_len;

	memset(inner, 0, sizeof(inner));
	for (size_t c = 0; c < sizeof(all_ciphers) / sizeof(all_ciphers[0]); c++) {
		random_keys(&tk, 0);
		memset(&d, 0, sizeof(d));
		if (fg_record_init(&d, all_ciphers[c], &tk, 0)) {
			CHECK(0);
			continue;
		}
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			rlen = manual_seal(all_ciphers[c], &tk, 0, inner, lens[i], rec);
			CHECK_EQ(fg_record_open(&d, rec, rlen, out, sizeof(out), &type, &plain_len),
				 -EPROTO);
			CHECK_EQ(d.k.seq, 0);
		}
		fg_record_exit(&d);
	}
}

UNIT_TEST(open_padding)
{
	struct {
		size_t data_len, pad;
		uint8_t type;
	} cases[] = {
	    {10, 20, FG_CT_APPLICATION_DATA},
	    {10, 1, FG_CT_ALERT},
	    {0, 7, FG_CT_APPLICATION_DATA},
	    {3, 300, FG_CT_HANDSHAKE},
	    {100, FG_TLS_MAX_PLAIN - 100, FG_CT_APPLICATION_DATA}, /* inner = 2^14 + 1 */
	};
	static uint8_t inner[FG_TLS_MAX_PLAIN + 1], rec[FG_TLS_RECORD_MAX];
	struct fg_record_dir d;
	struct fg_traffic_keys tk;
	uint8_t *out = malloc(FG_TLS_MAX_PLAIN + 1), type;
	size_t rlen, plain_len;
	uint64_t seq = 0;

	CHECK(out != NULL);
	if (!out)
		return;
	random_keys(&tk, 0);
	memset(&d, 0, sizeof(d));
	if (fg_record_init(&d, FG_AES_256_GCM, &tk, 0)) {
		CHECK(0);
		free(out);
		return;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++, seq++) {
		size_t dl = cases[i].data_len, inner_len = dl + 1 + cases[i].pad;

		/* Data that itself ends in zeros must keep them. */
		memset(inner, 0, sizeof(inner));
		for (size_t j = 0; j + 2 < dl; j++)
			inner[j] = (uint8_t)(j * 7 + 1);
		inner[dl] = cases[i].type;
		rlen = manual_seal(FG_AES_256_GCM, &tk, seq, inner, inner_len, rec);
		type = 0;
		plain_len = 12345;
		memset(out, 0xcc, FG_TLS_MAX_PLAIN + 1);
		CHECK_EQ(
		    fg_record_open(&d, rec, rlen, out, FG_TLS_MAX_PLAIN + 1, &type, &plain_len),
		    rlen);
		CHECK_EQ(type, cases[i].type);
		CHECK_EQ(plain_len, dl);
		CHECK_MEM(out, inner, dl);
		CHECK_EQ(d.k.seq, seq + 1);
	}
	fg_record_exit(&d);
	free(out);
}

UNIT_TEST(open_small_buffer)
{
	struct fg_record_dir d;
	uint8_t rec[CAPP_LEN], payload[APP_PAYLOAD_LEN], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;

	app_payload(payload);
	hex(rfc_c_app_record, rec, sizeof(rec));
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0))
		return;
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, 10, &type, &plain_len), -ENOBUFS);
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, 0, &type, &plain_len), -ENOBUFS);
	CHECK_EQ(d.k.seq, 0);
	CHECK_EQ(fg_record_open(&d, rec, sizeof(rec), out, sizeof(out), &type, &plain_len),
		 CAPP_LEN);
	CHECK_MEM(out, payload, APP_PAYLOAD_LEN);
	fg_record_exit(&d);
}

/* ---- seal: errors ---- */

UNIT_TEST(seal_too_long)
{
	static uint8_t in[FG_TLS_MAX_PLAIN + 2], out[FG_TLS_RECORD_MAX + 64];
	struct fg_record_dir d;
	struct fg_traffic_keys tk;

	random_keys(&tk, 0);
	memset(&d, 0, sizeof(d));
	if (fg_record_init(&d, FG_AES_128_GCM, &tk, 1)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(
	    fg_record_seal(&d, FG_CT_APPLICATION_DATA, in, FG_TLS_MAX_PLAIN + 1, out, sizeof(out)),
	    -EMSGSIZE);
	CHECK_EQ(
	    fg_record_seal(&d, FG_CT_APPLICATION_DATA, in, FG_TLS_MAX_PLAIN + 2, out, sizeof(out)),
	    -EMSGSIZE);
	CHECK_EQ(d.k.seq, 0);
	fg_record_exit(&d);
}

UNIT_TEST(seal_small_buffer)
{
	struct fg_record_dir d;
	uint8_t payload[APP_PAYLOAD_LEN], want[CAPP_LEN], *out = malloc(CAPP_LEN);

	CHECK(out != NULL);
	if (!out)
		return;
	app_payload(payload);
	hex(rfc_c_app_record, want, sizeof(want));
	if (rfc_dir(&d, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 1)) {
		free(out);
		return;
	}
	CHECK_EQ(
	    fg_record_seal(&d, FG_CT_APPLICATION_DATA, payload, sizeof(payload), out, CAPP_LEN - 1),
	    -ENOBUFS);
	CHECK_EQ(fg_record_seal(&d, FG_CT_APPLICATION_DATA, payload, sizeof(payload), out, 0),
		 -ENOBUFS);
	CHECK_EQ(d.k.seq, 0);
	/* Exactly enough (heap-allocated to size, so overruns show under ASan). */
	CHECK_EQ(
	    fg_record_seal(&d, FG_CT_APPLICATION_DATA, payload, sizeof(payload), out, CAPP_LEN),
	    CAPP_LEN);
	CHECK_MEM(out, want, CAPP_LEN);
	CHECK_EQ(d.k.seq, 1);
	fg_record_exit(&d);
	free(out);
}

/* Sealing at seq 2^64 - 1 would wrap the counter and reuse nonces. */
UNIT_TEST(seal_seq_exhausted)
{
	struct fg_record_dir d;
	struct fg_traffic_keys tk;
	uint8_t in[8] = {0}, out[64];

	random_keys(&tk, UINT64_MAX);
	memset(&d, 0, sizeof(d));
	if (fg_record_init(&d, FG_CHACHA20_POLY1305, &tk, 1)) {
		CHECK(0);
		return;
	}
	CHECK_EQ(fg_record_seal(&d, FG_CT_APPLICATION_DATA, in, sizeof(in), out, sizeof(out)),
		 -EOVERFLOW);
	CHECK(d.k.seq == UINT64_MAX);
	fg_record_exit(&d);
}

/* ---- round trips ---- */

static void roundtrip(uint16_t cipher, size_t len, uint8_t ctype)
{
	static uint8_t in[FG_TLS_MAX_PLAIN], rec[FG_TLS_SEAL_MAX], inner[FG_TLS_SEAL_MAX];
	struct fg_record_dir tx, rx;
	struct fg_traffic_keys tk;
	uint8_t *out = malloc(FG_TLS_MAX_PLAIN + 1), type = 0;
	size_t plain_len = 0, rlen = len + FG_TLS_HDR + 1 + FG_TLS_TAG;
	ssize_t n;

	CHECK(out != NULL);
	if (!out)
		return;
	CHECK_EQ(RAND_bytes(in, sizeof(in)), 1);
	if (len)
		in[len - 1] = 0; /* trailing zero data is not padding */
	random_keys(&tk, 0);
	memset(&tx, 0, sizeof(tx));
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(fg_record_init(&tx, cipher, &tk, 1), 0);
	CHECK_EQ(fg_record_init(&rx, cipher, &tk, 0), 0);

	n = fg_record_seal(&tx, ctype, in, len, rec, sizeof(rec));
	if (n != (ssize_t)rlen)
		fprintf(stderr, "    cipher %#x, length %zu:\n", cipher, len);
	CHECK_EQ(n, rlen);
	CHECK_EQ(tx.k.seq, 1);
	if (n != (ssize_t)rlen)
		goto out;
	CHECK_EQ(rec[0], FG_CT_APPLICATION_DATA);
	CHECK_EQ(rec[1], 0x03);
	CHECK_EQ(rec[2], 0x03);
	CHECK_EQ(rec[3] << 8 | rec[4], rlen - FG_TLS_HDR);

	/* The record is what RFC 8446 5.2 says, not just something open() accepts. */
	CHECK_EQ(manual_open(cipher, &tk, 0, rec, rlen, inner), len + 1);
	CHECK_MEM(inner, in, len);
	CHECK_EQ(inner[len], ctype);

	n = fg_record_open(&rx, rec, rlen, out, FG_TLS_MAX_PLAIN + 1, &type, &plain_len);
	CHECK_EQ(n, rlen);
	CHECK_EQ(type, ctype);
	CHECK_EQ(plain_len, len);
	CHECK_MEM(out, in, len);
	CHECK_EQ(rx.k.seq, 1);
out:
	fg_record_exit(&tx);
	fg_record_exit(&rx);
	free(out);
}

UNIT_TEST(roundtrip_all_ciphers)
{
	static const size_t lens[] = {0, 1, FG_TLS_MAX_PLAIN - 1, FG_TLS_MAX_PLAIN};

	for (size_t c = 0; c < sizeof(all_ciphers) / sizeof(all_ciphers[0]); c++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			roundtrip(all_ciphers[c], lens[i],
				  i & 1 ? FG_CT_HANDSHAKE : FG_CT_APPLICATION_DATA);
}

/*
 * The AEAD is libgcrypt's (OpenSSL's in FIPS mode), streamed in two calls
 * (content, then type byte): every length around the block, bulk and record
 * boundaries, one direction carrying on from record to record, must give
 * OpenSSL's bytes, and OpenSSL's records must open. A partial block left over
 * from one record must not leak into the next one's keystream or tag.
 */
static void lengths_against_openssl(uint16_t cipher)
{
	static uint8_t in[FG_TLS_MAX_PLAIN], rec[FG_TLS_SEAL_MAX], ref[FG_TLS_SEAL_MAX],
	    inner[FG_TLS_SEAL_MAX], out[FG_TLS_MAX_PLAIN + 1];
	static const size_t big[] = {511, 512, 513, 1023, 4095, 4096, 4097, 8191, 16383, 16384};
	struct fg_record_dir tx, rx;
	struct fg_traffic_keys tk;
	size_t failures = 0;
	uint64_t seq = 0;

	CHECK_EQ(RAND_bytes(in, sizeof(in)), 1);
	random_keys(&tk, 0);
	memset(&tx, 0, sizeof(tx));
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(fg_record_init(&tx, cipher, &tk, 1), 0);
	CHECK_EQ(fg_record_init(&rx, cipher, &tk, 0), 0);
	for (size_t i = 0; i < 300 + sizeof(big) / sizeof(big[0]) && failures < 3; i++, seq++) {
		size_t len = i < 300 ? i : big[i - 300], rlen = FG_TLS_HDR + len + 1 + FG_TLS_TAG;
		uint8_t type = i & 1 ? FG_CT_HANDSHAKE : FG_CT_APPLICATION_DATA, got_type = 0;
		size_t plain_len = 0;
		ssize_t n;
		int bad;

		memcpy(inner, in, len);
		inner[len] = type;
		CHECK_EQ(manual_seal(cipher, &tk, seq, inner, len + 1, ref), rlen);
		n = fg_record_seal(&tx, type, in, len, rec, sizeof(rec));
		bad = n != (ssize_t)rlen || memcmp(rec, ref, rlen) != 0;
		/* the other way: OpenSSL's record, opened by the record layer */
		n = fg_record_open(&rx, ref, rlen, out, sizeof(out), &got_type, &plain_len);
		bad |= n != (ssize_t)rlen || got_type != type || plain_len != len ||
		       memcmp(out, in, len) != 0;
		if (bad) {
			fprintf(stderr, "    cipher %#x, record %llu, length %zu: differs from OpenSSL\n",
				cipher, (unsigned long long)seq, len);
			failures++;
		}
	}
	CHECK_EQ(failures, 0);
	CHECK_EQ(tx.k.seq, seq);
	CHECK_EQ(rx.k.seq, seq);
	fg_record_exit(&tx);
	fg_record_exit(&rx);
}

UNIT_TEST(every_length_matches_openssl_all_ciphers)
{
	for (size_t c = 0; c < sizeof(all_ciphers) / sizeof(all_ciphers[0]); c++)
		lengths_against_openssl(all_ciphers[c]);
}

/*
 * libgcrypt seals unless it is in FIPS mode, where it refuses TLS 1.3's nonces:
 * then OpenSSL does. tests/test_unit.py runs this binary both ways.
 */
UNIT_TEST(aead_lib_follows_fips_mode)
{
	const char *lib = fg_record_aead_lib();

	CHECK(strcmp(lib, gcry_fips_mode_active() ? "OpenSSL" : "libgcrypt") == 0);
	if (getenv("LIBGCRYPT_FORCE_FIPS_MODE"))
		CHECK(strcmp(lib, "OpenSSL") == 0);
	fprintf(stderr, "    record layer AEADs from %s\n", lib);
}

/* Independent nonce check with every byte of the sequence number in play. */
UNIT_TEST(high_sequence_number)
{
	const uint64_t seq = 0x0102030405060708ULL;
	struct fg_record_dir d;
	struct fg_traffic_keys tk;
	uint8_t msg[] = "high seq", inner[64], rec[128], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t rlen, plain_len;

	for (size_t c = 0; c < sizeof(all_ciphers) / sizeof(all_ciphers[0]); c++) {
		random_keys(&tk, seq);
		memset(&d, 0, sizeof(d));
		CHECK_EQ(fg_record_init(&d, all_ciphers[c], &tk, 1), 0);
		CHECK_EQ(fg_record_seal(&d, FG_CT_ALERT, msg, sizeof(msg), rec, sizeof(rec)),
			 sizeof(msg) + 22);
		CHECK_EQ(manual_open(all_ciphers[c], &tk, seq, rec, sizeof(msg) + 22, inner),
			 sizeof(msg) + 1);
		CHECK_MEM(inner, msg, sizeof(msg));
		CHECK(d.k.seq == seq + 1);
		fg_record_exit(&d);

		memcpy(inner, msg, sizeof(msg));
		inner[sizeof(msg)] = FG_CT_ALERT;
		rlen = manual_seal(all_ciphers[c], &tk, seq, inner, sizeof(msg) + 1, rec);
		memset(&d, 0, sizeof(d));
		CHECK_EQ(fg_record_init(&d, all_ciphers[c], &tk, 0), 0);
		CHECK_EQ(fg_record_open(&d, rec, rlen, out, sizeof(out), &type, &plain_len), rlen);
		CHECK_EQ(type, FG_CT_ALERT);
		CHECK_EQ(plain_len, sizeof(msg));
		CHECK_MEM(out, msg, sizeof(msg));
		CHECK(d.k.seq == seq + 1);
		fg_record_exit(&d);
	}
}

UNIT_TEST(sequence_order)
{
	struct fg_record_dir tx, rx;
	struct fg_traffic_keys tk;
	uint8_t msg[3][16], rec[3][64], out[FG_TLS_MAX_PLAIN + 1], type;
	ssize_t len[3];
	size_t plain_len;

	random_keys(&tk, 0);
	memset(&tx, 0, sizeof(tx));
	memset(&rx, 0, sizeof(rx));
	CHECK_EQ(fg_record_init(&tx, FG_AES_128_GCM, &tk, 1), 0);
	CHECK_EQ(fg_record_init(&rx, FG_AES_128_GCM, &tk, 0), 0);
	for (int i = 0; i < 3; i++) {
		memset(msg[i], 'a' + i, sizeof(msg[i]));
		len[i] = fg_record_seal(&tx, FG_CT_APPLICATION_DATA, msg[i], sizeof(msg[i]), rec[i],
					sizeof(rec[i]));
		CHECK_EQ(len[i], sizeof(msg[i]) + 22);
	}
	CHECK_EQ(tx.k.seq, 3);
	/* Same plaintext length, different sequence number: different bytes. */
	CHECK(memcmp(rec[0] + FG_TLS_HDR, rec[1] + FG_TLS_HDR, sizeof(msg[0])) != 0);

	/* Out of order: record 1 is not valid at seq 0. */
	CHECK_EQ(fg_record_open(&rx, rec[1], len[1], out, sizeof(out), &type, &plain_len),
		 -EBADMSG);
	CHECK_EQ(fg_record_open(&rx, rec[2], len[2], out, sizeof(out), &type, &plain_len),
		 -EBADMSG);
	CHECK_EQ(rx.k.seq, 0);

	for (int i = 0; i < 3; i++) {
		CHECK_EQ(fg_record_open(&rx, rec[i], len[i], out, sizeof(out), &type, &plain_len),
			 len[i]);
		CHECK_EQ(plain_len, sizeof(msg[i]));
		CHECK_MEM(out, msg[i], sizeof(msg[i]));
		CHECK_EQ(rx.k.seq, i + 1);
		/* A replay of the record just opened fails. */
		CHECK_EQ(fg_record_open(&rx, rec[i], len[i], out, sizeof(out), &type, &plain_len),
			 -EBADMSG);
		CHECK_EQ(rx.k.seq, i + 1);
	}
	fg_record_exit(&tx);
	fg_record_exit(&rx);
}

/* ---- KeyUpdate ---- */

UNIT_TEST(key_update_rfc8448_client)
{
	struct fg_record_dir tx, rx;
	uint8_t secret[32], key[16], iv[FG_IV_LEN], payload[APP_PAYLOAD_LEN];
	uint8_t rec[128], old_rec[128], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;
	ssize_t n, old_n;

	app_payload(payload);
	hex(c_ap_secret_1, secret, sizeof(secret));
	hex(c_ap_key_1, key, sizeof(key));
	hex(c_ap_iv_1, iv, sizeof(iv));
	if (rfc_dir(&tx, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 1))
		return;
	if (rfc_dir(&rx, rfc_c_ap_secret, rfc_c_ap_key, rfc_c_ap_iv, 0, 0)) {
		fg_record_exit(&tx);
		return;
	}

	/* One record under the old key, then both ends update. */
	n = fg_record_seal(&tx, FG_CT_APPLICATION_DATA, payload, sizeof(payload), rec, sizeof(rec));
	CHECK_EQ(n, CAPP_LEN);
	CHECK_EQ(fg_record_open(&rx, rec, n, out, sizeof(out), &type, &plain_len), CAPP_LEN);
	old_n = fg_record_seal(&tx, FG_CT_APPLICATION_DATA, payload, sizeof(payload), old_rec,
			       sizeof(old_rec));
	CHECK_EQ(old_n, CAPP_LEN);
	CHECK_EQ(tx.k.seq, 2);

	CHECK_EQ(fg_record_key_update(&tx), 0);
	CHECK_EQ(fg_record_key_update(&rx), 0);
	CHECK_EQ(tx.k.seq, 0);
	CHECK_EQ(rx.k.seq, 0);
	CHECK_MEM(tx.k.secret, secret, sizeof(secret));
	CHECK_MEM(tx.k.key, key, sizeof(key));
	CHECK_MEM(tx.k.iv, iv, sizeof(iv));
	CHECK_MEM(rx.k.secret, secret, sizeof(secret));

	/* A record from before the update does not open under the new key. */
	CHECK_EQ(fg_record_open(&rx, old_rec, old_n, out, sizeof(out), &type, &plain_len),
		 -EBADMSG);

	n = fg_record_seal(&tx, FG_CT_APPLICATION_DATA, payload, sizeof(payload), rec, sizeof(rec));
	CHECK_EQ(n, CAPP_LEN);
	CHECK_EQ(fg_record_open(&rx, rec, n, out, sizeof(out), &type, &plain_len), CAPP_LEN);
	CHECK_EQ(plain_len, APP_PAYLOAD_LEN);
	CHECK_MEM(out, payload, APP_PAYLOAD_LEN);
	CHECK_EQ(tx.k.seq, 1);
	CHECK_EQ(rx.k.seq, 1);

	/* It is a new key: the same payload at seq 0 differs from the RFC record. */
	hex(rfc_c_app_record, old_rec, CAPP_LEN);
	CHECK(memcmp(rec, old_rec, CAPP_LEN) != 0);
	fg_record_exit(&tx);
	fg_record_exit(&rx);
}

UNIT_TEST(key_update_all_ciphers)
{
	struct fg_record_dir tx, rx;
	struct fg_traffic_keys tk;
	uint8_t msg[] = "after update", rec[128], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;
	ssize_t n;

	for (size_t c = 0; c < sizeof(all_ciphers) / sizeof(all_ciphers[0]); c++) {
		random_keys(&tk, 42);
		memset(&tx, 0, sizeof(tx));
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(fg_record_init(&tx, all_ciphers[c], &tk, 1), 0);
		CHECK_EQ(fg_record_init(&rx, all_ciphers[c], &tk, 0), 0);
		CHECK_EQ(fg_record_key_update(&tx), 0);
		CHECK_EQ(fg_record_key_update(&rx), 0);
		CHECK_EQ(tx.k.seq, 0);
		CHECK(memcmp(tx.k.secret, tk.secret, sizeof(tk.secret)) != 0);
		n = fg_record_seal(&tx, FG_CT_APPLICATION_DATA, msg, sizeof(msg), rec, sizeof(rec));
		CHECK_EQ(n, sizeof(msg) + 22);
		CHECK_EQ(fg_record_open(&rx, rec, n, out, sizeof(out), &type, &plain_len), n);
		CHECK_EQ(plain_len, sizeof(msg));
		CHECK_MEM(out, msg, sizeof(msg));
		fg_record_exit(&tx);
		fg_record_exit(&rx);
	}
}

/* Parking drops the context, not the keys: records stay byte-identical, KeyUpdate included. */
UNIT_TEST(park_keeps_keys_and_sequence_all_ciphers)
{
	struct fg_record_dir a, b, rx;
	struct fg_traffic_keys tk;
	uint8_t msg[] = "parked", ra[128], rb[128], out[FG_TLS_MAX_PLAIN + 1], type;
	size_t plain_len;
	ssize_t na, nb;

	for (size_t c = 0; c < sizeof(all_ciphers) / sizeof(all_ciphers[0]); c++) {
		random_keys(&tk, 7);
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		memset(&rx, 0, sizeof(rx));
		CHECK_EQ(fg_record_init(&a, all_ciphers[c], &tk, 1), 0);
		CHECK_EQ(fg_record_init(&b, all_ciphers[c], &tk, 1), 0);
		CHECK_EQ(fg_record_init(&rx, all_ciphers[c], &tk, 0), 0);
		for (int i = 0; i < 4; i++) {
			fg_record_park(&b);
			CHECK(b.ctx == NULL);
			if (i == 2) { /* a KeyUpdate while parked keys the new context */
				CHECK_EQ(fg_record_key_update(&a), 0);
				CHECK_EQ(fg_record_key_update(&b), 0);
				fg_record_park(&rx);
				CHECK_EQ(fg_record_key_update(&rx), 0);
			}
			na = fg_record_seal(&a, FG_CT_APPLICATION_DATA, msg, sizeof(msg), ra,
					    sizeof(ra));
			nb = fg_record_seal(&b, FG_CT_APPLICATION_DATA, msg, sizeof(msg), rb,
					    sizeof(rb));
			CHECK_EQ(nb, na);
			CHECK_MEM(rb, ra, (size_t)na);
			/* random_keys() starts at 7; a KeyUpdate restarts at 0 */
			CHECK_EQ(b.k.seq, i < 2 ? 7 + i + 1 : i - 1);
			fg_record_park(&rx);
			CHECK_EQ(fg_record_open(&rx, rb, (size_t)nb, out, sizeof(out), &type,
						&plain_len),
				 nb);
			CHECK_MEM(out, msg, sizeof(msg));
		}
		fg_record_exit(&a);
		fg_record_exit(&b);
		fg_record_exit(&rx);
	}
}

UNIT_MAIN("record", UNIT_CASE(rfc8448_client_app_seal), UNIT_CASE(rfc8448_client_app_open),
	  UNIT_CASE(rfc8448_server_app_open_stream), UNIT_CASE(rfc8448_server_app_seal),
	  UNIT_CASE(rfc8448_server_app_open_from_seq1), UNIT_CASE(rfc8448_server_handshake_record),
	  UNIT_CASE(rfc8448_client_finished_record), UNIT_CASE(init_copies_keys),
	  UNIT_CASE(init_unknown_cipher), UNIT_CASE(exit_wipes_keys),
	  UNIT_CASE(open_truncated_needs_more), UNIT_CASE(open_oversized_length),
	  UNIT_CASE(open_oversized_header_only), UNIT_CASE(open_inner_plaintext_too_long),
	  UNIT_CASE(open_corrupt_ciphertext_and_tag), UNIT_CASE(open_corrupt_header),
	  UNIT_CASE(open_wrong_outer_type), UNIT_CASE(open_shorter_than_tag),
	  UNIT_CASE(open_no_content_type), UNIT_CASE(open_padding), UNIT_CASE(open_small_buffer),
	  UNIT_CASE(seal_too_long), UNIT_CASE(seal_small_buffer), UNIT_CASE(seal_seq_exhausted),
	  UNIT_CASE(roundtrip_all_ciphers), UNIT_CASE(every_length_matches_openssl_all_ciphers),
	  UNIT_CASE(aead_lib_follows_fips_mode),
	  UNIT_CASE(high_sequence_number),
	  UNIT_CASE(sequence_order), UNIT_CASE(key_update_rfc8448_client),
	  UNIT_CASE(park_keeps_keys_and_sequence_all_ciphers),
	  UNIT_CASE(key_update_all_ciphers))
