// SPDX-License-Identifier: MIT
/* The data plane's sandbox: which user it runs as, and whether its seccomp filter goes in. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/sandbox.h"
#include "fedgate/log.h"
#include "fedgate/privdrop.h"
#include "fedgate/sandbox-t.h"

/* "UID:GID", decimal, nothing else. 0 or -EINVAL. */
static int parse_ids(const char *s, uid_t *uid, gid_t *gid)
{
	char *end = NULL;
	unsigned long u, g;

	errno = 0;
	u = strtoul(s, &end, 10);
	if (errno || end == s || *end != ':' || u > UINT32_MAX - 1)
		return -EINVAL;
	s = end + 1;
	g = strtoul(s, &end, 10);
	if (errno || end == s || *end || g > UINT32_MAX - 1)
		return -EINVAL;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

int dp_sandbox_drop(void)
{
	const char *v = getenv(FG_DP_ENV_RUN_AS);
	uid_t uid;
	gid_t gid;
	int ret;

	if (!v)
		return 0;
	ret = parse_ids(v, &uid, &gid);
	if (ret) {
		fg_error("run_as: malformed %s=\"%s\" from the control process", FG_DP_ENV_RUN_AS,
			 v);
		return ret;
	}
	ret = fg_privdrop(uid, gid);
	if (ret)
		fg_error("run_as: cannot become uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
			 strerror(-ret));
	return ret;
}

int dp_sandbox_seccomp(void)
{
	const char *v = getenv(FG_DP_ENV_SECCOMP), *probe = getenv(FG_DP_ENV_SECCOMP_PROBE);
	int ret;

	if (v && !strcmp(v, "0")) {
		fg_info("seccomp: off (as configured)");
		return 0;
	}
#if defined(__SANITIZE_ADDRESS__)
	/* The sanitizers' runtime (reports, leak checks at exit) needs calls no worker makes. */
	fg_warn("seccomp: not installed in a sanitizer build");
	(void)probe;
	return 0;
#else
	/* The filter allows no file opens: the time zone is read now, if ever. */
	tzset();
	ret = dp_seccomp_install();
	if (ret) {
		fg_error("seccomp: cannot install the filter: %s (set $.dataplane.seccomp false "
			 "to run without it)",
			 strerror(-ret));
		return ret;
	}
	fg_info("seccomp: on, a system call outside the data plane's list kills it");
	if (probe && !strcmp(probe, "1")) {
		fg_warn("seccomp: test probe: calling socket(2), which the filter forbids");
		syscall(__NR_socket, AF_INET, SOCK_STREAM, 0);
		fg_error("seccomp: test probe: socket(2) was not stopped");
		return -EPERM;
	}
	return 0;
#endif
}
