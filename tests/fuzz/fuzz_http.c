// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the CA server's HTTP/1.1 request parser. The input is
 * the bytes a client sends. It is parsed whole, byte by byte and split once
 * (at a point the input itself picks), and the three must agree; whatever
 * the parser accepts must hold the invariants the server relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/ca/http.c"

struct outcome {
	int ret, status;
	struct fg_http_req r;
	char msg[128];
};

static void keep(struct outcome *o, int ret, const struct fg_http_req *r, const struct fg_err *e)
{
	o->ret = ret;
	o->status = e->status;
	o->r = *r;
	memcpy(o->msg, e->msg, sizeof(o->msg) - 1);
	o->msg[sizeof(o->msg) - 1] = '\0';
}

static void must_agree(const struct outcome *a, const struct outcome *b)
{
	if (a->ret != b->ret || a->status != b->status || strcmp(a->msg, b->msg) ||
	    strcmp(a->r.method, b->r.method) || strcmp(a->r.path, b->r.path))
		abort();
	if (!a->ret && (a->r.head_len != b->r.head_len || a->r.body_len != b->r.body_len ||
			a->r.expect_continue != b->r.expect_continue))
		abort();
}

static void check(const struct outcome *o, const char *buf, size_t len)
{
	if (o->ret == -EBADMSG) {
		if ((o->status != 400 && o->status != 411 && o->status != 413 &&
		     o->status != 431) ||
		    !o->msg[0])
			abort();
		return;
	}
	if (o->ret == -EAGAIN)
		return;
	if (o->ret || o->r.head_len < 4 || o->r.head_len > FG_HTTP_MAX_HEAD ||
	    o->r.body_len > FG_HTTP_MAX_BODY || o->r.head_len + o->r.body_len > len ||
	    memcmp(buf + o->r.head_len - 4, "\r\n\r\n", 4) || !o->r.method[0] ||
	    o->r.path[0] != '/')
		abort();
	for (const char *m = o->r.method; *m; m++)
		if (*m < 'A' || *m > 'Z')
			abort();
	for (const unsigned char *p = (const void *)o->r.path; *p; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct outcome whole, step, split;
	struct fg_http_req r;
	struct fg_err e;
	uint32_t h = 2166136261u; /* FNV-1a: where to split */
	int ret = -EAGAIN;

	memset(&e, 0, sizeof(e));
	fg_http_req_init(&r);
	keep(&whole, fg_http_req_parse(&r, buf, size, &e), &r, &e);
	check(&whole, buf, size);

	memset(&e, 0, sizeof(e));
	fg_http_req_init(&r);
	for (size_t k = 0; k <= size && ret == -EAGAIN; k++)
		ret = fg_http_req_parse(&r, buf, k, &e);
	keep(&step, ret, &r, &e);
	must_agree(&whole, &step);

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	memset(&e, 0, sizeof(e));
	fg_http_req_init(&r);
	ret = fg_http_req_parse(&r, buf, size ? h % size : 0, &e);
	if (ret == -EAGAIN)
		ret = fg_http_req_parse(&r, buf, size, &e);
	keep(&split, ret, &r, &e);
	must_agree(&whole, &split);
	return 0;
}
