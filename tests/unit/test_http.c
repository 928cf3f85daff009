/* SPDX-License-Identifier: MIT */
/*
 * The CA server's HTTP/1.1 request parser (control/ca/http.c): requests as
 * curl, step (Go's net/http) and fedgate's own client send them, fed whole
 * and split at every byte; the limits on the head, the request line and the
 * body; and each malformed input with the status and message it is answered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ca/http.h"
#include "fedgate/err-t.h"
#include "unit.h"

#define CURL_GET                                                                                   \
	"GET /health HTTP/1.1\r\nHost: 127.0.0.1:40027\r\nUser-Agent: curl/7.88.1\r\n"             \
	"Accept: */*\r\n\r\n"
#define SIGN_BODY                                                                                  \
	"{\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB...\\n-----END CERTIFICATE "        \
	"REQUEST-----\\n\",\"ott\":\"eyJhbGciOiJFUzI1NiJ9.e30.sig\"}"
#define CURL_POST                                                                                  \
	"POST /1.0/sign HTTP/1.1\r\nHost: 127.0.0.1:60303\r\nUser-Agent: curl/7.88.1\r\n"          \
	"Accept: */*\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"                \
	"Content-Length: 128\r\n\r\n" SIGN_BODY
#define STEP_POST                                                                                  \
	"POST /1.0/sign HTTP/1.1\r\nHost: ca.internal:9000\r\n"                                    \
	"User-Agent: Smallstep CLI/0.25.2 (linux/amd64)\r\nContent-Length: 128\r\n"                \
	"Content-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n" SIGN_BODY
#define FEDGATE_RENEW                                                                              \
	"POST /1.0/renew HTTP/1.1\r\nHost: ca.internal:9000\r\nUser-Agent: fedgate/0.1\r\n"        \
	"Accept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

struct result {
	int ret, status;
	char msg[256];
	struct fg_http_req r;
};

/* Feeds @len bytes of @in in one call, after a first call with @split of them if nonzero. */
static void feed(const char *in, size_t len, size_t split, struct result *out)
{
	struct fg_err err = { 0 };

	memset(out, 0, sizeof(*out));
	fg_http_req_init(&out->r);
	if (split) {
		out->ret = fg_http_req_parse(&out->r, in, split, &err);
		if (out->ret != -EAGAIN)
			goto done;
	}
	out->ret = fg_http_req_parse(&out->r, in, len, &err);
done:
	out->status = err.status;
	snprintf(out->msg, sizeof(out->msg), "%.200s", err.msg);
}

static int same(const struct result *a, const struct result *b)
{
	return a->ret == b->ret && a->status == b->status && !strcmp(a->msg, b->msg) &&
	       !strcmp(a->r.method, b->r.method) && !strcmp(a->r.path, b->r.path) &&
	       a->r.head_len == b->r.head_len && a->r.body_len == b->r.body_len &&
	       a->r.expect_continue == b->r.expect_continue;
}

/* @in parses to @ret (and @status, a message containing @words) however it is split. */
static void expect_split(const char *in, size_t len, int ret, int status, const char *words)
{
	struct result whole, part;

	feed(in, len, 0, &whole);
	CHECK_EQ(whole.ret, ret);
	CHECK_EQ(whole.status, status);
	if (words && !strstr(whole.msg, words)) {
		fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", whole.msg, words);
		unit_failed_checks++;
	}
	for (size_t k = 1; k < len; k++) {
		feed(in, len, k, &part);
		if (!same(&whole, &part)) {
			fprintf(stderr, "    split at %zu of %zu: %d \"%s\", whole: %d \"%s\"\n", k,
				len, part.ret, part.msg, whole.ret, whole.msg);
			unit_failed_checks++;
			return;
		}
	}
}

