// SPDX-License-Identifier: MIT
/*
 * A gateway connection's part in TLS 1.3 resumption (control/resume.h holds
 * the tickets and the cache): the session offered or the ticket promised
 * before its handshake, the peer's chain verified again when it resumed, and,
 * originating, the NewSessionTicket read before the handoff when the peer's
 * cache has none (the data plane skips tickets). conn.c runs these; none
 * calls back into a phase.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/conn.h"
#include "control/resume.h"
#include "fedgate/clock.h"
#include "fedgate/handoff-t.h"
#include "fedgate/heap.h"

int gw_resume_start(struct gw_conn *c)
{
	const struct fg_tunnel_conf *t = c->t;
	int life = t->resumption ? t->resumption_lifetime_s : 0;
	const char *sni = c->route ? c->route->server_name : t->server_name;

	if (t->mode == FG_MODE_TERMINATE)
		return fg_resume_accept(c->ssl, &c->st, t->name, c->epoch, life);
	return fg_resume_offer(c->ssl, &c->st, t->name, c->addr, sni, c->epoch, life);
}

int gw_resume_verified(struct gw_conn *c, STACK_OF(X509) * *chain, char *why, size_t len)
{
	int is_server = c->t->mode == FG_MODE_TERMINATE;
	const char *sni = c->route ? c->route->server_name : c->t->server_name;
	STACK_OF(X509) *v = c->st.resume_verified;
	X509 *leaf = SSL_get0_peer_certificate(c->ssl);
	time_t now = time(NULL);

	*chain = NULL;
	if (!SSL_session_reused(c->ssl)) {
		if (SSL_get_verify_result(c->ssl) != X509_V_OK || !SSL_get0_verified_chain(c->ssl))
			goto unverified;
		*chain = X509_chain_up_ref(SSL_get0_verified_chain(c->ssl));
		return *chain ? 0 : -ENOMEM;
	}
	/*
	 * The chain the session's full handshake verified, under this very
	 * context: a ticket opens only with its context's keys (server), a
	 * cached session is only in its context's cache (client), and any
	 * change of trust builds new contexts. So its signatures stand; what
	 * may have changed since is checked again: the time, the name this
	 * side requires, and (by the caller) the roots' constraints and the
	 * allow rules. Deny on doubt: no leaf, no chain, another leaf.
	 */
	if (!leaf || !v || sk_X509_num(v) < 1 || X509_cmp(sk_X509_value(v, 0), leaf) ||
	    SSL_get_verify_result(c->ssl) != X509_V_OK)
		goto unverified;
	for (int i = 0; i < sk_X509_num(v); i++) {
		X509 *x = sk_X509_value(v, i);

		if (X509_cmp_time(X509_get0_notBefore(x), &now) != -1 ||
		    X509_cmp_time(X509_get0_notAfter(x), &now) != 1) {
			snprintf(why, len, "certificate expired or not yet valid (depth %d)", i);
			return -EACCES;
		}
	}
	if (!is_server && (!sni || X509_check_host(leaf, sni, 0, 0, NULL) != 1)) {
		snprintf(why, len, "the peer's certificate does not hold %s", sni ? sni : "a name");
		return -EACCES;
	}
	*chain = X509_chain_up_ref(v);
	return *chain ? 0 : -ENOMEM;
unverified:
	snprintf(why, len, "peer certificate not verified");
	return -EACCES;
}

STACK_OF(X509) * gw_resume_sent(struct gw_conn *c)
{
	if (SSL_session_reused(c->ssl) && c->t->mode == FG_MODE_TERMINATE)
		return c->st.resume_chain;
	return NULL;
}

int gw_resume_ticket_due(struct gw_conn *c)
{
	return c->t->mode == FG_MODE_ORIGINATE && fg_resume_ticket_due(c->ssl, &c->st);
}

/* Moves @c's deadline to @key (on fg_mono_ms()). */
static void set_deadline(struct gw *gw, struct gw_conn *c, uint64_t key)
{
	fg_heap_remove(&gw->deadlines, &c->deadline);
	/* Never fails: the node's own slot was just freed. */
	fg_heap_push(&gw->deadlines, &c->deadline, key);
}

void gw_resume_wait_begin(struct gw *gw, struct gw_conn *c)
{
	uint64_t until = (uint64_t)fg_mono_ms() + GW_TICKET_WAIT_MS;

	c->ticket_restore = c->deadline.key;
	c->ticket_waited = 1;
	if (until < c->deadline.key)
		set_deadline(gw, c, until);
}

void gw_resume_wait_end(struct gw *gw, struct gw_conn *c, int timed_out)
{
	set_deadline(gw, c, c->ticket_restore);
	if (timed_out) {
		c->ticket_waited = 2;
		fg_resume_no_ticket(c->ssl, &c->st);
	}
}

int gw_resume_read_ticket(struct gw_conn *c)
{
	uint8_t buf[4096];
	int n, err;

	ERR_clear_error();
	n = SSL_read(c->ssl, buf, sizeof(buf));
	if (n > 0) {
		/* The peer's first bytes: they reach the application first (the handoff's). */
		if (!c->early) {
			c->early = malloc(FG_HANDOFF_PREREAD_MAX);
			if (!c->early)
				return -ENOMEM;
		}
		if (c->early_len + (size_t)n > FG_HANDOFF_PREREAD_MAX)
			return -ENOBUFS;
		memcpy(c->early + c->early_len, buf, (size_t)n);
		c->early_len += (size_t)n;
		return 0;
	}
	err = SSL_get_error(c->ssl, n);
	ERR_clear_error();
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return c->st.got_ticket ? 0 : -EAGAIN;
	return -EPIPE;
}
