// SPDX-License-Identifier: MIT
/*
 * Identity and trust over time: files watched for changes, or enrollment,
 * renewal and federation refresh against step-ca compatible CAs. Everything
 * here runs on the control loop; CA requests go to the helper thread
 * (ca_jobs.c) and come back as finished jobs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <openssl/x509v3.h>

#include "control/ca/ca.h"
#include "control/ca/pki.h"
#include "control/config.h"
#include "control/identity.h"
#include "fedgate/log.h"
#include "control/roots.h"
#include "control/tls.h"
#include "fedgate/x509name.h"
#include "fedgate/clock.h"

#define POLL_MS 2000
#define BACKOFF_FIRST_MS 1000
/* `fedgate run` enrolls and fetches before serving, but gives up after this long in total. */
#define STARTUP_DEADLINE_MS 30000
#define STARTUP_STEP_MS 5000
/* An issued certificate must be valid now; its notBefore may be this far ahead (clock skew). */
#define ISSUED_SKEW_S 60

/* What stat(2) says about a file: a change in any field means "look again". */
struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int missing;
};

struct source {
	STACK_OF(X509) * roots; /* the last good bundle; NULL: none yet */
	uint64_t next_ms;	/* CLOCK_MONOTONIC */
	int busy, failures;
};

struct fg_ident {
	const struct fg_config *cfg;
	unsigned long gen;
	struct fg_jobq *id_jobs, *fed_jobs; /* NULL until attached */
	struct fg_material id;			  /* leaf, chain, key */
	STACK_OF(X509) * file_roots;
	struct source *src; /* one per cfg->federation[] */
	/*
	 * After a reload that names only new federation sources: the previous
	 * identity's bundle, trusted until one of them answers (never empty).
	 */
	STACK_OF(X509) * interim_roots;
	struct fg_tls tls;
	/* files: applied = loaded; seen = the last poll; failed = last refused */
	struct file_sig applied[3], seen[3], failed[3];
	struct file_sig incomplete_trust; /* seen ending inside a PEM block once */
	uint64_t next_poll_ms;
	/*
	 * identity.ca. The renewal time is wall-clock (CLOCK_REALTIME, ms), like
	 * the certificate's validity: a suspended or clock-jumped machine must
	 * see its renewal as due at once, which a monotonic deadline would miss.
	 */
	int64_t renew_at_ms;
	int renew_busy, renew_failures;
	int enroll_due; /* no valid certificate on disk after a reload: enroll in the background */
};

static unsigned long next_gen = 1;

/* Seconds until wall-clock @at_ms, rounded up, for log lines. */
static long long secs_until(int64_t at_ms)
{
	int64_t d = at_ms - fg_wall_ms();

	return d > 0 ? (long long)(d + 999) / 1000 : 0;
}

