// SPDX-License-Identifier: MIT
/*
 * Admission under load (control/admit.h): the pending connections of
 * terminate tunnels on lists in order, counted per source in a small hash
 * table, the oldest shed at a limit; and the reserve fd that lets a process
 * out of descriptors take connections off its backlog instead of spinning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control/admit.h"
#include "control/dpctl.h"
#include "control/metrics.h"
#include "control/sock.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/log.h"
#include "fedgate/ratelimit.h"

/* A listener out of fds (or memory) waits this long before it accepts again. */
#define PAUSE_MS 100
/* What one failed round takes off a backlog through the reserve fd, at most. */
#define DRAIN_MAX 64
/* Fds never given to pending connections (of RLIMIT_NOFILE): dials, files, the CA. */
#define HEADROOM_MIN 64
#define HEADROOM_MAX 4096
#define BUCKETS_MIN 256

/* Why connections are shed; one log line a second each. */
enum shed_why { SHED_SOURCE, SHED_GLOBAL, SHED_FDS, SHED_WHYS };

/* Why a new connection is refused at a tunnel cap; one log line a second each. */
enum cap_why { CAP_TUNNEL, CAP_GLOBAL, CAP_WHYS };

/* The pending connections from one address (IPv6: one /64). Freed when none is left. */
struct gw_source {
	struct gw_source *next; /* in its bucket */
	uint64_t key;
	int family; /* 4, 6, or 0 for anything else (one source for all) */
	size_t n;
	struct gw_pend_list tier[GW_PEND_TIERS];
};

struct gw_admit {
	struct gw_pend_list tier[GW_PEND_TIERS];
	size_t n; /* pending, every source */
	struct gw_source **buckets;
	size_t n_buckets, n_sources; /* n_buckets: a power of two */
	uint64_t seed[2];	     /* keys the bucket hash: sources are the client's choice */
	size_t fd_cap;		     /* pending at most, for RLIMIT_NOFILE */
	int reserve_fd;		     /* /dev/null, given up only to drain a backlog; -1: lost */
	struct fg_ratelimit shed_rl[SHED_WHYS], fail_rl;
	char last_src[INET6_ADDRSTRLEN];
	char fail_tunnel[64];
	int fail_err, fail_paused;
	uint64_t drained; /* closed unserved through the reserve since the last line */
	struct fg_ratelimit cap_rl[CAP_WHYS];
	char cap_tunnel[CAP_WHYS][64];		   /* the last refused connection's tunnel */
	size_t cap_n[CAP_WHYS], cap_max[CAP_WHYS]; /* its count and cap then */
};

static void list_init(struct gw_pend_list *l)
{
	l->head.prev = l->head.next = &l->head;
}

static int list_empty(const struct gw_pend_list *l)
{
	return l->head.next == &l->head;
}

static void list_append(struct gw_pend_list *l, struct gw_pend_link *n)
{
	n->prev = l->head.prev;
	n->next = &l->head;
	l->head.prev->next = n;
	l->head.prev = n;
}

static void list_unlink(struct gw_pend_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

/* The oldest on @tiers: silent ones first. NULL if none. */
static struct gw_pend_link *oldest(struct gw_pend_list *tiers)
{
	for (int t = 0; t < GW_PEND_TIERS; t++)
		if (!list_empty(&tiers[t]))
			return tiers[t].head.next;
	return NULL;
}

/* @ss as a source: IPv4 (v4-mapped too) by address, IPv6 by its /64. */
static void source_key(const struct sockaddr_storage *ss, uint64_t *key, int *family)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const uint8_t *b = s6->sin6_addr.s6_addr;

	*key = 0;
	*family = 0;
	if (ss->ss_family == AF_INET) {
		*key = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
		*family = 4;
	} else if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		*key = (uint64_t)b[12] << 24 | (uint64_t)b[13] << 16 | (uint64_t)b[14] << 8 | b[15];
		*family = 4;
	} else if (ss->ss_family == AF_INET6) {
		for (int i = 0; i < 8; i++)
			*key = *key << 8 | b[i];
		*family = 6;
	}
}

/* @ss's address without its port, for the log line. */
static void source_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6
			    ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
			    : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if ((ss->ss_family != AF_INET && ss->ss_family != AF_INET6) ||
	    !inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

/* A keyed mix (murmur3's finalizer around secret seeds): chains stay short for any sources. */
static size_t bucket_of(const struct gw_admit *a, uint64_t key, int family, size_t n_buckets)
{
	uint64_t h = (key ^ a->seed[0]) + (uint64_t)family * 0x9e3779b97f4a7c15ull;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h ^= a->seed[1];
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)(h & (n_buckets - 1));
}

