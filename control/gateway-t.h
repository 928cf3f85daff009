/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_GATEWAY_T_H
#define FEDGATE_GATEWAY_T_H

/*
 * The control loop's state, shared by its three files: loop.c (the loop, its
 * event sources and listeners), conn.c (one connection from accept to
 * handoff) and reload.c (SIGHUP and config generations). Calls go one way:
 * loop.c -> conn.c -> reload.c, and loop.c -> reload.c.
 */
#include <stdint.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include "control/admit-t.h"
#include "control/config-t.h"
#include "control/hs_thread-t.h"
#include "control/peer-t.h"
#include "control/pool-t.h"
#include "control/tls-t.h"
#include "fedgate/heap-t.h"

struct fg_evloop;
struct fg_resolver;
struct fg_ident;
struct gw_admit;
struct fg_jobq;
struct gw_dp;
struct gw_linger;
struct gw_admin;
struct gw_takeover;
struct gw_hs;

/*
 * SRC_RESOLVE: a round of re-resolved names is back (control/resolve.c);
 * SRC_RELOAD: a config loaded for SIGHUP is back (reload.c);
 * SRC_ADMIN: the admin listener or one of its connections (admin.h);
 * SRC_LINGER: a refused socket after its alert (linger.h);
 * SRC_TAKEOVER: a successor asks for the listeners (takeover.h);
 * SRC_HANDSHAKES: handshakes the handshake threads finished (hs_thread.h).
 */
enum gw_src_kind {
	SRC_LISTENER,
	SRC_CONN,
	SRC_SIGNAL,
	SRC_DATAPLANE,
	SRC_TIMER,
	SRC_JOBS,
	SRC_RESOLVE,
	SRC_RELOAD,
	SRC_LINGER,
	SRC_ADMIN,
	SRC_TAKEOVER,
	SRC_HANDSHAKES
};

/* Every epoll registration points at one of these, first member of its owner. */
struct gw_src {
	enum gw_src_kind kind;
};

struct gw_listener {
	struct gw_src src;
	int fd;
	const struct fg_tunnel_conf *t; /* in the current generation's config */
	int ready;		/* readable in this batch: accepted once it is done (loop.c) */
	int64_t paused_until;	/* no accepts until then (admit.c), ms on fg_mono_ms(); 0: none */
};

/*
 * One loaded config. A reload makes a new one current; the old one lives on
 * while connections that started under it (and point at its tunnels) do.
 */
struct gw_gen {
	struct fg_config *cfg;
	int owned; /* the first one is the caller's */
	int refs;  /* connections + 1 while current */
	struct gw_gen *next;
};

/* Where a connection is; each state waits on one fd (gw_conn.watch_fd). */
enum gw_conn_state {
	CONN_HELLO, /* terminate: the ClientHello's first record, until complete in the socket */
	CONN_DIAL_PEER,
	CONN_HANDSHAKE,
	CONN_SEND_DEST, /* transparent originate: the destination header, being written */
	CONN_RECV_DEST, /* transparent terminate: the destination header, being read */
	CONN_DIAL_UPSTREAM,
	CONN_POOLED, /* originate: handshaken and idle in a warm pool (conn_pool.c) */
	CONN_TICKET, /* originate, resumption on: its peer's NewSessionTicket, being read */
};

