// SPDX-License-Identifier: MIT
/*
 * aead: what sealing and opening full TLS 1.3 records costs one core, with
 * fedgate's record layer and with OpenSSL's EVP AEAD, on the same records.
 *
 *   aead [MB]
 *
 * Seals MB megabytes (default 1000) of 16 KiB records and opens them again, in
 * 4-record batches (64 KiB) that stay in cache like the data plane's chunks, for each
 * of fedgate's ciphers. Prints one JSON line per cipher and implementation:
 *   {"cipher": "AES-128-GCM", "impl": "fedgate", "lib": "libgcrypt", "seal_gb_per_s": ..,
 *    "open_gb_per_s": .., "core_s_per_gb": ..}
 * where lib is the library fedgate's record layer uses here (fg_record_aead_lib()),
 * and core_s_per_gb is the CPU time of sealing plus opening one GB (10^9
 * bytes): the crypto floor of a tunnel pair, which seals once and opens once.
 * Every opened record is compared with what was sealed; exits 1 on a mismatch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fedgate/record.h"
#include "fedgate/tls13.h"

#define BATCH 4

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const EVP_CIPHER *evp_of(uint16_t cipher)
{
	switch (cipher) {
	case FG_AES_128_GCM:
		return EVP_aes_128_gcm();
	case FG_AES_256_GCM:
		return EVP_aes_256_gcm();
	}
	return EVP_chacha20_poly1305();
}

/* OpenSSL's side: the same record format with EVP, as a TLS library does it. */
static int evp_record(EVP_CIPHER_CTX *ctx, int enc, const struct fg_traffic_keys *k,
		      const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t nonce[FG_IV_LEN], hdr[FG_TLS_HDR] = { FG_CT_APPLICATION_DATA, 3, 3 };
	size_t clen = enc ? len + FG_TLS_TAG : len;
	int n;

	memcpy(nonce, k->iv, FG_IV_LEN);
	for (int i = 0; i < 8; i++)
		nonce[FG_IV_LEN - 1 - i] ^= (uint8_t)(k->seq >> (8 * i));
	hdr[3] = (uint8_t)(clen >> 8);
	hdr[4] = (uint8_t)clen;
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &n, hdr, FG_TLS_HDR) != 1)
		return -1;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FG_TLS_TAG,
					(void *)(in + len - FG_TLS_TAG)) != 1)
		return -1;
	if (EVP_CipherUpdate(ctx, out, &n, in, (int)(enc ? len : len - FG_TLS_TAG)) != 1 ||
	    EVP_CipherFinal_ex(ctx, out + n, &n) != 1)
		return -1;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, FG_TLS_TAG, out + len) != 1)
		return -1;
	return 0;
}

struct run {
	double seal_s, open_s;
	int bad;
};

static void run_fedgate(uint16_t cipher, const struct fg_traffic_keys *k, size_t batches,
			uint8_t *plain, uint8_t *recs, uint8_t *back, struct run *r)
{
	struct fg_record_dir tx = { 0 }, rx = { 0 };
	uint8_t type;
	size_t plen;
	double t;

	if (fg_record_init(&tx, cipher, k, 1) || fg_record_init(&rx, cipher, k, 0)) {
		r->bad = 1;
		goto out;
	}
	for (size_t b = 0; b < batches && !r->bad; b++) {
		t = cpu_s();
		for (int i = 0; i < BATCH; i++)
			if (fg_record_seal(&tx, FG_CT_APPLICATION_DATA, plain + i * FG_TLS_MAX_PLAIN,
					   FG_TLS_MAX_PLAIN, recs + i * FG_TLS_SEAL_MAX,
					   FG_TLS_SEAL_MAX) != FG_TLS_SEAL_MAX)
				r->bad = 1;
		r->seal_s += cpu_s() - t;
		t = cpu_s();
		for (int i = 0; i < BATCH; i++)
			if (fg_record_open(&rx, recs + i * FG_TLS_SEAL_MAX, FG_TLS_SEAL_MAX,
					   back + i * (FG_TLS_MAX_PLAIN + 1), FG_TLS_MAX_PLAIN + 1,
					   &type, &plen) != FG_TLS_SEAL_MAX)
				r->bad = 1;
		r->open_s += cpu_s() - t;
		for (int i = 0; i < BATCH; i++)
			if (memcmp(back + i * (FG_TLS_MAX_PLAIN + 1), plain + i * FG_TLS_MAX_PLAIN,
				   FG_TLS_MAX_PLAIN))
				r->bad = 1;
	}
out:
	fg_record_exit(&tx);
	fg_record_exit(&rx);
}

