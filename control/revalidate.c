// SPDX-License-Identifier: MIT
/*
 * $.tunnels[].revalidate: when the trust bundle, the root rules or the allow
 * rules change (a federation refresh, a trust file, a SIGHUP), every running
 * tunnel of a tunnel that revalidates has its peer's proof (control/proof.h)
 * checked again as a new handshake would be: the chain against the current
 * bundle, its anchor's name constraints, the allow rules (and, transparent,
 * the route and the reach). One that no longer passes is closed with a fatal
 * alert and a log line that names what refused it; the others are untouched.
 *
 * Connections accepted before a change and handed over after it were
 * authorized under the old rules: each proof carries the epoch of the rules
 * it was accepted under, and such a tunnel is checked once it runs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "control/alert.h"
#include "control/allow.h"
#include "control/config.h"
#include "control/dpctl.h"
#include "control/gateway.h"
#include "control/identity-t.h"
#include "control/identity.h"
#include "control/proof.h"
#include "control/revalidate.h"
#include "control/roots.h"
#include "control/route.h"
#include "control/tls.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/log.h"

/*
 * One pass's verdicts by what decides them: the tunnel, the peer's leaf and
 * (transparent tunnels) the destination. Many tunnels share a peer, and a
 * pass over 100,000 of them must not verify 100,000 chains on the loop.
 */
struct verdict_key {
	uint8_t leaf[32]; /* SHA-256 of its DER */
	const struct fg_tunnel_conf *t;
	struct sockaddr_storage dst;
};

struct verdict {
	struct verdict_key key;
	int used;
	int ret; /* check()'s: 0 or -EACCES */
	uint8_t alert;
	char *why; /* for -EACCES */
};

struct pass {
	struct gw *gw;
	const char *what;	 /* the change, for the log */
	struct fg_peer_id *peer; /* scratch, one for the pass: 17 KiB */
	struct verdict *v;	 /* open addressing, @cap a power of two, at most half full */
	size_t n, cap;
};

static const struct fg_tunnel_conf *tunnel_of(const struct fg_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_tunnels; i++)
		if (!strcmp(cfg->tunnels[i].name, name))
			return &cfg->tunnels[i];
	return NULL;
}

/*
 * Whether @p still passes for tunnel @t under @cfg and @tls. 0: it does;
 * -EACCES with @why (@len bytes) naming the rule and *@alert; -ENOMEM (then
 * the tunnel runs on, logged by the caller).
 */
static int check(struct pass *v, const struct fg_tunnel_conf *t, const struct gw_proof *p,
		 char *why, size_t len, uint8_t *alert)
{
	const struct fg_config *cfg = v->gw->cur->cfg;
	const struct fg_allow_rule *allow = t->allow;
	size_t n_allow = t->n_allow, o;
	const char *expect = p->expect_name;
	const struct fg_route *route = NULL;
	STACK_OF(X509) *verified = NULL;
	char dst[INET6_ADDRSTRLEN + 8] = "";
	int ret;

	*alert = FG_ALERT_ACCESS_DENIED;
	if (p->dst.ss_family)
		fg_addr_text(&p->dst, dst, sizeof(dst));
	if (t->capture) {
		route = fg_route_find(cfg->routes, cfg->n_routes, (const struct sockaddr *)&p->dst);
		if (!route) {
			snprintf(why, len, "$.routes: no route to %s any more", dst);
			return -EACCES;
		}
		if (!expect || strcmp(route->server_name, expect)) {
			snprintf(why, len, "$.routes: %s goes to %s (server_name %s) now", dst,
				 route->peer.text, route->server_name);
			return -EACCES;
		}
		allow = route->allow;
		n_allow = route->n_allow;
	} else if (t->mode == FG_MODE_ORIGINATE &&
		   (!expect || !t->server_name || strcmp(t->server_name, expect))) {
		snprintf(why, len, "$.tunnels[].server_name is %s now (it was %s)",
			 t->server_name ? t->server_name : "none", expect ? expect : "none");
		return -EACCES;
	}
	ret = fg_tls_verify_again(fg_ident_tls(v->gw->id), t->mode == FG_MODE_TERMINATE, p->leaf,
				  p->sent, expect, p->at, &verified, why, len);
	if (ret == -EACCES) {
		*alert = FG_ALERT_CERTIFICATE_UNKNOWN;
		o = strlen(why);
		snprintf(why + o, len - o, ": the trust bundle no longer verifies its chain");
	}
	if (ret)
		return ret;
	ret = fg_tls_peer_of(p->leaf, verified, v->peer);
	if (ret) {
		ret = -ENOMEM; /* only a digest that failed: not the peer's doing */
		goto free_verified;
	}
	ret = fg_roots_check(cfg->root_rules, cfg->n_root_rules,
			     sk_X509_value(verified, sk_X509_num(verified) - 1), v->peer, why, len);
	if (ret) {
		o = strlen(why);
		snprintf(why + o, len - o, " ($.identity.trust.roots)");
		goto free_verified;
	}
	ret = fg_allow_check(allow, n_allow, v->peer, why, len);
	if (!ret && t->transparent &&
	    fg_allow_reach(t->allow, t->n_allow, v->peer, (const struct sockaddr *)&p->dst)) {
		snprintf(why, len, "destination %s not in reach of any allow rule that admits it",
			 dst);
		ret = -EACCES;
	}
free_verified:
	sk_X509_pop_free(verified, X509_free);
	return ret;
}

