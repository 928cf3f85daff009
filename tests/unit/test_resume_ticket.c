/* SPDX-License-Identifier: MIT */
/*
 * control/resume_ticket.c: what a ticket carries reads back whole (times,
 * both chains, the leaf left out of the verified one); every cut, a byte
 * more, a wrong magic or version, an unusable one, and a time past 2^40 are
 * refused; a chain that does not fit gets no data at all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "control/resume_ticket.h"
#include "unit.h"
#include "unit_x509.h"

static X509 *cert(EVP_PKEY *key, const char *cn)
{
	return unit_self_signed(key, cn);
}

UNIT_TEST(round_trip_and_refusals)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	STACK_OF(X509) *sent = sk_X509_new_null(), *ver = sk_X509_new_null(), *s = NULL, *v = NULL;
	X509 *leaf = cert(key, "leaf"), *mid = cert(key, "mid"), *root = cert(key, "root");
	uint8_t *buf = malloc(FG_RESUME_TICKET_MAX), dead[FG_RESUME_TICKET_DEAD_LEN];
	int64_t at = 0;
	size_t n;

	CHECK(key && leaf && mid && root && buf);
	sk_X509_push(sent, leaf);
	sk_X509_push(sent, mid);
	sk_X509_push(ver, leaf);
	sk_X509_push(ver, mid);
	sk_X509_push(ver, root);
	n = fg_resume_ticket_encode(buf, FG_RESUME_TICKET_MAX, 1700000000, sent, ver);
	CHECK(n > 12);
	CHECK_EQ(fg_resume_ticket_decode(buf, n, &at, &s, &v), 0);
	CHECK_EQ(at, 1700000000);
	CHECK_EQ(sk_X509_num(s), 2);
	CHECK_EQ(sk_X509_num(v), 2); /* mid, root: the leaf is the session's */
	CHECK(s && !X509_cmp(sk_X509_value(s, 0), leaf) && !X509_cmp(sk_X509_value(s, 1), mid));
	CHECK(v && !X509_cmp(sk_X509_value(v, 0), mid) && !X509_cmp(sk_X509_value(v, 1), root));
	sk_X509_pop_free(s, X509_free);
	sk_X509_pop_free(v, X509_free);
	/* every cut is refused, and so is a byte more */
	for (size_t cut = 0; cut < n; cut++)
		CHECK_EQ(fg_resume_ticket_decode(buf, cut, &at, &s, &v), -EINVAL);
	buf[n] = 0;
	CHECK_EQ(fg_resume_ticket_decode(buf, n + 1, &at, &s, &v), -EINVAL);
	buf[0] ^= 1;
	CHECK_EQ(fg_resume_ticket_decode(buf, n, &at, &s, &v), -EINVAL);
	buf[0] ^= 1;
	buf[2]++;
	CHECK_EQ(fg_resume_ticket_decode(buf, n, &at, &s, &v), -EINVAL);
	buf[2]--;
	/* a time past 2^40 */
	CHECK(fg_resume_ticket_encode(buf, FG_RESUME_TICKET_MAX, (int64_t)1 << 40, sent, ver) == n);
	CHECK_EQ(fg_resume_ticket_decode(buf, n, &at, &s, &v), -EINVAL);
	/* an unusable one, and no chains at all */
	fg_resume_ticket_dead(dead);
	CHECK_EQ(fg_resume_ticket_decode(dead, sizeof(dead), &at, &s, &v), -EINVAL);
	n = fg_resume_ticket_encode(buf, FG_RESUME_TICKET_MAX, 5, NULL, NULL);
	CHECK_EQ(n, 14);
	CHECK_EQ(fg_resume_ticket_decode(buf, n, &at, &s, &v), 0);
	CHECK(sk_X509_num(s) == 0 && sk_X509_num(v) == 0 && at == 5);
	sk_X509_pop_free(s, X509_free);
	sk_X509_pop_free(v, X509_free);
	/* too small a buffer: nothing */
	CHECK_EQ(fg_resume_ticket_encode(buf, 100, 5, sent, ver), 0);
	CHECK_EQ(fg_resume_ticket_encode(buf, 11, 5, NULL, NULL), 0);
	sk_X509_free(sent);
	sk_X509_free(ver);
	X509_free(leaf);
	X509_free(mid);
	X509_free(root);
	EVP_PKEY_free(key);
	free(buf);
}

UNIT_MAIN("resume_ticket", UNIT_CASE(round_trip_and_refusals))
