// SPDX-License-Identifier: MIT
/*
 * The handshake threads (hs_thread.h). Each owns the connections the loop
 * handed it: their SSL objects, TLS fds, fg_tls_conn (filled by OpenSSL's
 * callbacks on this thread) and deadlines, in its own epoll and heap. It
 * works in rounds: wait; take what the loop sent (new connections, cancels,
 * stop) under its lock; run the steps that are due; expire; and post back,
 * at the end of the round, every connection that left it (done queue and
 * eventfd, under the queue's lock). A connection is the loop's again only
 * once it is on the done queue: until then the loop never touches it.
 *
 * Nothing here logs or counts: the refusal line, its metric and any alert
 * after the handshake are the loop's, from the outcome posted back.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/admit.h"
#include "control/hs_thread.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/heap.h"

#define EVENTS_PER_ROUND 64

struct hs_worker {
	struct gw_hs *hs;
	pthread_t thread;
	int started;
	int epfd; /* the thread's alone, with @efd (data.ptr NULL) and its connections' fds */
	int efd;  /* the loop wakes the thread: something is in @inbox or @cancels, or @stop */
	pthread_mutex_t lock;
	struct gw_conn *inbox, *inbox_tail; /* FIFO, linked by hs.next */
	struct gw_conn *cancels;	    /* linked by hs.cnext */
	int stop;
	/* the thread's alone: */
	struct fg_heap deadlines;
	struct gw_conn *out; /* leaving at the end of this round, linked by hs.onext */
	/* the loop's alone: connections this thread owns, for the least loaded pick */
	size_t n_owned;
};

struct gw_hs {
	struct hs_worker *w;
	int n;
	unsigned int rr;		  /* the loop's: where the next tie-break starts */
	int stopped;			  /* the loop's: gw_hs_stop() ran */
	pthread_mutex_t lock;		  /* the done queue */
	struct gw_conn *done, *done_tail; /* FIFO, linked by hs.next */
	int efd;			  /* readable while @done may hold connections */
};

int gw_hs_step(struct gw_conn *c, uint32_t *events)
{
	int ret, err;

	ERR_clear_error();
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1)
		return 0;
	err = SSL_get_error(c->ssl, ret);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		*events = err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		return -EAGAIN;
	}
	/* The queue is this thread's: the reason is taken here, formatted by the loop. */
	c->hs.ssl_err = err == SSL_ERROR_SSL ? ERR_get_error() : 0;
	ERR_clear_error();
	return err == SSL_ERROR_SSL ? -EPROTO : -EPIPE;
}

/* @c leaves @w at the end of this round with @ret; no step runs for it again. */
static void leave(struct hs_worker *w, struct gw_conn *c, int ret)
{
	if (c->hs.leaving)
		return;
	c->hs.leaving = 1;
	c->hs.ret = ret;
	if (c->hs.registered)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->tls_fd, NULL);
	c->hs.registered = 0;
	fg_heap_remove(&w->deadlines, &c->deadline);
	c->hs.onext = w->out;
	w->out = c;
}

static void step(struct hs_worker *w, struct gw_conn *c)
{
	struct epoll_event ev = {.data.ptr = c};
	uint32_t events = 0;
	int ret = gw_hs_step(c, &events);

	if (ret != -EAGAIN) {
		leave(w, c, ret);
		return;
	}
	ev.events = events;
	if (epoll_ctl(w->epfd, c->hs.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->tls_fd, &ev)) {
		leave(w, c, -errno);
		return;
	}
	c->hs.registered = 1;
}

/* Unlinks @c from @w's cancels, if it is there; under @w's lock. */
static void unlink_cancel(struct hs_worker *w, struct gw_conn *c)
{
	for (struct gw_conn **p = &w->cancels; *p; p = &(*p)->hs.cnext)
		if (*p == c) {
			*p = c->hs.cnext;
			return;
		}
}

/*
 * The round's end: what left is posted, and from the moment it is on the
 * done queue the loop may free it, so nothing here reads it after that.
 */
