// SPDX-License-Identifier: MIT
/*
 * The federation source: identity.trust.federation[], each CA's /federation
 * bundle, fetched at start and refreshed every refresh_s (and after each
 * renewal). A source that fails or answers with a bundle that cannot be used
 * keeps its last good bundle and retries with backoff.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <openssl/x509.h>

#include "control/config.h"
#include "control/ident_source.h"
#include "control/tls.h"
#include "control/trust_cache.h"
#include "fedgate/clock.h"
#include "fedgate/log.h"

/* One per cfg->federation[]; its bundle is the core's bundles[] slot of the same index. */
struct endpoint {
	uint64_t next_ms; /* CLOCK_MONOTONIC */
	int busy, failures;
};

struct ident_federation {
	struct fg_ident_source base; /* first: the core's handle */
	int64_t cache_saved_ms;	     /* wall clock of the last identity.trust.cache write */
	struct endpoint ep[];	     /* cfg->n_federation of them */
};

static struct ident_federation *fed_of(struct fg_ident_source *s)
{
	return (struct ident_federation *)s;
}

/* Same certificates in both (order ignored)? */
static int same_roots(STACK_OF(X509) * a, STACK_OF(X509) * b)
{
	if (sk_X509_num(a) != sk_X509_num(b))
		return 0;
	for (int i = 0; i < sk_X509_num(a); i++) {
		int found = 0;

		for (int k = 0; k < sk_X509_num(b) && !found; k++)
			found = !X509_cmp(sk_X509_value(a, i), sk_X509_value(b, k));
		if (!found)
			return 0;
	}
	return 1;
}

static int same_endpoint(const struct fg_ca_endpoint *a, const struct fg_ca_endpoint *b)
{
	return !strcmp(a->url, b->url) && !strcmp(a->root, b->root);
}

/* Every source's bundle to identity.trust.cache now; a failure is only a warning. */
static void write_cache(struct ident_federation *f)
{
	struct fg_ident *id = f->base.id;
	struct fg_err err = {0};

	f->cache_saved_ms = fg_wall_ms();
	if (fg_trust_cache_save(id->cfg, id->id.key, id->bundles, id->bundle_ms, f->cache_saved_ms,
				&err))
		fg_warn("trust cache: cannot save it: %s; the bundle in force is not affected",
			err.msg[0] ? err.msg : "out of memory");
}

/*
 * After a good answer while running: at once when the bundle changed, else
 * once an hour (the file says when each source last answered, and a write on
 * the loop should be rare). At start fed_load() writes once, after the cache
 * filled the gaps of the sources that did not answer.
 */
#define CACHE_RESAVE_MS (3600 * 1000LL)
static void save_cache(struct ident_federation *f, int changed)
{
	struct fg_ident *id = f->base.id;

	if (id->cfg->trust_cache && id->id_jobs &&
	    (changed || fg_wall_ms() - f->cache_saved_ms >= CACHE_RESAVE_MS))
		write_cache(f);
}

/*
 * At start, for each federation source that did not answer: its bundle saved
 * in identity.trust.cache, if the file is there, good and recent enough (as
 * a running gateway keeps a silent source's last good bundle). Returns the
 * roots taken (0: none, with @why saying why).
 */
static int load_cache(struct fg_ident *id, char *why, size_t wlen)
{
	const struct fg_config *cfg = id->cfg;
	char **pem = calloc(cfg->n_federation, sizeof(*pem));
	int64_t *at = calloc(cfg->n_federation, sizeof(*at)), now = fg_wall_ms();
	struct fg_err err = {0};
	int total = 0;

	if (!pem || !at) {
		snprintf(why, wlen, "out of memory");
		goto out;
	}
	if (fg_trust_cache_read(cfg, id->id.key, now, pem, at, why, wlen))
		goto out;
	for (size_t i = 0; i < cfg->n_federation; i++) {
		struct fg_material m = {0};

		if (!pem[i] || id->bundles[i])
			continue;
		if (fg_material_load_trust(&m, cfg, cfg->trust_cache, pem[i], &err)) {
			fg_warn("trust cache: the bundle of %s is not usable: %s",
				cfg->federation[i].url, err.msg);
			fg_material_free(&m);
			continue;
		}
		sk_X509_pop_free(id->bundles[i], X509_free);
		id->bundles[i] = fg_ident_take_roots(&m);
		id->bundle_ms[i] = at[i];
		id->bundle_cached[i] = 1;
		total += fg_ident_n_roots(id->bundles[i]);
		fg_warn("trust cache: %s did not answer: trusting its bundle from %s, %lld s old "
			"(%d root(s)) until it does",
			cfg->federation[i].url, cfg->trust_cache, (long long)((now - at[i]) / 1000),
			fg_ident_n_roots(id->bundles[i]));
		fg_material_free(&m);
	}
	if (!total)
		snprintf(why, wlen, "no usable bundle in it");
out:
	for (size_t i = 0; pem && i < cfg->n_federation; i++)
		free(pem[i]);
	free(pem);
	free(at);
	return total;
}

