/* SPDX-License-Identifier: MIT */
/*
 * Config tests. The pure parser (fg_config_parse): a full config and the
 * defaults, each refusal with its exact message, and the checks it leaves to
 * the loader, in order. The loader (fg_config_load): its own refusals, the
 * checks run in place of the parser's, and a config that loads.
 * tests/test_config.py runs the same refusals through `fedgate check`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "control/config.h"
#include "fedgate/dataplane-t.h"
#include "fedgate/err-t.h"
#include "fedgate/keys-t.h"
#include "unit.h"

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || strcmp(_a, _b) != 0) {                                                  \
			fprintf(stderr, "    %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,   \
				__LINE__, #a, _a ? _a : "(null)", _b);                             \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

/* Pieces of configs: an identity of plain files, one tunnel of each mode. */
#define ID "\"identity\": {\"cert\": \"c.pem\", \"key\": \"k.pem\", \"trust\": \"t.pem\"}"
#define TERM                                                                                       \
	"{\"name\": \"t\", \"mode\": \"terminate\", \"listen\": \"127.0.0.1:0\", "                 \
	"\"upstream\": \"127.0.0.1:9\", \"allow\": [{\"dns\": \"foo.internal\"}]}"
#define ORIG                                                                                       \
	"{\"name\": \"o\", \"mode\": \"originate\", \"listen\": \"127.0.0.1:0\", "                 \
	"\"peer\": \"127.0.0.1:8443\", \"server_name\": \"bar.internal\", "                       \
	"\"allow\": [{\"dns\": \"bar.internal\"}]}"
#define TUNNELS "\"tunnels\": [" TERM ", " ORIG "]"
/* A tunnel with @extra members after name and mode; listen given. */
#define TUN(mode, extra)                                                                           \
	"{" ID ", \"tunnels\": [{\"name\": \"t\", \"mode\": \"" mode                               \
	"\", \"listen\": \"127.0.0.1:0\"" extra "}]}"

static struct fg_config cfg;
static struct fg_conf_checks checks;
static struct fg_err err;

static int parse(const char *text)
{
	fg_conf_checks_free(&checks);
	fg_config_free(&cfg);
	memset(&err, 0, sizeof(err));
	return fg_config_parse(text, strlen(text), "f.json", "/etc/fg", &cfg, &checks, &err);
}

/* @text is refused by the parser with exactly "f.json: @msg". */
#define REFUSED(text, want)                                                                         \
	do {                                                                                       \
		int _r = parse(text);                                                              \
		CHECK_EQ(_r, -EINVAL);                                                             \
		CHECK_STR(err.msg, "f.json: " want);                                                \
	} while (0)

