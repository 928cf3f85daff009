/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_HTTP_H
#define FEDGATE_CA_HTTP_H

/*
 * The CA server's HTTP/1.1 request parser. Pure: no I/O, no allocation; it
 * reads the bytes it is given and writes only its struct fg_http_req and the
 * struct fg_err. What it accepts is what the server has always served: a
 * request line "METHOD /path HTTP/1.1" (or 1.0), header names compared
 * case-insensitively, a head of at most FG_HTTP_MAX_HEAD bytes, and a body
 * framed by Content-Length alone (at most FG_HTTP_MAX_BODY bytes; requests
 * with Transfer-Encoding are refused, 411). Bytes after the body are never
 * looked at: the server answers one request per connection.
 */
#include "control/ca/http-t.h"
#include "fedgate/err-t.h"

void fg_http_req_init(struct fg_http_req *r);

/*
 * The pieces a request and a response share (the CA client checks its answers'
 * framing headers with them). fg_http_field_split() splits one header line,
 * @len bytes without its CRLF; "Name : value" and continuation lines (obs-fold)
 * are refused, not skipped (RFC 9112 5.1, 5.2): 0, or -EBADMSG with the reason
 * in *@why. fg_http_field_is() compares the name case-insensitively.
 * fg_http_length() reads a Content-Length value, 1*DIGIT: 0, -ERANGE past 64
 * bits, or -EINVAL.
 */
int fg_http_field_split(const char *line, size_t len, struct fg_http_field *f, const char **why);
int fg_http_field_is(const struct fg_http_field *f, const char *name);
int fg_http_length(const char *v, size_t n, unsigned long long *out);

/*
 * Reads the request in @buf[0..@len): everything received so far, each call
 * with the same bytes as the last one and perhaps more (the input may be
 * split anywhere). Returns
 *   0        the request is complete: its body is @buf + r->head_len,
 *            r->body_len bytes;
 *   -EAGAIN  more input is needed (r->head_len is set once the head is in and
 *            good, so a client that sent "Expect: 100-continue" can be told
 *            to go on);
 *   -EBADMSG the request is refused: @err->status is the HTTP status to
 *            answer (400, 411, 413, 431) and @err->msg says why.
 * After 0 or -EBADMSG the request is done with: the parser is not called again.
 */
int fg_http_req_parse(struct fg_http_req *r, const char *buf, size_t len, struct fg_err *err);

#endif
