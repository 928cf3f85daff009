/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_SERVE_T_H
#define FEDGATE_CA_SERVE_T_H

/* The CA server's connections and their table: the internals of serve*.c (see serve.c). */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>

#include "control/ca/http-t.h"

#define FG_CA_MAX_CONNS 256
#define FG_CA_DRAIN_MS 2000 /* how long a refused client may still send before it is cut off */

struct fg_ca;
struct fg_evloop;

enum fg_ca_conn_state { FG_CA_HANDSHAKE, FG_CA_READ, FG_CA_WRITE, FG_CA_DRAIN };

struct fg_ca_conn {
	int fd;
	SSL *ssl;
	enum fg_ca_conn_state st;
	uint32_t events; /* what epoll waits for */
	struct fg_http_req http;
	/* the request as received: its head and body always fit (see http-t.h) */
	char in[FG_HTTP_MAX_HEAD + FG_HTTP_MAX_BODY];
	size_t in_len;
	int sent_continue;
	char *out; /* the answer being written */
	size_t out_len, out_off;
	int then_read; /* after this write, read again (100 Continue) */
	int then_drain;
	size_t drained;
	int64_t deadline; /* fg_mono_ms() */
	uint64_t seq;	  /* accept order: the lowest is the oldest */
	int dead;	  /* evicted: closed, freed after the current batch of events */
	struct fg_ca_conn *next_dead;
	char host[INET6_ADDRSTRLEN]; /* the source address, for the per-source cap */
	char peer[64];		     /* "host:port", for the log */
};

struct fg_ca_server {
	struct fg_ca *ca;
	struct fg_evloop *loop;
	SSL_CTX *ctx;
	int64_t ctx_refresh; /* fg_wall_s() when the server certificate is renewed */
	int lfd;
	struct fg_ca_conn *conns[FG_CA_MAX_CONNS];
	size_t n_conns;
	uint64_t seq;
	struct fg_ca_conn *dead; /* evicted, not yet freed: the epoll batch may still name them */
	int64_t full_logged;
};

#endif
