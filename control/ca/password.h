/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_PASSWORD_H
#define FEDGATE_CA_PASSWORD_H

/* The password that encrypts the CA's keys at rest: from a file or the terminal. */
#include "control/ca/password-t.h"
#include "fedgate/err.h"

/*
 * Reads @pw once (later calls return 0 at once): the first line of @pw->file
 * without its line end, or the terminal's answer to @pw->prompt (twice with
 * @pw->confirm). An empty password is refused. Returns 0 or -errno with @err
 * naming the problem; on failure nothing of the password is kept.
 */
int fg_password_get(struct fg_password *pw, struct fg_err *err);
/* Wipes @pw's password (may be NULL); fg_password_get() would read it again. */
void fg_password_exit(struct fg_password *pw);
/*
 * pem_password_cb for OpenSSL; @u is a struct fg_password. Asks only when a
 * key is encrypted; a failure is printed to stderr (OpenSSL has no room for it).
 */
int fg_password_cb(char *buf, int size, int rwflag, void *u);

#endif
