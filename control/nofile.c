// SPDX-License-Identifier: MIT
/* The open files limit the gateway runs with: see nofile.h. */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "control/nofile.h"
#include "control/run.h"
#include "fedgate/log.h"

/* Past the kernel's own ceiling (fs.nr_open) setrlimit fails: an infinite hard limit is capped. */
#define NOFILE_CEILING (1u << 20)

/* Tunnels the data plane holds within @files, counting its own few fds (rough: for the log). */
static unsigned long tunnels_within(rlim_t files, int splice)
{
	rlim_t own = 64;

	return files > own ? (unsigned long)((files - own) / (splice ? 4 : 2)) : 0;
}

int fg_nofile_apply(const struct fg_config *cfg)
{
	struct rlimit r, want;

	if (getrlimit(RLIMIT_NOFILE, &r)) {
		fg_error("open files: getrlimit: %s", strerror(errno));
		return FG_EXIT_CONFIG;
	}
	want = r;
	if (cfg->limits.open_files)
		want.rlim_cur = (rlim_t)cfg->limits.open_files;
	else
		want.rlim_cur = r.rlim_max == RLIM_INFINITY ? NOFILE_CEILING : r.rlim_max;
	if (r.rlim_max != RLIM_INFINITY && want.rlim_cur > r.rlim_max)
		want.rlim_max = want.rlim_cur;
	if (want.rlim_cur != r.rlim_cur || want.rlim_max != r.rlim_max) {
		if (setrlimit(RLIMIT_NOFILE, &want)) {
			fg_error("%s: $.limits.open_files: %d is above the hard limit of %lu and "
				 "it cannot be raised (%s): raise it for fedgate (ulimit -Hn, "
				 "systemd LimitNOFILE=) or ask for less",
				 cfg->path, cfg->limits.open_files, (unsigned long)r.rlim_max,
				 strerror(errno));
			return FG_EXIT_CONFIG;
		}
		fg_info("open files: soft limit %lu (was %lu; hard limit %lu): room for about %lu "
			"tunnels",
			(unsigned long)want.rlim_cur, (unsigned long)r.rlim_cur,
			(unsigned long)want.rlim_max,
			tunnels_within(want.rlim_cur, cfg->kernel_tx_splice));
	} else {
		fg_info("open files: soft limit %lu: room for about %lu tunnels",
			(unsigned long)r.rlim_cur,
			tunnels_within(r.rlim_cur, cfg->kernel_tx_splice));
	}
	return 0;
}