/* Byte by byte: "need more" up to the last byte of the body, then complete. */
static void expect_byte_by_byte(const char *in, size_t len)
{
	struct fg_http_req r;
	struct fg_err err = { 0 };

	fg_http_req_init(&r);
	for (size_t k = 0; k < len; k++)
		if (fg_http_req_parse(&r, in, k, &err) != -EAGAIN) {
			fprintf(stderr, "    byte %zu of %zu: not -EAGAIN\n", k, len);
			unit_failed_checks++;
			return;
		}
	CHECK_EQ(fg_http_req_parse(&r, in, len, &err), 0);
	CHECK_EQ(r.head_len + r.body_len, len);
}

#define S(lit) lit, sizeof(lit) - 1

UNIT_TEST(real_requests_whole_and_split_everywhere)
{
	static const struct {
		const char *in;
		size_t len;
		const char *method, *path;
		size_t body;
		int expect;
	} cases[] = {
		{ S(CURL_GET), "GET", "/health", 0, 0 },
		{ S(CURL_POST), "POST", "/1.0/sign", 128, 1 },
		{ S(STEP_POST), "POST", "/1.0/sign", 128, 0 },
		{ S(FEDGATE_RENEW), "POST", "/1.0/renew", 0, 0 },
		{ S("HEAD /roots.pem HTTP/1.0\r\n\r\n"), "HEAD", "/roots.pem", 0, 0 },
	};
	struct result res;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		feed(cases[i].in, cases[i].len, 0, &res);
		CHECK_EQ(res.ret, 0);
		CHECK(!strcmp(res.r.method, cases[i].method));
		CHECK(!strcmp(res.r.path, cases[i].path));
		CHECK_EQ(res.r.body_len, cases[i].body);
		CHECK_EQ(res.r.head_len, cases[i].len - cases[i].body);
		CHECK_EQ(res.r.expect_continue, cases[i].expect);
		expect_split(cases[i].in, cases[i].len, 0, 0, NULL);
		expect_byte_by_byte(cases[i].in, cases[i].len);
	}
	/* the body is where head_len says */
	feed(S(STEP_POST), 0, &res);
	CHECK_MEM(STEP_POST + res.r.head_len, SIGN_BODY, sizeof(SIGN_BODY) - 1);
}

UNIT_TEST(head_in_before_body_says_need_more_with_expect_continue)
{
	static const char in[] = CURL_POST;
	size_t head = sizeof(in) - 1 - 128;
	struct fg_http_req r;
	struct fg_err err = { 0 };

	fg_http_req_init(&r);
	CHECK_EQ(fg_http_req_parse(&r, in, head - 1, &err), -EAGAIN);
	CHECK_EQ(r.head_len, 0);
	CHECK_EQ(fg_http_req_parse(&r, in, head, &err), -EAGAIN);
	CHECK_EQ(r.head_len, head);
	CHECK_EQ(r.expect_continue, 1);
	CHECK_EQ(fg_http_req_parse(&r, in, head + 127, &err), -EAGAIN);
	CHECK_EQ(fg_http_req_parse(&r, in, head + 128, &err), 0);
}

UNIT_TEST(what_follows_the_body_is_not_looked_at)
{
	struct result res;

	feed(S("POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGARBAGE\r\n\r\n\x01"), 0, &res);
	CHECK_EQ(res.ret, 0);
	CHECK_EQ(res.r.body_len, 2);
}

UNIT_TEST(header_names_are_case_insensitive_values_trimmed)
{
	struct result res;

	feed(S("POST /x HTTP/1.1\r\ncontent-LENGTH:3\r\nEXPECT: 100-Continue \r\n\r\nabc"), 0,
	     &res);
	CHECK_EQ(res.ret, 0);
	CHECK_EQ(res.r.body_len, 3);
	CHECK_EQ(res.r.expect_continue, 1);
	feed(S("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0 \t\r\n\r\n"), 0, &res);
	CHECK_EQ(res.ret, 0);
	feed(S("POST /x HTTP/1.1\r\nContent-Length: \t 00003\r\n\r\nabc"), 0, &res);
	CHECK_EQ(res.ret, 0);
	CHECK_EQ(res.r.body_len, 3);
	/* the last Expect counts; other expectations are not 100-continue */
	feed(S("POST /x HTTP/1.1\r\nExpect: 100-continue\r\nExpect: x\r\n"
	       "Content-Length: 1\r\n\r\n"),
	     0, &res);
	CHECK_EQ(res.ret, -EAGAIN);
	CHECK_EQ(res.r.expect_continue, 0);
	/* a name that only starts like one that matters is another header */
	feed(S("GET / HTTP/1.1\r\nContent-Lengthy: 9\r\nTransfer-Encodings: x\r\n\r\n"), 0, &res);
	CHECK_EQ(res.ret, 0);
	CHECK_EQ(res.r.body_len, 0);
}