/*
 * A fetched bundle. While starting (no job queue yet) it is only stored:
 * fg_ident_new() builds the contexts once, and a bundle it cannot use fails
 * the start. Later, one that cannot be used is refused and the source keeps
 * its last good bundle.
 */
static void fed_job_done(struct fg_ident_source *src, struct fg_job *j)
{
	struct fg_ident *id = src->id;
	struct endpoint *s = &fed_of(src)->ep[j->index];
	STACK_OF(X509) **roots = &id->bundles[j->index];
	struct fg_err err = {0};
	struct fg_material m = {0};
	uint64_t refresh = (uint64_t)id->cfg->refresh_s * 1000;
	char desc[1024];
	int ret;

	s->busy = 0;
	ret = j->ret ? j->ret : fg_material_load_trust(&m, id->cfg, j->url, j->out_bundle, &err);
	if (!ret && *roots && same_roots(*roots, m.roots)) {
		fg_material_free(&m);
		if (s->failures)
			fg_info("federation refresh from %s: answering again after %d failure(s); "
				"bundle unchanged",
				j->url, s->failures);
		else
			fg_debug("federation %s: bundle unchanged", j->url);
		s->failures = 0;
		s->next_ms = fg_mono_ms() + refresh;
		id->bundle_ms[j->index] = fg_wall_ms();
		id->bundle_cached[j->index] = 0;
		save_cache(fed_of(src), 0);
		return;
	}
	if (!ret && !id->id_jobs) {
		sk_X509_pop_free(*roots, X509_free);
		*roots = fg_ident_take_roots(&m);
	} else if (!ret) {
		ret = fg_ident_swap_roots(id, roots, fg_ident_take_roots(&m), &err);
		if (ret) {
			fg_material_free(&m);
			s->failures++;
			s->next_ms = fg_mono_ms() + refresh;
			fg_warn("federation refresh from %s refused: %s; keeping its last good "
				"bundle (%d root(s))",
				j->url, err.msg[0] ? err.msg : "out of memory",
				fg_ident_n_roots(*roots));
			return;
		}
	}
	fg_material_free(&m);
	if (!ret) {
		s->failures = 0;
		s->next_ms = fg_mono_ms() + refresh;
		id->bundle_ms[j->index] = fg_wall_ms();
		id->bundle_cached[j->index] = 0;
		save_cache(fed_of(src), 1);
		fg_ident_roots_describe(*roots, desc, sizeof(desc));
		fg_info("trust bundle from %s: %d root(s): %s", j->url, fg_ident_n_roots(*roots),
			desc);
		return;
	}
	s->failures++;
	s->next_ms = fg_mono_ms() + fg_ident_backoff_ms(s->failures, refresh);
	fg_warn("federation refresh from %s failed (attempt %d): %s; keeping its last good bundle "
		"(%d root(s)); retrying in %llu s",
		j->url, s->failures, j->ret ? j->err.msg : err.msg, fg_ident_n_roots(*roots),
		(unsigned long long)(s->next_ms - fg_mono_ms() + 999) / 1000);
}

/*
 * Whether @old fetched from federation[@i] too: then endpoint @i takes its
 * state (its bundle, or none after failed fetches, and when to try next).
 * Returns 1 if so, 0 if not, -ENOMEM.
 */
