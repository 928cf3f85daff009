// SPDX-License-Identifier: MIT
/* Whole files in and out, atomically: see files.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "control/ca/files.h"
#include "fedgate/file.h"

int fg_pki_write_file(const char *path, const void *data, size_t len, mode_t mode,
		      struct fg_err *err)
{
	char tmp[4096];
	size_t off = 0;
	int fd, ret = 0;

	/*
	 * mkostemp() creates a fresh name with O_EXCL (mode 0600) in the target's
	 * directory: nothing planted there beforehand (a symlink at a guessable
	 * PATH.tmp.PID) is ever opened, and rename(2) stays within one file system.
	 */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return fg_err_set(err, -ENAMETOOLONG, "path too long: %s", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return fg_err_set(err, -errno, "cannot create a temporary file next to %s: %s",
				  path, strerror(errno));
	while (!ret && off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = n < 0 ? -errno : -EIO;
		else
			off += (size_t)n;
	}
	/* The final mode only once the data is complete: readers never see a partial file. */
	if (!ret && fchmod(fd, mode))
		ret = -errno;
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return fg_err_set(err, ret, "cannot write %s: %s", path, strerror(-ret));
	}
	return 0;
}

int fg_pki_read_file(const char *path, size_t max, char **out, size_t *len,
		     struct fg_err *err)
{
	return fg_file_read(path, max, out, len, err);
}
