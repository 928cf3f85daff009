/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_PASSWORD_T_H
#define FEDGATE_CA_PASSWORD_T_H

#include <stddef.h>

/*
 * Where a password comes from: the first line of @file, or a prompt on the
 * terminal (/dev/tty) when @file is NULL. Read once, on first use, then kept
 * (and wiped by fg_password_exit()).
 */
struct fg_password {
	const char *file;
	const char *prompt; /* e.g. "Password for the CA keys" */
	int confirm;	    /* prompt twice (when creating keys) */
	int have;
	char buf[256];
	size_t len;
};

#endif