static int carry(struct ident_federation *f, size_t i, struct fg_ident *old)
{
	struct fg_ident *id = f->base.id;
	struct ident_federation *o;

	o = old ? fed_of(fg_ident_source_of(old, &fg_ident_federation_ops)) : NULL;
	for (size_t k = 0; o && k < old->cfg->n_federation; k++) {
		if (!same_endpoint(&id->cfg->federation[i], &old->cfg->federation[k]))
			continue;
		/* Shared, not taken: @old stays whole if this reload fails. */
		if (old->bundles[k]) {
			id->bundles[i] = X509_chain_up_ref(old->bundles[k]);
			if (!id->bundles[i])
				return -ENOMEM;
		}
		id->bundle_ms[i] = old->bundle_ms[k];
		id->bundle_cached[i] = old->bundle_cached[k];
		f->ep[i].next_ms = o->ep[k].next_ms;
		f->ep[i].failures = o->ep[k].failures;
		return 1;
	}
	return 0;
}

/*
 * Each source's bundle. On a reload (@st->old set) nothing is fetched here: a
 * source the old identity had keeps its state; a new one is fetched by the
 * job queue at the first tick. At start each source is fetched now, within
 * the deadline.
 */
static int fed_load(struct fg_ident_source *src, const struct fg_ident_start *st,
		    struct fg_err *err)
{
	struct ident_federation *f = fed_of(src);
	struct fg_ident *id = src->id;
	char why[512] = "not configured (identity.trust.cache)";
	int total = 0, missing = 0, ret;

	for (size_t i = 0; i < id->cfg->n_federation; i++) {
		struct fg_job *j;

		ret = carry(f, i, st->old);
		if (ret < 0)
			return ret;
		if (st->old || ret || st->offline) {
			total += fg_ident_n_roots(id->bundles[i]);
			continue;
		}
		j = fg_ident_job_new(id, FG_JOB_FEDERATION, &id->cfg->federation[i]);
		if (!j)
			return -ENOMEM;
		j->index = (int)i;
		fg_ident_run_startup_job(j, st->until_ms);
		fed_job_done(src, j); /* logs, and schedules the next refresh or retry */
		fg_job_free(j);
		total += fg_ident_n_roots(id->bundles[i]);
		missing += !id->bundles[i];
	}
	if (!total && st->old) {
		/* Only new sources: the previous bundle stays in force until one answers. */
		id->interim_roots = fg_ident_union_roots(st->old);
		if (!id->interim_roots)
			return -ENOMEM;
		fg_info("no bundle yet from the new federation source(s): the previous bundle "
			"(%d root(s)) stays in force until one answers",
			sk_X509_num(id->interim_roots));
		return 0;
	}
	if (!st->offline && missing && id->cfg->trust_cache)
		total += load_cache(id, why, sizeof(why));
	if (!total && !st->offline) {
		fg_conf_fail(err, id->cfg->path, "$.identity.trust.federation",
			     "no CA answered with a bundle: no root to trust; trust cache: %s",
			     why);
		return -EHOSTUNREACH;
	}
	if (!st->offline && id->cfg->trust_cache && total > 0)
		write_cache(f);
	return 0;
}

static void fed_tick(struct fg_ident_source *src, uint64_t now_ms)
{
	struct ident_federation *f = fed_of(src);
	struct fg_ident *id = src->id;

	for (size_t i = 0; i < id->cfg->n_federation; i++) {
		struct endpoint *s = &f->ep[i];
		struct fg_job *j;

		if (s->busy || now_ms < s->next_ms)
			continue;
		j = fg_ident_job_new(id, FG_JOB_FEDERATION, &id->cfg->federation[i]);
		if (!j)
			continue;
		j->index = (int)i;
		s->busy = 1;
		fg_jobq_submit(id->fed_jobs, j);
	}
}

static void fed_refresh(struct fg_ident_source *src)
{
	struct ident_federation *f = fed_of(src);

	for (size_t i = 0; i < src->id->cfg->n_federation; i++)
		f->ep[i].next_ms = 0;
}

static struct fg_ident_source *fed_alloc(struct fg_ident *id)
{
	size_t n = id->cfg->n_federation;

	return fg_ident_source_new(id, &fg_ident_federation_ops,
				   sizeof(struct ident_federation) + n * sizeof(struct endpoint));
}

const struct fg_ident_source_ops fg_ident_federation_ops = {
    .job_kinds = 1u << FG_JOB_FEDERATION,
    .alloc = fed_alloc,
    .load = fed_load,
    .tick = fed_tick,
    .job_done = fed_job_done,
    .refresh = fed_refresh,
};
