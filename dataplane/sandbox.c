// SPDX-License-Identifier: MIT
/* The data plane's sandbox: which user it runs as, and whether its seccomp filter goes in. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "dataplane/sandbox.h"
#include "fedgate/keys-t.h"
#include "fedgate/record.h"
#include "fedgate/log.h"
#include "fedgate/privdrop.h"
#include "fedgate/sandbox-t.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* "UID:GID", decimal, nothing else. 0 or -EINVAL. */
static int parse_ids(const char *s, uid_t *uid, gid_t *gid)
{
	char *end = NULL;
	unsigned long u, g;

	errno = 0;
	u = strtoul(s, &end, 10);
	if (errno || end == s || *end != ':' || u > UINT32_MAX - 1)
		return -EINVAL;
	s = end + 1;
	g = strtoul(s, &end, 10);
	if (errno || end == s || *end || g > UINT32_MAX - 1)
		return -EINVAL;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

int dp_sandbox_drop(void)
{
	const char *v = getenv(FG_DP_ENV_RUN_AS);
	uid_t uid;
	gid_t gid;
	int ret;

	if (!v)
		return 0;
	ret = parse_ids(v, &uid, &gid);
	if (ret) {
		fg_error("run_as: malformed %s=\"%s\" from the control process", FG_DP_ENV_RUN_AS,
			 v);
		return ret;
	}
	ret = fg_privdrop(uid, gid);
	if (ret)
		fg_error("run_as: cannot become uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
			 strerror(-ret));
	return ret;
}

/*
 * OpenSSL reads its config file and loads providers on first use, and a
 * worker's first KeyUpdate may be that use: under the filter that open kills
 * the data plane. So every cipher seals, opens and updates its keys once
 * here, with a throwaway key, before the filter goes in. 0 or -errno.
 */
static int warm_up(void)
{
	static const uint16_t ciphers[] = {FG_AES_128_GCM, FG_AES_256_GCM, FG_CHACHA20_POLY1305};
	uint8_t rec[64], plain[64], type;
	struct fg_traffic_keys k = {0};
	int ret = 0;

	if (!OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL))
		return -EIO;
	for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]) && !ret; i++) {
		struct fg_record_dir tx = {0}, rx = {0};
		size_t plain_len;
		ssize_t n;

		ret = fg_record_init(&tx, ciphers[i], &k, 1);
		if (!ret)
			ret = fg_record_init(&rx, ciphers[i], &k, 0);
		n = ret ? ret : fg_record_seal(&tx, 23, (const uint8_t *)"x", 1, rec, sizeof(rec));
		if (n > 0)
			n = fg_record_open(&rx, rec, (size_t)n, plain, sizeof(plain), &type,
					   &plain_len);
		ret = n < 0 ? (int)n : 0;
		if (!ret)
			ret = fg_record_key_update(&tx);
		if (!ret) {
			n = fg_record_seal(&tx, 23, (const uint8_t *)"x", 1, rec, sizeof(rec));
			ret = n < 0 ? (int)n : 0;
		}
		fg_record_exit(&tx);
		fg_record_exit(&rx);
	}
	OPENSSL_cleanse(rec, sizeof(rec));
	OPENSSL_cleanse(plain, sizeof(plain));
	return ret;
}

int dp_sandbox_seccomp(void)
{
	const char *v = getenv(FG_DP_ENV_SECCOMP), *probe = getenv(FG_DP_ENV_SECCOMP_PROBE);
	int ret;

	if (v && !strcmp(v, "0")) {
		fg_info("seccomp: off (as configured)");
		return 0;
	}
	if (SANITIZED) {
		/* Their runtime (reports, leak checks at exit) needs calls no worker makes. */
		fg_warn("seccomp: not installed in a sanitizer build");
		return 0;
	}
	/* The filter refuses file opens: the time zone is read now, if ever. */
	tzset();
	ret = warm_up();
	if (ret) {
		fg_error("seccomp: the record layer failed its warm-up: %s", strerror(-ret));
		return ret;
	}
	ret = dp_seccomp_install();
	if (ret) {
		fg_error("seccomp: cannot install the filter: %s (set $.dataplane.seccomp false "
			 "to run without it)",
			 strerror(-ret));
		return ret;
	}
	fg_info("seccomp: on, a system call outside the data plane's list kills it");
	if (probe && !strcmp(probe, "1")) {
		fg_warn("seccomp: test probe: calling socket(2), which the filter forbids");
		syscall(__NR_socket, AF_INET, SOCK_STREAM, 0);
		fg_error("seccomp: test probe: socket(2) was not stopped");
		return -EPERM;
	}
	return 0;
}
