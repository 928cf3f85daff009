// SPDX-License-Identifier: MIT
/*
 * The cgroup2 mount and cgroup directories (contract: bpf/cgroup.h). Checked
 * by filesystem magic, not by name: a tmpfs at /sys/fs/cgroup (cgroup v1
 * hosts) is not cgroup2.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "bpf/cgroup.h"

static const char *const roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};

/* 0 if @path is on cgroup2, -EMEDIUMTYPE if not, or statfs's negative errno. */
static int on_cgroup2(const char *path)
{
	struct statfs fs;

	if (statfs(path, &fs) < 0)
		return -errno;
	return fs.f_type == CGROUP2_SUPER_MAGIC ? 0 : -EMEDIUMTYPE;
}

static int copy_out(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s%s%s", a, *b ? "/" : "", b);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int fg_cgroup2_root(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		if (on_cgroup2(roots[i]) == 0)
			return copy_out(buf, len, roots[i], "");
	return -ENOENT;
}

int fg_cgroup2_resolve(const char *path, char *buf, size_t len)
{
	struct stat st;
	int ret = 0;

	if (path[0] == '/') {
		ret = copy_out(buf, len, path, "");
	} else {
		char root[256];

		ret = fg_cgroup2_root(root, sizeof(root));
		if (ret == 0)
			ret = copy_out(buf, len, root, path);
	}
	if (ret)
		goto out;
	if (stat(buf, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		ret = -ENOTDIR;
		goto out;
	}
	ret = on_cgroup2(buf);
out:
	return ret;
}

const char *fg_cgroup2_strerror(int err)
{
	switch (err) {
	case -ENOENT:
		return "no such cgroup (or no cgroup2 mount at /sys/fs/cgroup[/unified])";
	case -ENOTDIR:
		return "not a directory";
	case -EMEDIUMTYPE:
		return "not on a cgroup v2 filesystem";
	case -ENAMETOOLONG:
		return "path too long";
	}
	return strerror(-err);
}