UNIT_TEST(full_config)
{
	const char *text =
		"{\"identity\": {\"cert\": \"pki/c.pem\", \"key\": \"/abs/k.pem\", "
		"\"trust\": {\"federation\": [{\"url\": \"https://ca.example\", \"root\": \"r.pem\"}],"
		" \"refresh_s\": 60},"
		" \"ca\": {\"url\": \"https://ca.example:9000\", \"root\": \"ca.pem\", \"subject\": "
		"\"foo\", \"token_file\": \"foo.token\", \"sans\": [\"foo\", \"spiffe://x/y\"]}},"
		" \"tls\": {\"min_version\": \"1.3\", \"max_version\": \"TLSv1.3\", \"ciphers\": "
		"[\"CHACHA20-POLY1305\", \"tls_aes_256_gcm_sha384\"], \"handshake_timeout_ms\": 600000,"
		" \"groups\": [\"x448\", \"P-521\"], \"verify_depth\": 16},"
		" \"dataplane\": {\"workers\": 64, \"offload\": \"kernel\", \"kernel_tx\": \"splice\"},"
		" \"tunnels\": [{\"name\": \"t\", \"mode\": \"terminate\", \"listen\": \"[::1]:0\", "
		"\"upstream\": \"localhost:65535\", \"proxy_protocol\": \"v2\", \"allow\": [{\"dns\": "
		"\"foo.internal\", \"root\": \"sha256:AB:cd" /* 60 more hex digits */
		"012345678901234567890123456789012345678901234567890123456789\"}, {\"cn\": \"x\"}]}, "
		ORIG "],"
		" \"roots\": [{\"cn\": \"R\", \"dns\": [\"*.k8s\"]}, {\"sha256\": "
		"\"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\", \"uri\": "
		"[\"spiffe://k/*\"], \"leaf_cn\": [\"a\", \"b\"]}]}";
	static const char *const want[][2] = {
		{ "$.identity.trust.federation[0].root", "/etc/fg/r.pem" },
		{ "$.identity.ca.root", "/etc/fg/ca.pem" },
		{ "$.tunnels[0].listen", "[::1]:0" },
		{ "$.tunnels[0].upstream", "localhost:65535" },
		{ "$.tunnels[1].listen", "127.0.0.1:0" },
		{ "$.tunnels[1].peer", "127.0.0.1:8443" },
	};
	static const enum fg_conf_check_kind kinds[] = {
		FG_CONF_CHECK_READABLE, FG_CONF_CHECK_READABLE, FG_CONF_CHECK_LISTEN,
		FG_CONF_CHECK_CONNECT,	FG_CONF_CHECK_LISTEN,	FG_CONF_CHECK_CONNECT,
	};

	CHECK_EQ(parse(text), 0);
	CHECK_STR(err.msg, "");
	CHECK_STR(cfg.path, "f.json");
	CHECK_STR(cfg.dir, "/etc/fg");
	CHECK_STR(cfg.cert_file, "/etc/fg/pki/c.pem");
	CHECK_STR(cfg.key_file, "/abs/k.pem");
	CHECK(cfg.trust_file == NULL);
	CHECK_EQ(cfg.n_federation, 1);
	CHECK_STR(cfg.federation[0].url, "https://ca.example");
	CHECK_STR(cfg.federation[0].root, "/etc/fg/r.pem");
	CHECK_EQ(cfg.refresh_s, 60);
	CHECK(cfg.ca != NULL);
	CHECK_STR(cfg.ca->ca.url, "https://ca.example:9000");
	CHECK_STR(cfg.ca->token_file, "/etc/fg/foo.token");
	CHECK_STR(cfg.ca->subject, "foo");
	CHECK_EQ(cfg.ca->n_sans, 2);
	CHECK_STR(cfg.ca->sans[1], "spiffe://x/y");
	CHECK_EQ(cfg.n_ciphers, 2);
	CHECK_EQ(cfg.ciphers[0], FG_CHACHA20_POLY1305);
	CHECK_EQ(cfg.ciphers[1], FG_AES_256_GCM);
	CHECK_EQ(cfg.handshake_timeout_ms, 600000);
	CHECK_STR(cfg.groups, "X448:P-521");
	CHECK_EQ(cfg.verify_depth, 16);
	CHECK_EQ(cfg.workers, FG_DP_WORKERS_MAX);
	CHECK_EQ(cfg.offload, FG_OFFLOAD_KERNEL);
	CHECK_EQ(cfg.kernel_tx_splice, 1);
	CHECK_EQ(cfg.n_tunnels, 2);
	CHECK_STR(cfg.tunnels[0].name, "t");
	CHECK_EQ(cfg.tunnels[0].mode, FG_MODE_TERMINATE);
	CHECK_EQ(cfg.tunnels[0].proxy_v2, 1);
	CHECK_EQ(cfg.tunnels[0].n_allow, 2);
	CHECK_STR(cfg.tunnels[0].allow[0].root,
		  "sha256:abcd012345678901234567890123456789012345678901234567890123456789");
	CHECK_STR(cfg.tunnels[0].allow[1].cn, "x");
	CHECK_EQ(cfg.tunnels[1].mode, FG_MODE_ORIGINATE);
	CHECK_STR(cfg.tunnels[1].server_name, "bar.internal");
	/* addresses are the loader's: not resolved yet */
	CHECK(cfg.tunnels[1].target.text == NULL);
	CHECK_EQ(cfg.n_root_rules, 2);
	CHECK_STR(cfg.root_rules[1].sha256,
		  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	CHECK_EQ(cfg.root_rules[1].n_leaf_cn, 2);
	CHECK_EQ(checks.n, 6);
	for (size_t i = 0; i < checks.n && i < 6; i++) {
		CHECK_EQ(checks.v[i].kind, kinds[i]);
		CHECK_STR(checks.v[i].jpath, want[i][0]);
		CHECK_STR(checks.v[i].arg, want[i][1]);
	}
	CHECK(checks.v[2].addr == &cfg.tunnels[0].listen);
	CHECK(checks.v[5].addr == &cfg.tunnels[1].target);
}

UNIT_TEST(defaults_and_plain_identity)
{
	CHECK_EQ(parse("{" ID ", \"tunnels\": [" TERM "]}"), 0);
	CHECK_EQ(cfg.handshake_timeout_ms, 10000);
	CHECK_STR(cfg.groups, "X25519:P-256:P-384");
	CHECK_EQ(cfg.verify_depth, 8);
	CHECK_EQ(cfg.n_ciphers, 3);
	CHECK_EQ(cfg.ciphers[0], FG_AES_128_GCM);
	CHECK_EQ(cfg.workers, 1);
	CHECK_EQ(cfg.offload, FG_OFFLOAD_AUTO);
	CHECK_EQ(cfg.kernel_tx_splice, 0);
	CHECK_EQ(cfg.n_root_rules, 0);
	CHECK_EQ(cfg.tunnels[0].proxy_v2, 0);
	/* cert, key, trust must be readable, then the tunnel's two addresses */
	CHECK_EQ(checks.n, 5);
	if (checks.n == 5) {
		CHECK_STR(checks.v[0].jpath, "$.identity.cert");
		CHECK_STR(checks.v[0].arg, "/etc/fg/c.pem");
		CHECK_STR(checks.v[1].jpath, "$.identity.key");
		CHECK_STR(checks.v[2].jpath, "$.identity.trust");
		CHECK_STR(checks.v[2].arg, "/etc/fg/t.pem");
		CHECK_STR(checks.v[4].jpath, "$.tunnels[0].upstream");
	}
	CHECK_STR(fg_offload_name(FG_OFFLOAD_USERSPACE), "userspace");
	CHECK_EQ(fg_cipher_from_name("aes-128-gcm"), FG_AES_128_GCM);
	CHECK_EQ(fg_cipher_from_name("AES-128-CBC"), 0);
}

UNIT_TEST(nul_in_text_is_refused_and_len_bounds_it)
{
	static const char text[] = "{" ID ", \"tunnels\": [" TERM "]}\0garbage";

	fg_conf_checks_free(&checks);
	fg_config_free(&cfg);
	/* A NUL byte would have ended the text there: refused, not cut (json_nul.h) */
	CHECK_EQ(fg_config_parse(text, sizeof(text) - 1, "f.json", ".", &cfg, &checks, &err),
		 -EINVAL);
	CHECK(strstr(err.msg, "f.json: $: a NUL byte at line 1, column ") == err.msg);
	fg_conf_checks_free(&checks);
	fg_config_free(&cfg);
	CHECK_EQ(fg_config_parse(text, strlen(text), "f.json", ".", &cfg, &checks, &err), 0);
	fg_conf_checks_free(&checks);
	fg_config_free(&cfg);
	/* @len bounds the text: a prefix is a truncated file */
	CHECK_EQ(fg_config_parse(text, 10, "f.json", ".", &cfg, &checks, &err), -EINVAL);
	CHECK_STR(err.msg, "f.json: $: JSON syntax error at line 1, column 3");
}

UNIT_TEST(json_refusals)
{
	REFUSED("{\n  \"identity\": {\n    \"cert\": oops\n  }\n}\n",
		"$: JSON syntax error at line 3, column 13");
	REFUSED("{\n  \"tunnels\"\t[]\n}\n", "$: JSON syntax error at line 2, column 13");
	REFUSED("{}\n}", "$: JSON syntax error at line 2, column 1");
	REFUSED("", "$: JSON syntax error at line 1, column 1");
	REFUSED("[{\"identity\": {}}]", "$: expected an object");
	REFUSED("{\"tunnel\": []}", "$.tunnel: unknown key");
	REFUSED("{" ID ", \"tls\": {}, \"tls\": {}}", "$.tls: key given twice");
	REFUSED("{\"a\\nb\": 1}", "$.a?b: unknown key");
}

UNIT_TEST(identity_refusals)
{
	REFUSED("{}", "$.identity: missing required key");
	REFUSED("{\"identity\": \"foo.pem\"}", "$.identity: expected an object");
	REFUSED("{\"identity\": {\"cafile\": 1}}", "$.identity.cafile: unknown key");
	REFUSED("{\"identity\": {\"cert\": 1}}", "$.identity.cert: expected a string");
	REFUSED("{\"identity\": {\"cert\": \"\"}}", "$.identity.cert: must not be empty");
	REFUSED("{\"identity\": {\"cert\": \"c\"}}", "$.identity.key: missing required key");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\"}}",
		"$.identity.trust: missing required key");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": [1]}}",
		"$.identity.trust: expected a file name or an object with \"federation\"");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": {}}}",
		"$.identity.trust.federation: missing required key");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": {\"federation\": []}}}",
		"$.identity.trust.federation: expected a non-empty array of {\"url\", \"root\"}");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": {\"refresh_s\": 0}}}",
		"$.identity.trust.refresh_s: must be between 1 and 86400");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": {\"federation\": "
		"[{\"url\": \"http://x\", \"root\": \"r\"}]}}}",
		"$.identity.trust.federation[0].url: expected an https:// URL, got \"http://x\"");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": {\"federation\": "
		"[{\"url\": \"https://x\", \"root\": \"r\", \"sans\": []}]}}}",
		"$.identity.trust.federation[0].sans: unknown key");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": \"t\", \"ca\": "
		"{\"url\": \"https://x\", \"root\": \"r\"}}}",
		"$.identity.ca.subject: missing required key");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": \"t\", \"ca\": "
		"{\"url\": \"https://x\", \"root\": \"r\", \"subject\": \"s\", \"sans\": [\"\"]}}}",
		"$.identity.ca.sans[0]: expected a non-empty string");
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": \"t\", \"ca\": "
		"{\"url\": \"https://x\", \"root\": \"r\", \"subject\": \"s\", \"sans\": \"a\"}}}",
		"$.identity.ca.sans: expected a non-empty array of strings");
}

