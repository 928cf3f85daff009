/* SPDX-License-Identifier: MIT */
/*
 * The types of the sockmap experiments' harness (harness.c): the fixed kTLS
 * keys, the threads standing in for the data plane and the peer, and the
 * tunnel of sockmap_check.c. The threads' structs are filled by the caller
 * (fd, lengths, lax) and read back after join().
 */
#ifndef FEDGATE_BPF_EXPERIMENTS_HARNESS_T_H
#define FEDGATE_BPF_EXPERIMENTS_HARNESS_T_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fg_sockmap;

/* TLS record content types; the one tunnel id every experiment uses. */
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_DATA 23
#define TUNNEL 7

/* Two fixed directions: K[0] app->peer (tls TX, peer RX), K[1] peer->app. */
struct key {
	uint8_t key[16], iv[12];
};

/* Writes @len pattern bytes into @fd, then SHUT_WR; errors end it quietly when @lax. */
struct writer {
	pthread_t th;
	int fd;
	uint64_t len;
	bool lax;
};

/* Reads @fd to EOF and checks the pattern; @got counts as it goes. */
struct reader {
	pthread_t th;
	int fd;
	volatile uint64_t got;
	uint64_t bad_at; /* first mismatch + 1, 0 if none */
	bool lax;
};

/* The data plane's pending recvmsg() on the kTLS socket, logged. */
struct tls_rx {
	pthread_t th;
	int fd;
	struct fg_sockmap *m;
	int plain_fd; /* SHUT_WR after close_notify, once drained */
	char log[4096];
	size_t log_len;
	int zero_with_cmsg, alerts, others, data_bytes;
	bool close_notify, eof;
	uint8_t last_alert[2];
};

/* EOF on the plaintext socket: the data plane's pending recv() there. */
struct plain_eof {
	pthread_t th;
	int fd;
	ssize_t ret;
	int err, eagain;
};

/* app <-> plain: the plaintext socket pair; tls <-> peer: the wire; m: the loaded sockmap. */
struct tunnel {
	int app, plain, tls, peer;
	struct fg_sockmap *m;
};

#endif