static struct gw_source *source_find(const struct gw_admit *a, uint64_t key, int family)
{
	struct gw_source *s = a->buckets[bucket_of(a, key, family, a->n_buckets)];

	while (s && (s->key != key || s->family != family))
		s = s->next;
	return s;
}

/* Doubles the table once there are more sources than buckets; a failure keeps the old one. */
static void grow(struct gw_admit *a)
{
	size_t n = a->n_buckets * 2;
	struct gw_source **b;

	if (a->n_sources <= a->n_buckets)
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < a->n_buckets; i++)
		while (a->buckets[i]) {
			struct gw_source *s = a->buckets[i];
			size_t j = bucket_of(a, s->key, s->family, n);

			a->buckets[i] = s->next;
			s->next = b[j];
			b[j] = s;
		}
	free(a->buckets);
	a->buckets = b;
	a->n_buckets = n;
}

static void source_drop(struct gw_admit *a, struct gw_source *s)
{
	struct gw_source **p = &a->buckets[bucket_of(a, s->key, s->family, a->n_buckets)];

	while (*p != s)
		p = &(*p)->next;
	*p = s->next;
	a->n_sources--;
	free(s);
}

/* Pending connections at most for RLIMIT_NOFILE now: the rest is headroom. */
static size_t fd_cap(void)
{
	struct rlimit r;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	room = r.rlim_cur / 8;
	room = room < HEADROOM_MIN ? HEADROOM_MIN : room > HEADROOM_MAX ? HEADROOM_MAX : room;
	return r.rlim_cur > room ? (size_t)(r.rlim_cur - room) : 1;
}

int gw_admit_new(struct gw *gw)
{
	struct gw_admit *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->n_buckets = BUCKETS_MIN;
	a->buckets = calloc(a->n_buckets, sizeof(*a->buckets));
	if (!a->buckets) {
		free(a);
		return -ENOMEM;
	}
	for (int t = 0; t < GW_PEND_TIERS; t++)
		list_init(&a->tier[t]);
	/* Without the kernel's randomness the table still works; its chains are only guessable. */
	if (getrandom(a->seed, sizeof(a->seed), GRND_NONBLOCK) != sizeof(a->seed)) {
		a->seed[0] = (uint64_t)fg_mono_ms() ^ (uint64_t)getpid() << 32;
		a->seed[1] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	}
	for (int i = 0; i < SHED_WHYS; i++)
		fg_ratelimit_init(&a->shed_rl[i], 1000);
	fg_ratelimit_init(&a->fail_rl, 1000);
	for (int i = 0; i < CAP_WHYS; i++)
		fg_ratelimit_init(&a->cap_rl[i], 1000);
	a->fd_cap = fd_cap();
	a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	gw->admit = a;
	return 0;
}

void gw_admit_free(struct gw *gw)
{
	struct gw_admit *a = gw->admit;

	if (!a)
		return;
	for (size_t i = 0; i < a->n_buckets; i++)
		while (a->buckets[i]) {
			struct gw_source *s = a->buckets[i];

			a->buckets[i] = s->next;
			free(s);
		}
	free(a->buckets);
	if (a->reserve_fd >= 0)
		close(a->reserve_fd);
	free(a);
	gw->admit = NULL;
}

static void shed_log(struct gw *gw, enum shed_why why, uint64_t n)
{
	const struct fg_limits_conf *lim = &gw->cur->cfg->limits;
	struct gw_admit *a = gw->admit;

	if (!n)
		return;
	if (why == SHED_SOURCE)
		fg_warn(
		    "shed %llu unauthenticated connection(s), oldest first, since the last such "
		    "line: limits.handshakes_per_source (%d) reached (last from %s)",
		    (unsigned long long)n, lim->handshakes_per_source, a->last_src);
	else if (why == SHED_GLOBAL)
		fg_warn(
		    "shed %llu unauthenticated connection(s), oldest first, since the last such "
		    "line: limits.handshakes (%d) reached",
		    (unsigned long long)n, lim->handshakes);
	else
		fg_warn(
		    "shed %llu unauthenticated connection(s), oldest first, since the last such "
		    "line: out of file descriptors (%zu pending at most under RLIMIT_NOFILE)",
		    (unsigned long long)n, a->fd_cap);
}

static void fail_log(struct gw *gw, uint64_t n)
{
	struct gw_admit *a = gw->admit;
	char paused[64] = "";

	if (!n)
		return;
	if (a->fail_paused)
		snprintf(paused, sizeof(paused), ", accepts paused %d ms after each", PAUSE_MS);
	fg_warn("tunnel %s: accept: %s: %llu failure(s) since the last such line, %llu "
		"connection(s) closed unserved%s",
		a->fail_tunnel, strerror(a->fail_err), (unsigned long long)n,
		(unsigned long long)a->drained, paused);
	a->drained = 0;
}

