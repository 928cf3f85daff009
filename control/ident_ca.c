// SPDX-License-Identifier: MIT
/*
 * The identity.ca source: the certificate and key come from a step-ca
 * compatible CA. At start the files on disk serve if valid, else the gateway
 * enrolls with token_file; it renews at about two thirds of the lifetime
 * (with jitter, and backoff on failure), and enrolls again when the
 * certificate has expired. What the CA returns is checked and written to
 * the files (ident_issued.c) before it serves.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "control/ca/pki.h"
#include "control/config.h"
#include "control/ident_issued.h"
#include "control/ident_source.h"
#include "control/metrics.h"
#include "control/tls.h"
#include "fedgate/clock.h"
#include "fedgate/log.h"

struct ident_ca {
	struct fg_ident_source base; /* first: the core's handle */
	/*
	 * The renewal time is wall-clock (CLOCK_REALTIME, ms), like the
	 * certificate's validity: a suspended or clock-jumped machine must see
	 * its renewal as due at once, which a monotonic deadline would miss.
	 */
	int64_t renew_at_ms;
	int renew_busy, renew_failures;
	int enroll_due; /* no valid certificate on disk after a reload: enroll in the background */
};

static struct ident_ca *ca_of(struct fg_ident_source *s)
{
	return (struct ident_ca *)s;
}

/* Seconds until wall-clock @at_ms, rounded up, for log lines. */
static long long secs_until(int64_t at_ms)
{
	int64_t d = at_ms - fg_wall_ms();

	return d > 0 ? (long long)(d + 999) / 1000 : 0;
}

/* A random value in [-span, span]. */
static int64_t jitter(int64_t span)
{
	uint32_t r = 0;

	if (span <= 0 || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		return 0;
	return (int64_t)(r % (uint32_t)(2 * span + 1)) - span;
}

static int64_t lifetime_s(X509 *x)
{
	int64_t nb = fg_ident_cert_time(X509_get0_notBefore(x));
	int64_t na = fg_ident_cert_time(X509_get0_notAfter(x));

	return na > nb ? na - nb : 1;
}

static int cert_expired(X509 *x)
{
	return fg_ident_cert_time(X509_get0_notAfter(x)) <= (int64_t)time(NULL);
}

/* Renew at about two thirds of the lifetime, +-5% so that a fleet does not renew at once. */
static void schedule_renewal(struct ident_ca *c)
{
	X509 *x = c->base.id->id.leaf;
	int64_t life = lifetime_s(x), at, now = (int64_t)time(NULL);

	at = fg_ident_cert_time(X509_get0_notBefore(x)) + life * 2 / 3 + jitter(life / 20);
	c->renew_at_ms = (at > now ? at : now) * 1000;
	c->renew_failures = 0;
}

/* Retry well before expiry: at most a tenth of the lifetime, 2 s to 5 min. */
static void renewal_backoff(struct ident_ca *c)
{
	uint64_t cap = (uint64_t)lifetime_s(c->base.id->id.leaf) * 100;

	cap = cap < 2000 ? 2000 : cap > 300000 ? 300000 : cap;
	c->renew_failures++;
	c->renew_at_ms = fg_wall_ms() + (int64_t)fg_ident_backoff_ms(c->renew_failures, cap);
}

static char *pem_of_chain(const struct fg_material *m)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	char *out = NULL;

	if (!sk || !sk_X509_push(sk, m->leaf))
		goto free_stack;
	for (int i = 0; i < sk_X509_num(m->chain); i++)
		if (!sk_X509_push(sk, sk_X509_value(m->chain, i)))
			goto free_stack;
	out = fg_pki_certs_pem(sk);
free_stack:
	sk_X509_free(sk); /* the certificates stay @m's */
	return out;
}

static void free_token(char *tok, size_t len)
{
	if (!tok)
		return;
	OPENSSL_cleanse(tok, len);
	free(tok);
}

/* An enrollment job: a token from token_file (trimmed), a fresh key, a CSR. */
static struct fg_job *enroll_job(struct fg_ident *id, struct fg_err *err)
{
	const struct fg_ca_identity *ca = id->cfg->ca;
	struct fg_job *j;
	size_t len = 0;
	char *tok = NULL;

	if (!ca->token_file) {
		fg_err_set(err, -ENOENT,
			   "no valid certificate in %s and no $.identity.ca.token_file to enroll "
			   "with",
			   id->cfg->cert_file);
		return NULL;
	}
	if (fg_pki_read_file(ca->token_file, 64 * 1024, &tok, &len, err))
		return NULL;
	while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
		tok[--len] = '\0';
	j = fg_ident_job_new(id, FG_JOB_ENROLL, &ca->ca);
	if (!j)
		goto wipe_token;
	j->token = tok; /* wiped by fg_job_free() from here on */
	tok = NULL;
	j->subject = strdup(ca->subject);
	if (!j->subject)
		goto free_job;
	if (ca->n_sans) {
		j->sans = calloc(ca->n_sans, sizeof(*j->sans));
		if (!j->sans)
			goto free_job;
		for (; j->n_sans < ca->n_sans; j->n_sans++) {
			j->sans[j->n_sans] = strdup(ca->sans[j->n_sans]);
			if (!j->sans[j->n_sans])
				goto free_job;
		}
	}
	return j;
free_job:
	fg_job_free(j);
wipe_token:
	free_token(tok, len);
	fg_err_set(err, -ENOMEM, "out of memory");
	return NULL;
}

