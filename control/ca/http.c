// SPDX-License-Identifier: MIT
/*
 * HTTP/1.1 requests: see http.h. The head is parsed in one go once its blank
 * line is in, so a request is judged the same however its bytes arrive. What
 * is not request-specific (finding the end of a head, splitting a header
 * line, a Content-Length value) is kept apart, for a response parser to share.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "control/ca/http.h"
#include "fedgate/err.h"

static int refuse(struct fg_err *err, int status, const char *msg)
{
	fg_err_http(err, status, "%s", msg);
	return -EBADMSG;
}

static int bad_request_line(struct fg_err *err)
{
	return refuse(err, 400, "bad request line: expected 'METHOD /path HTTP/1.1'");
}

/* RFC 9110 5.6.2 tchar: what a header name is made of (no whitespace, no separators). */
static int is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * Looks for the blank line that ends a head of at most @max bytes in
 * @buf[0..@len), starting where the last call (*@scanned) stopped. Returns
 * the head's length with the blank line, 0 while it may still come, or
 * -EMSGSIZE once the head is known to be longer than @max.
 */
static long head_end(const char *buf, size_t len, size_t max, size_t *scanned)
{
	size_t lim = len < max ? len : max, from = *scanned > 3 ? *scanned - 3 : 0;
	const char *blank = lim > from ? memmem(buf + from, lim - from, "\r\n\r\n", 4) : NULL;

	if (blank)
		return (long)(blank - buf) + 4;
	if (len >= max)
		return -EMSGSIZE;
	*scanned = lim;
	return 0;
}

/*
 * "Name : value" is refused, not skipped: a proxy in front might take it for
 * the header it resembles. A continuation line starts with whitespace, so it
 * is refused the same way.
 */
int fg_http_field_split(const char *line, size_t len, struct fg_http_field *f, const char **why)
{
	const char *colon = memchr(line, ':', len), *end = line + len;
	size_t n = 0;

	if (!colon || memchr(line, '\0', len)) {
		*why = "malformed header line";
		return -EBADMSG;
	}
	while (line + n < colon && is_tchar((unsigned char)line[n]))
		n++;
	if (!n || line + n != colon) {
		*why = is_ows(line[n]) ? "whitespace between a header name and its colon"
				       : "malformed header name";
		return -EBADMSG;
	}
	f->name = line;
	f->name_len = n;
	for (f->value = colon + 1; f->value < end && is_ows(*f->value); f->value++)
		;
	while (end > f->value && is_ows(end[-1]))
		end--;
	f->value_len = (size_t)(end - f->value);
	return 0;
}

int fg_http_field_is(const struct fg_http_field *f, const char *name)
{
	return f->name_len == strlen(name) && !strncasecmp(f->name, name, f->name_len);
}

int fg_http_length(const char *v, size_t n, unsigned long long *out)
{
	unsigned long long x = 0;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		d = (unsigned)(v[i] - '0');
		if (x > (ULLONG_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

/* "METHOD /path HTTP/1.x" in [@p, @eol). Sets r->method and r->path only when it is good. */
static int request_line(struct fg_http_req *r, const char *p, const char *eol,
			struct fg_err *err)
{
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p)), *sp2;
	size_t mlen, plen;

	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp2)
		return bad_request_line(err);
	mlen = (size_t)(sp1 - p);
	plen = (size_t)(sp2 - sp1 - 1);
	if (!mlen || mlen >= sizeof(r->method) || plen >= sizeof(r->path) || sp1[1] != '/' ||
	    eol - sp2 - 1 != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.1", 8) && memcmp(sp2 + 1, "HTTP/1.0", 8)))
		return bad_request_line(err);
	for (size_t i = 0; i < mlen; i++)
		if (p[i] < 'A' || p[i] > 'Z')
			return bad_request_line(err);
	for (size_t i = 0; i < plen; i++) {
		unsigned char ch = (unsigned char)sp1[1 + i];

		if (ch <= 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
			return bad_request_line(err);
	}
	memcpy(r->method, p, mlen);
	r->method[mlen] = '\0';
	memcpy(r->path, sp1 + 1, plen);
	r->path[plen] = '\0';
	return 0;
}

/* The headers the server acts on; the first one refused ends the request. */
static int request_field(struct fg_http_req *r, const struct fg_http_field *f, int *have_len,
			 struct fg_err *err)
{
	unsigned long long n;

	if (fg_http_field_is(f, "Content-Length")) {
		/* a second one that disagrees leaves the framing in doubt */
		if (fg_http_length(f->value, f->value_len, &n) || (*have_len && n != r->body_len))
			return refuse(err, 400, "bad Content-Length");
		if (n > FG_HTTP_MAX_BODY) {
			fg_err_http(err, 413, "body too large: at most %d bytes", FG_HTTP_MAX_BODY);
			return -EBADMSG;
		}
		r->body_len = (size_t)n;
		*have_len = 1;
	} else if (fg_http_field_is(f, "Transfer-Encoding")) {
		return refuse(err, 411,
			      "Transfer-Encoding is not supported: send a Content-Length body");
	} else if (fg_http_field_is(f, "Expect")) {
		r->expect_continue =
			f->value_len == 12 && !strncasecmp(f->value, "100-continue", 12);
	}
	return 0;
}

/* The request line and headers in @buf[0..r->head_len), each line ended by CRLF. */
static int parse_head(struct fg_http_req *r, const char *buf, struct fg_err *err)
{
	/* after the last header's CRLF: every line in [buf, end) ends with one */
	const char *end = buf + r->head_len - 2, *p = buf, *eol;
	int have_len = 0, ret;

	eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	ret = request_line(r, p, eol, err);
	for (p = eol + 2; !ret && p < end; p = eol + 2) {
		struct fg_http_field f;
		const char *why;

		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		ret = fg_http_field_split(p, (size_t)(eol - p), &f, &why);
		if (ret)
			refuse(err, 400, why);
		else
			ret = request_field(r, &f, &have_len, err);
	}
	return ret;
}

void fg_http_req_init(struct fg_http_req *r)
{
	memset(r, 0, sizeof(*r));
}

int fg_http_req_parse(struct fg_http_req *r, const char *buf, size_t len, struct fg_err *err)
{
	long head;
	int ret;

	if (!r->head_len) {
		head = head_end(buf, len, FG_HTTP_MAX_HEAD, &r->scanned);
		if (head == -EMSGSIZE) {
			fg_err_http(err, 431, "request head larger than %d bytes",
				    FG_HTTP_MAX_HEAD);
			return -EBADMSG;
		}
		if (!head)
			return -EAGAIN;
		r->head_len = (size_t)head;
		ret = parse_head(r, buf, err);
		if (ret) {
			r->head_len = 0; /* called again, it would say the same */
			return ret;
		}
	}
	return len - r->head_len >= r->body_len ? 0 : -EAGAIN;
}
