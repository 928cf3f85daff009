// SPDX-License-Identifier: MIT
/* The data plane process: started by `fedgate run`, one thread per worker. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "dataplane/dataplane.h"
#include "fedgate/dataplane-t.h"
#include "fedgate/legs.h"
#include "fedgate/record.h"
#include "fedgate/log.h"
#include "dataplane/worker.h"
#include "dataplane/sandbox.h"


static struct fg_dp_opts opts;
static struct fg_legs_slot *legs; /* the local redirect's slot array, or NULL */

static void *worker_thread(void *arg)
{
	int index = (int)(intptr_t)arg;

	return (void *)(intptr_t)dp_worker_run(index, FG_DP_FD_BASE + index, &opts, legs);
}

/* Returns 0, or -EINVAL when @argv is not what fg_dataplane_spawn() passes. */
static int parse_args(int argc, char **argv, struct fg_dp_opts *o)
{
	static const char *const backends[] = { "userspace", "kernel", "kernel-only" };
	char *end = NULL;
	int i;

	o->legs_fd = -1;
	if ((argc != 5 && argc != 7 && argc != 9) || strcmp(argv[1], "--workers") ||
	    strcmp(argv[3], "--backend"))
		return -EINVAL;
	o->workers = (int)strtol(argv[2], &end, 10);
	if (!end || *end || o->workers < 1 || o->workers > FG_DP_WORKERS_MAX)
		return -EINVAL;
	for (i = 0; i < 3 && strcmp(argv[4], backends[i]); i++)
		;
	if (i == 3)
		return -EINVAL;
	o->backend = (enum fg_dp_backend)i;
	if (argc == 9) {
		/* Only where fg_dataplane_spawn puts it: right after the workers' fds. */
		if (strcmp(argv[7], "--legs-fd") || strtol(argv[8], &end, 10) != FG_DP_FD_BASE + o->workers ||
		    *end)
			return -EINVAL;
		o->legs_fd = FG_DP_FD_BASE + o->workers;
	}
	if (argc >= 7) {
		if (strcmp(argv[5], "--kernel-tx"))
			return -EINVAL;
		if (!strcmp(argv[6], "splice"))
			o->splice_tx = 1;
		else if (strcmp(argv[6], "copy"))
			return -EINVAL;
	}
	return 0;
}

int fg_dataplane_main(int argc, char **argv)
{
	pthread_t threads[FG_DP_WORKERS_MAX];
	static const char *const names[] = { "userspace record layer", "kernel TLS",
					     "kernel TLS only" };
	const char *aead;
	int failed = 0;

	fg_log_init("fedgate[dataplane]", getenv("FEDGATE_DEBUG") ? FG_LOG_DEBUG : FG_LOG_INFO);
	if (parse_args(argc, argv, &opts)) {
		fprintf(stderr, "usage: fedgate dataplane --workers N --backend "
				"userspace|kernel|kernel-only [--kernel-tx copy|splice "
				"[--legs-fd N]] (started by fedgate run)\n");
		return 2;
	}
	if (opts.legs_fd >= 0) {
		/* The slots are the kernel's memory: mapped, the fd is no longer needed. */
		legs = fg_legs_map(opts.legs_fd);
		close(opts.legs_fd);
		if (!legs) {
			fg_error("cannot map the local redirect slots: %s", strerror(errno));
			return 1;
		}
	}
	/* $.run_as: before the death signal, which a credential change clears. */
	if (dp_sandbox_drop())
		return 1;
	/*
	 * If the control process dies, so do we: tunnels without it are
	 * orphans. fg_dataplane_spawn armed this before exec and then checked
	 * that its parent was still there (getppid() == 1 here would be wrong:
	 * in a container the control process may be pid 1).
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM)) {
		fg_error("PR_SET_PDEATHSIG: %s", strerror(errno));
		return 1;
	}
	/*
	 * Exec'd as /proc/self/exe, the kernel named us "exe" (ps -o comm, ss -p,
	 * top): the name says which of the two processes this is. Threads take it.
	 */
	prctl(PR_SET_NAME, "fedgate-dp");
	signal(SIGPIPE, SIG_IGN);
	/* Picks the record layer's AEAD library once, before any worker runs. */
	aead = fg_record_aead_lib();
	for (int i = 0; i < opts.workers; i++) {
		int ret = pthread_create(&threads[i], NULL, worker_thread, (void *)(intptr_t)i);

		if (ret) {
			fg_error("cannot start worker %d: %s", i, strerror(ret));
			return 1;
		}
	}
	fg_info("%d worker(s) running, %s%s; record layer AEADs from %s", opts.workers,
		names[opts.backend],
		opts.backend != FG_DP_USERSPACE && opts.splice_tx ? ", TX by splice" : "", aead);
	if (legs)
		fg_info("local legs redirect: on (plain reads counted, no splice on redirected legs)");
	/* Every worker exists: the filter goes on all of them at once. */
	if (dp_sandbox_seccomp())
		return 1;
	for (int i = 0; i < opts.workers; i++) {
		void *res;

		pthread_join(threads[i], &res);
		failed |= res != NULL;
	}
	return failed ? 1 : 0;
}
