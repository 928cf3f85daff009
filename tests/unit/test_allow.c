/* SPDX-License-Identifier: MIT */
/*
 * Allow-rule tests: fg_pattern_match (DNS, URI, CN), fg_allow_check (AND
 * within a rule, OR across rules, the "why" text and its buffer bounds) and
 * fg_peer_describe (format and truncation).
 *
 * Buffer-bound checks surround the buffer under test with canary bytes; run
 * `make unit SANITIZE=1` (build/san/tests/test_allow) to have ASan watch too.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "control/allow.h"
#include "control/config-t.h"
#include "control/peer-t.h"
#include "unit.h"

#define CANARY 0x5a

/* Logs the pattern, the name and the kind of a wrong verdict, then counts it. */
#define MATCH(pattern, s, kind, expect)                                                            \
	do {                                                                                       \
		int _got = fg_pattern_match((pattern), (s), (kind));                               \
		if (_got != (expect)) {                                                            \
			fprintf(stderr, "    %s:%d: fg_pattern_match(\"%s\", \"%s\", %s) == %d, "  \
					"expected %d\n",                                           \
				__FILE__, __LINE__, (pattern), (s), #kind, _got, (expect));        \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (strcmp(_a, _b) != 0) {                                                         \
			fprintf(stderr, "    %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,   \
				__LINE__, #a, _a, _b);                                             \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

/* Peers: static so the large struct stays off the stack, reset by each builder. */
static struct fg_peer_id peer;

static struct fg_peer_id *make_peer(const char *cn, const char *root_cn, const char *const *dns,
				    const char *const *uri)
{
	memset(&peer, 0, sizeof(peer));
	snprintf(peer.cn, sizeof(peer.cn), "%s", cn);
	snprintf(peer.root_cn, sizeof(peer.root_cn), "%s", root_cn);
	for (; dns && *dns; dns++)
		snprintf(peer.dns[peer.n_dns++], FG_PEER_NAME_MAX, "%s", *dns);
	for (; uri && *uri; uri++)
		snprintf(peer.uri[peer.n_uri++], FG_PEER_NAME_MAX, "%s", *uri);
	return &peer;
}

/* The "foo" leaf of tests/pki.py, under the Cloud root. */
static struct fg_peer_id *foo_peer(void)
{
	static const char *const dns[] = { "foo.internal", NULL };
	static const char *const uri[] = { "spiffe://cloud.example/gw/foo", NULL };

	return make_peer("foo.internal", "Cloud Root CA", dns, uri);
}

/* The "kube_client" leaf, under the Kubernetes root. */
static struct fg_peer_id *kube_peer(void)
{
	static const char *const dns[] = { "kube-client.k8s.internal", NULL };
	static const char *const uri[] = { "spiffe://k8s.example/ns/default/sa/kube-client", NULL };

	return make_peer("kube_client", "Kubernetes Root CA", dns, uri);
}

/* ---- fg_pattern_match: DNS ---- */

UNIT_TEST(dns_exact_names_ignore_case)
{
	MATCH("foo.internal", "foo.internal", FG_PATTERN_DNS, 1);
	MATCH("foo.internal", "FOO.Internal", FG_PATTERN_DNS, 1);
	MATCH("FOO.INTERNAL", "foo.internal", FG_PATTERN_DNS, 1);
	MATCH("foo.internal", "foo.internal.", FG_PATTERN_DNS, 0);
	MATCH("foo.internal", "foo.internal.evil", FG_PATTERN_DNS, 0);
	MATCH("foo.internal", "xfoo.internal", FG_PATTERN_DNS, 0);
	MATCH("foo.internal", "foo.interna", FG_PATTERN_DNS, 0);
	MATCH("foo.internal", "fo0.internal", FG_PATTERN_DNS, 0);
}

UNIT_TEST(dns_leading_star_is_exactly_one_label)
{
	MATCH("*.k8s.internal", "a.k8s.internal", FG_PATTERN_DNS, 1);
	MATCH("*.k8s.internal", "A.K8S.INTERNAL", FG_PATTERN_DNS, 1);
	MATCH("*.k8s.internal", "kube-client.k8s.internal", FG_PATTERN_DNS, 1);
	/* The star needs at least one character... */
	MATCH("*.k8s.internal", "k8s.internal", FG_PATTERN_DNS, 0);
	MATCH("*.k8s.internal", ".k8s.internal", FG_PATTERN_DNS, 0);
	/* ...and never spans a dot. */
	MATCH("*.k8s.internal", "a.b.k8s.internal", FG_PATTERN_DNS, 0);
	MATCH("*.k8s.internal", "a.k8s.internal.evil", FG_PATTERN_DNS, 0);
	MATCH("*.k8s.internal", "a.k8s.internalx", FG_PATTERN_DNS, 0);
	MATCH("*.k8s.internal", "a.k9s.internal", FG_PATTERN_DNS, 0);
}

UNIT_TEST(dns_partial_label_star)
{
	MATCH("foo*.internal", "foo1.internal", FG_PATTERN_DNS, 1);
	MATCH("foo*.internal", "foobar.internal", FG_PATTERN_DNS, 1);
	MATCH("foo*.internal", "FOO1.INTERNAL", FG_PATTERN_DNS, 1);
	MATCH("foo*.internal", "foo.internal", FG_PATTERN_DNS, 0); /* 1+ characters */
	MATCH("foo*.internal", "foo.x.internal", FG_PATTERN_DNS, 0);
	MATCH("foo*.internal", "foo1.x.internal", FG_PATTERN_DNS, 0);
	MATCH("foo*.internal", "bar1.internal", FG_PATTERN_DNS, 0);
	MATCH("*foo.internal", "barfoo.internal", FG_PATTERN_DNS, 1);
	MATCH("*foo.internal", "foo.internal", FG_PATTERN_DNS, 0);
	MATCH("a*b.internal", "axyb.internal", FG_PATTERN_DNS, 1);
	MATCH("a*b.internal", "ab.internal", FG_PATTERN_DNS, 0);
	MATCH("a*b.internal", "a.b.internal", FG_PATTERN_DNS, 0);
	/* Backtracking: the star must give back a 'b' it could have taken. */
	MATCH("a*b.internal", "abbb.internal", FG_PATTERN_DNS, 1);
}

UNIT_TEST(dns_trailing_and_multiple_stars)
{
	MATCH("foo.*", "foo.bar", FG_PATTERN_DNS, 1);
	MATCH("foo.*", "foo.", FG_PATTERN_DNS, 0);
	MATCH("foo.*", "foo.bar.baz", FG_PATTERN_DNS, 0);
	MATCH("*", "a", FG_PATTERN_DNS, 1);
	MATCH("*", "abc", FG_PATTERN_DNS, 1);
	MATCH("*", "", FG_PATTERN_DNS, 0);
	MATCH("*", "a.b", FG_PATTERN_DNS, 0);
	MATCH("*.*.internal", "a.b.internal", FG_PATTERN_DNS, 1);
	MATCH("*.*.internal", "a.internal", FG_PATTERN_DNS, 0);
	MATCH("*.*.internal", "a.b.c.internal", FG_PATTERN_DNS, 0);
	/* Two stars in one label: each takes at least one character. */
	MATCH("**.internal", "ab.internal", FG_PATTERN_DNS, 1);
	MATCH("**.internal", "a.internal", FG_PATTERN_DNS, 0);
}

UNIT_TEST(dns_empty_pattern_and_name)
{
	MATCH("", "", FG_PATTERN_DNS, 1);
	MATCH("", "a", FG_PATTERN_DNS, 0);
	MATCH("a", "", FG_PATTERN_DNS, 0);
	MATCH("*.internal", "", FG_PATTERN_DNS, 0);
}

/* ---- fg_pattern_match: URI ---- */

UNIT_TEST(uri_trailing_star_spans_paths)
{
	const char *p = "spiffe://k8s.example/*";

	MATCH(p, "spiffe://k8s.example/ns/default/sa/bar", FG_PATTERN_URI, 1);
	MATCH(p, "spiffe://k8s.example/", FG_PATTERN_URI, 1); /* empty run */
	MATCH(p, "spiffe://k8s.example", FG_PATTERN_URI, 0);
	MATCH(p, "spiffe://k8s.example.evil/x", FG_PATTERN_URI, 0);
	MATCH(p, "spiffe://K8S.example/x", FG_PATTERN_URI, 0);
	MATCH(p, "SPIFFE://k8s.example/x", FG_PATTERN_URI, 0);
	MATCH(p, "xspiffe://k8s.example/x", FG_PATTERN_URI, 0);
	MATCH(p, "", FG_PATTERN_URI, 0);
}

UNIT_TEST(uri_exact_and_inner_stars)
{
	const char *exact = "spiffe://cloud.example/gw/foo";

	MATCH(exact, exact, FG_PATTERN_URI, 1);
	MATCH(exact, "spiffe://cloud.example/gw/foo/x", FG_PATTERN_URI, 0);
	MATCH(exact, "spiffe://cloud.example/gw/fo", FG_PATTERN_URI, 0);
	MATCH(exact, "spiffe://cloud.example/gw/FOO", FG_PATTERN_URI, 0);
	/* A URI star crosses '/' and '.', unlike a DNS star. */
	MATCH("spiffe://*/sa/bar", "spiffe://k8s.example/ns/default/sa/bar", FG_PATTERN_URI, 1);
	MATCH("spiffe://k8s.example/ns/*/sa/bar", "spiffe://k8s.example/ns/a/b/sa/bar",
	      FG_PATTERN_URI, 1);
	MATCH("spiffe://k8s.example/ns/*/sa/bar", "spiffe://k8s.example/ns/a/sa/baz",
	      FG_PATTERN_URI, 0);
	MATCH("*", "", FG_PATTERN_URI, 1);
	MATCH("*", "spiffe://anything/at/all", FG_PATTERN_URI, 1);
	MATCH("", "", FG_PATTERN_URI, 1);
	MATCH("", "spiffe://x", FG_PATTERN_URI, 0);
	/* Only '*' is special: '?' and '[' are literal. */
	MATCH("spiffe://a?c", "spiffe://abc", FG_PATTERN_URI, 0);
	MATCH("spiffe://a?c", "spiffe://a?c", FG_PATTERN_URI, 1);
	MATCH("spiffe://[ab]", "spiffe://a", FG_PATTERN_URI, 0);
}

/* ---- fg_pattern_match: CN ---- */

UNIT_TEST(cn_case_sensitive_glob)
{
	MATCH("foo.internal", "foo.internal", FG_PATTERN_CN, 1);
	MATCH("foo.internal", "FOO.internal", FG_PATTERN_CN, 0);
	MATCH("Cloud Root CA", "Cloud Root CA", FG_PATTERN_CN, 1);
	MATCH("Cloud Root CA", "cloud root ca", FG_PATTERN_CN, 0);
	MATCH("* Root CA", "Kubernetes Root CA", FG_PATTERN_CN, 1);
	MATCH("* Root CA", "Kubernetes Intermediate CA", FG_PATTERN_CN, 0);
	/* A CN star may be empty and crosses dots. */
	MATCH("foo*", "foo", FG_PATTERN_CN, 1);
	MATCH("foo*", "foo.bar.internal", FG_PATTERN_CN, 1);
	MATCH("*.internal", ".internal", FG_PATTERN_CN, 1);
	MATCH("*.internal", "a.b.internal", FG_PATTERN_CN, 1);
	MATCH("*", "", FG_PATTERN_CN, 1);
	MATCH("", "", FG_PATTERN_CN, 1);
	MATCH("", "x", FG_PATTERN_CN, 0);
	MATCH("x", "", FG_PATTERN_CN, 0);
}

/* ---- fg_allow_check ---- */

UNIT_TEST(allow_rule_fields_are_anded)
{
	struct fg_allow_rule both = { .dns = "foo.internal", .root = "Cloud Root CA" };
	struct fg_allow_rule wrong_root = { .dns = "foo.internal", .root = "Kubernetes Root CA" };
	struct fg_allow_rule all4 = { .dns = "*.internal",
				      .uri = "spiffe://cloud.example/*",
				      .cn = "foo.*",
				      .root = "Cloud Root CA" };
	struct fg_allow_rule bad_cn = { .dns = "foo.internal", .uri = "spiffe://cloud.example/*",
					.cn = "bar.internal" };
	char why[512];

	CHECK_EQ(fg_allow_check(&both, 1, foo_peer(), why, sizeof(why)), 0);
	CHECK_EQ(fg_allow_check(&all4, 1, foo_peer(), why, sizeof(why)), 0);

	CHECK_EQ(fg_allow_check(&wrong_root, 1, foo_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: root 'Kubernetes Root CA' does not match 'Cloud Root CA'");

	/* dns and uri match; cn does not, so the rule fails and names cn. */
	CHECK_EQ(fg_allow_check(&bad_cn, 1, foo_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: cn 'bar.internal' does not match 'foo.internal'");

	/* The same fields, another peer: dns is checked first and is named. */
	CHECK_EQ(fg_allow_check(&all4, 1, kube_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: dns '*.internal' matches no DNS SAN");
}

UNIT_TEST(allow_rules_are_ored)
{
	struct fg_allow_rule rules[] = {
		{ .dns = "foo.internal", .root = "Cloud Root CA" },
		{ .uri = "spiffe://k8s.example/*", .root = "Kubernetes Root CA" },
	};
	struct fg_allow_rule swapped_roots[] = {
		{ .dns = "foo.internal", .root = "Kubernetes Root CA" },
		{ .uri = "spiffe://k8s.example/*", .root = "Cloud Root CA" },
	};
	char why[512];

	CHECK_EQ(fg_allow_check(rules, 2, foo_peer(), why, sizeof(why)), 0);  /* rule 0 */
	CHECK_EQ(fg_allow_check(rules, 2, kube_peer(), why, sizeof(why)), 0); /* rule 1 */
	/* With only the first rule, the Kubernetes peer is out. */
	CHECK_EQ(fg_allow_check(rules, 1, kube_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: dns 'foo.internal' matches no DNS SAN");

	/* Both rules fail: both are listed, in order, separated by "; ". */
	CHECK_EQ(fg_allow_check(swapped_roots, 2, foo_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: root 'Kubernetes Root CA' does not match 'Cloud Root CA'; "
		       "allow[1]: uri 'spiffe://k8s.example/*' matches no URI SAN");
	CHECK_EQ(fg_allow_check(swapped_roots, 2, kube_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: dns 'foo.internal' matches no DNS SAN; "
		       "allow[1]: root 'Cloud Root CA' does not match 'Kubernetes Root CA'");
}

UNIT_TEST(allow_any_san_may_match)
{
	static const char *const dns[] = { "a.example", "b.example", "bar.internal", NULL };
	static const char *const uri[] = { "spiffe://x/1", "spiffe://k8s.example/ns/default/sa/bar",
					   NULL };
	struct fg_allow_rule dns_rule = { .dns = "bar.internal" };
	struct fg_allow_rule uri_rule = { .uri = "spiffe://k8s.example/ns/*" };
	char why[256];

	make_peer("bar.internal", "Kubernetes Root CA", dns, uri);
	CHECK_EQ(fg_allow_check(&dns_rule, 1, &peer, why, sizeof(why)), 0);
	CHECK_EQ(fg_allow_check(&uri_rule, 1, &peer, why, sizeof(why)), 0);
	/* Only the first n_dns / n_uri entries count. */
	peer.n_dns = 2;
	peer.n_uri = 1;
	CHECK_EQ(fg_allow_check(&dns_rule, 1, &peer, why, sizeof(why)), -EACCES);
	CHECK_EQ(fg_allow_check(&uri_rule, 1, &peer, why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: uri 'spiffe://k8s.example/ns/*' matches no URI SAN");
}

UNIT_TEST(allow_root_only_rule)
{
	struct fg_allow_rule cloud = { .root = "Cloud Root CA" };
	struct fg_allow_rule any_root = { .root = "*" };
	char why[256];

	CHECK_EQ(fg_allow_check(&cloud, 1, foo_peer(), why, sizeof(why)), 0);
	CHECK_EQ(fg_allow_check(&cloud, 1, kube_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: root 'Cloud Root CA' does not match 'Kubernetes Root CA'");
	/* Root CN matching is case-sensitive. */
	make_peer("foo.internal", "cloud root ca", NULL, NULL);
	CHECK_EQ(fg_allow_check(&cloud, 1, &peer, why, sizeof(why)), -EACCES);
	/* A peer without a root CN fails an exact root... */
	make_peer("foo.internal", "", NULL, NULL);
	CHECK_EQ(fg_allow_check(&cloud, 1, &peer, why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: root 'Cloud Root CA' does not match ''");
	/* ...and "*", a CN glob, admits any root, even an empty one. */
	CHECK_EQ(fg_allow_check(&any_root, 1, &peer, why, sizeof(why)), 0);
}

UNIT_TEST(allow_peer_without_sans)
{
	struct fg_allow_rule dns_rule = { .dns = "*.internal" };
	struct fg_allow_rule uri_rule = { .uri = "*" };
	struct fg_allow_rule cn_rule = { .cn = "foo.internal" };
	char why[256];

	make_peer("foo.internal", "Cloud Root CA", NULL, NULL);
	/* Even a pattern that matches anything needs a SAN to match. */
	CHECK_EQ(fg_allow_check(&dns_rule, 1, &peer, why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: dns '*.internal' matches no DNS SAN");
	CHECK_EQ(fg_allow_check(&uri_rule, 1, &peer, why, sizeof(why)), -EACCES);
	CHECK_STR(why, "allow[0]: uri '*' matches no URI SAN");
	/* The CN is not a DNS SAN, but a cn rule can still admit the peer. */
	CHECK_EQ(fg_allow_check(&cn_rule, 1, &peer, why, sizeof(why)), 0);
}

UNIT_TEST(allow_no_rules_admits_nobody)
{
	char why[64];

	memset(why, 'x', sizeof(why));
	CHECK_EQ(fg_allow_check(NULL, 0, foo_peer(), why, sizeof(why)), -EACCES);
	CHECK_STR(why, "");
}

/* Every why_len from 0 to one past the full text: a NUL-terminated prefix, canaries intact. */
UNIT_TEST(allow_why_is_bounded)
{
	struct fg_allow_rule rules[] = {
		{ .dns = "foo.internal", .root = "Kubernetes Root CA" },
		{ .uri = "spiffe://k8s.example/*", .root = "Cloud Root CA" },
	};
	char full[512], buf[600];
	size_t full_len;

	CHECK_EQ(fg_allow_check(rules, 2, foo_peer(), full, sizeof(full)), -EACCES);
	full_len = strlen(full);
	CHECK(full_len > 100 && full_len + 2 < sizeof(buf) - 16);

	for (size_t len = 0; len <= full_len + 1; len++) {
		char *why = buf + 8;
		size_t want = len ? (len - 1 < full_len ? len - 1 : full_len) : 0;
		int ok = 1;

		memset(buf, CANARY, sizeof(buf));
		CHECK_EQ(fg_allow_check(rules, 2, foo_peer(), why, len), -EACCES);
		for (size_t i = 0; i < 8; i++)
			ok &= (unsigned char)buf[i] == CANARY;
		for (size_t i = 8 + len; i < sizeof(buf); i++)
			ok &= (unsigned char)buf[i] == CANARY;
		if (len == 0) {
			ok &= (unsigned char)why[0] == CANARY; /* nothing written at all */
		} else {
			ok &= why[want] == '\0' && memcmp(why, full, want) == 0;
		}
		if (!ok) {
			fprintf(stderr, "    why_len %zu: wrong text or bytes outside the buffer\n",
				len);
			unit_failed_checks++;
		}
	}
}

UNIT_TEST(allow_why_size_one_and_zero)
{
	struct fg_allow_rule r = { .dns = "nomatch.internal" };
	char why[4];

	memset(why, CANARY, sizeof(why));
	CHECK_EQ(fg_allow_check(&r, 1, foo_peer(), why, 1), -EACCES);
	CHECK_EQ(why[0], '\0');
	CHECK_EQ((unsigned char)why[1], CANARY);

	memset(why, CANARY, sizeof(why));
	CHECK_EQ(fg_allow_check(&r, 1, foo_peer(), why, 0), -EACCES);
	CHECK_EQ((unsigned char)why[0], CANARY);

	/* An admitted peer with a zero-sized why: still admitted, nothing written. */
	r.dns = "foo.internal";
	CHECK_EQ(fg_allow_check(&r, 1, foo_peer(), why, 0), 0);
	CHECK_EQ((unsigned char)why[0], CANARY);
}

/* ---- fg_peer_describe ---- */

UNIT_TEST(describe_format)
{
	static const char *const dns[] = { "bar.internal", "localhost", NULL };
	static const char *const uri[] = { "spiffe://k8s.example/ns/default/sa/bar", NULL };
	static const char *const uri_only[] = { "spiffe://x/1", "spiffe://x/2", NULL };
	char out[512];

	make_peer("bar.internal", "Kubernetes Root CA", dns, uri);
	fg_peer_describe(&peer, out, sizeof(out));
	CHECK_STR(out, "bar.internal [dns:bar.internal dns:localhost "
		       "uri:spiffe://k8s.example/ns/default/sa/bar]");

	memset(&peer, 0, sizeof(peer));
	fg_peer_describe(&peer, out, sizeof(out));
	CHECK_STR(out, "(no CN) []");

	make_peer("", "", dns, NULL);
	fg_peer_describe(&peer, out, sizeof(out));
	CHECK_STR(out, "(no CN) [dns:bar.internal dns:localhost]");

	make_peer("c", "", NULL, uri_only);
	fg_peer_describe(&peer, out, sizeof(out));
	CHECK_STR(out, "c [uri:spiffe://x/1 uri:spiffe://x/2]");

	make_peer("only-cn", "", NULL, NULL);
	fg_peer_describe(&peer, out, sizeof(out));
	CHECK_STR(out, "only-cn []");
}

/* Every len from 0 to one past the full text: a NUL-terminated prefix, canaries intact. */
UNIT_TEST(describe_truncates_without_overflow)
{
	static const char *const dns[] = { "bar.internal", "localhost", NULL };
	static const char *const uri[] = { "spiffe://k8s.example/ns/default/sa/bar", NULL };
	char full[512], buf[600];
	size_t full_len;

	make_peer("bar.internal", "Kubernetes Root CA", dns, uri);
	fg_peer_describe(&peer, full, sizeof(full));
	full_len = strlen(full);
	CHECK(full_len > 50 && full_len + 2 < sizeof(buf) - 16);

	for (size_t len = 0; len <= full_len + 1; len++) {
		char *out = buf + 8;
		size_t want = len ? (len - 1 < full_len ? len - 1 : full_len) : 0;
		int ok = 1;

		memset(buf, CANARY, sizeof(buf));
		fg_peer_describe(&peer, out, len);
		for (size_t i = 0; i < 8; i++)
			ok &= (unsigned char)buf[i] == CANARY;
		for (size_t i = 8 + len; i < sizeof(buf); i++)
			ok &= (unsigned char)buf[i] == CANARY;
		if (len == 0)
			ok &= (unsigned char)out[0] == CANARY;
		else
			ok &= out[want] == '\0' && memcmp(out, full, want) == 0;
		if (!ok) {
			fprintf(stderr, "    len %zu: wrong text or bytes outside the buffer\n", len);
			unit_failed_checks++;
		}
	}
}

/* Full-size names in every slot: the longest description still fits a small buffer safely. */
UNIT_TEST(describe_max_peer_small_buffer)
{
	char buf[64 + 16];

	memset(&peer, 0, sizeof(peer));
	memset(peer.cn, 'c', sizeof(peer.cn) - 1);
	peer.n_dns = peer.n_uri = FG_PEER_SANS_MAX;
	for (size_t i = 0; i < FG_PEER_SANS_MAX; i++) {
		memset(peer.dns[i], 'd', FG_PEER_NAME_MAX - 1);
		memset(peer.uri[i], 'u', FG_PEER_NAME_MAX - 1);
	}
	memset(buf, CANARY, sizeof(buf));
	fg_peer_describe(&peer, buf, 64);
	CHECK_EQ(strlen(buf), 63);
	CHECK_EQ(buf[0], 'c');
	CHECK_EQ(buf[62], 'c');
	for (size_t i = 64; i < sizeof(buf); i++)
		CHECK_EQ((unsigned char)buf[i], CANARY);
}

UNIT_MAIN("allow", UNIT_CASE(dns_exact_names_ignore_case),
	  UNIT_CASE(dns_leading_star_is_exactly_one_label), UNIT_CASE(dns_partial_label_star),
	  UNIT_CASE(dns_trailing_and_multiple_stars), UNIT_CASE(dns_empty_pattern_and_name),
	  UNIT_CASE(uri_trailing_star_spans_paths), UNIT_CASE(uri_exact_and_inner_stars),
	  UNIT_CASE(cn_case_sensitive_glob), UNIT_CASE(allow_rule_fields_are_anded),
	  UNIT_CASE(allow_rules_are_ored), UNIT_CASE(allow_any_san_may_match),
	  UNIT_CASE(allow_root_only_rule), UNIT_CASE(allow_peer_without_sans),
	  UNIT_CASE(allow_no_rules_admits_nobody), UNIT_CASE(allow_why_is_bounded),
	  UNIT_CASE(allow_why_size_one_and_zero), UNIT_CASE(describe_format),
	  UNIT_CASE(describe_truncates_without_overflow), UNIT_CASE(describe_max_peer_small_buffer))
