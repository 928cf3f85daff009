// SPDX-License-Identifier: MIT
/*
 * Loading the config: the file read, the pure parser (config_parse.c) run on
 * it, then the checks it left (files readable, addresses resolved) in order.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/cgroup.h"
#include "control/config.h"
#include "control/file_poll.h"
#include "fedgate/addr.h"
#include "fedgate/err.h"
#include "fedgate/file.h"

#define MAX_CONFIG_BYTES (1 << 20)

/*
 * Reads the whole file (fg_file_read: a FIFO or a directory there is refused
 * at once, a hung mount after FG_FILE_DEADLINE_MS); returns 0 or -errno with
 * @err set.
 */
static int slurp(const char *path, char **out, size_t *len, struct fg_err *err)
{
	struct fg_err ferr = {0};
	size_t plen = strlen(path);
	const char *why = ferr.msg;
	int ret;

	ret = fg_file_reachable(path, &ferr);
	if (!ret)
		ret = fg_file_read(path, MAX_CONFIG_BYTES, out, len, &ferr);
	if (ret == -EFBIG)
		return fg_conf_fail(err, path, "$", "larger than 1 MiB");
	if (ret == -EINVAL || ret == -ETIMEDOUT) {
		/* "PATH: not a regular file (a FIFO)": the message names the path already. */
		if (!strncmp(why, path, plen) && !strncmp(why + plen, ": ", 2))
			why += plen + 2;
		return fg_conf_fail(err, path, "$", "%s", why);
	}
	if (ret) {
		fg_conf_fail(err, path, "$", "cannot open: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

/*
 * $.capture.cgroup is a cgroup v2 directory: not one of the parser's checks
 * (those each carry a file or an address), so it comes after them.
 */
static int check_cgroup(const struct fg_config *cfg, struct fg_err *err)
{
	char dir[PATH_MAX];
	int ret;

	if (!cfg->capture.cgroup)
		return 0;
	ret = fg_cgroup2_resolve(cfg->capture.cgroup, dir, sizeof(dir));
	if (ret)
		return fg_conf_fail(err, cfg->path, "$.capture.cgroup", "cgroup \"%s\": %s",
				    cfg->capture.cgroup, fg_cgroup2_strerror(ret));
	return 0;
}

/* One check the parser left; 0, -ENOMEM, or -EINVAL with @err set. */
static int run_check(const char *path, struct fg_conf_check *c, struct fg_err *err)
{
	struct fg_err ferr = {0};
	const char *why = NULL;
	int ret;

	/* Opened as the loader will, never blocking: a FIFO here would hang check and run. */
	if (c->kind == FG_CONF_CHECK_READABLE) {
		/* Looked at on a thread first: a hung mount fails check instead of hanging it. */
		if (fg_file_reachable(c->arg, &ferr) || fg_file_check(c->arg, &ferr))
			return fg_conf_fail(err, path, c->jpath, "%s", ferr.msg);
		return 0;
	}
	ret = fg_addr_parse(c->arg, c->kind == FG_CONF_CHECK_LISTEN, c->addr, &why);
	if (ret == -EINVAL)
		return fg_conf_fail(err, path, c->jpath, "bad address \"%s\": %s", c->arg, why);
	return ret;
}

int fg_config_load(const char *path, struct fg_config *cfg, struct fg_err *err)
{
	struct fg_conf_checks checks = { 0 };
	char *text = NULL, *dir, *slash;
	size_t len = 0;
	int ret;

	ret = slurp(path, &text, &len, err);
	if (ret)
		goto out;
	dir = strdup(path);
	if (!dir) {
		ret = -ENOMEM;
		goto free_text;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	ret = fg_config_parse(text, len, path, dir, cfg, &checks, err);
	/*
	 * The checks come before the parser's own error, if any: each was met
	 * before it, so the first that fails is the file's first problem.
	 */
	for (size_t i = 0; i < checks.n; i++) {
		int cret = run_check(path, &checks.v[i], err);

		if (cret) {
			ret = cret;
			break;
		}
	}
	if (!ret)
		ret = check_cgroup(cfg, err);
	fg_conf_checks_free(&checks);
	free(dir);
free_text:
	free(text);
out:
	if (ret)
		fg_config_free(cfg);
	return ret;
}