static struct fg_job *renew_job(struct fg_ident *id)
{
	struct fg_job *j = fg_ident_job_new(id, FG_JOB_RENEW, &id->cfg->ca->ca);

	if (!j)
		return NULL;
	j->chain_pem = pem_of_chain(&id->id);
	j->key_pem = fg_pki_key_pem(id->id.key);
	if (!j->chain_pem || !j->key_pem) {
		fg_job_free(j);
		return NULL;
	}
	return j;
}

/*
 * Takes the result of an enrollment or renewal: checks it
 * (fg_ident_issued_verify()), writes the files (fg_ident_issued_write()),
 * then switches to it. On failure the current identity and files stay and
 * @err says why.
 */
static int apply_issued(struct fg_ident *id, struct fg_job *j, struct fg_err *err)
{
	struct fg_err cerr = {0};
	struct fg_material m = {0};
	char why[1024];
	int ret;

	ret = fg_material_load_identity(&m, id->cfg, id->cfg->cert_file, id->cfg->key_file,
					j->out_chain, j->key_pem, err);
	if (ret)
		goto free_material;
	ret = fg_ident_issued_verify(id->cfg->ca, j->kind == FG_JOB_ENROLL ? NULL : id->id.leaf,
				     m.leaf, m.chain, why, sizeof(why));
	if (ret) {
		fg_conf_fail(err, id->cfg->path, "$.identity.ca",
			     "refused the certificate %s returned: %s", j->url, why);
		goto free_material;
	}
	ret = fg_ident_issued_write(id->cfg, j->kind == FG_JOB_ENROLL ? j->key_pem : NULL,
				    j->out_chain, &cerr);
	if (ret) {
		snprintf(err->msg, sizeof(err->msg), "%s", cerr.msg);
		goto free_material;
	}
	fg_ident_take_identity(id, &m);
free_material:
	fg_material_free(&m);
	return ret;
}

static void start_renewal(struct ident_ca *c)
{
	struct fg_ident *id = c->base.id;
	struct fg_err err = {0};
	struct fg_job *j;

	if (c->enroll_due || cert_expired(id->id.leaf)) {
		/* /renew refuses an expired certificate: only a new token helps now. */
		j = enroll_job(id, &err);
		if (!j) {
			renewal_backoff(c);
			fg_warn("the certificate in %s %s and enrolling is not possible: %s; "
				"retrying in %lld s",
				id->cfg->cert_file, c->enroll_due ? "is not usable" : "has expired",
				err.msg, secs_until(c->renew_at_ms));
			return;
		}
		fg_warn("the certificate in %s %s: enrolling at %s with %s", id->cfg->cert_file,
			c->enroll_due ? "is not usable" : "has expired", id->cfg->ca->ca.url,
			id->cfg->ca->token_file);
	} else {
		j = renew_job(id);
		if (!j) {
			renewal_backoff(c);
			fg_warn("renewal: out of memory; retrying in %lld s",
				secs_until(c->renew_at_ms));
			return;
		}
	}
	c->renew_busy = 1;
	fg_jobq_submit(id->id_jobs, j);
}

static void ca_job_done(struct fg_ident_source *s, struct fg_job *j)
{
	struct ident_ca *c = ca_of(s);
	struct fg_ident *id = s->id;
	struct fg_err err = {0};
	const char *what = j->kind == FG_JOB_ENROLL ? "enrollment" : "renewal";
	char desc[512];

	c->renew_busy = 0;
	if (!j->ret && !apply_issued(id, j, &err)) {
		gw_metrics_renewal(j->kind == FG_JOB_ENROLL, 1);
		c->enroll_due = 0;
		schedule_renewal(c);
		fg_cert_describe(id->id.leaf, desc, sizeof(desc));
		fg_info("%s at %s: %s; next renewal in %lld s",
			j->kind == FG_JOB_ENROLL ? "enrolled" : "renewed", j->url, desc,
			secs_until(c->renew_at_ms));
		fg_ident_rebuild_or_warn(id, what);
		/* The bundle is refreshed at each renewal too. */
		fg_ident_refresh(id);
		return;
	}
	gw_metrics_renewal(j->kind == FG_JOB_ENROLL, 0);
	renewal_backoff(c);
	fg_cert_describe(id->id.leaf, desc, sizeof(desc));
	fg_warn("%s at %s failed (attempt %d): %s; still serving %s; retrying in %lld s", what,
		j->url, c->renew_failures, j->ret ? j->err.msg : err.msg, desc,
		secs_until(c->renew_at_ms));
}

/*
 * Due by the wall clock, so that a machine back from suspend (or a clock
 * step) renews at once; an expired certificate is due whatever the clock
 * said before, unless a retry is already waiting out its backoff.
 */
