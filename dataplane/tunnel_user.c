// SPDX-License-Identifier: MIT
/*
 * The userspace backend: fedgate's own TLS 1.3 record layer seals what the
 * plaintext side sends and opens what the TLS peer sends.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

/* ---- plaintext -> records ---- */

static void up_send(struct dp_tunnel *t)
{
	dp_queue_send(t, DP_OP_TLS_SEND, t->tls_fd, t->up_out + t->up_out_off,
		   t->up_out_len - t->up_out_off);
}

/* Seals one record of @type into up_out, our KeyUpdate first if the peer asked. */
static int up_seal(struct dp_tunnel *t, uint8_t type, const uint8_t *in, size_t len)
{
	static const uint8_t key_update[5] = { TLS_HS_KEY_UPDATE, 0, 0, 1, 0 };
	ssize_t n;
	int ret;

	if (t->key_update_pending) {
		n = fg_record_seal(&t->tx, FG_CT_HANDSHAKE, key_update, sizeof(key_update),
				   t->up_out + t->up_out_len, DP_UP_OUT - t->up_out_len);
		if (n < 0)
			return (int)n;
		t->up_out_len += (size_t)n;
		ret = fg_record_key_update(&t->tx);
		if (ret)
			return ret;
		t->key_update_pending = false;
		fg_info("tunnel %s: sent KeyUpdate, TX rekeyed", t->name);
	}
	n = fg_record_seal(&t->tx, type, in, len, t->up_out + t->up_out_len,
			   DP_UP_OUT - t->up_out_len);
	if (n < 0)
		return (int)n;
	t->up_out_len += (size_t)n;
	return 0;
}

static void handle_plain_recv(struct dp_tunnel *t, int res)
{
	static const uint8_t close_notify[2] = { 1, TLS_ALERT_CLOSE_NOTIFY };
	int ret = 0;

	if (dp_idle(t, DP_OP_UP_READY, res))
		return;
	if (res < 0) {
		dp_tunnel_abort_plain(t, "reading plaintext", -res);
		return;
	}
	t->up_out_len = t->up_out_off = 0;
	if (res == 0) {
		/* The app half-closed: close_notify, then FIN, the other way stays open. */
		ret = up_seal(t, FG_CT_ALERT, close_notify, sizeof(close_notify));
		t->up_closing = true;
	}
	for (size_t off = 0; off < (size_t)res && !ret; off += FG_TLS_MAX_PLAIN) {
		size_t n = (size_t)res - off;

		ret = up_seal(t, FG_CT_APPLICATION_DATA, t->up_in + off,
			      n > FG_TLS_MAX_PLAIN ? FG_TLS_MAX_PLAIN : n);
	}
	if (ret) {
		dp_tunnel_abort_errno(t, "sealing a record", -ret);
		return;
	}
	t->bytes_up += (uint64_t)res;
	up_send(t);
}

static void handle_tls_send(struct dp_tunnel *t, int res)
{
	if (res < 0) {
		dp_tunnel_abort_errno(t, "sending records", -res);
		return;
	}
	t->up_out_off += (size_t)res;
	if (t->up_out_off < t->up_out_len) {
		up_send(t);
	} else if (t->up_closing) {
		dp_up_finish(t);
	} else {
		dp_up_recv(t);
	}
}

/* ---- records -> plaintext ---- */

/*
 * Post-handshake messages: tickets are dropped, KeyUpdate is followed. Returns
 * 0 or -errno; for the peer's mistakes, with its alert named (dp_peer_error).
 */
