// SPDX-License-Identifier: MIT
/*
 * One tunnel in the userspace backend: plaintext <-> TLS 1.3 records, both
 * directions driven by io_uring completions. Each direction has at most one
 * operation in flight and reads again only when its last write completed,
 * which is the backpressure: a slow reader stops reads on the other side.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "dp.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

#define TLS_HS_NEW_SESSION_TICKET 4
#define TLS_HS_KEY_UPDATE 24
#define TLS_ALERT_CLOSE_NOTIFY 0
#define TLS_ALERT_USER_CANCELED 90

static const char *alert_name(uint8_t desc)
{
	switch (desc) {
	case 0:
		return "close_notify";
	case 10:
		return "unexpected_message";
	case 20:
		return "bad_record_mac";
	case 22:
		return "record_overflow";
	case 40:
		return "handshake_failure";
	case 42:
		return "bad_certificate";
	case 45:
		return "certificate_expired";
	case 46:
		return "certificate_unknown";
	case 48:
		return "unknown_ca";
	case 49:
		return "access_denied";
	case 50:
		return "decode_error";
	case 51:
		return "decrypt_error";
	case 80:
		return "internal_error";
	case 90:
		return "user_canceled";
	case 109:
		return "missing_extension";
	case 116:
		return "certificate_required";
	}
	return "unknown alert";
}

static void tunnel_free(struct dp_tunnel *t)
{
	struct dp_worker *w = t->w;

	if (t->plain_fd >= 0)
		close(t->plain_fd);
	if (t->tls_fd >= 0)
		close(t->tls_fd);
	fg_record_exit(&t->tx);
	fg_record_exit(&t->rx);
	if (t->up_in) {
		OPENSSL_cleanse(t->up_in, DP_UP_IN + DP_UP_OUT + DP_DOWN_IN + DP_DOWN_OUT);
		free(t->up_in);
	}
	if (t->prev)
		t->prev->next = t->next;
	else
		w->tunnels = t->next;
	if (t->next)
		t->next->prev = t->prev;
	w->n_tunnels--;
	free(t);
}

/* Frees @t once nothing is in flight and it is aborted or both directions are done. */
static void maybe_finish(struct dp_tunnel *t)
{
	if (t->inflight)
		return;
	if (t->closing) {
		tunnel_free(t);
	} else if (t->up_done && t->down_done) {
		fg_info("tunnel %s: %s closed: %llu bytes to peer, %llu bytes from peer", t->name,
			t->peer, (unsigned long long)t->bytes_up,
			(unsigned long long)t->bytes_down);
		tunnel_free(t);
	}
}

void dp_tunnel_abort(struct dp_tunnel *t, const char *why)
{
	if (!t->closing)
		fg_warn("tunnel %s: %s closed: %s", t->name, t->peer, why);
	t->closing = true;
	/* Completes whatever is in flight on these sockets. */
	shutdown(t->plain_fd, SHUT_RDWR);
	shutdown(t->tls_fd, SHUT_RDWR);
	maybe_finish(t);
}

static void abort_errno(struct dp_tunnel *t, const char *what, int err)
{
	char why[256];

	snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
	dp_tunnel_abort(t, why);
}

static void queue_recv(struct dp_tunnel *t, enum dp_op op, int fd, void *buf, size_t len)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_recv(sqe, fd, buf, len, 0);
	dp_set_data(sqe, t, op);
	t->inflight++;
}

static void queue_send(struct dp_tunnel *t, enum dp_op op, int fd, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
	dp_set_data(sqe, t, op);
	t->inflight++;
}

/* ---- plaintext -> records ---- */

static void up_recv(struct dp_tunnel *t)
{
	queue_recv(t, DP_OP_PLAIN_RECV, t->plain_fd, t->up_in, DP_UP_IN);
}

