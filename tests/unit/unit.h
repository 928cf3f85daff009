/* SPDX-License-Identifier: MIT */
/*
 * A tiny unit-test harness. Each test file defines its tests with UNIT_TEST()
 * and lists them in UNIT_MAIN(); the binary prints one line per test and the
 * closing line "unit: N passed, N failed", and exits non-zero on any failure.
 */
#ifndef FEDGATE_TESTS_UNIT_H
#define FEDGATE_TESTS_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed_checks;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__, __LINE__,        \
				#cond);                                                            \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b) {                                                                    \
			fprintf(stderr, "    %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,  \
				__LINE__, #a, _a, #b, _b);                                         \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_MEM(a, b, n)                                                                         \
	do {                                                                                       \
		if (memcmp((a), (b), (n)) != 0) {                                                  \
			fprintf(stderr, "    %s:%d: bytes differ: %s vs %s (%zu bytes)\n",         \
				__FILE__, __LINE__, #a, #b, (size_t)(n));                          \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define UNIT_TEST(name) static void name(void)

struct unit_case {
	const char *name;
	void (*fn)(void);
};

#define UNIT_CASE(fn) { #fn, fn }

static inline int unit_run(const char *suite, const struct unit_case *cases, int n)
{
	int passed = 0, failed = 0;

	for (int i = 0; i < n; i++) {
		int before = unit_failed_checks;

		cases[i].fn();
		if (unit_failed_checks == before) {
			printf("PASS %s.%s\n", suite, cases[i].name);
			passed++;
		} else {
			printf("FAIL %s.%s\n", suite, cases[i].name);
			failed++;
		}
	}
	printf("%s: %d passed, %d failed\n", suite, passed, failed);
	return failed ? 1 : 0;
}

#define UNIT_MAIN(suite, ...)                                                                      \
	int main(void)                                                                             \
	{                                                                                          \
		static const struct unit_case cases[] = { __VA_ARGS__ };                          \
		return unit_run(suite, cases, (int)(sizeof(cases) / sizeof(cases[0])));          \
	}

/* Hex string (spaces allowed) to bytes; returns the byte count. */
static inline size_t unit_hex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (; *hex; hex++) {
		int v;

		if (*hex >= '0' && *hex <= '9')
			v = *hex - '0';
		else if (*hex >= 'a' && *hex <= 'f')
			v = *hex - 'a' + 10;
		else if (*hex >= 'A' && *hex <= 'F')
			v = *hex - 'A' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			if (n < cap)
				out[n] = (unsigned char)(hi << 4 | v);
			n++;
			hi = -1;
		}
	}
	return n;
}

#endif
