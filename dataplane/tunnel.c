// SPDX-License-Identifier: MIT
/*
 * A tunnel's life in the data plane, whichever backend protects its records:
 * start from a handoff, abort, and free once no operation is in flight.
 * Each direction has at most one operation in flight and reads again only
 * when its last write completed, which is the backpressure: a slow reader
 * stops reads on the other side.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "dataplane/dp.h"
#include "fedgate/ktls.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

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
	for (int i = 0; i < 2; i++)
		if (t->pipe[i] >= 0)
			close(t->pipe[i]);
	fg_record_exit(&t->tx);
	fg_record_exit(&t->rx);
	dp_pool_put(&w->pool, t->up_in);
	dp_pool_put(&w->pool, t->down_in);
	if (t->prev)
		t->prev->next = t->next;
	else
		w->tunnels = t->next;
	if (t->next)
		t->next->prev = t->prev;
	w->n_tunnels--;
	free(t);
}

void dp_tunnel_maybe_finish(struct dp_tunnel *t)
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
	dp_tunnel_maybe_finish(t);
}

void dp_tunnel_abort_errno(struct dp_tunnel *t, const char *what, int err)
{
	char why[256];

	snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
	dp_tunnel_abort(t, why);
}

void dp_queue_recv(struct dp_tunnel *t, enum dp_op op, int fd, void *buf, size_t len, int flags)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_recv(sqe, fd, buf, len, flags);
	dp_set_data(sqe, t, op);
	t->inflight++;
}

void dp_queue_send(struct dp_tunnel *t, enum dp_op op, int fd, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe = dp_get_sqe(t->w);

	io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
	dp_set_data(sqe, t, op);
	t->inflight++;
}

int dp_up_hold(struct dp_tunnel *t)
{
	if (!t->up_in) {
		t->up_in = dp_pool_get(&t->w->pool);
		if (!t->up_in)
			return -ENOMEM;
		t->up_out = t->up_in + DP_UP_IN;
	}
	return 0;
}

int dp_down_hold(struct dp_tunnel *t)
{
	if (!t->down_in) {
		t->down_in = dp_pool_get(&t->w->pool);
		if (!t->down_in)
			return -ENOMEM;
		t->down_out = t->down_in + DP_DOWN_IN;
	}
	return 0;
}

void dp_up_release(struct dp_tunnel *t)
{
	dp_pool_put(&t->w->pool, t->up_in);
	t->up_in = t->up_out = NULL;
}

void dp_down_release(struct dp_tunnel *t)
{
	dp_pool_put(&t->w->pool, t->down_in);
	t->down_in = t->down_out = NULL;
}

bool dp_idle(struct dp_tunnel *t, enum dp_op op, int res)
{
	struct io_uring_sqe *sqe;
	bool up = op == DP_OP_UP_READY;

	if (res != -EAGAIN)
		return false;
	if (up)
		dp_up_release(t);
	else
		dp_down_release(t);
	/* Userspace records: an idle direction needs no cipher context either. */
	if (!t->kernel)
		fg_record_park(up ? &t->tx : &t->rx);
	sqe = dp_get_sqe(t->w);
	io_uring_prep_poll_add(sqe, up ? t->plain_fd : t->tls_fd, POLLIN | POLLRDHUP);
	dp_set_data(sqe, t, op);
	t->inflight++;
	return true;
}

void dp_down_finish(struct dp_tunnel *t)
{
	dp_down_release(t);
	shutdown(t->plain_fd, SHUT_WR);
	t->down_done = true;
	dp_tunnel_maybe_finish(t);
}

int dp_down_alert(struct dp_tunnel *t, const uint8_t *p, size_t len)
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

const char *dp_record_error(int err)
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

