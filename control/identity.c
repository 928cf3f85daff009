// SPDX-License-Identifier: MIT
/*
 * Identity and trust over time, the core: holds the material (the identity
 * and one bundle per trust origin), builds the TLS contexts from it, and
 * drives the sources (ident_files.c, ident_ca.c, ident_federation.c) through
 * their ops. Everything here runs on the control loop; CA requests go to the
 * job queues (jobs.c) and come back as finished jobs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>

#include "control/config.h"
#include "control/ident_issued.h"
#include "control/ident_source.h"
#include "control/identity.h"
#include "control/roots.h"
#include "control/tls.h"
#include "fedgate/clock.h"
#include "fedgate/err.h"
#include "fedgate/log.h"
#include "fedgate/x509name.h"

#define POLL_MS 2000
#define BACKOFF_FIRST_MS 1000
/* `fedgate run` enrolls and fetches before serving, but gives up after this long in total. */
#define STARTUP_DEADLINE_MS 30000
#define STARTUP_STEP_MS 5000

static unsigned long next_gen = 1;

uint64_t fg_ident_backoff_ms(int failures, uint64_t cap_ms)
{
	uint64_t ms = BACKOFF_FIRST_MS;

	for (int i = 1; i < failures && ms < cap_ms; i++)
		ms *= 2;
	return ms < cap_ms ? ms : cap_ms;
}

int fg_ident_n_roots(STACK_OF(X509) * sk)
{
	return sk ? sk_X509_num(sk) : 0;
}

STACK_OF(X509) * fg_ident_union_roots(struct fg_ident *id)
{
	size_t n = id->cfg->n_federation + 1;
	STACK_OF(X509) *all = sk_X509_new_null();

	if (!all)
		return NULL;
	for (size_t s = 0; s < n + 1; s++) {
		STACK_OF(X509) *sk = s < n		? id->bundles[s]
				     : sk_X509_num(all) ? NULL
							: id->interim_roots;

		for (int i = 0; i < sk_X509_num(sk); i++) {
			X509 *x = sk_X509_value(sk, i);
			int dup = 0;

			for (int k = 0; k < sk_X509_num(all) && !dup; k++)
				dup = !X509_cmp(x, sk_X509_value(all, k));
			if (dup)
				continue;
			if (!X509_up_ref(x) || !sk_X509_push(all, x)) {
				X509_free(x);
				sk_X509_pop_free(all, X509_free);
				return NULL;
			}
		}
	}
	return all;
}

int64_t fg_ident_roots_expiry(struct fg_ident *id)
{
	STACK_OF(X509) *all = fg_ident_union_roots(id);
	int64_t first = 0;

	for (int i = 0; i < sk_X509_num(all); i++) {
		int64_t na = fg_ident_cert_time(X509_get0_notAfter(sk_X509_value(all, i)));

		if (na && (!first || na < first))
			first = na;
	}
	sk_X509_pop_free(all, X509_free);
	return first;
}

void fg_ident_roots_describe(STACK_OF(X509) * sk, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < sk_X509_num(sk) && used + 4 < len; i++) {
		char cn[256];
		int w;

		if (fg_x509_cn(X509_get_subject_name(sk_X509_value(sk, i)), cn, sizeof(cn)))
			snprintf(cn, sizeof(cn), "?");
		w = snprintf(out + used, len - used, "%s'%s'", i ? ", " : "", cn);
		if (w < 0)
			break;
		used += (size_t)w < len - used ? (size_t)w : len - used - 1;
	}
}

int fg_ident_rebuild(struct fg_ident *id, struct fg_err *err)
{
	struct fg_material m = id->id;
	struct fg_tls t;
	char why[1024];
	int ret;

	m.roots = fg_ident_union_roots(id);
	if (!m.roots)
		return -ENOMEM;
	ret = fg_roots_unique_cns(id->cfg, m.roots, why, sizeof(why));
	if (ret)
		fg_conf_fail(err, id->cfg->path, "$.identity.trust", "%s", why);
	else
		ret = fg_tls_build(&t, id->cfg, &m, err);
	sk_X509_pop_free(m.roots, X509_free);
	if (ret)
		return ret;
	/* Handshakes in flight hold their own references to the old contexts. */
	fg_tls_exit(&id->tls);
	id->tls = t;
	return 0;
}

