// SPDX-License-Identifier: MIT
/* The config's peer and upstream names, re-resolved by one helper thread: see resolve.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "control/resolve.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/log.h"

/* How long fg_resolver_free() waits for a lookup in flight. */
#define EXIT_GRACE_MS 500

/* One name of the config: tunnels[index].target or routes[index].peer. */
struct rs_entry {
	int route;
	size_t index;
	char *text;  /* "host:port", as configured */
	char *label; /* "tunnel NAME: peer" or "route[i]: peer", for logs */
	/* in: the address in use when the round began; out: the round's result */
	struct sockaddr_storage sa;
	socklen_t len;
	int ret; /* 0, or -EINVAL with @why */
	char why[128];
	/* the loop's: a failure was logged and no success came since */
	int failing;
};

struct fg_resolver {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int efd;
	/* under @lock */
	int todo;     /* the loop asked for a round over @v */
	int done;     /* the thread finished it */
	int stop;     /* fg_resolver_free() was called */
	int exited;   /* the thread has left its loop */
	int orphaned; /* fg_resolver_free() gave up waiting: the thread frees @r */
	/* the thread's from @todo until @done, the loop's otherwise */
	struct rs_entry *v;
	size_t n;
	/* the loop's */
	int busy;	 /* a round is in flight */
	int64_t last_ms; /* when the last round began, fg_mono_ms() */
	int ever;	 /* a round has begun */
};

static void free_entries(struct rs_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].text);
		free(v[i].label);
	}
	free(v);
}

static void destroy(struct fg_resolver *r)
{
	free_entries(r->v, r->n);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	close(r->efd);
	free(r);
}

/*
 * @e->text's host and port (as fg_addr_parse() split them at load: the text
 * is valid) into @host and *@port; 0 or -EINVAL.
 */
static int split(const char *text, char *host, size_t size, const char **port)
{
	const char *h = text, *end;

	if (text[0] == '[') {
		h = text + 1;
		end = strchr(text, ']');
		*port = end ? end + 2 : NULL;
	} else {
		end = strrchr(text, ':');
		*port = end ? end + 1 : NULL;
	}
	if (!end || !*port || (size_t)(end - h) >= size)
		return -EINVAL;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	return 0;
}

/*
 * One lookup, as at load (getaddrinfo, first answer), but sticky: while the
 * address in use (@e->sa on entry) is still among the answers it stays, so a
 * name served round-robin does not move new dials at every round.
 */
static void lookup(struct rs_entry *e)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	const char *port;
	char host[256];
	int ret;

	if (split(e->text, host, sizeof(host), &port)) {
		e->ret = -EINVAL;
		snprintf(e->why, sizeof(e->why), "not \"host:port\"");
		return;
	}
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret || !res) {
		e->ret = -EINVAL;
		snprintf(e->why, sizeof(e->why), "%s",
			 ret == EAI_NONAME ? "host name does not resolve" : gai_strerror(ret));
		freeaddrinfo(res);
		return;
	}
	e->ret = 0;
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_addrlen == e->len && !memcmp(ai->ai_addr, &e->sa, e->len))
			break;
	if (!ai) {
		ai = res;
		memcpy(&e->sa, ai->ai_addr, ai->ai_addrlen);
		e->len = ai->ai_addrlen;
	}
	freeaddrinfo(res);
}

/* Every entry of @r->v, one lookup each; a stop request ends the round early. */
static void run_round(struct fg_resolver *r)
{
	for (size_t i = 0; i < r->n; i++) {
		int stop;

		pthread_mutex_lock(&r->lock);
		stop = r->stop;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			return;
		lookup(&r->v[i]);
	}
}

static void *resolver_main(void *arg)
{
	struct fg_resolver *r = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->stop && !r->todo)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		r->todo = 0;
		pthread_mutex_unlock(&r->lock);
		run_round(r);
		pthread_mutex_lock(&r->lock);
		r->done = 1;
		if (write(r->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow at one write per round. */
		}
	}
	r->exited = 1;
	if (r->orphaned) {
		/* Nobody waits for us any more: the resolver is ours to free. */
		pthread_mutex_unlock(&r->lock);
		destroy(r);
		return NULL;
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int fg_resolver_new(struct fg_resolver **out)
{
	struct fg_resolver *r;
	sigset_t all, old;
	int ret;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		ret = -errno;
		goto free_resolver;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	/* Signals stay with the control loop's signalfd: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&r->thread, NULL, resolver_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		goto destroy_sync;
	*out = r;
	return 0;
destroy_sync:
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	close(r->efd);
free_resolver:
	free(r);
	return ret;
}

void fg_resolver_free(struct fg_resolver *r)
{
	struct timespec until;

	if (!r)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)EXIT_GRACE_MS * 1000000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_broadcast(&r->cond);
	while (!r->exited)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
			break;
	if (!r->exited) {
		/* A lookup still runs: its thread frees the resolver when it returns. */
		r->orphaned = 1;
		pthread_mutex_unlock(&r->lock);
		pthread_detach(r->thread);
		return;
	}
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	destroy(r);
}

int fg_resolver_fd(const struct fg_resolver *r)
{
	return r->efd;
}

