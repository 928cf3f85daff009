// SPDX-License-Identifier: MIT
/* The password of the CA's keys: see password.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ui.h>

#include "control/ca/files.h"
#include "control/ca/password.h"

/*
 * Asks @prompt on the terminal with echo off and reads one line into @buf
 * (@size bytes, NUL-terminated), its length in @len. OpenSSL's UI restores
 * the terminal on ^C. Returns 0, -ENOTTY (no terminal), -E2BIG (longer than
 * @size - 1 bytes), -ECANCELED (interrupted) or -EIO.
 */
static int prompt_tty(const char *prompt, char *buf, size_t size, size_t *len)
{
	char text[256];
	int fd, r, ret = 0;

	/*
	 * Without a terminal OpenSSL's UI would read stdin and prompt on stderr;
	 * a password is typed by a person, or given with --password-file.
	 */
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -ENOTTY;
	close(fd);
	snprintf(text, sizeof(text), "%s: ", prompt);
	buf[0] = '\0';
	/* maxsize is in characters, without the NUL OpenSSL adds after them */
	r = EVP_read_pw_string_min(buf, 0, (int)size - 1, text, 0);
	if (r == -2)
		ret = -ECANCELED;
	else if (r && ERR_GET_REASON(ERR_peek_error()) == UI_R_RESULT_TOO_LARGE)
		ret = -E2BIG;
	else if (r)
		ret = -EIO;
	ERR_clear_error();
	if (ret)
		OPENSSL_cleanse(buf, size);
	*len = ret ? 0 : strlen(buf);
	return ret;
}

int fg_password_get(struct fg_password *pw, struct fg_err *err)
{
	char again[sizeof(pw->buf)];
	size_t len2 = 0;
	char *data = NULL;
	size_t len = 0;
	int ret;

	if (pw->have)
		return 0;
	if (pw->file) {
		ret = fg_pki_read_file(pw->file, sizeof(pw->buf) - 1, &data, &len, err);
		if (ret)
			return fg_err_set(err, ret, "cannot read the password file %s: %s",
					  pw->file,
					  ret == -EFBIG ? "longer than 255 bytes" : strerror(-ret));
		/* The first line, without its newline, as `step --password-file` takes it. */
		len = strcspn(data, "\r\n");
		memcpy(pw->buf, data, len);
		OPENSSL_cleanse(data, strlen(data));
		free(data);
	} else {
		ret = prompt_tty(pw->prompt ? pw->prompt : "Password", pw->buf, sizeof(pw->buf),
				 &len);
		if (ret == -ENOTTY)
			return fg_err_set(err, ret,
					  "a password is needed and there is no terminal to ask "
					  "on: use --password-file FILE");
		if (ret)
			return fg_err_set(err, ret, "cannot read the password: %s", strerror(-ret));
		if (pw->confirm) {
			ret = prompt_tty("Confirm the password", again, sizeof(again), &len2);
			if (!ret && (len2 != len || memcmp(again, pw->buf, len)))
				ret = fg_err_set(err, -EINVAL, "the passwords do not match");
			else if (ret)
				fg_err_set(err, ret, "cannot read the password: %s",
					   strerror(-ret));
			OPENSSL_cleanse(again, sizeof(again));
			if (ret)
				goto wipe;
		}
	}
	pw->buf[len] = '\0';
	pw->len = len;
	if (!len) {
		ret = fg_err_set(err, -EINVAL, "the password is empty%s%s",
				 pw->file ? " in " : "", pw->file ? pw->file : "");
		goto wipe;
	}
	pw->have = 1;
	return 0;
wipe:
	OPENSSL_cleanse(pw->buf, sizeof(pw->buf));
	return ret;
}

void fg_password_exit(struct fg_password *pw)
{
	if (!pw)
		return;
	OPENSSL_cleanse(pw->buf, sizeof(pw->buf));
	pw->len = 0;
	pw->have = 0;
}

int fg_password_cb(char *buf, int size, int rwflag, void *u)
{
	struct fg_password *pw = u;
	struct fg_err err = { 0 };

	(void)rwflag;
	if (!pw || fg_password_get(pw, &err)) {
		if (pw && err.msg[0])
			fprintf(stderr, "fedgate: %s\n", err.msg);
		return -1;
	}
	if ((int)pw->len > size)
		return -1;
	memcpy(buf, pw->buf, pw->len);
	return (int)pw->len;
}
