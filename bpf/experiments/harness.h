/* SPDX-License-Identifier: MIT */
/*
 * The harness of the sockmap experiments (sockmap_check.c): sockets, the fixed
 * kTLS keys, the threads standing in for the data plane and the peer, the
 * counter reports and one tunnel's setup and teardown. Every check that does
 * not hold ends the process through fail(): "FAIL: why" on stdout, exit 1.
 */
#ifndef FEDGATE_BPF_EXPERIMENTS_HARNESS_H
#define FEDGATE_BPF_EXPERIMENTS_HARNESS_H

#include "harness-t.h"

/* Set by make_keys(); read by ktls() and by whoever seals or opens records itself. */
extern struct key K[2];

/* Prints "FAIL: " and the message on stdout and exits 1. */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);
/* The byte at offset @i of every stream the experiments send. */
uint8_t pattern(uint64_t i);
/* CLOCK_MONOTONIC in seconds. */
double now(void);
/* A connected TCP pair on loopback: *@a connected, *@b accepted. */
void tcp_pair(int *a, int *b);
void make_keys(void);
/* TLS 1.3 AES-128-GCM on @fd: TX with K[@tx], RX with K[@rx]; a direction < 0 is left out. */
void ktls(int fd, int tx, int rx);
/* One record of @type through kTLS TX; sendmsg()'s return. */
ssize_t send_record(int fd, uint8_t type, const void *p, size_t len);
void send_all(int fd, const uint8_t *p, size_t len);

/* Thread bodies for start(); @arg is the struct of the same name. */
void *writer_main(void *arg);
void *reader_main(void *arg);
void *tls_rx_main(void *arg);
void *plain_eof_main(void *arg);
void start(pthread_t *th, void *(*fn)(void *), void *arg);
void join(pthread_t th);

/* Waits (60 s at most) until fg_sockmap_drained() holds for TUNNEL. */
void wait_drained(struct fg_sockmap *m, uint64_t up_extra, uint64_t down_extra);
/* Prints TUNNEL's counters as one "counters: k=v ..." line. */
void print_counters(struct fg_sockmap *m);
/* The value of @name in /proc/net/tls_stat, -1 if absent. */
long tls_stat(const char *name);
struct fg_sockmap *open_map(void);
void check_counter(const char *name, uint64_t got, uint64_t want);
/* Prints map_entries_after=N; fails unless the map is empty. */
void check_gone(struct fg_sockmap *m);

/* Steps 1-3 of bpf/sockmap.h; @peer_tx/@peer_rx < 0: the peer stays raw TCP. */
void tunnel_up(struct tunnel *t, bool use_ktls, int peer_tx, int peer_rx);
/* Removes TUNNEL, closes the four sockets, checks the map is empty and frees it. */
void tunnel_close(struct tunnel *t);
/* Prints @what_bytes=N; fails unless @r got exactly @want pattern bytes. */
void result(struct reader *r, uint64_t want, const char *what);

#endif