static int down_handshake(struct dp_tunnel *t, const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t mlen;

		if (len < 4 || (mlen = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) > len - 4) {
			fg_warn("tunnel %s: handshake message split across records", t->name);
			return dp_peer_error(t, TLS_ALERT_DECODE_ERROR);
		}
		switch (p[0]) {
		case TLS_HS_NEW_SESSION_TICKET:
			fg_debug("tunnel %s: ignored a NewSessionTicket", t->name);
			break;
		case TLS_HS_KEY_UPDATE:
			/* A KeyUpdate ends its record (RFC 8446 5.1): the next record uses the new key. */
			if (mlen != 1 || p[4] > 1 || len != 5) {
				fg_warn("tunnel %s: malformed KeyUpdate", t->name);
				if (mlen == 1 && len == 5) /* request_update not 0 or 1: 4.6.3 */
					return dp_peer_error(t, TLS_ALERT_ILLEGAL_PARAMETER);
				return dp_peer_error(t, TLS_ALERT_DECODE_ERROR);
			}
			if (fg_record_key_update(&t->rx))
				return dp_peer_error(t, TLS_ALERT_INTERNAL_ERROR);
			if (p[4] == 1)
				t->key_update_pending = true;
			fg_info("tunnel %s: peer KeyUpdate, RX rekeyed%s", t->name,
				p[4] == 1 ? ", ours follows with the next record" : "");
			break;
		default:
			fg_warn("tunnel %s: unexpected post-handshake message type %u", t->name,
				p[0]);
			return dp_peer_error(t, TLS_ALERT_UNEXPECTED_MESSAGE);
		}
		p += 4 + mlen;
		len -= 4 + mlen;
	}
	return 0;
}

/*
 * Reads records. Without a partial record pending it does not wait, so an idle
 * tunnel gives its chunk back; with one, the chunk holds it until the rest comes.
 */
static void down_recv(struct dp_tunnel *t)
{
	if (dp_rest(t, DP_OP_TLS_RECV))
		return;
	if (dp_down_hold(t)) {
		dp_tunnel_abort(t, "out of memory for buffers");
		return;
	}
	dp_queue_recv(t, DP_OP_TLS_RECV, t->tls_fd, t->down_in + t->down_in_len,
		      DP_DOWN_IN - t->down_in_len, t->down_in_len ? 0 : MSG_DONTWAIT);
}

static void down_process(struct dp_tunnel *t)
{
	size_t off = 0;
	int ret = 1;

	if (!t->down_in) { /* idle, nothing buffered */
		down_recv(t);
		return;
	}
	while (!t->down_eof && t->down_out_len + FG_TLS_MAX_PLAIN + 1 <= DP_DOWN_OUT) {
		uint8_t type, *out = t->down_out + t->down_out_len;
		size_t plen;
		ssize_t n;

		n = fg_record_open(&t->rx, t->down_in + off, t->down_in_len - off, out,
				   DP_DOWN_OUT - t->down_out_len, &type, &plen);
		if (n == 0)
			break;
		if (n < 0) {
			dp_tunnel_abort_record(t, (int)n, t->down_in + off);
			return;
		}
		off += (size_t)n;
		switch (type) {
		case FG_CT_APPLICATION_DATA:
			t->down_out_len += plen;
			t->bytes_down += plen;
			break;
		case FG_CT_HANDSHAKE:
			ret = down_handshake(t, out, plen);
			break;
		case FG_CT_ALERT:
			ret = dp_down_alert(t, out, plen);
			if (ret == 0)
				t->down_eof = true;
			break;
		default:
			fg_warn("tunnel %s: unexpected record type %u", t->name, type);
			ret = dp_peer_error(t, TLS_ALERT_UNEXPECTED_MESSAGE);
		}
		if (ret < 0) {
			dp_tunnel_abort(t, dp_down_error(ret));
			return;
		}
	}
	memmove(t->down_in, t->down_in + off, t->down_in_len - off);
	t->down_in_len -= off;
	if (t->down_out_len > t->down_out_off)
		dp_down_send(t);
	else if (t->down_eof)
		dp_down_finish(t);
	else
		down_recv(t);
}

static void handle_tls_recv(struct dp_tunnel *t, int res)
{
	if (dp_idle(t, DP_OP_DOWN_READY, res))
		return;
	if (res < 0) {
		dp_tunnel_abort_errno(t, "reading records", -res);
		return;
	}
	if (res == 0) {
		dp_down_closed(t);
		return;
	}
	t->down_in_len += (size_t)res;
	down_process(t);
}

static void handle_plain_send(struct dp_tunnel *t, int res)
{
	if (dp_down_sent(t, res))
		down_process(t);
}

static void start(struct dp_tunnel *t)
{
	dp_up_recv(t);
	down_process(t);
}

const struct dp_backend dp_user_backend = {
	.name = "userspace record layer",
	.start = start,
	.up_recv = dp_up_recv,
	.down_recv = down_recv,
	.plain_recv = handle_plain_recv,
	.tls_send = handle_tls_send,
	.tls_recv = handle_tls_recv,
	.plain_send = handle_plain_send,
};