static void run_openssl(uint16_t cipher, const struct fg_traffic_keys *k, size_t batches,
			uint8_t *plain, uint8_t *recs, uint8_t *back, struct run *r)
{
	EVP_CIPHER_CTX *tx = EVP_CIPHER_CTX_new(), *rx = EVP_CIPHER_CTX_new();
	struct fg_traffic_keys tk = *k, rk = *k;
	const size_t rec = FG_TLS_MAX_PLAIN + FG_TLS_TAG;
	double t;

	if (!tx || !rx || EVP_CipherInit_ex(tx, evp_of(cipher), NULL, k->key, NULL, 1) != 1 ||
	    EVP_CipherInit_ex(rx, evp_of(cipher), NULL, k->key, NULL, 0) != 1) {
		r->bad = 1;
		goto out;
	}
	for (size_t b = 0; b < batches && !r->bad; b++) {
		t = cpu_s();
		for (int i = 0; i < BATCH; i++, tk.seq++)
			r->bad |= evp_record(tx, 1, &tk, plain + i * FG_TLS_MAX_PLAIN,
					     FG_TLS_MAX_PLAIN, recs + i * rec);
		r->seal_s += cpu_s() - t;
		t = cpu_s();
		for (int i = 0; i < BATCH; i++, rk.seq++)
			r->bad |= evp_record(rx, 0, &rk, recs + i * rec, rec,
					     back + i * FG_TLS_MAX_PLAIN);
		r->open_s += cpu_s() - t;
		r->bad |= memcmp(back, plain, BATCH * FG_TLS_MAX_PLAIN) != 0;
	}
out:
	EVP_CIPHER_CTX_free(tx);
	EVP_CIPHER_CTX_free(rx);
}

int main(int argc, char **argv)
{
	static const struct {
		uint16_t id;
		const char *name;
	} ciphers[] = { { FG_AES_128_GCM, "AES-128-GCM" },
			{ FG_AES_256_GCM, "AES-256-GCM" },
			{ FG_CHACHA20_POLY1305, "CHACHA20-POLY1305" } };
	double mb = argc > 1 ? atof(argv[1]) : 1000;
	size_t batches = (size_t)(mb * 1e6 / (BATCH * FG_TLS_MAX_PLAIN)) + 1;
	uint8_t *plain = malloc(BATCH * FG_TLS_MAX_PLAIN);
	uint8_t *recs = malloc(BATCH * FG_TLS_SEAL_MAX);
	uint8_t *back = malloc(BATCH * (FG_TLS_MAX_PLAIN + 1));
	struct fg_traffic_keys k = { 0 };
	int status = 0;

	if (!plain || !recs || !back || mb <= 0 || RAND_bytes(plain, BATCH * FG_TLS_MAX_PLAIN) != 1 ||
	    RAND_bytes(k.key, sizeof(k.key)) != 1 || RAND_bytes(k.iv, sizeof(k.iv)) != 1) {
		fprintf(stderr, "usage: aead [MB > 0]\n");
		return 2;
	}
	for (size_t c = 0; c < sizeof(ciphers) / sizeof(ciphers[0]); c++) {
		for (int impl = 0; impl < 2; impl++) {
			struct run r = { 0 };
			double gb = (double)batches * BATCH * FG_TLS_MAX_PLAIN / 1e9;

			if (impl == 0)
				run_fedgate(ciphers[c].id, &k, batches, plain, recs, back, &r);
			else
				run_openssl(ciphers[c].id, &k, batches, plain, recs, back, &r);
			if (r.bad) {
				fprintf(stderr, "aead: %s (%s): a record did not round-trip\n",
					ciphers[c].name, impl ? "openssl" : "fedgate");
				status = 1;
				continue;
			}
			printf("{\"cipher\": \"%s\", \"impl\": \"%s\", \"lib\": \"%s\", "
			       "\"seal_gb_per_s\": %.3f, \"open_gb_per_s\": %.3f, "
			       "\"core_s_per_gb\": %.4f}\n",
			       ciphers[c].name, impl ? "openssl" : "fedgate",
			       impl ? "OpenSSL" : fg_record_aead_lib(), gb / r.seal_s,
			       gb / r.open_s, (r.seal_s + r.open_s) / gb);
		}
	}
	free(plain);
	free(recs);
	free(back);
	return status;
}
