/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_TLS_T_H
#define FEDGATE_TLS_T_H

#include <stdint.h>
#include <openssl/ssl.h>
#include "fedgate/keys-t.h"
#include "control/peer-t.h"

/*
 * What the contexts are built from, in memory: the gateway's leaf, the
 * intermediates it sends, its key, and the trust bundle. Any member may be
 * NULL while being assembled; fg_material_free() frees what is set.
 */
struct fg_material {
	X509 *leaf;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	STACK_OF(X509) *roots;
};

/* The gateway's two TLS contexts, built from one identity and one bundle. */
struct fg_tls {
	SSL_CTX *server; /* terminate tunnels: requires a client certificate */
	SSL_CTX *client; /* originate tunnels */
	int n_roots;
};

/*
 * Per-connection state the OpenSSL callbacks fill: the traffic secrets from
 * the keylog callback, the records counted under the application keys (the
 * starting sequence numbers of the data plane), and why verification failed.
 * A zeroed struct is ready; fg_tls_conn_exit() (control/keys.h) wipes it.
 */
struct fg_tls_conn {
	int is_server;
	uint8_t client_secret[FG_SECRET_MAX], server_secret[FG_SECRET_MAX];
	size_t client_secret_len, server_secret_len;
	int write_app, read_app; /* application keys in force per direction */
	uint64_t tx_records, rx_records;
	int pool_ok;		/* server: may agree to be a pooled connection (control/pool.h) */
	int verify_error;	/* X509_V_ERR_*, 0 if none seen */
	int verify_depth;
	/*
	 * Who failed verification, as far as known: allocated only then (about
	 * 17 KiB, which a pending handshake must not carry), owned here, wiped
	 * and freed by fg_tls_conn_exit(). NULL if none or out of memory.
	 */
	struct fg_peer_id *failed;
	/*
	 * Resumption (control/resume.h), all zero while off. Set before the
	 * handshake by fg_resume_accept()/fg_resume_offer(), filled by its
	 * callbacks; @resume_chain and @resume_verified are owned here (fg_tls_conn_exit() frees it).
	 */
	int resume_lifetime_s;	/* tickets are issued or offered, this long at most; 0: off */
	int resume_offered;	/* client: a cached session was offered */
	int got_ticket;		/* client: this connection's ticket is in the cache */
	int64_t resume_auth_at; /* resumed: wall clock (s) of the full handshake behind it */
	STACK_OF(X509) *resume_chain; /* server, resumed: the chain the peer sent then */
	STACK_OF(X509) *resume_verified; /* resumed: the chain verified then, leaf first */
	const char *resume_why;	      /* a ticket offered and not used: why (static text) */
	uint8_t resume_key[32];	      /* server: session id context; client: the cache key */
};

#endif