static void up_send(struct dp_tunnel *t)
{
	queue_send(t, DP_OP_TLS_SEND, t->tls_fd, t->up_out + t->up_out_off,
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

	if (res < 0) {
		abort_errno(t, "reading plaintext", -res);
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
		abort_errno(t, "sealing a record", -ret);
		return;
	}
	t->bytes_up += (uint64_t)res;
	up_send(t);
}

static void handle_tls_send(struct dp_tunnel *t, int res)
{
	if (res < 0) {
		abort_errno(t, "sending records", -res);
		return;
	}
	t->up_out_off += (size_t)res;
	if (t->up_out_off < t->up_out_len) {
		up_send(t);
	} else if (t->up_closing) {
		shutdown(t->tls_fd, SHUT_WR);
		t->up_done = true;
		maybe_finish(t);
	} else {
		up_recv(t);
	}
}

/* ---- records -> plaintext ---- */

static void down_process(struct dp_tunnel *t);

static void down_finish(struct dp_tunnel *t)
{
	shutdown(t->plain_fd, SHUT_WR);
	t->down_done = true;
	maybe_finish(t);
}

/* Post-handshake messages: tickets are dropped, KeyUpdate is followed. Returns 0 or -errno. */
static int down_handshake(struct dp_tunnel *t, const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t mlen;

		if (len < 4 || (mlen = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) > len - 4) {
			fg_warn("tunnel %s: handshake message split across records", t->name);
			return -EPROTO;
		}
		switch (p[0]) {
		case TLS_HS_NEW_SESSION_TICKET:
			fg_debug("tunnel %s: ignored a NewSessionTicket", t->name);
			break;
		case TLS_HS_KEY_UPDATE:
			/* A KeyUpdate ends its record (RFC 8446 5.1): the next record uses the new key. */
			if (mlen != 1 || p[4] > 1 || len != 5) {
				fg_warn("tunnel %s: malformed KeyUpdate", t->name);
				return -EPROTO;
			}
			if (fg_record_key_update(&t->rx))
				return -EIO;
			if (p[4] == 1)
				t->key_update_pending = true;
			fg_info("tunnel %s: peer KeyUpdate, RX rekeyed%s", t->name,
				p[4] == 1 ? ", ours follows with the next record" : "");
			break;
		default:
			fg_warn("tunnel %s: unexpected post-handshake message type %u", t->name,
				p[0]);
			return -EPROTO;
		}
		p += 4 + mlen;
		len -= 4 + mlen;
	}
	return 0;
}

/* Returns 1 to continue, 0 after close_notify, -errno to abort. */
static int down_alert(struct dp_tunnel *t, const uint8_t *p, size_t len)
{
	if (len != 2) {
		fg_warn("tunnel %s: malformed alert record", t->name);
		return -EPROTO;
	}
	if (p[1] == TLS_ALERT_CLOSE_NOTIFY)
		return 0;
	if (p[1] == TLS_ALERT_USER_CANCELED) {
		fg_info("tunnel %s: peer sent user_canceled", t->name);
		return 1;
	}
	fg_warn("tunnel %s: peer sent %s alert %s (%u)", t->name, p[0] == 2 ? "fatal" : "warning",
		alert_name(p[1]), p[1]);
	return -ECONNABORTED;
}

static const char *open_error(int err)
{
	switch (err) {
	case -EBADMSG:
		return "record authentication failed (bad_record_mac)";
	case -EMSGSIZE:
		return "record too long (record_overflow)";
	case -EPROTO:
		return "malformed record";
	}
	return strerror(-err);
}

static void down_process(struct dp_tunnel *t)
{
	size_t off = 0;
	int ret = 1;

	while (!t->down_eof && t->down_out_len + FG_TLS_MAX_PLAIN + 1 <= DP_DOWN_OUT) {
		uint8_t type, *out = t->down_out + t->down_out_len;
		size_t plen;
		ssize_t n;

		n = fg_record_open(&t->rx, t->down_in + off, t->down_in_len - off, out,
				   DP_DOWN_OUT - t->down_out_len, &type, &plen);
		if (n == 0)
			break;
		if (n < 0) {
			char why[128];

			snprintf(why, sizeof(why), "from peer: %s", open_error((int)n));
			dp_tunnel_abort(t, why);
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
			ret = down_alert(t, out, plen);
			if (ret == 0)
				t->down_eof = true;
			break;
		default:
			fg_warn("tunnel %s: unexpected record type %u", t->name, type);
			ret = -EPROTO;
		}
		if (ret < 0) {
			dp_tunnel_abort(t, ret == -ECONNABORTED ? "peer alert" : "protocol error");
			return;
		}
	}
	memmove(t->down_in, t->down_in + off, t->down_in_len - off);
	t->down_in_len -= off;
	if (t->down_out_len > t->down_out_off)
		queue_send(t, DP_OP_PLAIN_SEND, t->plain_fd, t->down_out + t->down_out_off,
			   t->down_out_len - t->down_out_off);
	else if (t->down_eof)
		down_finish(t);
	else
		queue_recv(t, DP_OP_TLS_RECV, t->tls_fd, t->down_in + t->down_in_len,
			   DP_DOWN_IN - t->down_in_len);
}

