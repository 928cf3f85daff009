// SPDX-License-Identifier: MIT
/*
 * aead: what sealing and opening full TLS 1.3 records costs one core in
 * fedgate's record layer, with each of the libraries it can use.
 *
 *   aead [MB]
 *
 * Seals MB megabytes (default 1000) of 16 KiB records and opens them again, in
 * 4-record batches (64 KiB) that stay in cache like the data plane's chunks,
 * for each of fedgate's ciphers: once as the record layer runs here (impl
 * "fedgate"), and once more in a child with libgcrypt forced into FIPS mode,
 * where the record layer uses OpenSSL's EVP (impl "openssl"). Prints one JSON
 * line per cipher and implementation:
 *   {"cipher": "AES-128-GCM", "impl": "fedgate", "lib": "libgcrypt", "seal_gb_per_s": ..,
 *    "open_gb_per_s": .., "core_s_per_gb": ..}
 * where lib is what fg_record_aead_lib() names, and core_s_per_gb is the CPU
 * time of sealing plus opening one GB (10^9 bytes): the crypto floor of a
 * tunnel pair, which seals once and opens once.
 * Every opened record is compared with what was sealed; exits 1 on a mismatch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
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

/* Measures every cipher with the record layer as this process runs it. Returns 0 or 1. */
static int measure(const char *impl, const struct fg_traffic_keys *k, size_t batches,
		   uint8_t *plain, uint8_t *recs, uint8_t *back)
{
	static const struct {
		uint16_t id;
		const char *name;
	} ciphers[] = { { FG_AES_128_GCM, "AES-128-GCM" },
			{ FG_AES_256_GCM, "AES-256-GCM" },
			{ FG_CHACHA20_POLY1305, "CHACHA20-POLY1305" } };
	double gb = (double)batches * BATCH * FG_TLS_MAX_PLAIN / 1e9;
	int status = 0;

	for (size_t c = 0; c < sizeof(ciphers) / sizeof(ciphers[0]); c++) {
		struct run r = { 0 };

		run_fedgate(ciphers[c].id, k, batches, plain, recs, back, &r);
		if (r.bad) {
			fprintf(stderr, "aead: %s (%s): a record did not round-trip\n",
				ciphers[c].name, impl);
			status = 1;
			continue;
		}
		printf("{\"cipher\": \"%s\", \"impl\": \"%s\", \"lib\": \"%s\", "
		       "\"seal_gb_per_s\": %.3f, \"open_gb_per_s\": %.3f, \"core_s_per_gb\": %.4f}\n",
		       ciphers[c].name, impl, fg_record_aead_lib(), gb / r.seal_s, gb / r.open_s,
		       (r.seal_s + r.open_s) / gb);
	}
	fflush(stdout);
	return status;
}

/*
 * The record layer picks its library once per process, so OpenSSL's side runs
 * in a child that sets LIBGCRYPT_FORCE_FIPS_MODE before the first record.
 * Returns 0 or 1.
 */
static int measure_openssl(const struct fg_traffic_keys *k, size_t batches, uint8_t *plain,
			   uint8_t *recs, uint8_t *back)
{
	int wstatus;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("aead: fork");
		return 1;
	}
	if (pid == 0) {
		setenv("LIBGCRYPT_FORCE_FIPS_MODE", "1", 1);
		if (strcmp(fg_record_aead_lib(), "OpenSSL") != 0) {
			fprintf(stderr, "aead: libgcrypt in FIPS mode did not hand over to OpenSSL\n");
			_exit(1);
		}
		_exit(measure("openssl", k, batches, plain, recs, back));
	}
	if (waitpid(pid, &wstatus, 0) < 0 || !WIFEXITED(wstatus))
		return 1;
	return WEXITSTATUS(wstatus);
}

int main(int argc, char **argv)
{
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
	/* Before this process touches the record layer, so that the child picks afresh. */
	if (!getenv("LIBGCRYPT_FORCE_FIPS_MODE"))
		status |= measure_openssl(&k, batches, plain, recs, back);
	status |= measure("fedgate", &k, batches, plain, recs, back);
	free(plain);
	free(recs);
	free(back);
	return status;
}
