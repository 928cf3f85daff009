/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ERR_T_H
#define FEDGATE_ERR_T_H

/*
 * The one error carrier: a function that fails returns a negative errno and,
 * where its caller passed one, says why in @msg (one line, for a log or a
 * terminal). @status is the HTTP status an HTTP peer answered or is to be
 * answered, 0 where none.
 */
struct fg_err {
	int status;
	char msg[8192]; /* config errors name a file, a JSON path and the offending value */
};

#endif
