/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DATAPLANE_WORKER_H
#define FEDGATE_DATAPLANE_WORKER_H

#include "dataplane/dataplane.h"
#include "fedgate/dataplane-t.h"

/*
 * Runs one worker on the current thread until its handoff socket closes.
 * Returns 0, or a negative errno when io_uring fails.
 */
int dp_worker_run(int index, int handoff_fd, const struct fg_dp_opts *o);

#endif
