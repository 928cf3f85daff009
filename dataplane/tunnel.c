// SPDX-License-Identifier: MIT
/*
 * A tunnel's start in the data plane, from a handoff: its backend chosen (the
 * backends are reached only through their tables, struct dp_backend), then
 * each completion dispatched to it. The steps they share: tunnel_ops.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "dataplane/dp.h"
#include "fedgate/ktls.h"
#include "fedgate/legs.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

void dp_tunnel_complete(struct dp_tunnel *t, enum dp_op op, int res)
{
	const struct dp_backend *b = t->backend;

	t->inflight--;
	/* Bytes moved (or a readiness that precedes them): the idle reaper's clock restarts. */
	if (res > 0)
		t->active_tick = t->w->ticks;
	/* A read that got less than it asked for drained its socket (dp_rest). */
	if (op == DP_OP_PLAIN_RECV)
		t->up_drained = res >= 0 && (uint32_t)res < t->up_want;
	else if (op == DP_OP_TLS_RECV)
		t->down_drained = res >= 0 && (uint32_t)res < t->down_want;
	/* Whatever the reader took leaves the redirect's backlog (fedgate/legs-t.h). */
	if (op == DP_OP_PLAIN_RECV && res > 0 && t->legs)
		fg_legs_consumed(t->legs, (uint64_t)res);
	if (t->closing) {
		if (t->linger)
			dp_linger_complete(t, op, res);
		dp_tunnel_maybe_finish(t);
		return;
	}
	if (t->stopping && dp_drain_step(t, op, &res))
		return;
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
			dp_tunnel_abort_plain(t, "waiting for plaintext", -res);
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
	case DP_OP_DRAIN:
	case DP_OP_TICK:
	case DP_OP_REPORT:
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

/*
 * TCP keepalive on both sockets: a peer host that vanished (no FIN, no reset)
 * is found within KEEPIDLE + KEEPINTVL * KEEPCNT = 6 minutes and its tunnel
 * aborts, while a live idle tunnel stays up however long (idle_timeout_s is
 * off by default) and a path that breaks for less than 5 minutes heals. The
 * probes, one a minute, keep the flow in the NAT and load balancer tables on
 * the way (Azure forgets an idle flow after 4 minutes, AWS NLB after 350 s).
 * A socket that refuses an option keeps the kernel's defaults.
 */
#define KEEPIDLE_S 60
#define KEEPINTVL_S 30
#define KEEPCNT 10

static void keepalive(int fd)
{
	static const int on = 1, idle = KEEPIDLE_S, intvl = KEEPINTVL_S, cnt = KEEPCNT;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)))
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/*
 * Without a pipe (fd limit) the tunnel still works: TX copies through a buffer.
 * A redirected plain side too: splice() never sees redirected bytes (it says
 * EAGAIN while poll says readable), only recvmsg reads them.
 */
static void use_splice(struct dp_tunnel *t)
{
	static bool said;

	if (t->legs) {
		if (!said)
			fg_info("kernel_tx splice: redirected local legs are read by copy");
		said = true;
		return;
	}
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
	t->bytes_up = h->sent_len;
	t->idle_s = h->idle_s;
	t->id = h->id;
	t->active_tick = w->ticks;
	if (h->legs_slot >= 0 && w->legs)
		t->legs = &w->legs[h->legs_slot];
	keepalive(plain_fd);
	keepalive(tls_fd);
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
	dp_idle_arm(w);
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
	if (h->legs_slot >= 0 && w->legs)
		fg_legs_close_reader(&w->legs[h->legs_slot], plain_fd);
	else
		close(plain_fd);
	close(tls_fd);
	return ret;
}
