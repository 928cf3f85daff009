/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_HTTP_T_H
#define FEDGATE_CA_HTTP_T_H

#include <stddef.h>

#define FG_HTTP_MAX_HEAD 16384 /* the request line and the headers, with the blank line */
#define FG_HTTP_MAX_BODY 65536
#define FG_HTTP_MAX_METHOD 16  /* buffer sizes, with the NUL */
#define FG_HTTP_MAX_PATH 2048

/* One "Name: value" header line: spans into the head, the value without the whitespace around. */
struct fg_http_field {
	const char *name, *value;
	size_t name_len, value_len;
};

/*
 * One HTTP/1.1 request as fg_http_req_parse() reads it. Zeroed (or
 * fg_http_req_init()) before the first byte; the parser keeps its place here.
 */
struct fg_http_req {
	/* "" until the request line is known to be good: the log names what it can */
	char method[FG_HTTP_MAX_METHOD];
	char path[FG_HTTP_MAX_PATH];
	size_t head_len;     /* bytes up to and with the blank line; 0 until it came */
	size_t body_len;     /* Content-Length; 0 without one */
	int expect_continue; /* "Expect: 100-continue" (the last Expect header) */
	size_t scanned;	     /* bytes already searched for the blank line */
};

#endif
