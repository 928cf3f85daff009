// SPDX-License-Identifier: MIT
/*
 * A gateway connection's last phase (control/conn.c runs the ones before):
 * the handoff of both sockets and the session keys to the data plane.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "control/admit.h"
#include "control/allow.h"
#include "control/conn.h"
#include "control/dpctl.h"
#include "control/gateway.h"
#include "control/keys.h"
#include "control/pool.h"
#include "control/proof.h"
#include "control/resume.h"
#include "fedgate/evloop.h"
#include "fedgate/handoff.h"
#include "fedgate/tls13.h"

/*
 * The last phase, whatever happens: both sockets and the session keys go to
 * the data plane's queue (control/dpctl.c), which keeps the sockets until a
 * worker answers and logs "accepted" only then; a full queue or a draining
 * gateway refuses here. The connection is done here either way.
 */
enum gw_step gw_conn_handoff(struct gw *gw, struct gw_conn *c)
{
	struct gw_proof *proof = NULL;
	struct fg_handoff *h;
	char desc[2048], accepted[4096], how[160] = "";
	int ret, pooled;

	/* At a cap reached while it handshook: reset, logged by admit.c once a second. */
	if (gw_admit_tunnel(gw, c->t)) {
		c->reset_tls = 1;
		return GW_STEP_DONE;
	}
	ret = gw_dp_room(gw->dp);
	if (ret)
		return gw_conn_refuse(c, c->peer, "%s",
				      ret == -ESHUTDOWN ? "the gateway is stopping"
							: "the data plane is not taking tunnels "
							  "now (its queue is full)");
	h = calloc(1, sizeof(*h));
	if (!h)
		return gw_conn_refuse(c, c->peer, "out of memory");
	h->magic = FG_HANDOFF_MAGIC;
	/* Plaintext OpenSSL already decrypted must reach the plain side first, in order. */
	if (c->early_len) {
		memcpy(h->preread, c->early, c->early_len);
		h->preread_len = (uint32_t)c->early_len;
	}
	while (SSL_pending(c->ssl) > 0 && h->preread_len < FG_HANDOFF_PREREAD_MAX) {
		int n = SSL_read(c->ssl, h->preread + h->preread_len,
				 (int)(FG_HANDOFF_PREREAD_MAX - h->preread_len));

		if (n <= 0)
			break;
		h->preread_len += (uint32_t)n;
	}
	if (SSL_pending(c->ssl) > 0) {
		gw_conn_refuse(c, c->peer, "more buffered plaintext than a handoff carries");
		goto wipe;
	}
	/* What the peer showed, for a later change of trust or rules to check again. */
	ret = gw_proof_new(&proof, c->ssl, gw_resume_sent(c),
			   c->route ? c->route->server_name : c->t->server_name,
			   c->route || c->t->transparent ? &c->dst : NULL, c->epoch);
	if (ret) {
		gw_conn_refuse(c, c->peer, "cannot keep the peer's chain: %s", strerror(-ret));
		goto wipe;
	}
	if (c->t->resumption)
		fg_resume_describe(c->ssl, &c->st, how, sizeof(how));
	ret = fg_keys_export(c->ssl, &c->st, &h->keys);
	if (ret) {
		gw_proof_free(proof);
		gw_conn_refuse(c, c->peer, "cannot export session keys: %s", strerror(-ret));
		goto wipe;
	}
	h->sent_len = (uint32_t)c->app_len;
	h->legs_slot = c->legs_slot;
	h->idle_s = (uint32_t)c->t->idle_timeout_s;
	snprintf(h->tunnel, sizeof(h->tunnel), "%s", c->t->name);
	fg_peer_describe(c->peer, desc, sizeof(desc));
	snprintf(h->peer, sizeof(h->peer), "%s", c->peer->cn[0] ? c->peer->cn : c->addr);
	pooled = fg_pool_agreed(c->ssl);
	/*
	 * The tunnel goes on in the data plane: without these flags SSL_free()
	 * takes the session for a broken one and makes its ticket unusable.
	 */
	SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(c->ssl);
	c->ssl = NULL;
	snprintf(accepted, sizeof(accepted),
		 "accepted %s (issued by '%s', root '%s') on tunnel %s%s: peer %s, %s, %s%s%s%s%s%s",
		 c->peer->cn, c->peer->issuer_cn, c->peer->root_cn, c->t->name,
		 pooled ? " (pooled)" : "", c->addr, fg_cipher_name(h->keys.cipher), desc,
		 c->flow[0] ? ", " : "", c->flow, how[0] ? ", " : "", how,
		 c->ticket_waited == 1	 ? ", its ticket read first"
		 : c->ticket_waited == 2 ? ", no ticket came in time"
					 : "");
	/*
	 * The epoll entry goes first: it belongs to the socket, which outlives
	 * our fd, and would report into a freed connection.
	 */
	if (c->watch_fd >= 0)
		fg_evloop_del(gw->loop, c->watch_fd);
	c->watch_fd = -1;
	ret = gw_dp_handoff(gw->dp, h, c->plain_fd, c->tls_fd, accepted, proof);
	h = NULL; /* taken, whatever the result, and the proof too */
	if (ret)
		return gw_conn_refuse(c, c->peer, "cannot queue the handoff: %s", strerror(-ret));
	/* The queue holds the sockets now, and the data plane releases the slot. */
	c->legs_slot = -1;
	c->plain_fd = c->tls_fd = -1;
wipe:
	if (h)
		OPENSSL_cleanse(h, sizeof(*h));
	free(h);
	return GW_STEP_DONE;
}