/*
 * The oldest of @tiers (on their .src links when @per_source), counted as
 * shed for @why; NULL when there is none.
 */
static struct gw_conn *victim(struct gw *gw, struct gw_pend_list *tiers, int per_source,
			      enum shed_why why)
{
	struct gw_pend_link *l = oldest(tiers);

	if (!l)
		return NULL;
	gw_metrics_limit(why == SHED_SOURCE   ? "handshakes_per_source"
			 : why == SHED_GLOBAL ? "handshakes"
					      : "open_files");
	shed_log(gw, why, fg_ratelimit_hit(&gw->admit->shed_rl[why], fg_mono_ms()));
	if (per_source)
		return (struct gw_conn *)((char *)l - offsetof(struct gw_conn, pend.src));
	return (struct gw_conn *)((char *)l - offsetof(struct gw_conn, pend.all));
}

struct gw_conn *gw_admit_victim(struct gw *gw, const struct sockaddr_storage *ss)
{
	const struct fg_limits_conf *lim = &gw->cur->cfg->limits;
	size_t all = lim->handshakes > 0 ? (size_t)lim->handshakes : FG_LIMIT_HANDSHAKES_DEFAULT;
	size_t one = lim->handshakes_per_source > 0 ? (size_t)lim->handshakes_per_source : all;
	struct gw_admit *a = gw->admit;
	struct gw_source *s;
	uint64_t key;
	int family;

	source_key(ss, &key, &family);
	/* A source at its cap makes room from its own: a flood from one address sheds itself. */
	s = source_find(a, key, family);
	if (s && s->n >= one) {
		source_text(ss, a->last_src, sizeof(a->last_src));
		return victim(gw, s->tier, 1, SHED_SOURCE);
	}
	if (a->n >= all)
		return victim(gw, a->tier, 0, SHED_GLOBAL);
	if (a->n >= a->fd_cap)
		return victim(gw, a->tier, 0, SHED_FDS);
	return NULL;
}

struct gw_conn *gw_admit_victim_fds(struct gw *gw)
{
	return victim(gw, gw->admit->tier, 0, SHED_FDS);
}

int gw_admit_join(struct gw *gw, struct gw_conn *c, const struct sockaddr_storage *ss)
{
	struct gw_admit *a = gw->admit;
	struct gw_source *s;
	uint64_t key;
	int family;
	size_t b;

	source_key(ss, &key, &family);
	s = source_find(a, key, family);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->key = key;
		s->family = family;
		for (int t = 0; t < GW_PEND_TIERS; t++)
			list_init(&s->tier[t]);
		b = bucket_of(a, key, family, a->n_buckets);
		s->next = a->buckets[b];
		a->buckets[b] = s;
		a->n_sources++;
		grow(a);
	}
	s->n++;
	a->n++;
	c->pend.source = s;
	c->pend.tier = GW_PEND_HELLO;
	list_append(&a->tier[GW_PEND_HELLO], &c->pend.all);
	list_append(&s->tier[GW_PEND_HELLO], &c->pend.src);
	return 0;
}

void gw_admit_leave(struct gw *gw, struct gw_conn *c)
{
	struct gw_source *s = c->pend.source;

	if (!s)
		return;
	list_unlink(&c->pend.all);
	list_unlink(&c->pend.src);
	c->pend.source = NULL;
	c->pend.tier = GW_PEND_NONE;
	gw->admit->n--;
	if (--s->n == 0)
		source_drop(gw->admit, s);
}

void gw_admit_sync(struct gw *gw, struct gw_conn *c)
{
	int tier = c->state == CONN_HELLO	? GW_PEND_HELLO
		   : c->state == CONN_HANDSHAKE ? GW_PEND_HANDSHAKE
						: GW_PEND_NONE;

	if (!c->pend.source || tier == c->pend.tier)
		return;
	/* Past the handshake means authorized: it is no one's to shed any more. */
	if (tier == GW_PEND_NONE) {
		gw_admit_leave(gw, c);
		return;
	}
	list_unlink(&c->pend.all);
	list_unlink(&c->pend.src);
	c->pend.tier = tier;
	list_append(&gw->admit->tier[tier], &c->pend.all);
	list_append(&c->pend.source->tier[tier], &c->pend.src);
}

/*
 * Out of fds with nothing to shed: the reserve fd makes room for one accept
 * at a time, each closed at once with a reset, so the backlog does not keep
 * the listener readable forever. Returns how many were closed.
 */