void fg_ident_rebuild_or_warn(struct fg_ident *id, const char *what)
{
	struct fg_err err = {0};

	if (fg_ident_rebuild(id, &err))
		fg_warn("%s: cannot build TLS contexts (%s); new handshakes keep the previous "
			"identity and bundle",
			what, err.msg[0] ? err.msg : "out of memory");
}

int fg_ident_load_identity_files(struct fg_ident *id, struct fg_material *m, struct fg_err *err)
{
	int ret = fg_material_load_identity(m, id->cfg, id->cfg->cert_file, id->cfg->key_file, NULL,
					    NULL, err);

	if (ret)
		fg_material_free(m);
	return ret;
}

void fg_ident_take_identity(struct fg_ident *id, struct fg_material *m)
{
	fg_material_free(&id->id);
	id->id.leaf = m->leaf;
	id->id.chain = m->chain;
	id->id.key = m->key;
	m->leaf = NULL;
	m->chain = NULL;
	m->key = NULL;
}

STACK_OF(X509) * fg_ident_take_roots(struct fg_material *m)
{
	STACK_OF(X509) *roots = m->roots;

	m->roots = NULL;
	return roots;
}

int fg_ident_swap_roots(struct fg_ident *id, STACK_OF(X509) * *slot, STACK_OF(X509) * roots,
			struct fg_err *err)
{
	STACK_OF(X509) *prev = *slot;
	int ret;

	*slot = roots;
	ret = fg_ident_rebuild(id, err);
	if (ret) {
		*slot = prev;
		sk_X509_pop_free(roots, X509_free);
		return ret;
	}
	sk_X509_pop_free(prev, X509_free);
	id->trust_gen++;
	/* A source of the new config answered: the previous config's bundle is done. */
	sk_X509_pop_free(id->interim_roots, X509_free);
	id->interim_roots = NULL;
	return 0;
}

struct fg_job *fg_ident_job_new(struct fg_ident *id, enum fg_job_kind kind,
				const struct fg_ca_endpoint *ep)
{
	struct fg_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = kind;
	j->owner = id->gen;
	j->url = strdup(ep->url);
	j->root = strdup(ep->root);
	if (!j->url || !j->root) {
		fg_job_free(j);
		return NULL;
	}
	return j;
}

void fg_ident_run_startup_job(struct fg_job *j, uint64_t until_ms)
{
	uint64_t now = fg_mono_ms();

	if (now >= until_ms) {
		j->ret = fg_err_set(&j->err, -ETIMEDOUT,
				    "not tried: the start-up deadline (%d s) has passed",
				    STARTUP_DEADLINE_MS / 1000);
		return;
	}
	j->timeout_ms = (int)(until_ms - now < STARTUP_STEP_MS ? until_ms - now : STARTUP_STEP_MS);
	fg_job_run(j);
}

struct fg_ident_source *fg_ident_source_new(struct fg_ident *id,
					    const struct fg_ident_source_ops *ops, size_t size)
{
	struct fg_ident_source *s = calloc(1, size);

	if (!s)
		return NULL;
	s->ops = ops;
	s->id = id;
	return s;
}

void fg_ident_refresh(struct fg_ident *id)
{
	for (size_t i = 0; i < id->n_src; i++)
		if (id->src[i]->ops->refresh)
			id->src[i]->ops->refresh(id->src[i]);
}

struct fg_ident_source *fg_ident_source_of(struct fg_ident *id,
					   const struct fg_ident_source_ops *ops)
{
	for (size_t i = 0; i < id->n_src; i++)
		if (id->src[i]->ops == ops)
			return id->src[i];
	return NULL;
}

/* Whether any trust origin has given a bundle yet. */
static int has_bundle(const struct fg_ident *id)
{
	for (size_t i = 0; i < id->cfg->n_federation + 1; i++)
		if (id->bundles[i])
			return 1;
	return 0;
}

