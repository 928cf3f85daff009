// SPDX-License-Identifier: MIT
/* `fedgate run`'s sandbox: the user both processes drop to, and the control process's confinement.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/landlock.h"
#include "control/privdrop.h"
#include "control/run.h"
#include "fedgate/log.h"
#include "fedgate/privdrop.h"
#include "fedgate/sandbox-t.h"

/* Set by fg_sandbox_prepare, for fg_sandbox_enter: run_as resolved, and this binary. */
static uid_t run_uid;
static gid_t run_gid;
static char exe[PATH_MAX];

/*
 * What needs root for as long as it serves, as the sentence that says so, or
 * NULL: a transparent tunnel dials with SO_MARK or IP_TRANSPARENT
 * (CAP_NET_ADMIN) for every connection, and the local redirect updates its
 * BPF maps for every connection (bpf(2) needs CAP_BPF where unprivileged BPF
 * is off). Written into @buf.
 */
static const char *needs_root(const struct fg_config *cfg, char *buf, size_t len)
{
	if (cfg->local_redirect) {
		snprintf(buf, len,
			 "dataplane.local_redirect updates BPF maps for every connection "
			 "(CAP_BPF)");
		return buf;
	}
	for (size_t i = 0; i < cfg->n_tunnels; i++)
		if (cfg->tunnels[i].capture || cfg->tunnels[i].transparent) {
			snprintf(buf, len,
				 "tunnel %s is transparent, and its connections need "
				 "CAP_NET_ADMIN",
				 cfg->tunnels[i].name);
			return buf;
		}
	return NULL;
}

int fg_sandbox_prepare(const struct fg_config *cfg)
{
	char ids[32], why[160];
	const char *t;
	ssize_t n;
	int ret;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	if (setenv(FG_DP_ENV_SECCOMP, cfg->seccomp ? "1" : "0", 1))
		return FG_EXIT_CONFIG;
	unsetenv(FG_DP_ENV_RUN_AS);
	if (!cfg->run_as[0])
		return 0;
	t = needs_root(cfg, why, sizeof(why));
	if (t) {
		fprintf(stderr,
			"fedgate: %s: $.run_as: %s while it serves; run it as root (no run_as)\n",
			cfg->path, t);
		return FG_EXIT_CONFIG;
	}
	ret = fg_privdrop_resolve(cfg->run_as, &run_uid, &run_gid);
	if (ret) {
		fprintf(stderr, "fedgate: %s: $.run_as: user \"%s\": %s\n", cfg->path, cfg->run_as,
			ret == -ENOENT ? "no such user" : strerror(-ret));
		return FG_EXIT_CONFIG;
	}
	if (run_uid == 0) {
		fprintf(stderr, "fedgate: %s: $.run_as: user \"%s\" is root: nothing to drop\n",
			cfg->path, cfg->run_as);
		return FG_EXIT_CONFIG;
	}
	snprintf(ids, sizeof(ids), "%u:%u", (unsigned)run_uid, (unsigned)run_gid);
	if (setenv(FG_DP_ENV_RUN_AS, ids, 1))
		return FG_EXIT_CONFIG;
	return 0;
}

int fg_sandbox_enter(const struct fg_config *cfg)
{
	int ret = 0;

	if (cfg->landlock) {
		/* As root still: the rules' paths open even where run_as could not reach. */
		ret = fg_landlock_enter(cfg, exe[0] ? exe : NULL);
		if (ret) {
			fg_error("landlock: cannot confine the control process: %s (set "
				 "$.sandbox.landlock false to run without it)",
				 strerror(-ret));
			return ret;
		}
	} else {
		fg_info("landlock: off (as configured)");
	}
	if (!cfg->run_as[0])
		return 0;
	ret = fg_privdrop(run_uid, run_gid);
	if (ret) {
		fg_error("run_as: cannot become %s (uid %u gid %u): %s", cfg->run_as,
			 (unsigned)run_uid, (unsigned)run_gid, strerror(-ret));
		return ret;
	}
	fg_info("run_as: running as %s (uid %u gid %u)", cfg->run_as, (unsigned)run_uid,
		(unsigned)run_gid);
	return 0;
}