static uint64_t drain(struct gw *gw, struct gw_listener *l)
{
	struct gw_admit *a = gw->admit;
	uint64_t n = 0;
	int fd;

	if (a->reserve_fd >= 0)
		close(a->reserve_fd);
	a->reserve_fd = -1;
	while (n < DRAIN_MAX && (fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		fg_sock_close_reset(fd);
		n++;
	}
	a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return n;
}

void gw_admit_accept_failed(struct gw *gw, struct gw_listener *l, int err)
{
	struct gw_admit *a = gw->admit;
	int no_fds = err == EMFILE || err == ENFILE;
	int64_t now;

	if (no_fds)
		a->drained += drain(gw, l);
	now = fg_mono_ms();
	/* Level-triggered: a listener that fails for want of a resource would wake again at once.
	 */
	a->fail_paused = no_fds || err == ENOBUFS || err == ENOMEM;
	if (a->fail_paused) {
		fg_evloop_mod(gw->loop, l->fd, 0, &l->src);
		l->paused_until = now + PAUSE_MS;
	}
	snprintf(a->fail_tunnel, sizeof(a->fail_tunnel), "%s", l->t->name);
	a->fail_err = err;
	if (no_fds)
		gw_metrics_limit("accept_open_files");
	fail_log(gw, fg_ratelimit_hit(&a->fail_rl, now));
}

int gw_admit_timeout(const struct gw *gw)
{
	int64_t now = fg_mono_ms(), first = INT64_MAX;

	for (size_t i = 0; i < gw->n_listeners; i++)
		if (gw->listeners[i].fd >= 0 && gw->listeners[i].paused_until &&
		    gw->listeners[i].paused_until < first)
			first = gw->listeners[i].paused_until;
	if (first == INT64_MAX)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}

void gw_admit_resume(struct gw *gw)
{
	int64_t now = fg_mono_ms();
	int ret;

	for (size_t i = 0; i < gw->n_listeners; i++) {
		struct gw_listener *l = &gw->listeners[i];

		if (!l->paused_until || l->paused_until > now)
			continue;
		l->paused_until = 0;
		if (l->fd < 0) /* closed since (a stopping gateway closes its listeners) */
			continue;
		ret = fg_evloop_mod(gw->loop, l->fd, EPOLLIN, &l->src);
		if (ret)
			fg_warn("tunnel %s: cannot resume accepts: %s", l->t->name, strerror(-ret));
	}
}

static void cap_log(struct gw *gw, enum cap_why why, uint64_t n)
{
	struct gw_admit *a = gw->admit;

	if (!n)
		return;
	if (why == CAP_TUNNEL)
		fg_warn("tunnel %s: refused %llu new connection(s) since the last such line: "
			"%zu tunnel(s) established, at its max_tunnels %zu",
			a->cap_tunnel[why], (unsigned long long)n, a->cap_n[why], a->cap_max[why]);
	else
		fg_warn("refused %llu new connection(s) since the last such line (the last on "
			"tunnel %s): %zu tunnel(s) established, at limits.tunnels %zu",
			(unsigned long long)n, a->cap_tunnel[why], a->cap_n[why], a->cap_max[why]);
}

int gw_admit_tunnel(struct gw *gw, const struct fg_tunnel_conf *t)
{
	struct gw_admit *a = gw->admit;
	size_t max = (size_t)gw->cur->cfg->limits.tunnels, n = 0;
	enum cap_why why;

	if (t->max_tunnels && (n = gw_dp_tunnels(gw->dp, t->name)) >= (size_t)t->max_tunnels) {
		why = CAP_TUNNEL;
		max = (size_t)t->max_tunnels;
	} else if (max && (n = gw_dp_tunnels(gw->dp, NULL)) >= max) {
		why = CAP_GLOBAL;
	} else {
		return 0;
	}
	snprintf(a->cap_tunnel[why], sizeof(a->cap_tunnel[why]), "%s", t->name);
	a->cap_n[why] = n;
	a->cap_max[why] = max;
	gw_metrics_limit(why == CAP_TUNNEL ? "max_tunnels" : "tunnels");
	cap_log(gw, why, fg_ratelimit_hit(&a->cap_rl[why], fg_mono_ms()));
	return -EUSERS;
}

void gw_admit_tick(struct gw *gw)
{
	struct gw_admit *a = gw->admit;
	int64_t now = fg_mono_ms();

	for (int i = 0; i < CAP_WHYS; i++)
		cap_log(gw, (enum cap_why)i, fg_ratelimit_flush(&a->cap_rl[i], now));
	for (int i = 0; i < SHED_WHYS; i++)
		shed_log(gw, (enum shed_why)i, fg_ratelimit_flush(&a->shed_rl[i], now));
	fail_log(gw, fg_ratelimit_flush(&a->fail_rl, now));
	/* prlimit(1) may have moved the limit; a lost reserve is taken again. */
	a->fd_cap = fd_cap();
	if (a->reserve_fd < 0)
		a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}