/* Builds "GET /health HTTP/1.1\r\nX: aaa...\r\n\r\n" of exactly @total bytes into @buf. */
static size_t head_of(char *buf, size_t total)
{
	static const char start[] = "GET /health HTTP/1.1\r\nX: ";
	size_t n = sizeof(start) - 1;

	memcpy(buf, start, n);
	memset(buf + n, 'a', total - n - 4);
	memcpy(buf + total - 4, "\r\n\r\n", 4);
	return total;
}

UNIT_TEST(head_limit_16384_bytes)
{
	static char buf[FG_HTTP_MAX_HEAD + 64];
	struct fg_http_req r;
	struct fg_err err = { 0 };
	struct result res;

	feed(buf, head_of(buf, FG_HTTP_MAX_HEAD), 0, &res);
	CHECK_EQ(res.ret, 0);
	CHECK_EQ(res.r.head_len, FG_HTTP_MAX_HEAD);
	feed(buf, head_of(buf, FG_HTTP_MAX_HEAD + 1), 0, &res);
	CHECK_EQ(res.ret, -EBADMSG);
	CHECK_EQ(res.status, 431);
	CHECK(!strcmp(res.msg, "request head larger than 16384 bytes"));
	CHECK(!res.r.method[0] && !res.r.path[0]); /* logged as "-" */
	/* without its blank line: need more until the head cannot fit any more */
	fg_http_req_init(&r);
	memset(buf, 'a', sizeof(buf));
	CHECK_EQ(fg_http_req_parse(&r, buf, FG_HTTP_MAX_HEAD - 1, &err), -EAGAIN);
	CHECK_EQ(fg_http_req_parse(&r, buf, FG_HTTP_MAX_HEAD, &err), -EBADMSG);
	CHECK_EQ(err.status, 431);
	/* a blank line split across two reads, in the last bytes allowed */
	head_of(buf, FG_HTTP_MAX_HEAD);
	fg_http_req_init(&r);
	CHECK_EQ(fg_http_req_parse(&r, buf, FG_HTTP_MAX_HEAD - 2, &err), -EAGAIN);
	CHECK_EQ(fg_http_req_parse(&r, buf, FG_HTTP_MAX_HEAD, &err), 0);
}

UNIT_TEST(request_line_limits)
{
	static char buf[FG_HTTP_MAX_PATH + 64];
	struct result res;
	int n;

	feed(S("ABCDEFGHIJKLMNO / HTTP/1.1\r\n\r\n"), 0, &res); /* 15 letters */
	CHECK_EQ(res.ret, 0);
	feed(S("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n"), 0, &res);
	CHECK_EQ(res.status, 400);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'p', FG_HTTP_MAX_PATH - 2);
	n = (int)strlen(buf);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, " HTTP/1.1\r\n\r\n");
	feed(buf, (size_t)n, 0, &res);
	CHECK_EQ(res.ret, 0);
	CHECK_EQ(strlen(res.r.path), FG_HTTP_MAX_PATH - 1);
	memmove(buf + 6, buf + 5, (size_t)n - 5); /* one more 'p' */
	feed(buf, (size_t)n + 1, 0, &res);
	CHECK_EQ(res.status, 400);
	CHECK(!res.r.path[0]);
}