static size_t slot_of(const struct pass *v, const struct verdict_key *k)
{
	uint64_t h;

	memcpy(&h, k->leaf, sizeof(h));
	h ^= (uint64_t)(uintptr_t)k->t * 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < sizeof(k->dst); i += 8) {
		uint64_t w = 0;

		memcpy(&w, (const uint8_t *)&k->dst + i,
		       sizeof(k->dst) - i < 8 ? sizeof(k->dst) - i : 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	return (size_t)h & (v->cap - 1);
}

/* The verdict slot of @k: found (used) or where it goes. NULL without memory. */
static struct verdict *verdict_of(struct pass *v, const struct verdict_key *k)
{
	struct verdict *grown, *old = v->v;
	size_t i, old_cap = v->cap;

	if (2 * (v->n + 1) > v->cap) {
		grown = calloc(v->cap ? 2 * v->cap : 64, sizeof(*grown));
		if (!grown)
			return NULL;
		v->v = grown;
		v->cap = v->cap ? 2 * v->cap : 64;
		for (size_t j = 0; j < old_cap; j++) {
			if (!old[j].used)
				continue;
			for (i = slot_of(v, &old[j].key); v->v[i].used; i = (i + 1) & (v->cap - 1))
				;
			v->v[i] = old[j];
		}
		free(old);
	}
	for (i = slot_of(v, k); v->v[i].used; i = (i + 1) & (v->cap - 1))
		if (!memcmp(&v->v[i].key, k, sizeof(*k)))
			return &v->v[i];
	return &v->v[i];
}

/*
 * check() for @p on @t, once per pass for each leaf, tunnel and destination:
 * 0, or -EACCES with *@why (the pass's, valid until its end) and *@alert; -ENOMEM.
 */
static int check_once(struct pass *v, const struct fg_tunnel_conf *t, const struct gw_proof *p,
		      const char **why, uint8_t *alert)
{
	struct verdict_key k;
	struct verdict *e;
	unsigned int dl = 0;
	char buf[1024] = "";
	int ret;

	memset(&k, 0, sizeof(k));
	k.t = t;
	k.dst = p->dst;
	if (!X509_digest(p->leaf, EVP_sha256(), k.leaf, &dl) || dl != sizeof(k.leaf))
		return -ENOMEM;
	e = verdict_of(v, &k);
	if (!e)
		return -ENOMEM;
	if (e->used)
		goto out;
	ret = check(v, t, p, buf, sizeof(buf), alert);
	if (ret == -ENOMEM)
		return ret; /* not kept: the next tunnel of this peer tries again */
	e->key = k;
	e->ret = ret;
	e->alert = *alert;
	e->why = ret ? strdup(buf) : NULL;
	if (ret && !e->why)
		return -ENOMEM;
	e->used = 1;
	v->n++;
out:
	*why = e->why;
	*alert = e->alert;
	return e->ret;
}

/* gw_dp_revalidate()'s callback: 1 to close the tunnel, 0 to keep it, -1: not checked. */
static int one(void *ctx, const char *tunnel, const char *peer, const struct gw_proof *p,
	       uint8_t *alert)
{
	struct pass *v = ctx;
	const struct fg_tunnel_conf *t = tunnel_of(v->gw->cur->cfg, tunnel);
	const char *why = NULL;
	int ret;

	/* A reload keeps the tunnels (reload.c): a name not there is one fedgate never had. */
	if (!t || !t->revalidate)
		return 0;
	ret = check_once(v, t, p, &why, alert);
	if (!ret)
		return 0;
	if (ret != -EACCES) {
		fg_error("tunnel %s: %s: cannot check it again after %s: out of memory; trying "
			 "again at the next event",
			 tunnel, peer, v->what);
		return -1;
	}
	fg_warn("tunnel %s: %s closed: after %s it no longer passes: %s", tunnel, peer, v->what,
		why);
	return 1;
}

void gw_revalidate(struct gw *gw, const char *what)
{
	struct pass v = {.gw = gw, .what = what};
	size_t n;

	v.peer = calloc(1, sizeof(*v.peer));
	if (!v.peer) {
		fg_error("revalidation after %s: out of memory; established tunnels run on", what);
		return;
	}
	n = gw_dp_revalidate(gw->dp, gw->reval_epoch, one, &v);
	if (n)
		fg_info("revalidation after %s: %zu tunnel(s) closed", what, n);
	for (size_t i = 0; i < v.cap; i++)
		free(v.v[i].why);
	free(v.v);
	free(v.peer);
}

void gw_revalidate_changed(struct gw *gw, const char *what)
{
	gw->reval_epoch++;
	gw->trust_gen_seen = gw->id->trust_gen;
	gw_revalidate(gw, what);
}

void gw_revalidate_poll(struct gw *gw)
{
	if (gw->id->trust_gen != gw->trust_gen_seen)
		gw_revalidate_changed(gw, "a trust bundle change");
	else if (gw_dp_stale(gw->dp))
		gw_revalidate(gw, "a change made while they were being set up");
}