/* @cfg's address @i of the walk, tunnels' targets first, then routes' peers; NULL past them. */
static const struct fg_addr *slot(const struct fg_config *cfg, int route, size_t i,
				  const char **role, char *label, size_t len)
{
	if (!route) {
		const struct fg_tunnel_conf *t = &cfg->tunnels[i];

		*role = t->mode == FG_MODE_ORIGINATE ? "peer" : "upstream";
		snprintf(label, len, "tunnel %s", t->name);
		return &t->target;
	}
	*role = "peer";
	snprintf(label, len, "route[%zu]", i);
	return &cfg->routes[i].peer;
}

/* Appends the entry for @a; 0 or -ENOMEM. @old (the last round's) carries its failure streak. */
static int add_entry(struct fg_resolver *r, const struct rs_entry *old, size_t n_old, int route,
		     size_t i, const struct fg_addr *a, const char *label)
{
	struct rs_entry *e = &r->v[r->n];

	memset(e, 0, sizeof(*e));
	e->route = route;
	e->index = i;
	e->sa = a->sa;
	e->len = a->len;
	e->text = strdup(a->text);
	e->label = strdup(label);
	if (!e->text || !e->label) {
		free(e->text);
		free(e->label);
		return -ENOMEM;
	}
	for (size_t j = 0; j < n_old; j++)
		if (!strcmp(old[j].label, label) && !strcmp(old[j].text, a->text))
			e->failing = old[j].failing;
	r->n++;
	return 0;
}

/* @r->v anew from @cfg's names; 0 or -ENOMEM (then @r has no entries). */
static int collect(struct fg_resolver *r, const struct fg_config *cfg)
{
	struct rs_entry *old = r->v;
	size_t n_old = r->n, cap = cfg->n_tunnels + cfg->n_routes;
	char label[320];
	int ret = 0;

	r->v = cap ? calloc(cap, sizeof(*r->v)) : NULL;
	r->n = 0;
	for (size_t k = 0; k < cap && r->v && !ret; k++) {
		int route = k >= cfg->n_tunnels;
		size_t i = route ? k - cfg->n_tunnels : k;
		const char *role;
		const struct fg_addr *a = slot(cfg, route, i, &role, label, sizeof(label));
		size_t used = strlen(label);

		/* Capture and transparent tunnels have no target of their own. */
		if (!a->text || !a->name)
			continue;
		snprintf(label + used, sizeof(label) - used, ": %s", role);
		ret = add_entry(r, old, n_old, route, i, a, label);
	}
	if (cap && !r->v)
		ret = -ENOMEM;
	free_entries(old, n_old);
	if (ret) {
		free_entries(r->v, r->n);
		r->v = NULL;
		r->n = 0;
	}
	return ret;
}

void fg_resolver_tick(struct fg_resolver *r, const struct fg_config *cfg)
{
	int64_t now = fg_mono_ms();
	int ret;

	if (r->busy || cfg->dns_refresh_s <= 0)
		return;
	/* The load resolved every name: the first round is one interval after it. */
	if (!r->ever) {
		r->ever = 1;
		r->last_ms = now;
		return;
	}
	if (now - r->last_ms < (int64_t)cfg->dns_refresh_s * 1000)
		return;
	r->last_ms = now;
	ret = collect(r, cfg);
	if (ret) {
		fg_warn("dns: cannot re-resolve names: %s", strerror(-ret));
		return;
	}
	if (!r->n)
		return;
	r->busy = 1;
	pthread_mutex_lock(&r->lock);
	r->todo = 1;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int same_addr(const struct fg_addr *a, const struct rs_entry *e)
{
	return a->len == e->len && !memcmp(&a->sa, &e->sa, e->len);
}

/* One entry's result into @a (the config's); logs what changed. */
static void apply_one(struct rs_entry *e, struct fg_addr *a)
{
	char was[INET6_ADDRSTRLEN + 8], now[INET6_ADDRSTRLEN + 8];

	fg_addr_text(&a->sa, was, sizeof(was));
	if (e->ret) {
		if (!e->failing)
			fg_warn("%s %s no longer resolves (%s); keeping %s", e->label, e->text,
				e->why, was);
		e->failing = 1;
		return;
	}
	fg_addr_text(&e->sa, now, sizeof(now));
	if (!same_addr(a, e))
		fg_info("%s %s now resolves to %s (was %s)", e->label, e->text, now, was);
	else if (e->failing)
		fg_info("%s %s resolves again, to %s", e->label, e->text, now);
	e->failing = 0;
	memcpy(&a->sa, &e->sa, sizeof(a->sa));
	a->len = e->len;
}

void fg_resolver_apply(struct fg_resolver *r, struct fg_config *cfg)
{
	uint64_t n;
	int done;

	pthread_mutex_lock(&r->lock);
	done = r->done;
	r->done = 0;
	if (read(r->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: already clear. */
	}
	pthread_mutex_unlock(&r->lock);
	if (!done)
		return;
	r->busy = 0;
	for (size_t k = 0; k < r->n; k++) {
		struct rs_entry *e = &r->v[k];
		size_t max = e->route ? cfg->n_routes : cfg->n_tunnels;
		struct fg_addr *a;

		/* A reload between: the config's entry must still be this name. */
		if (e->index >= max)
			continue;
		a = e->route ? &cfg->routes[e->index].peer : &cfg->tunnels[e->index].target;
		if (a->name && a->text && !strcmp(a->text, e->text))
			apply_one(e, a);
	}
}
