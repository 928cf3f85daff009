// SPDX-License-Identifier: MIT
/* Starts the data plane: socketpairs, fork, and exec of this binary as `fedgate dataplane`. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/spawn.h"
#include "fedgate/log.h"

#define FD_PARK 200 /* above the fds the child renumbers into */

int fg_dataplane_spawn(const struct fg_dp_opts *o, pid_t *pid, int *socks)
{
	int child_ends[FG_DP_WORKERS_MAX], n = 0, ret = 0, workers = o->workers, legs = -1;
	char nbuf[16], lbuf[16];
	pid_t parent;

	static const char *const names[] = {"userspace", "kernel", "kernel-only"};

	if (workers < 1 || workers > FG_DP_WORKERS_MAX)
		return -EINVAL;
	for (; n < workers; n++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
			ret = -errno;
			goto close_ends;
		}
		socks[n] = sv[0];
		child_ends[n] = sv[1];
	}
	snprintf(nbuf, sizeof(nbuf), "%d", workers);
	snprintf(lbuf, sizeof(lbuf), "%d", FG_DP_FD_BASE + workers);
	parent = getpid();
	*pid = fork();
	if (*pid < 0) {
		ret = -errno;
		goto close_ends;
	}
	if (*pid == 0) {
		sigset_t none;

		/*
		 * A restart forks from the control loop, which has its signals
		 * blocked for its signalfd: the data plane must get them, its
		 * death signal above all.
		 */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/*
		 * Orphans carry tunnels nobody controls. The death signal is
		 * armed here, before exec, and survives it; a parent that died
		 * before it was armed is caught by the check that follows.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent)
			_exit(127);
		/* Park, then renumber to FG_DP_FD_BASE + i; everything else closes on exec. */
		for (int i = 0; i < workers; i++)
			child_ends[i] = fcntl(child_ends[i], F_DUPFD_CLOEXEC, FD_PARK);
		if (o->legs_fd >= 0)
			legs = fcntl(o->legs_fd, F_DUPFD_CLOEXEC, FD_PARK);
		for (int i = 0; i < workers; i++)
			if (child_ends[i] < 0 || dup2(child_ends[i], FG_DP_FD_BASE + i) < 0)
				_exit(127);
		if (o->legs_fd >= 0 && (legs < 0 || dup2(legs, FG_DP_FD_BASE + workers) < 0))
			_exit(127);
		/* A fresh image: the data plane never holds a copy of the private key. */
		execl("/proc/self/exe", "fedgate", "dataplane", "--workers", nbuf, "--backend",
		      names[o->backend], "--kernel-tx", o->splice_tx ? "splice" : "copy",
		      o->legs_fd >= 0 ? "--legs-fd" : (char *)NULL, lbuf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < workers; i++)
		close(child_ends[i]);
	return 0;
close_ends:
	for (int i = 0; i < n; i++) {
		close(socks[i]);
		close(child_ends[i]);
	}
	return ret;
}