static void handle_tls_recv(struct dp_tunnel *t, int res)
{
	if (res < 0) {
		abort_errno(t, "reading records", -res);
		return;
	}
	if (res == 0) {
		if (t->down_in_len)
			fg_warn("tunnel %s: peer closed inside a record (%zu bytes dropped)",
				t->name, t->down_in_len);
		else
			fg_info("tunnel %s: peer closed without close_notify", t->name);
		t->down_eof = true;
		down_finish(t);
		return;
	}
	t->down_in_len += (size_t)res;
	down_process(t);
}

static void handle_plain_send(struct dp_tunnel *t, int res)
{
	if (res < 0) {
		abort_errno(t, "sending plaintext", -res);
		return;
	}
	t->down_out_off += (size_t)res;
	if (t->down_out_off < t->down_out_len) {
		queue_send(t, DP_OP_PLAIN_SEND, t->plain_fd, t->down_out + t->down_out_off,
			   t->down_out_len - t->down_out_off);
		return;
	}
	t->down_out_len = t->down_out_off = 0;
	down_process(t);
}

void dp_tunnel_complete(struct dp_tunnel *t, enum dp_op op, int res)
{
	t->inflight--;
	if (t->closing) {
		maybe_finish(t);
		return;
	}
	switch (op) {
	case DP_OP_PLAIN_RECV:
		handle_plain_recv(t, res);
		break;
	case DP_OP_TLS_SEND:
		handle_tls_send(t, res);
		break;
	case DP_OP_TLS_RECV:
		handle_tls_recv(t, res);
		break;
	case DP_OP_PLAIN_SEND:
		handle_plain_send(t, res);
		break;
	case DP_OP_HANDOFF:
		break;
	}
}

/* io_uring would return -EAGAIN on O_NONBLOCK sockets instead of waiting. */
static int make_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK))
		return -errno;
	return 0;
}

int dp_tunnel_start(struct dp_worker *w, const struct fg_handoff *h, int plain_fd, int tls_fd)
{
	struct dp_tunnel *t;
	int ret;

	t = calloc(1, sizeof(*t));
	if (!t) {
		ret = -ENOMEM;
		goto close_fds;
	}
	t->w = w;
	t->plain_fd = plain_fd;
	t->tls_fd = tls_fd;
	snprintf(t->name, sizeof(t->name), "%s", h->tunnel);
	snprintf(t->peer, sizeof(t->peer), "%s", h->peer);
	ret = make_blocking(plain_fd);
	if (!ret)
		ret = make_blocking(tls_fd);
	if (ret)
		goto free_tunnel;
	t->up_in = malloc(DP_UP_IN + DP_UP_OUT + DP_DOWN_IN + DP_DOWN_OUT);
	if (!t->up_in) {
		ret = -ENOMEM;
		goto free_tunnel;
	}
	t->up_out = t->up_in + DP_UP_IN;
	t->down_in = t->up_out + DP_UP_OUT;
	t->down_out = t->down_in + DP_DOWN_IN;
	ret = fg_record_init(&t->tx, h->keys.cipher, &h->keys.tx, 1);
	if (!ret)
		ret = fg_record_init(&t->rx, h->keys.cipher, &h->keys.rx, 0);
	if (ret)
		goto free_keys;

	t->next = w->tunnels;
	if (w->tunnels)
		w->tunnels->prev = t;
	w->tunnels = t;
	w->n_tunnels++;
	up_recv(t);
	memcpy(t->down_out, h->preread, h->preread_len);
	t->down_out_len = h->preread_len;
	t->bytes_down = h->preread_len;
	down_process(t);
	return 0;

free_keys:
	fg_record_exit(&t->tx);
	fg_record_exit(&t->rx);
	free(t->up_in);
free_tunnel:
	free(t);
close_fds:
	close(plain_fd);
	close(tls_fd);
	return ret;
}