static void sig_of(const char *path, struct file_sig *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (!path || stat(path, &st)) {
		s->missing = 1;
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
	s->ctime = st.st_ctim;
}

static int sig_eq(const struct file_sig *a, const struct file_sig *b)
{
	return a->missing == b->missing && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static int64_t cert_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
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
	int64_t nb = cert_time(X509_get0_notBefore(x)), na = cert_time(X509_get0_notAfter(x));

	return na > nb ? na - nb : 1;
}

/* Renew at about two thirds of the lifetime, +-5% so that a fleet does not renew at once. */
static void schedule_renewal(struct fg_ident *id)
{
	X509 *x = id->id.leaf;
	int64_t life = lifetime_s(x), at, now = (int64_t)time(NULL);

	at = cert_time(X509_get0_notBefore(x)) + life * 2 / 3 + jitter(life / 20);
	id->renew_at_ms = (at > now ? at : now) * 1000;
	id->renew_failures = 0;
}

static uint64_t backoff_ms(int failures, uint64_t cap_ms)
{
	uint64_t ms = BACKOFF_FIRST_MS;

	for (int i = 1; i < failures && ms < cap_ms; i++)
		ms *= 2;
	return ms < cap_ms ? ms : cap_ms;
}

/* How many roots @sk holds; none yet (NULL) is 0, where sk_X509_num() says -1. */
static int n_roots(STACK_OF(X509) * sk)
{
	return sk ? sk_X509_num(sk) : 0;
}

/* The union of the bundles, without duplicates. */
static STACK_OF(X509) * union_roots(struct fg_ident *id)
{
	STACK_OF(X509) *all = sk_X509_new_null();

	if (!all)
		return NULL;
	for (size_t s = 0; s < id->cfg->n_federation + 2; s++) {
		STACK_OF(X509) *sk = s < id->cfg->n_federation	    ? id->src[s].roots
				     : s == id->cfg->n_federation ? id->file_roots
				     : sk_X509_num(all)	    ? NULL
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

static void roots_describe(STACK_OF(X509) * sk, char *out, size_t len)
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

/*
 * New contexts from the current identity and the union of the bundles. On
 * failure the current contexts stay and the reason is in @err.
 */
static int rebuild(struct fg_ident *id, struct fg_err *err)
{
	struct fg_material m = id->id;
	struct fg_tls t;
	char why[1024];
	int ret;

	m.roots = union_roots(id);
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

static void rebuild_or_warn(struct fg_ident *id, const char *what)
{
	struct fg_err err = { 0 };

	if (rebuild(id, &err))
		fg_warn("%s: cannot build TLS contexts (%s); new handshakes keep the previous "
			"identity and bundle",
			what, err.msg[0] ? err.msg : "out of memory");
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

/* --- files -------------------------------------------------------------------------------- */

enum { F_CERT, F_KEY, F_TRUST };

static const char *watched(const struct fg_ident *id, int which)
{
	switch (which) {
	case F_CERT:
		return id->cfg->cert_file;
	case F_KEY:
		return id->cfg->key_file;
	default:
		return id->cfg->trust_file;
	}
}

/* Loads cert+key from the files into @m; -ENOENT when absent, -EINVAL when unusable. */
static int load_identity_files(struct fg_ident *id, struct fg_material *m, struct fg_err *err)
{
	int ret = fg_material_load_identity(m, id->cfg, id->cfg->cert_file, id->cfg->key_file, NULL,
					    NULL, err);

	if (ret)
		fg_material_free(m);
	return ret;
}

/*
 * Moves @m's leaf, chain and key into @id, freeing the identity @id had, and
 * clears them in @m. Contract with fg_material_free(): @m keeps only its
 * roots (if any), so the caller still frees @m as usual and nothing is freed
 * twice.
 */
static void take_identity(struct fg_ident *id, struct fg_material *m)
{
	fg_material_free(&id->id);
	id->id.leaf = m->leaf;
	id->id.chain = m->chain;
	id->id.key = m->key;
	m->leaf = NULL;
	m->chain = NULL;
	m->key = NULL;
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

/*
 * A trust file still being written can stop between two PEM blocks, and
 * every block before the cut parses: only an open BEGIN without its END
 * shows that it is incomplete. An unreadable file counts as complete (the
 * loader names the problem).
 */
static int pem_complete(const char *path)
{
	struct fg_err err = {0};
	char *data = NULL, *line;
	size_t len = 0;
	int open = 0, complete = 1;

	if (fg_pki_read_file(path, 16 << 20, &data, &len, &err))
		return 1;
	for (line = data; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (!strncmp(line, "-----BEGIN ", 11)) {
			if (open)
				complete = 0;
			open = 1;
		} else if (!strncmp(line, "-----END ", 9)) {
			open = 0;
		}
	}
	free(data);
	return complete && !open;
}

/* @m->roots, which @m no longer holds. */
static STACK_OF(X509) * take_roots(struct fg_material *m)
{
	STACK_OF(X509) *roots = m->roots;

	m->roots = NULL;
	return roots;
}

/*
 * Puts @roots (taken) in @slot and rebuilds the contexts; when they cannot be
 * built (two roots with one CN, say), puts the previous bundle back and
 * returns the error in @err: a refused update never becomes the last good one.
 */
static int swap_roots(struct fg_ident *id, STACK_OF(X509) * *slot, STACK_OF(X509) * roots,
		      struct fg_err *err)
{
	STACK_OF(X509) *prev = *slot;
	int ret;

	*slot = roots;
	ret = rebuild(id, err);
	if (ret) {
		*slot = prev;
		sk_X509_pop_free(roots, X509_free);
		return ret;
	}
	sk_X509_pop_free(prev, X509_free);
	/* A source of the new config answered: the previous config's bundle is done. */
	sk_X509_pop_free(id->interim_roots, X509_free);
	id->interim_roots = NULL;
	return 0;
}

static void poll_files(struct fg_ident *id)
{
	struct fg_err err = { 0 };
	struct file_sig now[3];
	char desc[512];
	int changed_id = 0, changed_trust = 0, settled = 1;

	for (int i = 0; i < 3; i++) {
		sig_of(watched(id, i), &now[i]);
		if (!watched(id, i))
			continue;
		if (!sig_eq(&now[i], &id->applied[i]))
			*(i == F_TRUST ? &changed_trust : &changed_id) = 1;
		/* A file still being written changes between two polls: wait until it settles. */
		if (!sig_eq(&now[i], &id->seen[i]))
			settled = 0;
		id->seen[i] = now[i];
	}
	if (id->cfg->ca)
		changed_id = 0; /* the gateway writes these itself */
	if (!settled || (!changed_id && !changed_trust))
		return;
	if (changed_id) {
		struct fg_material m = {0};

		if (sig_eq(&now[F_CERT], &id->failed[F_CERT]) &&
		    sig_eq(&now[F_KEY], &id->failed[F_KEY])) {
			/* Refused already; wait for the next change. */
		} else if (load_identity_files(id, &m, &err)) {
			id->failed[F_CERT] = now[F_CERT];
			id->failed[F_KEY] = now[F_KEY];
			fg_warn(
			    "identity files changed but are not usable: %s; keeping the current "
			    "certificate",
			    err.msg);
		} else {
			take_identity(id, &m);
			id->applied[F_CERT] = now[F_CERT];
			id->applied[F_KEY] = now[F_KEY];
			fg_cert_describe(id->id.leaf, desc, sizeof(desc));
			fg_info("identity reloaded from %s: %s", id->cfg->cert_file, desc);
			rebuild_or_warn(id, "identity reload");
		}
	}
	if (changed_trust && !sig_eq(&now[F_TRUST], &id->failed[F_TRUST])) {
		struct fg_material m = {0};

		if (!pem_complete(id->cfg->trust_file) &&
		    !sig_eq(&now[F_TRUST], &id->incomplete_trust)) {
			/* Give a writer one more poll to finish the block. */
			id->incomplete_trust = now[F_TRUST];
			return;
		}
		if (!pem_complete(id->cfg->trust_file)) {
			id->failed[F_TRUST] = now[F_TRUST];
			fg_warn("trust bundle changed but is not usable: %s ends inside a PEM "
				"block; keeping the current bundle",
				id->cfg->trust_file);
		} else if (fg_material_load_trust(&m, id->cfg, id->cfg->trust_file, NULL, &err) ||
			   swap_roots(id, &id->file_roots, take_roots(&m), &err)) {
			id->failed[F_TRUST] = now[F_TRUST];
			fg_warn("trust bundle changed but is not usable: %s; keeping the current "
				"bundle",
				err.msg[0] ? err.msg : "out of memory");
		} else {
			id->applied[F_TRUST] = now[F_TRUST];
			roots_describe(id->file_roots, desc, sizeof(desc));
			fg_info("trust bundle reloaded from %s: %d root(s): %s",
				id->cfg->trust_file, sk_X509_num(id->file_roots), desc);
		}
		fg_material_free(&m);
	}
}

/* --- CA jobs ------------------------------------------------------------------------------ */

static struct fg_job *job_new(struct fg_ident *id, enum fg_job_kind kind,
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
	j = job_new(id, FG_JOB_ENROLL, &ca->ca);
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
	struct fg_job *j = job_new(id, FG_JOB_RENEW, &id->cfg->ca->ca);

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

static GENERAL_NAMES *sans_of(X509 *x)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	return g ? g : sk_GENERAL_NAME_new_null();
}

/* Every name of @a is in @b. */
static int names_within(GENERAL_NAMES *a, GENERAL_NAMES *b)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(a); i++) {
		int found = 0;

		for (int k = 0; k < sk_GENERAL_NAME_num(b) && !found; k++)
			found = !GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i),
						  sk_GENERAL_NAME_value(b, k));
		if (!found)
			return 0;
	}
	return 1;
}

/*
 * Whether what the CA returned is what was asked for, before anything is
 * written: valid now (notBefore up to ISSUED_SKEW_S ahead, for clock skew),
 * chaining to the root the CA is pinned to, with the subject and SANs asked
 * for (an enrollment: the config's; a renewal: the current certificate's).
 * A CA that is wrong or compromised cannot replace the identity with
 * something else. -EINVAL with the reason in @why.
 */
static int verify_issued(struct fg_ident *id, const struct fg_job *j, const struct fg_material *m,
			 char *why, size_t len)
{
	const struct fg_ca_identity *ca = id->cfg->ca;
	int64_t now = (int64_t)time(NULL), nb, na;
	GENERAL_NAMES *want = NULL, *got = NULL;
	char want_cn[256] = "", got_cn[256];
	struct fg_err cerr = {0};
	X509_STORE_CTX *xctx = NULL;
	X509_STORE *store = NULL;
	int ret = -EINVAL;

	nb = cert_time(X509_get0_notBefore(m->leaf));
	na = cert_time(X509_get0_notAfter(m->leaf));
	if (!nb || !na || nb > now + ISSUED_SKEW_S || now >= na) {
		snprintf(why, len,
			 "it is not valid now (notBefore %lld, notAfter %lld, now %lld, Unix "
			 "time)",
			 (long long)nb, (long long)na, (long long)now);
		return -EINVAL;
	}
	store = X509_STORE_new();
	xctx = X509_STORE_CTX_new();
	if (!store || !xctx || X509_STORE_load_file(store, ca->ca.root) != 1 ||
	    !X509_STORE_CTX_init(xctx, store, m->leaf, m->chain)) {
		snprintf(why, len, "cannot load the pinned root %s", ca->ca.root);
		goto free_store;
	}
	if (X509_verify_cert(xctx) != 1) {
		snprintf(why, len, "it does not chain to the pinned root %s: %s", ca->ca.root,
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(xctx)));
		goto free_store;
	}
	if (j->kind == FG_JOB_ENROLL) {
		if (fg_pki_cn_fits(ca->subject) || !ca->n_sans)
			snprintf(want_cn, sizeof(want_cn), "%s", ca->subject);
		/* No SANs in the config: the token's, which the CA checks against it. */
		want = ca->n_sans ? fg_ca_sans((const char *const *)ca->sans, ca->n_sans, &cerr)
				  : NULL;
		if (ca->n_sans && !want) {
			snprintf(why, len, "cannot parse the configured SANs: %.512s", cerr.msg);
			goto free_store;
		}
	} else {
		fg_x509_cn(X509_get_subject_name(id->id.leaf), want_cn, sizeof(want_cn));
		want = sans_of(id->id.leaf);
	}
	got = sans_of(m->leaf);
	if (fg_x509_cn(X509_get_subject_name(m->leaf), got_cn, sizeof(got_cn)) == -EINVAL) {
		snprintf(why, len, "its subject CN cannot be read as UTF-8");
		goto free_names;
	}
	if (strcmp(want_cn, got_cn)) {
		snprintf(why, len, "its subject CN is '%s', not the '%s' asked for", got_cn,
			 want_cn);
		goto free_names;
	}
	if (want && (!got || !names_within(want, got) || !names_within(got, want))) {
		snprintf(why, len, "its SANs are not the ones asked for");
		goto free_names;
	}
	ret = 0;
free_names:
	GENERAL_NAMES_free(want);
	GENERAL_NAMES_free(got);
free_store:
	X509_STORE_CTX_free(xctx);
	X509_STORE_free(store);
	return ret;
}

static int path_with(char *buf, size_t len, const char *path, const char *suffix)
{
	return snprintf(buf, len, "%s%s", path, suffix) >= (int)len ? -ENAMETOOLONG : 0;
}

/*
 * Writes the issued pair so that no failure leaves a certificate and a key
 * that do not match: both go to temporary files first; the key being
 * replaced is kept as KEY.prev; the key and then the certificate are renamed
 * into place, and when the certificate cannot be, KEY.prev goes back. A crash
 * between the two renames leaves KEY.prev matching CERT, which the next start
 * picks up (recover_previous_key()). A renewal keeps its key: only the
 * certificate is written.
 */
static int write_issued(struct fg_ident *id, const struct fg_job *j, struct fg_err *err)
{
	const char *crt = id->cfg->cert_file, *key = id->cfg->key_file;
	char crt_new[4096], key_new[4096], key_prev[4096];
	int enroll = j->kind == FG_JOB_ENROLL, had_key = 0, ret;

	if (path_with(crt_new, sizeof(crt_new), crt, ".new") ||
	    path_with(key_new, sizeof(key_new), key, ".new") ||
	    path_with(key_prev, sizeof(key_prev), key, ".prev"))
		return fg_err_set(err, -ENAMETOOLONG, "path too long: %s", crt);
	if (enroll) {
		ret = fg_pki_write_file(key_new, j->key_pem, strlen(j->key_pem), 0600, err);
		if (ret)
			return ret;
	}
	ret = fg_pki_write_file(crt_new, j->out_chain, strlen(j->out_chain), 0644, err);
	if (ret)
		goto unlink_key_new;
	if (enroll) {
		unlink(key_prev);
		had_key = !link(key, key_prev);
		if (!had_key && errno != ENOENT) {
			ret = fg_err_set(err, -errno, "cannot keep the previous key as %s: %s",
					 key_prev, strerror(errno));
			goto unlink_crt_new;
		}
		if (rename(key_new, key)) {
			ret = fg_err_set(err, -errno, "cannot rename %s to %s: %s", key_new, key,
					 strerror(errno));
			goto unlink_key_prev;
		}
	}
	if (rename(crt_new, crt)) {
		ret = fg_err_set(err, -errno, "cannot rename %s to %s: %s", crt_new, crt,
				 strerror(errno));
		goto restore_key;
	}
	if (had_key)
		unlink(key_prev);
	return 0;
restore_key:
	if (enroll && (had_key ? rename(key_prev, key) : unlink(key)))
		fg_warn("cannot put the previous key back in %s: %s", key, strerror(errno));
unlink_key_prev:
	if (had_key)
		unlink(key_prev);
unlink_crt_new:
	unlink(crt_new);
unlink_key_new:
	if (enroll)
		unlink(key_new);
	return ret;
}

/*
 * Takes the result of an enrollment or renewal: checks it (verify_issued()),
 * writes the files (write_issued()), then switches to it. On failure the
 * current identity and files stay and @err says why.
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
	ret = verify_issued(id, j, &m, why, sizeof(why));
	if (ret) {
		fg_conf_fail(err, id->cfg->path, "$.identity.ca",
			     "refused the certificate %s returned: %s", j->url, why);
		goto free_material;
	}
	ret = write_issued(id, j, &cerr);
	if (ret) {
		snprintf(err->msg, sizeof(err->msg), "%s", cerr.msg);
		goto free_material;
	}
	take_identity(id, &m);
free_material:
	fg_material_free(&m);
	return ret;
}

static int cert_expired(X509 *x)
{
	return cert_time(X509_get0_notAfter(x)) <= (int64_t)time(NULL);
}

/* Retry well before expiry: at most a tenth of the lifetime, 2 s to 5 min. */
static void renewal_backoff(struct fg_ident *id)
{
	uint64_t cap = (uint64_t)lifetime_s(id->id.leaf) * 100;

	cap = cap < 2000 ? 2000 : cap > 300000 ? 300000 : cap;
	id->renew_failures++;
	id->renew_at_ms = fg_wall_ms() + (int64_t)backoff_ms(id->renew_failures, cap);
}

static void start_renewal(struct fg_ident *id)
{
	struct fg_err err = {0};
	struct fg_job *j;

	if (id->enroll_due || cert_expired(id->id.leaf)) {
		/* /renew refuses an expired certificate: only a new token helps now. */
		j = enroll_job(id, &err);
		if (!j) {
			renewal_backoff(id);
			fg_warn("the certificate in %s %s and enrolling is not possible: %s; "
				"retrying in %lld s",
				id->cfg->cert_file,
				id->enroll_due ? "is not usable" : "has expired", err.msg,
				secs_until(id->renew_at_ms));
			return;
		}
		fg_warn("the certificate in %s %s: enrolling at %s with %s", id->cfg->cert_file,
			id->enroll_due ? "is not usable" : "has expired", id->cfg->ca->ca.url,
			id->cfg->ca->token_file);
	} else {
		j = renew_job(id);
		if (!j) {
			renewal_backoff(id);
			fg_warn("renewal: out of memory; retrying in %lld s",
				secs_until(id->renew_at_ms));
			return;
		}
	}
	id->renew_busy = 1;
	fg_jobq_submit(id->id_jobs, j);
}

static void renewal_done(struct fg_ident *id, struct fg_job *j)
{
	struct fg_err err = { 0 };
	const char *what = j->kind == FG_JOB_ENROLL ? "enrollment" : "renewal";
	char desc[512];

	id->renew_busy = 0;
	if (!j->ret && !apply_issued(id, j, &err)) {
		id->enroll_due = 0;
		schedule_renewal(id);
		fg_cert_describe(id->id.leaf, desc, sizeof(desc));
		fg_info("%s at %s: %s; next renewal in %lld s",
			j->kind == FG_JOB_ENROLL ? "enrolled" : "renewed", j->url, desc,
			secs_until(id->renew_at_ms));
		rebuild_or_warn(id, what);
		/* The bundle is refreshed at each renewal too. */
		for (size_t i = 0; i < id->cfg->n_federation; i++)
			id->src[i].next_ms = 0;
		return;
	}
	renewal_backoff(id);
	fg_cert_describe(id->id.leaf, desc, sizeof(desc));
	fg_warn("%s at %s failed (attempt %d): %s; still serving %s; retrying in %lld s", what,
		j->url, id->renew_failures, j->ret ? j->err.msg : err.msg, desc,
		secs_until(id->renew_at_ms));
}

/*
 * A fetched bundle. While starting (no job queue yet) it is only stored:
 * fg_ident_new() builds the contexts once, and a bundle it cannot use fails
 * the start. Later, one that cannot be used is refused and the source keeps
 * its last good bundle.
 */
static void federation_done(struct fg_ident *id, struct fg_job *j)
{
	struct source *s = &id->src[j->index];
	struct fg_err err = { 0 };
	struct fg_material m = {0};
	uint64_t refresh = (uint64_t)id->cfg->refresh_s * 1000;
	char desc[1024];
	int ret;

	s->busy = 0;
	ret = j->ret ? j->ret : fg_material_load_trust(&m, id->cfg, j->url, j->out_bundle, &err);
	if (!ret && s->roots && same_roots(s->roots, m.roots)) {
		fg_material_free(&m);
		if (s->failures)
			fg_info("federation refresh from %s: answering again after %d failure(s); "
				"bundle unchanged",
				j->url, s->failures);
		else
			fg_debug("federation %s: bundle unchanged", j->url);
		s->failures = 0;
		s->next_ms = fg_mono_ms() + refresh;
		return;
	}
	if (!ret && !id->id_jobs) {
		sk_X509_pop_free(s->roots, X509_free);
		s->roots = take_roots(&m);
	} else if (!ret) {
		ret = swap_roots(id, &s->roots, take_roots(&m), &err);
		if (ret) {
			fg_material_free(&m);
			s->failures++;
			s->next_ms = fg_mono_ms() + refresh;
			fg_warn("federation refresh from %s refused: %s; keeping its last good "
				"bundle (%d root(s))",
				j->url, err.msg[0] ? err.msg : "out of memory",
				n_roots(s->roots));
			return;
		}
	}
	fg_material_free(&m);
	if (!ret) {
		s->failures = 0;
		s->next_ms = fg_mono_ms() + refresh;
		roots_describe(s->roots, desc, sizeof(desc));
		fg_info("trust bundle from %s: %d root(s): %s", j->url, n_roots(s->roots),
			desc);
		return;
	}
	s->failures++;
	s->next_ms = fg_mono_ms() + backoff_ms(s->failures, refresh);
	fg_warn("federation refresh from %s failed (attempt %d): %s; keeping its last good bundle "
		"(%d root(s)); retrying in %llu s",
		j->url, s->failures, j->ret ? j->err.msg : err.msg, n_roots(s->roots),
		(unsigned long long)(s->next_ms - fg_mono_ms() + 999) / 1000);
}

void fg_ident_job_done(struct fg_ident *id, struct fg_job *j)
{
	if (j->owner == id->gen) {
		if (j->kind == FG_JOB_FEDERATION)
			federation_done(id, j);
		else
			renewal_done(id, j);
	}
	fg_job_free(j);
}

/*
 * Due by the wall clock, so that a machine back from suspend (or a clock
 * step) renews at once; an expired certificate is due whatever the clock
 * said before, unless a retry is already waiting out its backoff.
 */
static int renewal_due(struct fg_ident *id)
{
	return fg_wall_ms() >= id->renew_at_ms || (!id->renew_failures && cert_expired(id->id.leaf));
}

void fg_ident_tick(struct fg_ident *id)
{
	uint64_t now = fg_mono_ms();

	if (now >= id->next_poll_ms) {
		id->next_poll_ms = now + POLL_MS;
		poll_files(id);
	}
	if (!id->id_jobs)
		return;
	if (id->cfg->ca && !id->renew_busy && renewal_due(id))
		start_renewal(id);
	for (size_t i = 0; i < id->cfg->n_federation; i++) {
		struct source *s = &id->src[i];
		struct fg_job *j;

		if (s->busy || now < s->next_ms)
			continue;
		j = job_new(id, FG_JOB_FEDERATION, &id->cfg->federation[i]);
		if (!j)
			continue;
		j->index = (int)i;
		s->busy = 1;
		fg_jobq_submit(id->fed_jobs, j);
	}
}

/* --- setup -------------------------------------------------------------------------------- */

/* Runs @j now, within what is left of the start-up deadline @until_ms (monotonic). */
static void run_startup_job(struct fg_job *j, uint64_t until_ms)
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

/*
 * A crash between the two renames of write_issued() leaves the new key with
 * the previous certificate and the previous key as KEY.prev: puts it back.
 */
static int recover_previous_key(struct fg_ident *id, struct fg_material *m)
{
	struct fg_err err = { 0 };
	char prev[4096];

	if (path_with(prev, sizeof(prev), id->cfg->key_file, ".prev") || access(prev, F_OK))
		return -ENOENT;
	if (fg_material_load_identity(m, id->cfg, id->cfg->cert_file, prev, NULL, NULL, &err)) {
		fg_material_free(m);
		return -EINVAL;
	}
	if (rename(prev, id->cfg->key_file)) {
		fg_material_free(m);
		return -errno;
	}
	fg_warn("%s did not match %s (an interrupted enrollment): restored the previous key "
		"from %s",
		id->cfg->key_file, id->cfg->cert_file, prev);
	return 0;
}

/*
 * With identity.ca: the files on disk if valid. Else, at start, a blocking
 * enrollment; on a reload (@old set), @old's identity goes on serving while
 * an enrollment runs on the job queue (the control loop does not wait).
 */
static int acquire_identity(struct fg_ident *id, struct fg_ident *old, int offline,
			    uint64_t until_ms, struct fg_err *err)
{
	struct fg_err ferr = { 0 };
	struct fg_err cerr = {0};
	struct fg_material m = {0};
	struct fg_job *j;
	char desc[512];
	int ret;

	ret = load_identity_files(id, &m, &ferr);
	if (ret && !recover_previous_key(id, &m))
		ret = 0;
	if (!ret && !cert_expired(m.leaf)) {
		take_identity(id, &m);
		schedule_renewal(id);
		return 0;
	}
	fg_material_free(&m);
	if (offline)
		return 0; /* check: the CA would provide them */
	if (!ret)
		snprintf(ferr.msg, sizeof(ferr.msg), "the certificate in %s has expired",
			 id->cfg->cert_file);
	else if (access(id->cfg->cert_file, F_OK))
		snprintf(ferr.msg, sizeof(ferr.msg), "no %s", id->cfg->cert_file);
	if (old) {
		ret = share_identity(&id->id, &old->id);
		if (ret)
			return fg_conf_fail(err, id->cfg->path, "$.identity.ca",
					    "no valid identity on disk (%s) and none to serve "
					    "meanwhile",
					    ferr.msg);
		id->enroll_due = 1;
		id->renew_at_ms = 0;
		fg_info("no valid identity on disk (%s): enrolling at %s in the background; "
			"serving the previous certificate until then",
			ferr.msg, id->cfg->ca->ca.url);
		return 0;
	}
	fg_info("no valid identity on disk (%s): enrolling at %s", ferr.msg, id->cfg->ca->ca.url);
	j = enroll_job(id, &cerr);
	if (!j)
		return fg_conf_fail(err, id->cfg->path, "$.identity.ca", "cannot enroll: %s",
				    cerr.msg);
	run_startup_job(j, until_ms);
	ret = j->ret;
	if (ret)
		fg_conf_fail(err, id->cfg->path, "$.identity.ca", "enrollment at %s failed: %s",
			     j->url, j->err.msg);
	else
		ret = apply_issued(id, j, err);
	fg_job_free(j);
	if (ret)
		return ret;
	schedule_renewal(id);
	fg_cert_describe(id->id.leaf, desc, sizeof(desc));
	fg_info("enrolled at %s: %s", id->cfg->ca->ca.url, desc);
	return 0;
}

static int same_endpoint(const struct fg_ca_endpoint *a, const struct fg_ca_endpoint *b)
{
	return !strcmp(a->url, b->url) && !strcmp(a->root, b->root);
}

/*
 * Each source's bundle. On a reload (@old set) nothing is fetched here: a
 * source @old had keeps its state (its bundle, or none after failed fetches,
 * and when to try next); a new one is fetched by the job queue at the first
 * tick. At start each source is fetched now, within the deadline.
 */
static int acquire_federation(struct fg_ident *id, struct fg_ident *old, int offline,
			      uint64_t until_ms, struct fg_err *err)
{
	int total = 0;

	for (size_t i = 0; i < id->cfg->n_federation; i++) {
		const struct fg_ca_endpoint *ep = &id->cfg->federation[i];
		struct source *s = &id->src[i];
		struct fg_job *j;
		int carried = 0;

		for (size_t k = 0; old && k < old->cfg->n_federation && !carried; k++) {
			const struct source *o = &old->src[k];

			if (!same_endpoint(ep, &old->cfg->federation[k]))
				continue;
			carried = 1;
			/* Shared, not taken: @old stays whole if this reload fails. */
			if (o->roots) {
				s->roots = X509_chain_up_ref(o->roots);
				if (!s->roots)
					return -ENOMEM;
			}
			s->next_ms = o->next_ms;
			s->failures = o->failures;
		}
		if (old || carried || offline) {
			total += n_roots(s->roots);
			continue;
		}
		j = job_new(id, FG_JOB_FEDERATION, ep);
		if (!j)
			return -ENOMEM;
		j->index = (int)i;
		run_startup_job(j, until_ms);
		federation_done(id, j); /* logs, and schedules the next refresh or retry */
		fg_job_free(j);
		total += n_roots(s->roots);
	}
	if (!total && old) {
		/* Only new sources: the previous bundle stays in force until one answers. */
		id->interim_roots = union_roots(old);
		if (!id->interim_roots)
			return -ENOMEM;
		fg_info("no bundle yet from the new federation source(s): the previous bundle "
			"(%d root(s)) stays in force until one answers",
			sk_X509_num(id->interim_roots));
	} else if (!total && !offline) {
		fg_conf_fail(err, id->cfg->path, "$.identity.trust.federation",
			     "no CA answered with a bundle: no root to trust");
		return -EHOSTUNREACH;
	}
	return 0;
}

int fg_ident_new(struct fg_ident **out, const struct fg_config *cfg, struct fg_ident *old,
		 int offline, struct fg_err *err)
{
	uint64_t until_ms = fg_mono_ms() + STARTUP_DEADLINE_MS;
	struct fg_material m = {0};
	struct fg_ident *id;
	int ret;

	*out = NULL;
	id = calloc(1, sizeof(*id));
	if (!id)
		return -ENOMEM;
	id->cfg = cfg;
	id->gen = next_gen++;
	id->src = calloc(cfg->n_federation + 1, sizeof(*id->src));
	if (!id->src) {
		ret = -ENOMEM;
		goto free_ident;
	}
	/* Signatures first: a change while loading is seen by the next poll. */
	for (int i = 0; i < 3; i++) {
		sig_of(watched(id, i), &id->applied[i]);
		id->seen[i] = id->applied[i];
	}
	if (cfg->ca)
		ret = acquire_identity(id, old, offline, until_ms, err);
	else
		ret = load_identity_files(id, &m, err);
	if (ret)
		goto free_ident;
	if (!cfg->ca)
		take_identity(id, &m);
	if (cfg->trust_file) {
		ret = fg_material_load_trust(&m, cfg, cfg->trust_file, NULL, err);
		if (ret)
			goto free_material;
		id->file_roots = take_roots(&m);
	} else {
		ret = acquire_federation(id, old, offline, until_ms, err);
		if (ret)
			goto free_ident;
	}
	if (!offline || id->id.leaf) {
		if (offline && !id->file_roots)
			goto done; /* check: no bundle without asking the CAs */
		ret = rebuild(id, err);
		if (ret)
			goto free_ident;
	}
done:
	id->next_poll_ms = fg_mono_ms() + POLL_MS;
	*out = id;
	return 0;
free_material:
	fg_material_free(&m);
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
	sk_X509_pop_free(id->file_roots, X509_free);
	sk_X509_pop_free(id->interim_roots, X509_free);
	for (size_t i = 0; id->src && i < id->cfg->n_federation; i++)
		sk_X509_pop_free(id->src[i].roots, X509_free);
	free(id->src);
	free(id);
}

struct fg_tls *fg_ident_tls(struct fg_ident *id)
{
	return &id->tls;
}

void fg_ident_attach(struct fg_ident *id, struct fg_jobq *id_jobs,
		     struct fg_jobq *fed_jobs)
{
	id->id_jobs = id_jobs;
	id->fed_jobs = fed_jobs;
}