int fg_ident_create(struct fg_ident **out, const struct fg_config *cfg,
		    const struct fg_ident_source_ops *const *ops, size_t n_ops,
		    struct fg_ident *old, int offline, struct fg_err *err)
{
	struct fg_ident_start st = {
	    .old = old,
	    .offline = offline,
	    .until_ms = fg_mono_ms() + STARTUP_DEADLINE_MS,
	};
	struct fg_ident *id;
	int ret;

	*out = NULL;
	if (n_ops > FG_IDENT_MAX_SOURCES)
		return -EINVAL;
	id = calloc(1, sizeof(*id));
	if (!id)
		return -ENOMEM;
	id->cfg = cfg;
	id->gen = next_gen++;
	id->bundles = calloc(cfg->n_federation + 1, sizeof(*id->bundles));
	id->bundle_ms = calloc(cfg->n_federation + 1, sizeof(*id->bundle_ms));
	id->bundle_cached = calloc(cfg->n_federation + 1, sizeof(*id->bundle_cached));
	if (!id->bundles || !id->bundle_ms || !id->bundle_cached) {
		ret = -ENOMEM;
		goto free_ident;
	}
	for (; id->n_src < n_ops; id->n_src++) {
		id->src[id->n_src] = ops[id->n_src]->alloc(id);
		if (!id->src[id->n_src]) {
			ret = -ENOMEM;
			goto free_ident;
		}
	}
	for (size_t i = 0; i < id->n_src; i++) {
		ret = id->src[i]->ops->load(id->src[i], &st, err);
		if (ret)
			goto free_ident;
	}
	if (!offline || id->id.leaf) {
		if (offline && !has_bundle(id))
			goto done; /* check: no bundle without asking the CAs */
		ret = fg_ident_rebuild(id, err);
		if (ret)
			goto free_ident;
	}
done:
	id->next_poll_ms = fg_mono_ms() + POLL_MS;
	*out = id;
	return 0;
free_ident:
	fg_ident_free(id);
	return ret;
}

void fg_ident_free(struct fg_ident *id)
{
	if (!id)
		return;
	fg_tls_exit(&id->tls);
	fg_material_free(&id->id);
	for (size_t i = 0; id->bundles && i < id->cfg->n_federation + 1; i++)
		sk_X509_pop_free(id->bundles[i], X509_free);
	free(id->bundles);
	free(id->bundle_ms);
	free(id->bundle_cached);
	sk_X509_pop_free(id->interim_roots, X509_free);
	for (size_t i = 0; i < id->n_src; i++) {
		if (id->src[i]->ops->release)
			id->src[i]->ops->release(id->src[i]);
		free(id->src[i]);
	}
	free(id);
}

struct fg_tls *fg_ident_tls(struct fg_ident *id)
{
	return &id->tls;
}

void fg_ident_attach(struct fg_ident *id, struct fg_jobq *id_jobs, struct fg_jobq *fed_jobs)
{
	id->id_jobs = id_jobs;
	id->fed_jobs = fed_jobs;
}

void fg_ident_tick(struct fg_ident *id)
{
	uint64_t now = fg_mono_ms();

	if (now >= id->next_poll_ms) {
		id->next_poll_ms = now + POLL_MS;
		for (size_t i = 0; i < id->n_src; i++)
			if (id->src[i]->ops->poll)
				id->src[i]->ops->poll(id->src[i]);
	}
	if (!id->id_jobs)
		return;
	for (size_t i = 0; i < id->n_src; i++)
		if (id->src[i]->ops->tick)
			id->src[i]->ops->tick(id->src[i], now);
}

void fg_ident_job_done(struct fg_ident *id, struct fg_job *j)
{
	for (size_t i = 0; j->owner == id->gen && i < id->n_src; i++) {
		const struct fg_ident_source_ops *ops = id->src[i]->ops;

		if (ops->job_done && (ops->job_kinds & (1u << j->kind))) {
			ops->job_done(id->src[i], j);
			break;
		}
	}
	fg_job_free(j);
}