UNIT_TEST(tls_and_dataplane_refusals)
{
	REFUSED("{" ID ", \"tls\": [\"1.3\"]}", "$.tls: expected an object");
	REFUSED("{" ID ", \"tls\": {\"min_versoin\": 1}}", "$.tls.min_versoin: unknown key");
	REFUSED("{" ID ", \"tls\": {\"min_version\": 1.3}}",
		"$.tls.min_version: expected a string such as \"1.3\"");
	REFUSED("{" ID ", \"tls\": {\"max_version\": \"TLSv1.2\"}}",
		"$.tls.max_version: TLS 1.3 only: \"TLSv1.2\" is not supported (fedgate hands TLS "
		"1.3 record keys to the data plane; use \"1.3\")");
	REFUSED("{" ID ", \"tls\": {\"ciphers\": []}}",
		"$.tls.ciphers: expected a non-empty array of cipher names");
	REFUSED("{" ID ", \"tls\": {\"ciphers\": [1]}}", "$.tls.ciphers[0]: expected a string");
	REFUSED("{" ID ", \"tls\": {\"ciphers\": [\"AES-128-GCM\", \"AES-128-CBC\"]}}",
		"$.tls.ciphers[1]: unknown cipher (use AES-128-GCM, AES-256-GCM or "
		"CHACHA20-POLY1305)");
	REFUSED("{" ID ", \"tls\": {\"ciphers\": [\"AES-128-GCM\", \"TLS_AES_128_GCM_SHA256\"]}}",
		"$.tls.ciphers[1]: listed twice");
	REFUSED("{" ID ", \"tls\": {\"handshake_timeout_ms\": 99}}",
		"$.tls.handshake_timeout_ms: must be between 100 and 600000");
	REFUSED("{" ID ", \"dataplane\": {\"threads\": 2}}", "$.dataplane.threads: unknown key");
	REFUSED("{" ID ", \"dataplane\": {\"workers\": 65}}",
		"$.dataplane.workers: must be between 1 and 64");
	REFUSED("{" ID ", \"dataplane\": {\"workers\": 1e30}}",
		"$.dataplane.workers: must be between 1 and 64");
	REFUSED("{" ID ", \"dataplane\": {\"workers\": 1.5}}",
		"$.dataplane.workers: expected an integer");
	REFUSED("{" ID ", \"dataplane\": {\"workers\": true}}",
		"$.dataplane.workers: expected an integer");
	REFUSED("{" ID ", \"dataplane\": {\"offload\": \"Kernel\"}}",
		"$.dataplane.offload: expected \"auto\", \"kernel\" or \"userspace\", got \"Kernel\"");
	REFUSED("{" ID ", \"dataplane\": {\"kernel_tx\": \"sendfile\"}}",
		"$.dataplane.kernel_tx: expected \"copy\" or \"splice\", got \"sendfile\"");
	REFUSED("{" ID ", \"dataplane\": {\"kernel_tx\": true}}",
		"$.dataplane.kernel_tx: expected a string");
}