struct gw_conn {
	struct gw_src src;
	struct gw_conn *prev, *next;
	/*
	 * Taken together when the connection is accepted: a SIGHUP before its
	 * handshake must not pair the new bundle with the old allow rules or
	 * the other way round.
	 */
	struct gw_gen *gen;
	struct fg_tls tls;
	const struct fg_tunnel_conf *t;
	const struct fg_route *route; /* capture tunnels: where @dst goes, in @gen's config */
	enum gw_conn_state state;
	int plain_fd; /* originate: the app; terminate: the upstream (once dialed) */
	int tls_fd;
	int watch_fd; /* the fd registered in the loop, -1 if none */
	SSL *ssl;
	struct fg_tls_conn st;
	struct fg_peer_id *peer; /* the verified peer, from authorize() on; NULL before */
	struct fg_heap_node deadline; /* key: when it is refused, ms on fg_mono_ms() */
	char addr[INET6_ADDRSTRLEN + 8]; /* the TLS peer, for logs */
	/* transparent tunnels: the application's address and the one it dialed */
	struct sockaddr_storage app, dst;
	char flow[2 * INET6_ADDRSTRLEN + 24]; /* "app -> dst" for logs; empty if not transparent */
	uint8_t *hdr; /* the destination header (and first bytes) in flight */
	size_t hdr_len;
	size_t app_len; /* A: the application's bytes in the first record */
	int reset_tls;	/* B, transparent: refused once it dialed, so the app sees a reset */
	int legs_slot;	      /* the plain side's local redirect slot, -1: none */
	uint64_t legs_cookie; /* its announced upstream dial (local_redirect.c), 0: none */
	struct gw_pend pend;  /* admit.c: while unauthenticated on a terminate tunnel */
	unsigned long epoch;  /* gw.reval_epoch when accepted: the rules it is authorized under */
	/* control/pool.h: its role there, its pool (originate), its place in a list */
	enum gw_pool_role pool_role;
	struct gw_pool *pool;
	struct gw_conn *pool_prev, *pool_next;
	/* conn_resume.c: the peer's first bytes read with its ticket (owned), for the handoff */
	uint8_t *early;
	size_t early_len;
	uint64_t ticket_restore; /* the deadline while waiting for the ticket was moved from */
	int ticket_waited;	 /* 1: it read its ticket before the handoff; 2: none came */
	struct gw_hs_slot hs; /* hs_thread.c: while a handshake thread owns it */
};

struct gw {
	struct fg_evloop *loop; /* loop.c's; conn.c registers its fds there */
	struct gw_gen *cur, *retired;
	struct fg_ident *id;
	struct fg_jobq *id_jobs, *fed_jobs; /* enroll/renew; federation fetches */
	/* SIGHUP's config loads (reload.c): one at a time, and one more if asked meanwhile */
	struct fg_jobq *reload_jobs;
	int reloading, reload_again;
	struct gw_listener *listeners;
	size_t n_listeners;
	struct gw_src sig_src, timer_src, id_jobs_src, fed_jobs_src, reload_src;
	int timerfd;
	struct gw_dp *dp; /* the data plane, its queue of handoffs (control/dpctl.h) */
	struct gw_conn *conns;
	struct fg_heap deadlines; /* every connection's, soonest first */
	/* refused sockets, read from until they close (linger.h) */
	struct gw_linger *linger;
	size_t n_conns, trim_at; /* connections now; how many there were at the last malloc_trim */
	/* The config's names, re-resolved off the loop; its rounds come back on @resolve_src. */
	struct fg_resolver *resolver;
	struct gw_src resolve_src;
	struct gw_admit *admit; /* admit.c: limits on unauthenticated connections, the fd reserve */
	struct gw_admin *admin; /* admin.c: /metrics; NULL without $.admin */
	struct gw_takeover *takeover; /* takeover.c: $.admin.socket; NULL without */
	/* hs_thread.c: the handshake threads; NULL with tls.handshake_threads 0 (on the loop) */
	struct gw_hs *hs;
	struct gw_src hs_src;
	/* 1: a successor took the listeners; 2: they are closed here, handshakes finish */
	int handed_over;
	int fatal; /* a negative errno stops the loop */
	int stop;
	int draining; /* SIGTERM: 1 once received, 2 once listeners closed and the data plane told */
	/*
	 * revalidate.c: the epoch of the trust and rules new connections are
	 * accepted under (moved on by each change), and the identity's trust
	 * generation the last pass saw.
	 */
	unsigned long reval_epoch, trust_gen_seen;
	struct gw_pools *pools; /* conn_pool.c: the warm pools of the current config */
};

#endif