static void post_out(struct hs_worker *w)
{
	struct gw_hs *hs = w->hs;
	struct gw_conn *c, *head = NULL, *tail = NULL;
	uint64_t one = 1;

	if (!w->out)
		return;
	pthread_mutex_lock(&w->lock);
	for (c = w->out; c; c = c->hs.onext) {
		c->hs.posted = 1;
		unlink_cancel(w, c);
	}
	pthread_mutex_unlock(&w->lock);
	while ((c = w->out)) {
		w->out = c->hs.onext;
		c->hs.next = NULL;
		if (tail)
			tail->hs.next = c;
		else
			head = c;
		tail = c;
	}
	pthread_mutex_lock(&hs->lock);
	if (hs->done_tail)
		hs->done_tail->hs.next = head;
	else
		hs->done = head;
	hs->done_tail = tail;
	pthread_mutex_unlock(&hs->lock);
	if (write(hs->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort(); /* an eventfd write fails only on overflow or a bad fd */
}

/* Milliseconds to the first deadline, -1 when none. */
static int next_timeout(const struct hs_worker *w)
{
	const struct fg_heap_node *first = fg_heap_min(&w->deadlines);
	uint64_t now = (uint64_t)fg_mono_ms();

	if (!first)
		return -1;
	return first->key <= now ? 0 : (int)(first->key - now);
}

static void expire(struct hs_worker *w)
{
	uint64_t now = (uint64_t)fg_mono_ms();
	struct fg_heap_node *n;

	while ((n = fg_heap_min(&w->deadlines)) && n->key <= now)
		leave(w, (struct gw_conn *)((char *)n - offsetof(struct gw_conn, deadline)),
		      -ETIMEDOUT);
}

/* What the loop sent: cancels first (a cancelled newcomer never starts), then newcomers. */
static int take_mail(struct hs_worker *w)
{
	struct gw_conn *in, *cancels, *c;
	uint64_t n;
	int stop;

	/* Read first: what the loop sends after this look writes it again. */
	if (read(w->efd, &n, sizeof(n)) < 0)
		n = 0;
	pthread_mutex_lock(&w->lock);
	in = w->inbox;
	w->inbox = w->inbox_tail = NULL;
	cancels = w->cancels;
	w->cancels = NULL;
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	for (c = cancels; c; c = c->hs.cnext)
		leave(w, c, -ECANCELED);
	while ((c = in)) {
		in = c->hs.next;
		if (c->hs.leaving)
			continue;
		if (fg_heap_push(&w->deadlines, &c->deadline, c->deadline.key))
			leave(w, c, -ENOMEM);
		else
			step(w, c);
	}
	return stop;
}

static void *worker_main(void *arg)
{
	struct hs_worker *w = arg;
	struct epoll_event evs[EVENTS_PER_ROUND];
	struct fg_heap_node *n;
	int stop = 0;

	/* For top -H and /proc/PID/task; by the thread itself (prctl): Landlock forbids /proc. */
	pthread_setname_np(pthread_self(), "fg-handshake");
	while (!stop) {
		int k = epoll_wait(w->epfd, evs, EVENTS_PER_ROUND, next_timeout(w));

		/* Fails only on a bad epfd or buffer: its connections could never end. */
		if (k < 0 && errno != EINTR)
			abort();
		for (int i = 0; i < k; i++) {
			struct gw_conn *c = evs[i].data.ptr;

			if (c && !c->hs.leaving)
				step(w, c);
		}
		stop = take_mail(w);
		expire(w);
		post_out(w);
	}
	/* Stopped: everything still here goes back. */
	while ((n = fg_heap_min(&w->deadlines)))
		leave(w, (struct gw_conn *)((char *)n - offsetof(struct gw_conn, deadline)),
		      -ECANCELED);
	take_mail(w);
	post_out(w);
	OPENSSL_thread_stop();
	return NULL;
}

static int worker_init(struct gw_hs *hs, struct hs_worker *w)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	sigset_t all, old;
	int ret;

	w->hs = hs;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fg_heap_init(&w->deadlines);
	pthread_mutex_init(&w->lock, NULL);
	if (w->epfd < 0 || w->efd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &ev))
		return -errno;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	w->started = !ret;
	return ret;
}

static void worker_stop(struct hs_worker *w)
{
	uint64_t one = 1;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_mutex_unlock(&w->lock);
	if (write(w->efd, &one, sizeof(one)) < 0)
		abort(); /* the thread would never end */
	pthread_join(w->thread, NULL);
	w->started = 0;
}

static void worker_exit(struct hs_worker *w)
{
	worker_stop(w);
	fg_heap_exit(&w->deadlines);
	pthread_mutex_destroy(&w->lock);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->efd >= 0)
		close(w->efd);
}

int gw_hs_new(struct gw_hs **out, int n)
{
	struct gw_hs *hs;
	int ret = -ENOMEM;

	*out = NULL;
	if (n < 1 || n > GW_HS_THREADS_MAX)
		return -EINVAL;
	hs = calloc(1, sizeof(*hs));
	if (!hs)
		goto out;
	hs->efd = -1;
	pthread_mutex_init(&hs->lock, NULL);
	hs->w = calloc((size_t)n, sizeof(*hs->w));
	if (!hs->w)
		goto free_hs;
	hs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (hs->efd < 0) {
		ret = -errno;
		goto free_hs;
	}
	for (int i = 0; i < n; i++)
		hs->w[i].epfd = hs->w[i].efd = -1;
	for (hs->n = 0; hs->n < n; hs->n++) {
		ret = worker_init(hs, &hs->w[hs->n]);
		if (ret) {
			hs->n++; /* what it made is undone with the others */
			goto free_hs;
		}
	}
	*out = hs;
	return 0;
free_hs:
	gw_hs_free(hs);
out:
	return ret;
}

