// SPDX-License-Identifier: MIT
/* $.dataplane.local_redirect in the control process: see local_redirect.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bpf/legs-api.h"
#include "control/local_redirect.h"
#include "control/run.h"
#include "control/sock.h"
#include "fedgate/legs.h"
#include "fedgate/log.h"

/* The run's programs: loaded once before the data plane starts, freed when `run` ends. */
static struct fg_legs *legs;

/*
 * Every socket in a sockhash reads through the kernel's tcp_bpf_recvmsg (net/ipv4/tcp_bpf.c),
 * the application's and the service's too, though what they receive comes by plain TCP. It
 * sleeps once (tcp_msg_wait_data, one sk_wait_event) and answers -EAGAIN when that sleep ends
 * with nothing queued: a signal, or the write-space wakeup of another thread's send. Linux
 * 6.1 to at least 6.18 (no fix upstream known). README "Local legs redirect".
 */
static const char kernel_eagain[] =
	"local legs redirect: a blocking recv() on a redirected application's or service's socket "
	"can fail with EAGAIN when its sleep ends without data (a signal, another thread's send): "
	"Linux's tcp_bpf_recvmsg (6.1 to at least 6.18) does not sleep again; such programs must "
	"retry EAGAIN or use local_redirect \"off\"";

static int load(const struct fg_config *cfg, int attach, char *cg, size_t cg_len,
		struct fg_legs **out)
{
	const char *why;
	int ret = fg_legs_new(out, cfg->local_redirect_cgroup, (uint64_t)cfg->local_redirect_budget,
			      attach, cg, cg_len, &why);

	if (ret)
		fprintf(stderr,
			"fedgate: %s: $.dataplane.local_redirect: \"on\", but %s%s%s (%s); use "
			"\"off\" or fix that\n",
			cfg->path, why, cfg->local_redirect_cgroup ? " for " : "",
			cfg->local_redirect_cgroup ? cfg->local_redirect_cgroup : "", strerror(-ret));
	return ret ? FG_EXIT_CONFIG : 0;
}

int gw_lr_start(const struct fg_config *cfg, int *slots_fd)
{
	char cg[512];
	int ret;

	*slots_fd = -1;
	if (!cfg->local_redirect) {
		fg_info("local legs redirect: off");
		return 0;
	}
	ret = load(cfg, 1, cg, sizeof(cg), &legs);
	if (ret)
		return ret;
	*slots_fd = fg_legs_slots_fd(legs);
	fg_info("local legs redirect: on, budget %d bytes per direction, sock_ops on cgroup %s",
		cfg->local_redirect_budget, cg);
	fg_warn("%s", kernel_eagain);
	return 0;
}

void gw_lr_stop(void)
{
	uint64_t st[FG_LEGS_ST_N];

	if (!legs)
		return;
	if (!fg_legs_stats(legs, st))
		fg_info("local legs redirect: %llu bytes in %llu messages redirected, %llu bytes by "
			"TCP (%llu messages over budget), %llu directions paired, %llu sticky, "
			"%llu without a slot",
			(unsigned long long)st[FG_LEGS_ST_BYTES],
			(unsigned long long)st[FG_LEGS_ST_MSGS],
			(unsigned long long)st[FG_LEGS_ST_TCP_BYTES],
			(unsigned long long)st[FG_LEGS_ST_OVER_BUDGET],
			(unsigned long long)st[FG_LEGS_ST_PAIRS],
			(unsigned long long)st[FG_LEGS_ST_STICKY],
			(unsigned long long)st[FG_LEGS_ST_NO_SLOT]);
	fg_legs_free(legs);
	legs = NULL;
}

int gw_lr_check(const struct fg_config *cfg, FILE *out)
{
	struct fg_legs *l = NULL;
	char cg[512];
	int ret;

	if (!cfg->local_redirect)
		return 0; /* off, the default: `check` says what it always said */
	ret = load(cfg, 0, cg, sizeof(cg), &l);
	if (!ret)
		fprintf(out,
			"local legs redirect: on, budget %d bytes per direction; run would attach "
			"sock_ops to cgroup %s (the programs load here)\n",
			cfg->local_redirect_budget, cg);
	if (!ret)
		fprintf(out, "warning: %s\n", kernel_eagain);
	fg_legs_free(l);
	return ret;
}

void gw_lr_listener(const struct gw_listener *l)
{
	int ret;

	if (!legs || l->t->mode != FG_MODE_ORIGINATE)
		return;
	ret = fg_legs_listen(legs, l->fd);
	if (ret)
		fg_warn("tunnel %s: local redirect: cannot register the listener (%s): its "
			"connections stay on TCP",
			l->t->name, strerror(-ret));
}

void gw_lr_claim(struct gw_conn *c, int fd)
{
	if (!legs)
		return;
	fg_legs_unexpect(legs, c->legs_cookie);
	c->legs_cookie = 0;
	/* -ENOENT: the kernel did not pair it (no slot, not local): plain TCP, nothing to do. */
	fg_legs_claim(legs, fd, &c->legs_slot);
	fg_debug("tunnel %s: local redirect slot %d", c->t->name, c->legs_slot);
}

int gw_lr_expect(int fd, void *arg)
{
	struct gw_conn *c = arg;
	int ret;

	if (!legs)
		return 0;
	ret = fg_legs_expect(legs, fd, &c->legs_cookie);
	if (ret) /* a full map only costs the redirect: this one stays on TCP */
		fg_debug("tunnel %s: local redirect: %s", c->t->name, strerror(-ret));
	return 0;
}

void gw_lr_read(struct gw_conn *c, uint64_t n)
{
	struct fg_legs_slot *s = legs ? fg_legs_slot(legs, c->legs_slot) : NULL;

	if (s)
		fg_legs_consumed(s, n);
}

void gw_lr_free(struct gw_conn *c)
{
	struct fg_legs_slot *s;

	if (!legs)
		return;
	fg_legs_unexpect(legs, c->legs_cookie);
	c->legs_cookie = 0;
	s = fg_legs_slot(legs, c->legs_slot);
	if (!s)
		return;
	/* A refused app always gets a reset (gw_conn_free); an upstream, as TCP would. */
	if (c->t->mode == FG_MODE_TERMINATE) {
		fg_legs_close_reader(s, c->plain_fd);
	} else {
		fg_legs_closing(s);
		fg_sock_close_reset(c->plain_fd);
		fg_legs_release(s);
	}
	c->plain_fd = -1;
	c->legs_slot = -1;
}

uint64_t gw_lr_owner(int slot)
{
	struct fg_legs_slot *s = legs ? fg_legs_slot(legs, slot) : NULL;

	return s ? __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE) : 0;
}

void gw_lr_drop(int slot, uint64_t owner)
{
	struct fg_legs_slot *s = legs ? fg_legs_slot(legs, slot) : NULL;

	if (s && !fg_legs_release_owned(s, owner))
		fg_debug("local redirect slot %d freed: its reader went with a handoff", slot);
}
