// SPDX-License-Identifier: MIT
/*
 * The control process's event loop: its sources (listeners, connections,
 * signals, the tick, the CA job queues, the data plane sockets), set up and
 * torn down here and dispatched by one switch. What a connection does is
 * conn.c's; what a SIGHUP does is reload.c's.
 */
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "control/admin.h"
#include "control/admit.h"
#include "control/conn.h"
#include "control/control.h"
#include "control/dpctl.h"
#include "control/gateway.h"
#include "control/hs_thread.h"
#include "control/identity.h"
#include "control/jobs.h"
#include "control/linger.h"
#include "control/local_redirect.h"
#include "control/metrics.h"
#include "control/resolve.h"
#include "control/conn_pool.h"
#include "control/sock.h"
#include "control/takeover.h"
#include "control/revalidate.h"
#include "control/privdrop.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/heap.h"
#include "fedgate/log.h"

static const int handled_signals[] = {SIGINT, SIGTERM, SIGCHLD, SIGHUP};

static void handle_timer(struct gw *gw)
{
	uint64_t n;
	int64_t now;

	if (read(gw->timerfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		fg_debug("timerfd: %s", strerror(errno));
	fg_ident_tick(gw->id);
	fg_resolver_tick(gw->resolver, gw->cur->cfg);
	gw_admit_tick(gw);
	now = fg_mono_ms();
	gw_conn_refuse_flush(now);
	gw_admin_tick(gw->admin, now);
	gw_revalidate_poll(gw); /* a trust file the tick read again */
	/*
	 * glibc keeps what a flood's connections freed in its arenas: once
	 * hundreds have gone, it goes back to the system (cheap at one a second).
	 */
	if (gw->n_conns < gw->trim_at && gw->trim_at - gw->n_conns >= 256) {
		malloc_trim(0);
		gw->trim_at = gw->n_conns;
	} else if (gw->n_conns > gw->trim_at) {
		gw->trim_at = gw->n_conns;
	}
}

static void handle_jobs(struct gw *gw, struct fg_jobq *q)
{
	struct fg_job *j;

	while ((j = fg_jobq_take(q)))
		fg_ident_job_done(gw->id, j);
	gw_revalidate_poll(gw);
}

/* The loop ends once the data plane is done: drained (0), or killed by its filter (fatal). */
static void dp_done(struct gw *gw)
{
	int done = gw_dp_done(gw->dp);

	if (done < 0)
		gw->fatal = done;
	else if (done)
		gw->stop = 1;
}

/*
 * SIGTERM: a graceful stop, begun once the batch of events is over (a later
 * event of the batch may belong to a connection or listener freed here). No
 * new connection (the listeners close), the handshakes in progress are
 * dropped, and the data plane drains: the loop ends once it has exited
 * (gw_dp_done). A second SIGTERM, or SIGINT, stops at once: the data plane
 * is then stopped with its tunnels (run.c).
 */
/* No more accepts here: the listeners are closed (after a takeover, the successor's now). */
static void close_listeners(struct gw *gw)
{
	for (size_t i = 0; i < gw->n_listeners; i++) {
		if (gw->listeners[i].fd < 0)
			continue;
		fg_evloop_del(gw->loop, gw->listeners[i].fd);
		close(gw->listeners[i].fd);
		gw->listeners[i].fd = -1;
	}
	gw_admin_close_listener(gw->admin);
}

static void start_drain(struct gw *gw)
{
	size_t n;

	gw->draining = 2;
	close_listeners(gw);
	gw_pool_close(gw);
	n = gw->n_conns;
	gw_conn_free_all(gw);
	if (gw->handed_over)
		fg_info("takeover: handshakes in progress done; draining the data plane");
	else
		fg_info("SIGTERM: listeners closed, %zu handshake(s) in progress dropped", n);
	gw_dp_drain(gw->dp);
	dp_done(gw);
}

/*
 * After a takeover: accepts stop at once, the handshakes in progress finish
 * (or meet their deadline), then the data plane drains as on SIGTERM.
 */
static void takeover_step(struct gw *gw)
{
	if (gw->handed_over == 1) {
		close_listeners(gw);
		gw_pool_close(gw); /* idle ones would hold the drain back: the successor has its own */
		gw->handed_over = 2;
	}
	if (gw->handed_over == 2 && !gw->draining && !gw->n_conns)
		gw->draining = 1;
}

static void handle_signal(struct gw *gw)
{
	int sig = fg_evloop_signal(gw->loop);

	if (!sig)
		return;
	if (sig == SIGCHLD) {
		/* Reaped and restarted (dpctl_life.c); during a drain, its exit is the end. */
		gw_dp_child(gw->dp);
		dp_done(gw);
		return;
	}
	if (sig == SIGHUP) {
		gw_reload(gw);
		return;
	}
	if (sig == SIGTERM && !gw->draining) {
		gw->draining = 1; /* start_drain() after this batch */
		return;
	}
	fg_info("%s: stopping", strsignal(sig));
	gw->stop = 1;
}

/*
 * A capture listener takes connections addressed to others: TPROXY needs it
 * transparent, and "[::]" must take IPv4 too (each captured family lands on
 * the one listener). 0, or -errno with the reason logged.
 */
static int capture_opts(struct gw_listener *l)
{
	int one = 1, zero = 0, v6 = l->t->listen.sa.ss_family == AF_INET6, err;

	if (!l->t->capture)
		return 0;
	if (v6 && setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		goto fail;
	if (l->t->capture == FG_CAPTURE_TPROXY &&
	    setsockopt(l->fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
		       v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one, sizeof(one)))
		goto fail;
	return 0;
fail:
	err = errno;
	fg_error("tunnel %s: %s: %s%s", l->t->name,
		 l->t->capture == FG_CAPTURE_TPROXY ? "cannot make a transparent listener"
						    : "cannot make a dual-stack listener",
		 strerror(err), err == EPERM ? " (TPROXY needs CAP_NET_ADMIN)" : "");
	return -err;
}

/*
 * @l's listener: @handed (a predecessor's, takeover.h; -1: none) when it is
 * bound where the config says, else a new one.
 */
static int listen_on(struct gw *gw, struct gw_listener *l, FILE *ports, int handed)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char bound[INET6_ADDRSTRLEN + 8];
	int one = 1, ret;

	l->src.kind = SRC_LISTENER;
	if (handed >= 0 && !fg_sock_listening_at(handed, &l->t->listen)) {
		fg_warn("takeover: tunnel %s now listens on %s: the handed socket is closed (what "
			"was queued there is reset)",
			l->t->name, l->t->listen.text);
		close(handed);
		handed = -1;
	}
	l->fd = handed >= 0 ? handed
			    : socket(l->t->listen.sa.ss_family,
				     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	if (handed < 0) {
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		ret = capture_opts(l);
		if (ret)
			return ret;
	}
	if ((handed < 0 &&
	     (bind(l->fd, (const struct sockaddr *)&l->t->listen.sa, l->t->listen.len) ||
	      listen(l->fd, 1024))) ||
	    getsockname(l->fd, (struct sockaddr *)&ss, &sl)) {
		ret = -errno;
		fg_error("tunnel %s: cannot listen on %s: %s", l->t->name, l->t->listen.text,
			 strerror(errno));
		return ret;
	}
	ret = fg_evloop_add(gw->loop, l->fd, EPOLLIN, &l->src);
	if (ret)
		return ret;
	fg_addr_text(&ss, bound, sizeof(bound));
	if (l->t->capture)
		fg_info("tunnel %s (originate, capture %s) listening on %s, peers by $.routes",
			l->t->name,
			l->t->capture == FG_CAPTURE_TPROXY     ? "tproxy"
			: l->t->capture == FG_CAPTURE_REDIRECT ? "redirect"
							       : "cgroup",
			bound);
	else if (l->t->transparent)
		fg_info("tunnel %s (terminate, transparent) listening on %s, upstream: the "
			"destination each peer names",
			l->t->name, bound);
	else
		fg_info("tunnel %s (%s) listening on %s, %s %s", l->t->name,
			l->t->mode == FG_MODE_ORIGINATE ? "originate" : "terminate", bound,
			l->t->mode == FG_MODE_ORIGINATE ? "peer" : "upstream", l->t->target.text);
	gw_lr_listener(l);
	if (ports)
		fprintf(ports, "%s %s\n", l->t->name, bound);
	return 0;
}

/*
 * Binds every listener, or with @take_over takes them from the gateway at
 * $.admin.socket first; @ports_file (if set) appears, complete, once all are
 * bound.
 */
static int listen_all(struct gw *gw, const char *ports_file, int take_over)
{
	const char *sock = gw->cur->cfg->admin_socket;
	struct gw_handed *h = NULL;
	char tmp[4096], why[256] = "";
	FILE *f = NULL;
	int ret = 0;

	if (take_over) {
		h = calloc(1, sizeof(*h));
		if (!h)
			return -ENOMEM;
		ret = sock ? gw_takeover_fetch(sock, h, why, sizeof(why)) : -EINVAL;
		if (ret) {
			fg_error("takeover: cannot take the listeners from %s: %s",
				 sock ? sock : "(no $.admin.socket in the config)", why);
			free(h);
			return ret;
		}
		fg_info("takeover: %zu listening socket(s) from %s", h->n, sock);
	}
	gw->listeners = calloc(gw->cur->cfg->n_tunnels, sizeof(*gw->listeners));
	if (!gw->listeners)
		return -ENOMEM;
	gw->n_listeners = gw->cur->cfg->n_tunnels;
	for (size_t i = 0; i < gw->n_listeners; i++) {
		gw->listeners[i].fd = -1;
		gw->listeners[i].t = &gw->cur->cfg->tunnels[i];
	}
	if (ports_file) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", ports_file);
		f = fopen(tmp, "w");
		if (!f) {
			fg_error("cannot write %s: %s", tmp, strerror(errno));
			return -errno;
		}
	}
	for (size_t i = 0; i < gw->n_listeners && !ret; i++)
		ret = listen_on(gw, &gw->listeners[i], f,
				h ? gw_handed_take(h, gw->listeners[i].t->name) : -1);
	if (!ret)
		ret = gw_admin_new(&gw->admin, gw, f, h ? gw_handed_take(h, "@admin") : -1);
	if (h) {
		gw_handed_exit(h);
		free(h);
	}
	if (!ret)
		ret = gw_takeover_new(&gw->takeover, gw);
	if (f) {
		if (fclose(f) && !ret)
			ret = -errno;
		if (!ret && rename(tmp, ports_file))
			ret = -errno;
	}
	return ret;
}

/* Registers @fd for readability with @src of @kind. */
static int add_source(struct gw *gw, int fd, struct gw_src *src, enum gw_src_kind kind)
{
	src->kind = kind;
	return fg_evloop_add(gw->loop, fd, EPOLLIN, src);
}

/*
 * tls.handshake_threads: absent, one per CPU this process may run on; 0,
 * none (handshakes on the loop thread). Read at start only.
 */
static int start_handshake_threads(struct gw *gw)
{
	int n = gw->cur->cfg->handshake_threads, ret;
	cpu_set_t cpus;

	if (n < 0)
		n = sched_getaffinity(0, sizeof(cpus), &cpus) ? 1 : CPU_COUNT(&cpus);
	if (n > GW_HS_THREADS_MAX)
		n = GW_HS_THREADS_MAX;
	if (!n) {
		fg_info("handshakes on the control loop's thread (tls.handshake_threads 0)");
		return 0;
	}
	ret = gw_hs_new(&gw->hs, n);
	if (ret) {
		fg_error("cannot start %d handshake thread(s): %s", n, strerror(-ret));
		return ret;
	}
	fg_info("handshakes on %d thread(s)", n);
	return add_source(gw, gw_hs_fd(gw->hs), &gw->hs_src, SRC_HANDSHAKES);
}

/* Every source but the connections; teardown() undoes what was done, on any failure. */
static int setup(struct gw *gw, const char *ports_file, int take_over)
{
	struct itimerspec every = {.it_interval = {1, 0}, .it_value = {1, 0}};
	int ret;

	gw->sig_src.kind = SRC_SIGNAL;
	ret = fg_evloop_init(gw->loop, handled_signals,
			     (int)(sizeof(handled_signals) / sizeof(handled_signals[0])),
			     &gw->sig_src);
	if (ret)
		return ret;
	/* One tick a second: file polls, renewals and refreshes that are due. */
	gw->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (gw->timerfd < 0 || timerfd_settime(gw->timerfd, 0, &every, NULL))
		return -errno;
	ret = add_source(gw, gw->timerfd, &gw->timer_src, SRC_TIMER);
	if (ret)
		return ret;
	ret = gw_linger_new(&gw->linger, gw->loop);
	if (ret)
		return ret;
	/* Its answers (dpctl.c), its end and its timer (dpctl_life.c). */
	ret = gw_dp_attach(gw->dp, gw->loop);
	if (ret)
		return ret;
	ret = gw_admit_new(gw);
	if (!ret)
		ret = gw_metrics_init(gw->cur->cfg);
	if (!ret)
		ret = listen_all(gw, ports_file, take_over);
	/*
	 * Listeners bound: root's part is done. Before any thread of ours
	 * starts: Landlock confines only the thread that enters it and those
	 * it creates afterwards (the CA client's, the resolver's, the polls').
	 */
	if (!ret)
		ret = fg_sandbox_enter(gw->cur->cfg);
	if (ret)
		return ret;
	ret = fg_resolver_new(&gw->resolver);
	if (!ret)
		ret = add_source(gw, fg_resolver_fd(gw->resolver), &gw->resolve_src, SRC_RESOLVE);
	if (ret)
		return ret;
	ret = fg_jobq_new(&gw->id_jobs);
	if (!ret)
		ret = fg_jobq_new(&gw->fed_jobs);
	if (!ret)
		ret = fg_jobq_new(&gw->reload_jobs);
	if (ret)
		return ret;
	ret = start_handshake_threads(gw);
	if (ret)
		return ret;
	fg_ident_attach(gw->id, gw->id_jobs, gw->fed_jobs);
	ret = add_source(gw, fg_jobq_fd(gw->id_jobs), &gw->id_jobs_src, SRC_JOBS);
	if (!ret)
		ret = add_source(gw, fg_jobq_fd(gw->fed_jobs), &gw->fed_jobs_src, SRC_JOBS);
	if (!ret)
		ret = add_source(gw, fg_jobq_fd(gw->reload_jobs), &gw->reload_src, SRC_RELOAD);
	if (ret)
		return ret;
	return 0;
}

static void teardown(struct gw *gw)
{
	gw_takeover_free(gw->takeover);
	gw_admin_free(gw->admin);
	gw_metrics_exit();
	gw_pool_close(gw);
	gw_conn_free_all(gw); /* the handshake threads' too: they are stopped */
	gw_hs_free(gw->hs);
	gw_pool_exit(gw); /* after the connections: they leave its lists */
	gw_linger_free(gw->linger); /* after the connections: they hand it their sockets */
	gw_admit_free(gw);
	fg_heap_exit(&gw->deadlines);
	for (size_t i = 0; i < gw->n_listeners; i++)
		if (gw->listeners[i].fd >= 0)
			close(gw->listeners[i].fd);
	free(gw->listeners);
	/* A CA request in flight gets a short grace; the process does not wait on the CA. */
	fg_jobq_free(gw->id_jobs);
	fg_jobq_free(gw->fed_jobs);
	fg_jobq_free(gw->reload_jobs); /* a load stuck on a hung mount is left to finish alone */
	fg_resolver_free(gw->resolver);
	fg_ident_free(gw->id);
	gw_gen_exit(gw);
	if (gw->timerfd >= 0)
		close(gw->timerfd);
	fg_evloop_exit(gw->loop);
}

/* The listeners of this batch, once its other events ran (one closed since is skipped). */
static void accept_ready(struct gw *gw)
{
	for (size_t i = 0; i < gw->n_listeners && !gw->fatal; i++)
		if (gw->listeners[i].ready) {
			gw->listeners[i].ready = 0;
			if (gw->listeners[i].fd >= 0)
				gw_conn_accept(gw, &gw->listeners[i]);
		}
}

/* The sooner of two loop timeouts, each -1 for none. */
static int sooner(int a, int b)
{
	if (a < 0)
		return b;
	return b >= 0 && b < a ? b : a;
}

/* One event: the switch over what it came from. */
static void dispatch(struct gw *gw, struct gw_src *s)
{
	switch (s->kind) {
	case SRC_LISTENER:
		/* Accepted after the batch (accept_ready): admission may shed connections in it. */
		((struct gw_listener *)s)->ready = 1;
		break;
	case SRC_CONN:
		gw_conn_ready(gw, (struct gw_conn *)s);
		break;
	case SRC_SIGNAL:
		handle_signal(gw);
		break;
	case SRC_TIMER:
		handle_timer(gw);
		break;
	case SRC_JOBS:
		handle_jobs(gw, s == &gw->id_jobs_src ? gw->id_jobs : gw->fed_jobs);
		break;
	case SRC_RESOLVE:
		fg_resolver_apply(gw->resolver, gw->cur->cfg);
		break;
	case SRC_RELOAD:
		for (struct fg_job *j; (j = fg_jobq_take(gw->reload_jobs));)
			gw_reload_done(gw, j);
		break;
	case SRC_DATAPLANE:
		/* A data plane that dies is restarted there, never the gateway's end. */
		gw_dp_event(gw->dp, s);
		gw_revalidate_poll(gw);
		dp_done(gw);
		break;
	case SRC_LINGER:
		gw_linger_ready(gw->linger, s);
		break;
	case SRC_ADMIN:
		gw_admin_ready(gw->admin, s);
		break;
	case SRC_TAKEOVER:
		gw_takeover_ready(gw->takeover, gw);
		break;
	case SRC_HANDSHAKES:
		gw_conn_handshakes_done(gw);
		break;
	}
}

int fg_control_run(struct fg_config *cfg, struct fg_ident *id, struct gw_dp *dp,
		   const char *ports_file, int take_over)
{
	struct fg_evloop loop = {.epfd = -1, .sigfd = -1};
	struct gw gw = {.loop = &loop, .timerfd = -1, .id = id, .dp = dp};
	struct epoll_event evs[64];
	int ret;

	ret = gw_gen_init(&gw, cfg);
	if (ret) {
		fg_ident_free(id);
		return ret;
	}
	ret = setup(&gw, ports_file, take_over);
	if (ret)
		goto out;
	while (!gw.stop && !gw.fatal) {
		int n = fg_evloop_wait(
		    &loop, evs, 64,
		    sooner(sooner(gw_conn_timeout(&gw), gw_linger_timeout(gw.linger)),
			   gw_admit_timeout(&gw)));

		if (n < 0) {
			gw.fatal = n;
			break;
		}
		/*
		 * A conn watches one fd at a time, so it appears at most once per
		 * batch, and only its own handler frees it.
		 */
		for (int i = 0; i < n && !gw.fatal; i++)
			dispatch(&gw, evs[i].data.ptr);
		accept_ready(&gw);
		takeover_step(&gw);
		if (gw.draining == 1)
			start_drain(&gw);
		gw_conn_expire(&gw);
		gw_pool_tick(&gw); /* after the batch: it may close idle connections */
		gw_linger_expire(gw.linger);
		gw_admit_resume(&gw);
	}
	ret = gw.fatal;
out:
	teardown(&gw);
	return ret;
}