UNIT_TEST(tunnel_refusals)
{
	REFUSED("{" ID "}", "$.tunnels: missing required key");
	REFUSED("{" ID ", \"tunnels\": {}}", "$.tunnels: expected a non-empty array of tunnels");
	REFUSED("{" ID ", \"tunnels\": [\"t\"]}", "$.tunnels[0]: expected an object");
	REFUSED("{" ID ", \"tunnels\": [" TERM ", " TERM "]}",
		"$.tunnels[1]: tunnel name \"t\" is used twice");
	REFUSED("{" ID ", \"tunnels\": [{\"name\": \"t\"}]}",
		"$.tunnels[0].mode: missing required key");
	REFUSED("{" ID ", \"tunnels\": [{\"name\": \"t\", \"mode\": \"bogus\"}]}",
		"$.tunnels[0].mode: expected \"originate\" or \"terminate\", got \"bogus\"");
	REFUSED("{" ID ", \"tunnels\": [{\"name\": \"t\", \"mode\": \"terminate\"}]}",
		"$.tunnels[0].listen: missing required key");
	REFUSED("{" ID ", \"tunnels\": [{\"name\": \"t\", \"mode\": \"terminate\", \"listen\": 8}]}",
		"$.tunnels[0].listen: expected a string \"host:port\"");
	REFUSED(TUN("terminate", ""), "$.tunnels[0].upstream: missing required key");
	REFUSED(TUN("terminate", ", \"upstream\": \"a:1\", \"peer\": \"b:2\""),
		"$.tunnels[0].peer: \"peer\" belongs to originate tunnels; a terminate tunnel "
		"forwards to \"upstream\"");
	REFUSED(TUN("terminate", ", \"upstream\": \"a:1\", \"proxy_protocol\": \"v1\""),
		"$.tunnels[0].proxy_protocol: expected \"v2\" or \"none\", got \"v1\"");
	REFUSED(TUN("terminate", ", \"upstream\": \"a:1\", \"server_name\": \"x\""),
		"$.tunnels[0].server_name: \"server_name\" applies to originate tunnels only");
	REFUSED(TUN("originate", ""), "$.tunnels[0].peer: missing required key");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\""),
		"$.tunnels[0].server_name: missing required key");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", \"upstream\": 1"),
		"$.tunnels[0].upstream: \"upstream\" belongs to terminate tunnels; an originate "
		"tunnel dials \"peer\"");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", "
				 "\"proxy_protocol\": \"v2\""),
		"$.tunnels[0].proxy_protocol: \"proxy_protocol\" applies to terminate tunnels only");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\""),
		"$.tunnels[0].allow: missing required key (a tunnel admits no peer without rules)");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", \"allow\": {}"),
		"$.tunnels[0].allow: expected a non-empty array of rules");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", \"allow\": [\"x\"]"),
		"$.tunnels[0].allow[0]: expected an object");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", \"allow\": "
				 "[{\"dns\": \"d\"}, {}]"),
		"$.tunnels[0].allow[1]: an allow rule needs at least one of dns, uri, cn, root");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", \"allow\": "
				 "[{\"san\": \"d\"}]"),
		"$.tunnels[0].allow[0].san: unknown key");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", \"allow\": "
				 "[{\"dns\": [\"d\"]}]"),
		"$.tunnels[0].allow[0].dns: expected a string");
	REFUSED(TUN("originate", ", \"peer\": \"a:1\", \"server_name\": \"s\", \"allow\": "
				 "[{\"root\": \"sha256:abc\"}]"),
		"$.tunnels[0].allow[0].root: expected \"sha256:\" and a SHA-256 fingerprint (64 hex "
		"digits)");
}