UNIT_TEST(content_length_limits)
{
	struct result res;

	feed(S("POST /x HTTP/1.1\r\nContent-Length: 65536\r\n\r\n"), 0, &res);
	CHECK_EQ(res.ret, -EAGAIN);
	CHECK_EQ(res.r.body_len, 65536);
	feed(S("POST /x HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"), 0, &res);
	CHECK_EQ(res.ret, -EBADMSG);
	CHECK_EQ(res.status, 413);
	CHECK(!strcmp(res.msg, "body too large: at most 65536 bytes"));
	/* logged with what was read of the request */
	CHECK(!strcmp(res.r.method, "POST") && !strcmp(res.r.path, "/x"));
	feed(S("POST /x HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"), 0, &res);
	CHECK_EQ(res.status, 413);
	feed(S("POST /x HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n"), 0, &res);
	CHECK_EQ(res.status, 400);
}

UNIT_TEST(malformed_requests_get_their_status_and_message)
{
	static const struct {
		const char *in;
		size_t len;
		int status;
		const char *msg;
	} cases[] = {
#define BAD_LINE "bad request line: expected 'METHOD /path HTTP/1.1'"
		{ S("BLAH\r\n\r\n"), 400, BAD_LINE },
		{ S("\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /x HTTP/2.0\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /x HTTP/1.1 \r\n\r\n"), 400, BAD_LINE },
		{ S("GET /x  HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET  /x HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S(" /x HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("get /x HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET x HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET http://a/x HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /a\"b HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /a\\b HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /a\x7f HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /a\tb HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /a\0b HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GE\0 /a HTTP/1.1\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /x HTTP/1.1\nHost: x\r\n\r\n"), 400, BAD_LINE },
		{ S("GET /x HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400, "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: -5\r\n\r\n"), 400, "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: 5x\r\n\r\n"), 400, "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), 400, "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), 400, "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400, "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"), 400, "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"), 400,
		  "bad Content-Length" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400,
		  "bad Content-Length" },
		{ S("POST /sign HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411,
		  "Transfer-Encoding is not supported: send a Content-Length body" },
		{ S("POST /x HTTP/1.1\r\nContent-Length: 3\r\ntransfer-encoding: gzip\r\n\r\nabc"),
		  411, "Transfer-Encoding" },
		{ S("POST /x HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n"), 411, "Transfer-Encoding" },
		{ S("GET /x HTTP/1.1\r\nContent-Length : 0\r\n\r\n"), 400,
		  "whitespace between a header name and its colon" },
		{ S("GET /x HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n"), 400, "colon" },
		{ S("GET /x HTTP/1.1\r\nX: a\r\n folded: b\r\n\r\n"), 400, "colon" },
		{ S("GET /x HTTP/1.1\r\nX: a\r\n\tfolded\r\n\r\n"), 400, "malformed header line" },
		{ S("GET /x HTTP/1.1\r\nno colon here\r\n\r\n"), 400, "malformed header line" },
		{ S("GET /x HTTP/1.1\r\nX: a\0b\r\n\r\n"), 400, "malformed header line" },
		{ S("GET /x HTTP/1.1\r\n: x\r\n\r\n"), 400, "malformed header name" },
		{ S("GET /x HTTP/1.1\r\nX(y): z\r\n\r\n"), 400, "malformed header name" },
		{ S("GET /x HTTP/1.1\r\nX\x80: z\r\n\r\n"), 400, "malformed header name" },
		/* the first refusal in the order of the lines is the answer */
		{ S("GET /x HTTP/1.1\r\nTransfer-Encoding: x\r\nContent-Length: 99999999\r\n\r\n"),
		  411, "Transfer-Encoding" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: 99999999\r\nTransfer-Encoding: x\r\n\r\n"),
		  413, "too large" },
		{ S("GET /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 99999999\r\n\r\n"),
		  400, "bad Content-Length" },
#undef BAD_LINE
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result res;

		feed(cases[i].in, cases[i].len, 0, &res);
		if (res.ret != -EBADMSG || res.status != cases[i].status ||
		    !strstr(res.msg, cases[i].msg)) {
			fprintf(stderr, "    case %zu: %d %d \"%s\", expected %d \"%s\"\n", i,
				res.ret, res.status, res.msg, cases[i].status, cases[i].msg);
			unit_failed_checks++;
		}
		/* a bad request line is logged as "-", a bad header with the request's name */
		CHECK_EQ(!res.r.method[0], !strncmp(res.msg, "bad request line", 16));
		expect_split(cases[i].in, cases[i].len, -EBADMSG, cases[i].status, NULL);
	}
}

