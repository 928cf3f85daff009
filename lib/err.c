// SPDX-License-Identifier: MIT
/* The error carrier: see err-t.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "fedgate/err.h"

static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void vset(struct fg_err *err, const char *fmt, va_list ap)
{
	if (!err)
		return;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	one_line(err->msg);
}

int fg_err_set(struct fg_err *err, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(err, fmt, ap);
	va_end(ap);
	return ret;
}

int fg_err_http(struct fg_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(err, fmt, ap);
	va_end(ap);
	if (err)
		err->status = status;
	return -EACCES;
}

void fg_err_ssl(struct fg_err *err)
{
	unsigned long e = ERR_get_error();
	size_t n;

	ERR_clear_error();
	if (!err || !e)
		return;
	n = strlen(err->msg);
	if (n + 3 >= sizeof(err->msg))
		return;
	memcpy(err->msg + n, ": ", 3);
	ERR_error_string_n(e, err->msg + n + 2, sizeof(err->msg) - n - 2);
	one_line(err->msg);
}
