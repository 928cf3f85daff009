/* SPDX-License-Identifier: MIT */
/*
 * fg_file_read / fg_file_check (lib/file.c): a regular file is read whole
 * and NUL-terminated; a FIFO (with no writer: an open(2) without O_NONBLOCK
 * would wait forever), a directory and a character device are refused at once
 * with a message naming the path; a file over the limit is -EFBIG and a
 * missing one -ENOENT, and nothing is handed out on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fedgate/err.h"
#include "fedgate/file.h"
#include "unit.h"

static char dir[] = "/tmp/fg-test-file-XXXXXX";

static void path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* @path (read with limit @max) must be refused with @ret and a message holding @path and @what;
 * nothing handed out. */
static void refused(const char *path, size_t max, int ret, const char *what)
{
	struct fg_err err = {0};
	char *out = (char *)"untouched";
	size_t len = 12345;

	CHECK_EQ(fg_file_read(path, max, &out, &len, &err), ret);
	CHECK(!strcmp(out, "untouched"));
	CHECK_EQ(len, 12345);
	CHECK(strstr(err.msg, path) != NULL);
	CHECK(strstr(err.msg, what) != NULL);
	if (!strstr(err.msg, what))
		fprintf(stderr, "    message: %s\n", err.msg);
	memset(&err, 0, sizeof(err));
	if (ret != -EFBIG) {
		CHECK_EQ(fg_file_check(path, &err), ret);
		CHECK(strstr(err.msg, what) != NULL);
	}
}

UNIT_TEST(regular_file_is_read_whole)
{
	char p[256], *out = NULL;
	struct fg_err err = {0};
	size_t len = 0;
	FILE *f;

	path_in(p, sizeof(p), "a.pem");
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	for (int i = 0; i < 3000; i++)
		fputs("0123456789", f);
	fclose(f);
	CHECK_EQ(fg_file_read(p, 1 << 20, &out, &len, &err), 0);
	CHECK_EQ(len, 30000);
	if (out)
		CHECK_EQ(out[len], 0);
	free(out);
	CHECK_EQ(fg_file_check(p, &err), 0);
	refused(p, 29999, -EFBIG, "larger than 29999 bytes");
	unlink(p);
}

UNIT_TEST(fifo_is_refused_at_once)
{
	char p[256];

	path_in(p, sizeof(p), "fifo");
	CHECK_EQ(mkfifo(p, 0600), 0);
	/* A blocking open would hang here: the unit test's own timeout is the check. */
	refused(p, 1 << 20, -EINVAL, "not a regular file (a FIFO)");
	unlink(p);
}

UNIT_TEST(directory_and_device_are_refused)
{
	refused(dir, 1 << 20, -EINVAL, "not a regular file (a directory)");
	refused("/dev/null", 1 << 20, -EINVAL, "not a regular file (a character device)");
}

UNIT_TEST(missing_file_is_enoent)
{
	char p[256];

	path_in(p, sizeof(p), "missing");
	refused(p, 1 << 20, -ENOENT, "No such file or directory");
}

int main(void)
{
	static const struct unit_case cases[] = {
	    UNIT_CASE(regular_file_is_read_whole),
	    UNIT_CASE(fifo_is_refused_at_once),
	    UNIT_CASE(directory_and_device_are_refused),
	    UNIT_CASE(missing_file_is_enoent),
	};
	int ret;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	ret = unit_run("file", cases, (int)(sizeof(cases) / sizeof(cases[0])));
	rmdir(dir);
	return ret;
}