void dp_tunnel_complete(struct dp_tunnel *t, enum dp_op op, int res)
{
	const struct dp_backend *b = t->backend;

	t->inflight--;
	if (t->closing) {
		dp_tunnel_maybe_finish(t);
		return;
	}
	switch (op) {
	case DP_OP_PLAIN_RECV:
		b->plain_recv(t, res);
		break;
	case DP_OP_TLS_SEND:
		b->tls_send(t, res);
		break;
	case DP_OP_TLS_RECV:
		b->tls_recv(t, res);
		break;
	case DP_OP_PLAIN_SEND:
		b->plain_send(t, res);
		break;
	case DP_OP_UP_READY:
		if (res < 0)
			dp_tunnel_abort_errno(t, "waiting for plaintext", -res);
		else
			b->up_recv(t);
		break;
	case DP_OP_DOWN_READY:
		if (res < 0)
			dp_tunnel_abort_errno(t, "waiting for records", -res);
		else
			b->down_recv(t);
		break;
	case DP_OP_POLL: /* the linked operation reports, failure included */
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

/* Without a pipe (fd limit) the tunnel still works: TX copies through a buffer. */
static void use_splice(struct dp_tunnel *t)
{
	if (pipe2(t->pipe, O_CLOEXEC)) {
		fg_warn("tunnel %s: no pipe for splice (%s); kTLS TX copies through a buffer",
			t->name, strerror(errno));
		t->pipe[0] = t->pipe[1] = -1;
		return;
	}
	t->splice = true;
	t->backend = &dp_kernel_splice_backend;
}

/*
 * Puts the keys into the kernel when the worker uses kTLS. A socket that got no
 * key (the ULP or TLS_TX failed) still speaks plain TCP, so offload auto falls
 * back to the userspace record layer for it; past that point it cannot.
 */
static int choose_backend(struct dp_tunnel *t, const struct fg_handoff *h)
{
	const char *why;
	int ret;

	if (!t->w->kernel)
		return 0;
	ret = fg_ktls_install(t->tls_fd, &h->keys, &why);
	if (!ret) {
		t->kernel = true;
		t->backend = &dp_kernel_backend;
		if (t->w->splice_tx)
			use_splice(t);
		return 0;
	}
	/*
	 * TCP_ULP needs ESTABLISHED: a peer that already sent its FIN (a short
	 * request then a half-close) leaves CLOSE_WAIT. Its bytes must still
	 * flow, so even offload "kernel" carries that tunnel in userspace.
	 */
	if (ret == -ENOTCONN) {
		fg_warn("tunnel %s: %s half-closed before kTLS could be installed (%s); using "
			"the userspace record layer for this tunnel",
			t->name, t->peer, why);
		return 0;
	}
	if (t->w->kernel_required || !strncmp(why, "TLS_RX", 6)) {
		fg_error("tunnel %s: %s: kernel TLS: %s (%s)", t->name, t->peer, why,
			 strerror(-ret));
		return ret;
	}
	fg_warn("tunnel %s: kernel TLS: %s (%s); using the userspace record layer", t->name, why,
		strerror(-ret));
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
	t->pipe[0] = t->pipe[1] = -1;
	t->backend = &dp_user_backend;
	snprintf(t->name, sizeof(t->name), "%s", h->tunnel);
	snprintf(t->peer, sizeof(t->peer), "%s", h->peer);
	ret = make_blocking(plain_fd);
	if (!ret)
		ret = make_blocking(tls_fd);
	if (!ret)
		ret = choose_backend(t, h);
	if (ret)
		goto free_tunnel;
	/* Plaintext OpenSSL had already read goes to the plain side first. */
	if (h->preread_len) {
		ret = dp_down_hold(t);
		if (ret)
			goto free_tunnel;
		memcpy(t->down_out, h->preread, h->preread_len);
		t->down_out_len = h->preread_len;
		t->bytes_down = h->preread_len;
	}
	if (!t->kernel) {
		ret = fg_record_init(&t->tx, h->keys.cipher, &h->keys.tx, 1);
		if (!ret)
			ret = fg_record_init(&t->rx, h->keys.cipher, &h->keys.rx, 0);
		if (ret)
			goto free_keys;
	}

	t->next = w->tunnels;
	if (w->tunnels)
		w->tunnels->prev = t;
	w->tunnels = t;
	w->n_tunnels++;
	t->backend->start(t);
	return 0;

free_keys:
	fg_record_exit(&t->tx);
	fg_record_exit(&t->rx);
free_tunnel:
	dp_pool_put(&w->pool, t->down_in);
	for (int i = 0; i < 2; i++)
		if (t->pipe[i] >= 0)
			close(t->pipe[i]);
	free(t);
close_fds:
	close(plain_fd);
	close(tls_fd);
	return ret;
}
