// SPDX-License-Identifier: MIT
/*
 * Close reports: which handoffs' tunnels a worker freed, for the control
 * process's per-tunnel counts (control/dptrack.c), and the bytes tallies of
 * those that run. A leaf: it calls no tunnel or worker code.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/dp.h"
#include "fedgate/handoff.h"
#include "fedgate/log.h"

/* What @t moved since its last tally. */
static struct fg_handoff_tally tally_of(const struct dp_tunnel *t)
{
	return (struct fg_handoff_tally){
	    .id = t->id,
	    .up = t->bytes_up - t->told_up,
	    .down = t->bytes_down - t->told_down,
	};
}

/* Its tally went: what it moved so far is told. */
static void told(struct dp_tunnel *t)
{
	t->told_up = t->bytes_up;
	t->told_down = t->bytes_down;
}

void dp_closed_note(struct dp_worker *w, struct dp_tunnel *t)
{
	struct fg_handoff_tally *grown;
	size_t cap;

	if (!t->id)
		return;
	if (w->n_closed == w->cap_closed) {
		cap = w->cap_closed ? w->cap_closed * 2 : FG_HANDOFF_CLOSED_MAX;
		grown = realloc(w->closed, cap * sizeof(*grown));
		if (!grown) {
			/* Its count stays up in the control process: a cap too strict, never loose.
			 */
			fg_error("worker %d: no memory to report handoff %u closed", w->index,
				 t->id);
			return;
		}
		w->closed = grown;
		w->cap_closed = cap;
	}
	w->closed[w->n_closed++] = tally_of(t);
}

void dp_closed_flush(struct dp_worker *w, bool final)
{
	struct fg_handoff_closed c = {.magic = FG_HANDOFF_CLOSED_MAGIC};
	size_t done = 0;
	int ret = 0;

	while (!final && done < w->n_closed) {
		size_t n = w->n_closed - done;

		if (n > FG_HANDOFF_CLOSED_MAX)
			n = FG_HANDOFF_CLOSED_MAX;
		c.n = (uint32_t)n;
		/* The count as of this batch: the later ids are still counted by the worker. */
		c.n_tunnels = (uint32_t)(w->n_tunnels + (w->n_closed - done - n));
		memcpy(c.t, w->closed + done, n * sizeof(c.t[0]));
		ret = fg_handoff_send_small(
		    w->handoff_fd, &c, offsetof(struct fg_handoff_closed, t) + n * sizeof(c.t[0]));
		if (ret)
			break;
		done += n;
	}
	if (ret && ret != -EAGAIN)
		fg_error("worker %d: cannot report %zu closed tunnel(s): %s", w->index,
			 w->n_closed - done, strerror(-ret));
	if (done == w->n_closed && !ret)
		w->n_reported = w->n_tunnels;
	if (done)
		memmove(w->closed, w->closed + done, (w->n_closed - done) * sizeof(*w->closed));
	w->n_closed -= done;
	if (final) {
		free(w->closed);
		w->closed = NULL;
		w->n_closed = w->cap_closed = 0;
	}
}

void dp_bytes_report(struct dp_worker *w)
{
	struct fg_handoff_closed c = {.magic = FG_HANDOFF_BYTES_MAGIC};
	struct dp_tunnel *t = w->tunnels;
	int ret;

	while (t) {
		struct dp_tunnel *first = t;

		c.n = 0;
		for (; t && c.n < FG_HANDOFF_CLOSED_MAX; t = t->next)
			if (t->bytes_up != t->told_up || t->bytes_down != t->told_down)
				c.t[c.n++] = tally_of(t);
		if (!c.n)
			return;
		c.n_tunnels = (uint32_t)w->n_tunnels;
		ret = fg_handoff_send_small(w->handoff_fd, &c,
					    offsetof(struct fg_handoff_closed, t) +
						c.n * sizeof(c.t[0]));
		if (ret) {
			/*
			 * Untold, so the next tick (or the close report) carries it. A
			 * closed socket is the control process gone: the loop ends.
			 */
			if (ret != -EAGAIN && ret != -EPIPE && ret != -ECONNRESET)
				fg_error("worker %d: cannot report bytes: %s", w->index,
					 strerror(-ret));
			return;
		}
		/* Told: the tunnels of this batch count it. */
		for (; first != t; first = first->next)
			told(first);
	}
}