int gw_hs_fd(const struct gw_hs *hs)
{
	return hs->efd;
}

int gw_hs_threads(const struct gw_hs *hs)
{
	return hs ? hs->n : 0;
}

int gw_hs_owned(const struct gw_conn *c)
{
	return c->hs.worker != 0;
}

/* The thread owning the fewest; ties go round robin. */
static struct hs_worker *least_loaded(struct gw_hs *hs)
{
	struct hs_worker *best = NULL;

	for (int k = 0; k < hs->n; k++) {
		struct hs_worker *w = &hs->w[(hs->rr + (unsigned int)k) % (unsigned int)hs->n];

		if (!best || w->n_owned < best->n_owned)
			best = w;
	}
	hs->rr++;
	return best;
}

int gw_hs_submit(struct gw *gw, struct gw_conn *c)
{
	struct gw_hs *hs = gw->hs;
	struct hs_worker *w;
	uint64_t one = 1;

	if (!hs || hs->stopped)
		return -ENODEV;
	w = least_loaded(hs);
	/* Admission's tier (in its handshake) before the loop lets go of it. */
	gw_admit_sync(gw, c);
	if (c->watch_fd >= 0)
		fg_evloop_del(gw->loop, c->watch_fd);
	c->watch_fd = -1;
	fg_heap_remove(&gw->deadlines, &c->deadline);
	memset(&c->hs, 0, sizeof(c->hs));
	c->hs.worker = (int)(w - hs->w) + 1;
	w->n_owned++;
	pthread_mutex_lock(&w->lock);
	if (w->inbox_tail)
		w->inbox_tail->hs.next = c;
	else
		w->inbox = c;
	w->inbox_tail = c;
	pthread_mutex_unlock(&w->lock);
	if (write(w->efd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write fails only on overflow or a bad fd */
	return 0;
}

/* The head of the done queue, or NULL. */
static struct gw_conn *pop_done(struct gw_hs *hs)
{
	struct gw_conn *c;

	pthread_mutex_lock(&hs->lock);
	c = hs->done;
	if (c) {
		hs->done = c->hs.next;
		if (!hs->done)
			hs->done_tail = NULL;
	}
	pthread_mutex_unlock(&hs->lock);
	return c;
}

struct gw_conn *gw_hs_take(struct gw *gw, int *ret)
{
	struct gw_hs *hs = gw->hs;
	struct gw_conn *c;
	uint64_t n;

	if (!hs)
		return NULL;
	c = pop_done(hs);
	if (!c) {
		/* Read before the second look: a post after it writes the eventfd again. */
		if (read(hs->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
			return NULL;
		c = pop_done(hs);
		if (!c)
			return NULL;
	}
	hs->w[c->hs.worker - 1].n_owned--;
	c->hs.worker = 0;
	*ret = c->hs.cancel ? -ECANCELED : c->hs.ret;
	if (!*ret && fg_heap_push(&gw->deadlines, &c->deadline, c->deadline.key))
		*ret = -ENOMEM;
	return c;
}

void gw_hs_cancel(struct gw *gw, struct gw_conn *c)
{
	struct hs_worker *w = &gw->hs->w[c->hs.worker - 1];
	uint64_t one = 1;
	int wake = 0;

	if (c->hs.cancel)
		return;
	pthread_mutex_lock(&w->lock);
	c->hs.cancel = 1;
	if (!c->hs.posted) {
		c->hs.cnext = w->cancels;
		w->cancels = c;
		wake = 1;
	}
	pthread_mutex_unlock(&w->lock);
	if (wake && write(w->efd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write fails only on overflow or a bad fd */
}

void gw_hs_stop(struct gw_hs *hs)
{
	if (!hs || hs->stopped)
		return;
	hs->stopped = 1;
	for (int i = 0; i < hs->n; i++)
		worker_stop(&hs->w[i]);
}

void gw_hs_free(struct gw_hs *hs)
{
	if (!hs)
		return;
	gw_hs_stop(hs);
	for (int i = 0; hs->w && i < hs->n; i++)
		worker_exit(&hs->w[i]);
	free(hs->w);
	pthread_mutex_destroy(&hs->lock);
	if (hs->efd >= 0)
		close(hs->efd);
	free(hs);
}
