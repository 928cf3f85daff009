/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_JOBS_H
#define FEDGATE_JOBS_H

/*
 * The gateway's work that may block for seconds, run off the control loop
 * so that handshakes never wait for it: requests to its CAs (enroll, renew,
 * fetch /federation), slow when a CA is slow or down, and a reload's config
 * load, whose files may sit on a hung mount. A job queue is one helper
 * thread running its jobs in order; the gateway has three (identity jobs,
 * federation fetches, reloads) so that a slow federation source cannot delay
 * a renewal. Each finished job comes back through fg_jobq_take(), and the
 * eventfd fg_jobq_fd() becomes readable when one is there.
 */
#include "control/jobs-t.h"

/* Runs @j in the calling thread (blocking); sets j->ret, j->err and the outputs. */
void fg_job_run(struct fg_job *j);
/* Frees @j and wipes the key it carries. Accepts NULL. */
void fg_job_free(struct fg_job *j);

int fg_jobq_new(struct fg_jobq **out);
/*
 * Stops the thread and frees the queue with every job. A job in flight
 * (a CA request, a config load) gets a short grace period; after it the thread is left to
 * finish on its own and free the queue then, so that shutdown never waits
 * on a slow CA. Accepts NULL.
 */
void fg_jobq_free(struct fg_jobq *w);
int fg_jobq_fd(struct fg_jobq *w);
/* Queues @j (the queue owns it until fg_jobq_take() returns it). */
void fg_jobq_submit(struct fg_jobq *w, struct fg_job *j);
/* One finished job, or NULL; clears the eventfd when none is left. */
struct fg_job *fg_jobq_take(struct fg_jobq *w);

#endif