static int renewal_due(struct ident_ca *c)
{
	return fg_wall_ms() >= c->renew_at_ms ||
	       (!c->renew_failures && cert_expired(c->base.id->id.leaf));
}

static void ca_tick(struct fg_ident_source *s, uint64_t now_ms)
{
	struct ident_ca *c = ca_of(s);

	(void)now_ms; /* renewals go by the wall clock */
	if (!c->renew_busy && renewal_due(c))
		start_renewal(c);
}

/* Second references to @from's leaf, chain and key, for a reload that serves them on. */
static int share_identity(struct fg_material *to, const struct fg_material *from)
{
	if (!from->leaf || !from->key)
		return -ENOENT;
	if (!X509_up_ref(from->leaf))
		return -ENOMEM;
	to->leaf = from->leaf;
	if (!EVP_PKEY_up_ref(from->key))
		goto put_leaf;
	to->key = from->key;
	to->chain = from->chain ? X509_chain_up_ref(from->chain) : sk_X509_new_null();
	if (!to->chain)
		goto put_key;
	return 0;
put_key:
	EVP_PKEY_free(to->key);
	to->key = NULL;
put_leaf:
	X509_free(to->leaf);
	to->leaf = NULL;
	return -ENOMEM;
}

/* The files on disk (restoring KEY.prev after an interrupted enrollment). */
static int load_from_disk(struct fg_ident *id, struct fg_material *m, struct fg_err *ferr)
{
	int ret = fg_ident_load_identity_files(id, m, ferr);

	if (ret && !fg_ident_issued_recover_key(id->cfg, m))
		ret = 0;
	return ret;
}

/* At start, no valid identity on disk: a blocking enrollment within the deadline. */
static int enroll_now(struct ident_ca *c, uint64_t until_ms, struct fg_err *err)
{
	struct fg_ident *id = c->base.id;
	struct fg_err cerr = {0};
	struct fg_job *j;
	char desc[512];
	int ret;

	j = enroll_job(id, &cerr);
	if (!j)
		return fg_conf_fail(err, id->cfg->path, "$.identity.ca", "cannot enroll: %s",
				    cerr.msg);
	fg_ident_run_startup_job(j, until_ms);
	ret = j->ret;
	if (ret)
		fg_conf_fail(err, id->cfg->path, "$.identity.ca", "enrollment at %s failed: %s",
			     j->url, j->err.msg);
	else
		ret = apply_issued(id, j, err);
	fg_job_free(j);
	if (ret)
		return ret;
	gw_metrics_renewal(1, 1); /* one that fails stops the start: no count to keep */
	schedule_renewal(c);
	fg_cert_describe(id->id.leaf, desc, sizeof(desc));
	fg_info("enrolled at %s: %s", id->cfg->ca->ca.url, desc);
	return 0;
}

/*
 * The files on disk if valid. Else, at start, a blocking enrollment; on a
 * reload (@st->old set), the old identity goes on serving while an
 * enrollment runs on the job queue (the control loop does not wait).
 */
static int ca_load(struct fg_ident_source *s, const struct fg_ident_start *st, struct fg_err *err)
{
	struct ident_ca *c = ca_of(s);
	struct fg_ident *id = s->id;
	struct fg_err ferr = {0};
	struct fg_material m = {0};
	int ret;

	ret = load_from_disk(id, &m, &ferr);
	if (!ret && !cert_expired(m.leaf)) {
		fg_ident_take_identity(id, &m);
		schedule_renewal(c);
		return 0;
	}
	fg_material_free(&m);
	if (st->offline)
		return 0; /* check: the CA would provide them */
	if (!ret)
		snprintf(ferr.msg, sizeof(ferr.msg), "the certificate in %s has expired",
			 id->cfg->cert_file);
	else if (access(id->cfg->cert_file, F_OK))
		snprintf(ferr.msg, sizeof(ferr.msg), "no %s", id->cfg->cert_file);
	if (!st->old) {
		fg_info("no valid identity on disk (%s): enrolling at %s", ferr.msg,
			id->cfg->ca->ca.url);
		return enroll_now(c, st->until_ms, err);
	}
	ret = share_identity(&id->id, &st->old->id);
	if (ret)
		return fg_conf_fail(err, id->cfg->path, "$.identity.ca",
				    "no valid identity on disk (%s) and none to serve meanwhile",
				    ferr.msg);
	c->enroll_due = 1;
	c->renew_at_ms = 0;
	fg_info("no valid identity on disk (%s): enrolling at %s in the background; serving the "
		"previous certificate until then",
		ferr.msg, id->cfg->ca->ca.url);
	return 0;
}

static struct fg_ident_source *ca_alloc(struct fg_ident *id)
{
	return fg_ident_source_new(id, &fg_ident_ca_ops, sizeof(struct ident_ca));
}

const struct fg_ident_source_ops fg_ident_ca_ops = {
	.job_kinds = 1u << FG_JOB_ENROLL | 1u << FG_JOB_RENEW,
	.alloc = ca_alloc,
	.load = ca_load,
	.tick = ca_tick,
	.job_done = ca_job_done,
};
