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

#include "fedgate/dataplane.h"
#include "fedgate/log.h"
#include "worker.h"

#define MAX_WORKERS 64

static enum fg_dp_backend backend;

static void *worker_thread(void *arg)
{
	int index = (int)(intptr_t)arg;

	return (void *)(intptr_t)dp_worker_run(index, FG_DP_FD_BASE + index, backend);
}

int fg_dataplane_main(int argc, char **argv)
{
	pthread_t threads[MAX_WORKERS];
	static const char *const names[] = { "userspace record layer", "kernel TLS",
					     "kernel TLS only" };
	int workers = 0, failed = 0, ok = 0;
	char *end = NULL;

	fg_log_init("fedgate[dataplane]", getenv("FEDGATE_DEBUG") ? FG_LOG_DEBUG : FG_LOG_INFO);
	if (argc == 5 && !strcmp(argv[1], "--workers") && !strcmp(argv[3], "--backend")) {
		workers = (int)strtol(argv[2], &end, 10);
		ok = 1;
		if (!strcmp(argv[4], "userspace"))
			backend = FG_DP_USERSPACE;
		else if (!strcmp(argv[4], "kernel"))
			backend = FG_DP_KERNEL;
		else if (!strcmp(argv[4], "kernel-only"))
			backend = FG_DP_KERNEL_ONLY;
		else
			ok = 0;
	}
	if (!ok || !end || *end || workers < 1 || workers > MAX_WORKERS) {
		fprintf(stderr, "usage: fedgate dataplane --workers N --backend "
				"userspace|kernel|kernel-only (started by fedgate run)\n");
		return 2;
	}
	/* If the control process dies, so do we: tunnels without it are orphans. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < workers; i++) {
		int ret = pthread_create(&threads[i], NULL, worker_thread, (void *)(intptr_t)i);

		if (ret) {
			fg_error("cannot start worker %d: %s", i, strerror(ret));
			return 1;
		}
	}
	fg_info("%d worker(s) running, %s", workers, names[backend]);
	for (int i = 0; i < workers; i++) {
		void *res;

		pthread_join(threads[i], &res);
		failed |= res != NULL;
	}
	return failed ? 1 : 0;
}
