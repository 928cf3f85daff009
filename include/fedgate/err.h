/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ERR_H
#define FEDGATE_ERR_H

#include "fedgate/err-t.h"

/*
 * Formats @fmt into @err->msg, replacing control characters (the text may
 * come from a file or a peer) so that it stays one line, and returns @ret (a
 * negative errno). @err may be NULL.
 */
int fg_err_set(struct fg_err *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like fg_err_set(), also sets @err->status to the HTTP @status; returns -EACCES. */
int fg_err_http(struct fg_err *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends the first queued OpenSSL error (clearing the queue) to @err->msg after ": ". */
void fg_err_ssl(struct fg_err *err);

#endif
