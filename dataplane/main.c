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

static void *worker_thread(void *arg)
{
	int index = (int)(intptr_t)arg;

	return (void *)(intptr_t)dp_worker_run(index, FG_DP_FD_BASE + index);
}

int fg_dataplane_main(int argc, char **argv)
{
	pthread_t threads[MAX_WORKERS];
	int workers = 0, failed = 0;
	char *end = NULL;

	fg_log_init("fedgate[dataplane]", getenv("FEDGATE_DEBUG") ? FG_LOG_DEBUG : FG_LOG_INFO);
	if (argc == 3 && !strcmp(argv[1], "--workers"))
		workers = (int)strtol(argv[2], &end, 10);
	if (!end || *end || workers < 1 || workers > MAX_WORKERS) {
		fprintf(stderr, "usage: fedgate dataplane --workers N (started by fedgate run)\n");
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
	fg_info("%d worker(s) running, userspace record layer", workers);
	for (int i = 0; i < workers; i++) {
		void *res;

		pthread_join(threads[i], &res);
		failed |= res != NULL;
	}
	return failed ? 1 : 0;
}