UNIT_TEST(roots_refusals)
{
	REFUSED("{" ID ", " TUNNELS ", \"roots\": {}}", "$.roots: expected an array of root rules");
	REFUSED("{" ID ", " TUNNELS ", \"roots\": [{\"dns\": [\"a\"]}]}",
		"$.roots[0]: name the root with \"cn\" or \"sha256\" (or both)");
	REFUSED("{" ID ", " TUNNELS ", \"roots\": [{\"cn\": \"R\"}]}",
		"$.roots[0]: a root rule needs \"dns\" or \"uri\" patterns: the names this root may "
		"vouch for");
	REFUSED("{" ID ", " TUNNELS ", \"roots\": [{\"sha256\": \"12:34\", \"dns\": [\"a\"]}]}",
		"$.roots[0].sha256: expected a SHA-256 fingerprint: 64 hex digits");
	REFUSED("{" ID ", " TUNNELS ", \"roots\": [{\"cn\": \"R\", \"dns\": [\"a\"]}, "
		"{\"cn\": \"R\", \"uri\": [\"b\"]}]}",
		"$.roots[1]: the same root as $.roots[0]: one rule per root");
	REFUSED("{" ID ", " TUNNELS ", \"roots\": [{\"cn\": \"R\", \"leaf_cn\": []}]}",
		"$.roots[0].leaf_cn: expected a non-empty array of strings");
}

