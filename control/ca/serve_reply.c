// SPDX-License-Identifier: MIT
/* The CA server's answers: see serve.h. Every one ends its connection ("Connection: close"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "control/ca/serve.h"
#include "fedgate/log.h"

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* Makes @out (malloc'd, @len bytes) what @c writes next; then it reads on if @then_read. */
static void queue(struct fg_ca_conn *c, char *out, size_t len, int then_read)
{
	free(c->out);
	c->out = out;
	c->out_len = len;
	c->out_off = 0;
	c->then_read = then_read;
	c->st = FG_CA_WRITE;
}

int fg_ca_reply(struct fg_ca_conn *c, int status, const char *ctype, const char *body,
		int drain)
{
	size_t blen = strlen(body);
	int head = !strcmp(c->http.method, "HEAD");
	char *out;
	int n;

	n = asprintf(&out,
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		     status, reason(status), ctype, blen, head ? "" : body);
	if (n < 0)
		return -ENOMEM;
	queue(c, out, (size_t)n, 0);
	c->then_drain = drain;
	return 0;
}

int fg_ca_reply_error(struct fg_ca_conn *c, int status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	char *body = NULL;
	int ret = -ENOMEM;

	fg_warn("CA: %s %s from %s: %d %s", c->http.method[0] ? c->http.method : "-",
		c->http.path[0] ? c->http.path : "-", c->peer, status, msg);
	if (o && cJSON_AddNumberToObject(o, "status", status) &&
	    cJSON_AddStringToObject(o, "message", msg))
		body = cJSON_PrintUnformatted(o);
	if (body)
		ret = fg_ca_reply(c, status, "application/json", body, 1);
	cJSON_free(body);
	cJSON_Delete(o);
	return ret;
}

int fg_ca_reply_continue(struct fg_ca_conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	char *out = strdup(cont);

	if (!out)
		return -ENOMEM;
	queue(c, out, sizeof(cont) - 1, 1);
	return 0;
}