UNIT_TEST(same_content_length_twice_is_one_body)
{
	struct result res;

	/* As before the parser: a repeat that agrees frames the body the same way. */
	feed(S("POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nab"), 0, &res);
	CHECK_EQ(res.ret, 0);
	CHECK_EQ(res.r.body_len, 2);
}

UNIT_TEST(a_refusal_is_the_same_when_asked_again)
{
	static const char in[] = "GET /x HTTP/1.1\r\nContent-Length: x\r\n\r\n";
	struct fg_http_req r;
	struct fg_err err = { 0 };

	fg_http_req_init(&r);
	CHECK_EQ(fg_http_req_parse(&r, in, sizeof(in) - 1, &err), -EBADMSG);
	memset(&err, 0, sizeof(err));
	CHECK_EQ(fg_http_req_parse(&r, in, sizeof(in) - 1, &err), -EBADMSG);
	CHECK_EQ(err.status, 400);
}

/* The pieces the CA client shares to check its answers' framing headers. */
UNIT_TEST(field_split_and_length_are_shared_with_responses)
{
	struct fg_http_field f;
	unsigned long long n = 0;
	const char *why = NULL;

	CHECK_EQ(fg_http_field_split("Content-Length: \t 42 ", 21, &f, &why), 0);
	CHECK(fg_http_field_is(&f, "content-length"));
	CHECK(!fg_http_field_is(&f, "Content-Lengt"));
	CHECK_EQ(f.value_len, 2);
	CHECK_EQ(fg_http_length(f.value, f.value_len, &n), 0);
	CHECK_EQ(n, 42);
	CHECK_EQ(fg_http_field_split("Content-Length : 1", 18, &f, &why), -EBADMSG);
	CHECK(why && strstr(why, "whitespace between a header name and its colon"));
	CHECK_EQ(fg_http_field_split(" folded", 7, &f, &why), -EBADMSG);
	CHECK_EQ(fg_http_field_split("no colon here", 13, &f, &why), -EBADMSG);
	CHECK(why && !strcmp(why, "malformed header line"));
	CHECK_EQ(fg_http_field_split("A\0B: c", 7, &f, &why), -EBADMSG);
	CHECK_EQ(fg_http_length("5x", 2, &n), -EINVAL);
	CHECK_EQ(fg_http_length("", 0, &n), -EINVAL);
	CHECK_EQ(fg_http_length("-1", 2, &n), -EINVAL);
	CHECK_EQ(fg_http_length("18446744073709551615", 20, &n), 0);
	CHECK_EQ(fg_http_length("18446744073709551616", 20, &n), -ERANGE);
}

UNIT_MAIN("http", UNIT_CASE(real_requests_whole_and_split_everywhere),
	  UNIT_CASE(field_split_and_length_are_shared_with_responses),
	  UNIT_CASE(head_in_before_body_says_need_more_with_expect_continue),
	  UNIT_CASE(what_follows_the_body_is_not_looked_at),
	  UNIT_CASE(header_names_are_case_insensitive_values_trimmed),
	  UNIT_CASE(head_limit_16384_bytes), UNIT_CASE(request_line_limits),
	  UNIT_CASE(content_length_limits),
	  UNIT_CASE(malformed_requests_get_their_status_and_message),
	  UNIT_CASE(same_content_length_twice_is_one_body),
	  UNIT_CASE(a_refusal_is_the_same_when_asked_again))
