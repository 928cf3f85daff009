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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "fedgate/log.h"

struct pass {
	struct gw *gw;
	const char *what;	 /* the change, for the log */
	struct fg_peer_id *peer; /* scratch, one for the pass: 17 KiB */
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
	}
	ret = fg_tls_verify_again(fg_ident_tls(v->gw->id), t->mode == FG_MODE_TERMINATE, p->chain,
				  expect, &verified, why, len);
	if (ret == -EACCES) {
		*alert = FG_ALERT_CERTIFICATE_UNKNOWN;
		o = strlen(why);
		snprintf(why + o, len - o, ": the trust bundle no longer verifies its chain");
	}
	if (ret)
		return ret;
	ret = fg_tls_peer_of(sk_X509_value(p->chain, 0), verified, v->peer);
	if (ret) {
		snprintf(why, len, "its chain's anchor cannot be read");
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

/* gw_dp_revalidate()'s callback: nonzero to close the tunnel. */
static int one(void *ctx, const char *tunnel, const char *peer, const struct gw_proof *p,
	       uint8_t *alert)
{
	struct pass *v = ctx;
	const struct fg_tunnel_conf *t = tunnel_of(v->gw->cur->cfg, tunnel);
	char why[1024] = "";
	int ret;

	/* A reload keeps the tunnels (reload.c): a name not there is one fedgate never had. */
	if (!t || !t->revalidate)
		return 0;
	ret = check(v, t, p, why, sizeof(why), alert);
	if (!ret)
		return 0;
	if (ret != -EACCES) {
		fg_error("tunnel %s: %s: cannot check it again after %s: out of memory; it runs "
			 "on",
			 tunnel, peer, v->what);
		return 0;
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
