/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_SERVE_H
#define FEDGATE_CA_SERVE_H

/*
 * The CA server's internals, shared by serve*.c only; fg_ca_serve() (ca.h) is
 * its one entry. Who calls whom: serve.c (listener, loop, certificate) ->
 * serve_conns.c (the table: accept, caps, deadlines) -> serve_conn.c (one
 * connection's TLS and request) -> serve_reply.c (the answers).
 */
#include <stdint.h>
#include <sys/socket.h>

#include "control/ca/serve-t.h"

/* serve_reply.c */

/*
 * Queues the answer @status with @body (NUL-terminated, of type @ctype);
 * the connection ends after it, first draining what the client still sends
 * when @drain. Returns 0 or -ENOMEM.
 */
int fg_ca_reply(struct fg_ca_conn *c, int status, const char *ctype, const char *body,
		int drain);
/* Logs and queues the JSON error {"status":@status,"message":@msg}. 0 or -ENOMEM. */
int fg_ca_reply_error(struct fg_ca_conn *c, int status, const char *msg);
/* Queues "100 Continue", after which the connection reads on. 0 or -ENOMEM. */
int fg_ca_reply_continue(struct fg_ca_conn *c);

/* serve_conn.c */

/*
 * A connection on the accepted @fd from @host:@port, in its TLS handshake
 * until @deadline. It owns @fd once it returns; NULL (out of memory) leaves
 * @fd to the caller.
 */
struct fg_ca_conn *fg_ca_conn_new(SSL_CTX *ctx, int fd, const char *host, unsigned port,
				  int64_t deadline);
/* Frees its TLS session and closes its socket; the memory stays. Idempotent. */
void fg_ca_conn_shut(struct fg_ca_conn *c);
/* Shuts @c and frees it, wiping what the client sent. NULL is fine. */
void fg_ca_conn_free(struct fg_ca_conn *c);
/*
 * Runs @c as far as it goes without blocking (@c is registered in s->loop
 * with c->events). Returns 0 while it waits for its socket, 1 once it is
 * done or broken: the caller then closes it.
 */
int fg_ca_conn_step(struct fg_ca_server *s, struct fg_ca_conn *c);

/* serve_conns.c */

/* Accepts what the listener has, making room where the table is full. */
void fg_ca_conns_accept(struct fg_ca_server *s);
/* Steps @c (an epoll event's tag; evicted ones are skipped), closing it when it is done. */
void fg_ca_conns_step(struct fg_ca_server *s, struct fg_ca_conn *c);
/* Frees the evicted connections: call between batches of events. */
void fg_ca_conns_reap(struct fg_ca_server *s);
/* Ends the connections past their deadline: a 408 if the request never completed. */
void fg_ca_conns_sweep(struct fg_ca_server *s);
/* The earliest deadline of an open connection, INT64_MAX when none is open. */
int64_t fg_ca_conns_next_deadline(const struct fg_ca_server *s);
/* Closes and frees every connection. */
void fg_ca_conns_close_all(struct fg_ca_server *s);

#endif
