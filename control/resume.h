/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_RESUME_H
#define FEDGATE_CONTROL_RESUME_H

/*
 * TLS 1.3 resumption between gateways ($.tunnels[].resumption): PSK with
 * (EC)DHE only (psk_dhe_ke; SSL_OP_ALLOW_NO_DHE_KEX stays off), stateless
 * tickets.
 *
 * Server: each server SSL_CTX has its own ticket keys, random
 * (RAND_priv_bytes), never derived from anything kept, wiped when the context
 * is freed. A context is built anew on every change of trust, rules or
 * identity (a bundle, a reload, a renewal: control/identity.c), so such a
 * change makes every older ticket undecryptable; a ticket also names its
 * tunnel and rules epoch (the session id context), and carries the time of
 * the full handshake it comes from (a resumption never extends it) and the
 * chain the peer sent then, so that the resumed peer can be verified again.
 *
 * Client: each client SSL_CTX keeps a small cache of sessions, one per peer
 * (tunnel, address, SNI, epoch), filled by the new-session callback from
 * whatever reads the NewSessionTicket (a handshake's connection before its
 * handoff, or a pooled connection); expired by the configured lifetime, the
 * ticket's and the peer leaf's notAfter.
 *
 * Everything here may run on any thread: the cache has its own lock, and the
 * callbacks touch only it and the connection's own fg_tls_conn.
 */
#include <stdint.h>
#include <openssl/ssl.h>
#include "control/tls-t.h"

/* Reserves the ex_data slots (once). 0 or -ENOMEM. */
int fg_resume_init(void);

/*
 * Installs resumption's callbacks and state on @ctx (server: ticket keys and
 * the ticket callbacks; client: the cache). Tickets are still issued and
 * offered only per connection, by the two calls below. 0 or -ENOMEM.
 */
int fg_resume_ctx_setup(SSL_CTX *ctx, int is_server);

/*
 * Server, before the handshake: the session id context of @tunnel at
 * @epoch; with @lifetime_s > 0, one ticket after a full handshake, valid
 * that long at most. 0 or -ENOMEM.
 */
int fg_resume_accept(SSL *ssl, struct fg_tls_conn *st, const char *tunnel, unsigned long epoch,
		     int lifetime_s);

/*
 * Client, before the handshake, @lifetime_s > 0: offers the cached session
 * of the peer (@tunnel, @addr, @sni, @epoch) if one is fresh, and files the
 * ticket this connection gets under that peer. 0 or -ENOMEM.
 */
int fg_resume_offer(SSL *ssl, struct fg_tls_conn *st, const char *tunnel, const char *addr,
		    const char *sni, unsigned long epoch, int lifetime_s);

/*
 * Client, after a full handshake: 1 when this connection should read its
 * NewSessionTicket before its handoff (resumption on, no ticket yet, none
 * fresh in the cache, and the peer not known to send none), else 0.
 */
int fg_resume_ticket_due(SSL *ssl, const struct fg_tls_conn *st);

/* Client: the peer sent no ticket in time; its connections do not wait for a while. */
void fg_resume_no_ticket(SSL *ssl, const struct fg_tls_conn *st);

/* "resumed" or "full" and, when a ticket was offered but not used, why. */
const char *fg_resume_describe(SSL *ssl, const struct fg_tls_conn *st, char *buf, size_t len);

#endif
