/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_HS_THREAD_H
#define FEDGATE_HS_THREAD_H

/*
 * Handshakes on every core (README "Handshake threads"): N threads, each
 * with its own epoll, drive SSL_do_handshake for the connections the loop
 * hands them and post each back (a queue and an eventfd in the loop) once
 * it completed, failed, met its deadline or was asked back. Everything
 * before and after the handshake stays on the loop thread; the private key
 * never leaves the process (its threads share the SSL_CTX).
 */
#include <stdint.h>
#include "control/gateway-t.h"

/* Handshake threads at most. */
#define GW_HS_THREADS_MAX 64

/*
 * @n threads (1..GW_HS_THREADS_MAX) into *@out; 0 or -errno (nothing left
 * running). Signals stay blocked in them: the loop's signalfd takes them all.
 */
int gw_hs_new(struct gw_hs **out, int n);

/* Readable when finished handshakes wait for gw_hs_take(). */
int gw_hs_fd(const struct gw_hs *hs);

/* How many threads @hs runs (0 for NULL). */
int gw_hs_threads(const struct gw_hs *hs);

/*
 * Hands @c (CONN_HANDSHAKE, its SSL made) to the least loaded thread: its
 * fd leaves the loop's epoll and its deadline the loop's heap. 0: a thread
 * owns @c until gw_hs_take() returns it; -ENODEV: no threads (or stopped),
 * @c is untouched and the caller runs the handshake itself.
 */
int gw_hs_submit(struct gw *gw, struct gw_conn *c);

/*
 * The next connection a thread posted back, the loop's again (its deadline
 * back in the loop's heap), with its outcome in *@ret: gw_hs_step()'s 0,
 * -EPROTO or -EPIPE, or -ETIMEDOUT (its deadline passed), -ECANCELED (the
 * loop asked for it back: shed it), -ENOMEM. NULL when none is waiting.
 */
struct gw_conn *gw_hs_take(struct gw *gw, int *ret);

/* Whether a thread owns @c. */
int gw_hs_owned(const struct gw_conn *c);

/*
 * Asks @c's thread for it back (admission sheds it): it is returned by
 * gw_hs_take() with -ECANCELED soon, whatever its handshake did meanwhile.
 */
void gw_hs_cancel(struct gw *gw, struct gw_conn *c);

/*
 * Stops and joins the threads; each posts back what it owned (-ECANCELED),
 * for gw_hs_take(). Afterwards gw_hs_submit() answers -ENODEV. NULL: nothing.
 */
void gw_hs_stop(struct gw_hs *hs);

/* Stops (as gw_hs_stop) and frees; accepts NULL. Take what it returned before. */
void gw_hs_free(struct gw_hs *hs);

/*
 * One step of @c's handshake, on whichever thread owns @c: 0 done, -EAGAIN
 * with *@events what to wait for (EPOLLIN or EPOLLOUT), -EPROTO a TLS error
 * (c->hs.ssl_err its code, c->st.verify_error set by a failed verification),
 * -EPIPE the peer closed or reset. The thread's OpenSSL error queue is left
 * empty.
 */
int gw_hs_step(struct gw_conn *c, uint32_t *events);

#endif