/* The checks met before a parser error stay, so the loader can put them first. */
UNIT_TEST(checks_before_an_error_are_kept)
{
	REFUSED("{" ID ", \"tunnels\": [" TERM ", {\"name\": \"t\"}]}",
		"$.tunnels[1].mode: missing required key");
	CHECK_EQ(checks.n, 5);
	REFUSED("{\"identity\": {\"cert\": \"c\", \"key\": \"k\", \"trust\": \"t\"}, \"tls\": 1}",
		"$.tls: expected an object");
	CHECK_EQ(checks.n, 3);
	REFUSED("{\"tls\": 1}", "$.identity: missing required key");
	CHECK_EQ(checks.n, 0);
}

/* ---- the loader ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int load(const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	fg_config_free(&cfg);
	memset(&err, 0, sizeof(err));
	return fg_config_load(p, &cfg, &err);
}

/* The loaded config @name was refused with "TMPDIR/@name: @msg" (@msg may hold one %s: TMPDIR). */
static void check_refused(int line, const char *name, int ret, const char *msg)
{
	char want[1024], fmt[512];

	snprintf(fmt, sizeof(fmt), "%%s/%s: %s", name, msg);
	snprintf(want, sizeof(want), fmt, tmpdir, tmpdir);
	if (ret >= 0 || strcmp(err.msg, want)) {
		fprintf(stderr, "    %s:%d: got %d \"%s\", expected \"%s\"\n", __FILE__, line, ret,
			err.msg, want);
		unit_failed_checks++;
	}
	CHECK(cfg.path == NULL && cfg.tunnels == NULL);
}

#define LOAD_REFUSED(name, text, want)                                                              \
	do {                                                                                       \
		write_file(name, text);                                                            \
		check_refused(__LINE__, name, load(name), want);                                    \
	} while (0)

