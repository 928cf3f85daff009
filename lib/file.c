// SPDX-License-Identifier: MIT
/* Whole regular files in, never blocking on a FIFO: see file.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "fedgate/err.h"
#include "fedgate/file.h"

static const char *kind_of(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "not a plain file";
}

/* The descriptor of @path as a regular file (O_NONBLOCK: a FIFO opens at once), or -errno. */
static int open_regular(const char *path, struct fg_err *err)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fg_err_set(err, -errno, "cannot read %s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = fg_err_set(err, -errno, "cannot read %s: %s", path, strerror(errno));
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = fg_err_set(err, -EINVAL, "%s: not a regular file (%s)", path,
				 kind_of(st.st_mode));
		goto close_fd;
	}
	return fd;
close_fd:
	close(fd);
	return ret;
}

int fg_file_check(const char *path, struct fg_err *err)
{
	int fd = open_regular(path, err);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int fg_file_read(const char *path, size_t max, char **out, size_t *len, struct fg_err *err)
{
	size_t used = 0, cap = 4096;
	char *buf = NULL, *nb;
	int fd, ret = 0;
	ssize_t n;

	fd = open_regular(path, err);
	if (fd < 0)
		return fd;
	for (;;) {
		if (!buf || used + 1 >= cap) {
			cap = buf ? cap * 2 : cap;
			/* Not realloc: the old buffer may hold a key, and must be wiped. */
			nb = malloc(cap);
			if (!nb) {
				ret =
				    fg_err_set(err, -ENOMEM, "cannot read %s: out of memory", path);
				break;
			}
			if (buf) {
				memcpy(nb, buf, used);
				OPENSSL_cleanse(buf, used);
				free(buf);
			}
			buf = nb;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = fg_err_set(err, -errno, "cannot read %s: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			ret = fg_err_set(err, -EFBIG, "%s is larger than %zu bytes", path, max);
			break;
		}
	}
	close(fd);
	if (ret) {
		if (buf)
			OPENSSL_cleanse(buf, used);
		free(buf);
		return ret;
	}
	buf[used] = '\0';
	*out = buf;
	if (len)
		*len = used;
	return 0;
}
