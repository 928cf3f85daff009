/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DATAPLANE_WORKER_H
#define FEDGATE_DATAPLANE_WORKER_H

#include "dataplane/dataplane.h"
#include "fedgate/dataplane-t.h"

struct fg_legs_slot;

/*
 * Runs one worker on the current thread until its handoff socket closes;
 * @legs is the local redirect's slot array (NULL: off), shared by all workers.
 * Returns 0, or a negative errno when io_uring fails.
 */
int dp_worker_run(int index, int handoff_fd, const struct fg_dp_opts *o,
		  struct fg_legs_slot *legs);

#endif