UNIT_TEST(loader)
{
	const struct sockaddr_in *sin;
	char p[256];
	int ret;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	write_file("c.pem", "c");
	write_file("k.pem", "k");
	write_file("t.pem", "t");
	ret = load("nope.json");
	check_refused(__LINE__, "nope.json", ret, "$: cannot open: No such file or directory");
	CHECK_EQ(ret, -ENOENT);
	snprintf(p, sizeof(p), "%s/dir.json", tmpdir);
	CHECK_EQ(mkdir(p, 0700), 0);
	check_refused(__LINE__, "dir.json", load("dir.json"),
		      "$: not a regular file (a directory)");
	LOAD_REFUSED("a.json", "{\"tls\": 1}", "$.identity: missing required key");
	/* the key is missing, and so is tunnels after it: the file's first problem wins */
	LOAD_REFUSED("b.json",
		     "{\"identity\": {\"cert\": \"c.pem\", \"key\": \"gone.pem\", \"trust\": "
		     "\"t.pem\"}}",
		     "$.identity.key: cannot read %s/gone.pem: No such file or directory");
	/* a bad tunnel after a good address: the parser's error */
	LOAD_REFUSED("c.json", "{" ID ", \"tunnels\": [" TERM ", {}]}",
		     "$.tunnels[1].name: missing required key");
	/* a bad address, then a parser error: the address */
	LOAD_REFUSED("d.json",
		     "{" ID ", \"tunnels\": [{\"name\": \"t\", \"mode\": \"terminate\", "
		     "\"listen\": \"1.2.3.4:99999\"}]}",
		     "$.tunnels[0].listen: bad address \"1.2.3.4:99999\": port must be 0..65535");
	LOAD_REFUSED("e.json",
		     "{" ID ", \"tunnels\": [" TERM ", {\"name\": \"o\", \"mode\": \"originate\", "
		     "\"listen\": \"[::1]80\", \"peer\": \"127.0.0.1:0\"}]}",
		     "$.tunnels[1].listen: bad address \"[::1]80\": expected \"[ipv6]:port\"");
	LOAD_REFUSED("f.json",
		     "{" ID ", \"tunnels\": [" TERM ", {\"name\": \"o\", \"mode\": \"originate\", "
		     "\"listen\": \"127.0.0.1:0\", \"peer\": \"127.0.0.1:0\"}]}",
		     "$.tunnels[1].peer: bad address \"127.0.0.1:0\": port must be 1..65535");

	write_file("ok.json", "{" ID ", " TUNNELS "}");
	CHECK_EQ(load("ok.json"), 0);
	CHECK_STR(err.msg, "");
	snprintf(p, sizeof(p), "%s/ok.json", tmpdir);
	CHECK_STR(cfg.path, p);
	CHECK_STR(cfg.dir, tmpdir);
	snprintf(p, sizeof(p), "%s/c.pem", tmpdir);
	CHECK_STR(cfg.cert_file, p);
	CHECK_EQ(cfg.n_tunnels, 2);
	sin = (const struct sockaddr_in *)&cfg.tunnels[1].target.sa;
	CHECK_EQ(sin->sin_family, AF_INET);
	CHECK_EQ(ntohs(sin->sin_port), 8443);
	CHECK_EQ(cfg.tunnels[1].target.len, sizeof(*sin));
	CHECK_STR(cfg.tunnels[1].target.text, "127.0.0.1:8443");
	CHECK_STR(cfg.tunnels[0].listen.text, "127.0.0.1:0");
	fg_config_free(&cfg);

	for (const char *const *f = (const char *const[]){ "c.pem", "k.pem", "t.pem", "a.json",
							   "b.json", "c.json", "d.json", "e.json",
							   "f.json", "ok.json", NULL };
	     *f; f++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, *f);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/dir.json", tmpdir);
	rmdir(p);
	rmdir(tmpdir);
}

static void cleanup(void)
{
	fg_conf_checks_free(&checks);
	fg_config_free(&cfg);
}

UNIT_TEST(frees)
{
	cleanup();
	CHECK(cfg.path == NULL && checks.n == 0);
	fg_config_free(NULL);
	fg_conf_checks_free(NULL);
}

UNIT_MAIN("config", UNIT_CASE(full_config), UNIT_CASE(defaults_and_plain_identity),
	  UNIT_CASE(nul_in_text_is_refused_and_len_bounds_it), UNIT_CASE(json_refusals),
	  UNIT_CASE(identity_refusals), UNIT_CASE(tls_and_dataplane_refusals),
	  UNIT_CASE(tunnel_refusals), UNIT_CASE(roots_refusals),
	  UNIT_CASE(checks_before_an_error_are_kept), UNIT_CASE(loader), UNIT_CASE(frees))
