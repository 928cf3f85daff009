// SPDX-License-Identifier: MIT
/*
 * SIGHUP and the config generations it makes: a connection keeps the
 * generation it was accepted under (its tunnel, allow rules and root rules)
 * until it ends, while new ones take the current generation. The file is
 * loaded and checked on a thread of its own (jobs.c): a config or identity
 * file on a hung mount delays the reload, never a handshake or SIGTERM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"
#include "control/gateway.h"
#include "control/identity.h"
#include "control/jobs.h"
#include "control/metrics.h"
#include "control/revalidate.h"
#include "fedgate/err.h"
#include "fedgate/log.h"

static void gen_free(struct gw_gen *g)
{
	if (!g)
		return;
	if (g->owned) {
		fg_config_free(g->cfg);
		free(g->cfg);
	}
	free(g);
}

int gw_gen_init(struct gw *gw, struct fg_config *cfg)
{
	gw->cur = calloc(1, sizeof(*gw->cur));
	if (!gw->cur)
		return -ENOMEM;
	gw->cur->cfg = cfg;
	gw->cur->refs = 1;
	return 0;
}

struct gw_gen *gw_gen_hold(struct gw *gw)
{
	gw->cur->refs++;
	return gw->cur;
}

void gw_gen_put(struct gw *gw, struct gw_gen *g)
{
	if (--g->refs > 0)
		return;
	for (struct gw_gen **p = &gw->retired; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	gen_free(g);
}

void gw_gen_exit(struct gw *gw)
{
	while (gw->retired) {
		struct gw_gen *g = gw->retired;

		gw->retired = g->next;
		gen_free(g);
	}
	gen_free(gw->cur);
	gw->cur = NULL;
}

/* What a reload cannot change in a running process: the listeners and the data plane. */
static int reload_compatible(const struct fg_config *a, const struct fg_config *b,
			     struct fg_err *err)
{
	char jp[64];

	if (a->n_tunnels != b->n_tunnels)
		return fg_conf_fail(err, b->path, "$.tunnels",
				    "%zu tunnels instead of %zu: adding or removing tunnels "
				    "needs a restart",
				    b->n_tunnels, a->n_tunnels);
	for (size_t i = 0; i < a->n_tunnels; i++) {
		const struct fg_tunnel_conf *x = &a->tunnels[i], *y = &b->tunnels[i];

		snprintf(jp, sizeof(jp), "$.tunnels[%zu]", i);
		if (strcmp(x->name, y->name) || x->mode != y->mode ||
		    strcmp(x->listen.text, y->listen.text))
			return fg_conf_fail(err, b->path, jp,
					    "name, mode or listen changed (was %s, %s): "
					    "listeners change only on restart",
					    x->name, x->listen.text);
		/* A capture listener is made transparent (or dual-stack) when it is bound. */
		if (x->capture != y->capture || x->transparent != y->transparent)
			return fg_conf_fail(err, b->path, jp,
					    "capture or transparent changed (tunnel %s): "
					    "listeners change only on restart",
					    x->name);
	}
	/* Landlock allows its directory at start, and only that one. */
	if (!a->trust_cache != !b->trust_cache ||
	    (a->trust_cache && strcmp(a->trust_cache, b->trust_cache)))
		return fg_conf_fail(err, b->path, "$.identity.trust.cache",
				    "changes only on restart");
	if (a->workers != b->workers || a->offload != b->offload ||
	    a->kernel_tx_splice != b->kernel_tx_splice || a->local_redirect != b->local_redirect ||
	    a->local_redirect_budget != b->local_redirect_budget ||
	    !a->local_redirect_cgroup != !b->local_redirect_cgroup ||
	    (a->local_redirect_cgroup &&
	     strcmp(a->local_redirect_cgroup, b->local_redirect_cgroup)))
		return fg_conf_fail(err, b->path, "$.dataplane",
				    "the data plane settings change only on restart");
	return 0;
}

void gw_reload(struct gw *gw)
{
	struct fg_job *j;

	if (gw->reloading) {
		fg_info("SIGHUP: a reload is in progress; %s is loaded again after it",
			gw->cur->cfg->path);
		gw->reload_again = 1;
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j) {
		j->kind = FG_JOB_CONFIG;
		j->url = strdup(gw->cur->cfg->path);
	}
	if (!j || !j->url) {
		fg_error("SIGHUP: out of memory; the running config stays");
		fg_job_free(j);
		return;
	}
	fg_info("SIGHUP: reloading %s", j->url);
	gw->reloading = 1;
	fg_jobq_submit(gw->reload_jobs, j);
}

/*
 * Everything that verifies applies to new handshakes; handshakes in flight
 * keep what they have, and established tunnels are checked again
 * (revalidate.c), as are those in flight once they run. The identity's files were found
 * answering by the load a moment ago; fg_ident_new() reads them again, within
 * its own 5 s bound.
 */
void gw_reload_done(struct gw *gw, struct fg_job *j)
{
	struct fg_config *cfg = j->out_config;
	struct fg_err err = j->err;
	struct fg_ident *id = NULL;
	struct gw_gen *g = NULL;
	int ret = j->ret;

	gw->reloading = 0;
	if (!ret)
		ret = reload_compatible(gw->cur->cfg, cfg, &err);
	if (!ret)
		ret = fg_ident_new(&id, cfg, gw->id, 0, &err);
	if (!ret) {
		g = calloc(1, sizeof(*g));
		if (!g)
			ret = fg_err_set(&err, -ENOMEM, "out of memory");
	}
	gw_metrics_reloaded(!ret);
	if (ret) {
		fg_error("config not reloaded: %s; the running config stays",
			 err.msg[0] ? err.msg : strerror(-ret));
		fg_ident_free(id);
		goto free_job;
	}
	j->out_config = NULL; /* the generation's now */
	g->cfg = cfg;
	g->owned = 1;
	g->refs = 1;
	for (size_t i = 0; i < gw->n_listeners; i++)
		gw->listeners[i].t = &cfg->tunnels[i];
	fg_ident_attach(id, gw->id_jobs, gw->fed_jobs);
	fg_ident_free(gw->id);
	gw->id = id;
	gw->cur->next = gw->retired;
	gw->retired = gw->cur;
	gw_gen_put(gw, gw->cur);
	gw->cur = g;
	fg_info("config reloaded: %zu tunnel(s), %d root(s) in the trust bundle, %zu root rule(s)",
		cfg->n_tunnels, fg_ident_tls(id)->n_roots, cfg->n_root_rules);
	gw_revalidate_changed(gw, "a config reload");
free_job:
	fg_job_free(j);
	if (gw->reload_again) {
		gw->reload_again = 0;
		gw_reload(gw);
	}
}
