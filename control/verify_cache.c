// SPDX-License-Identifier: MIT
/* Verdicts of peer chain verification, cached per TLS context: see verify_cache.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include "control/verify_cache.h"

/* A certificate this large is hashed from the heap, a smaller one from the stack. */
#define DER_ON_STACK 4096

struct entry {
	uint8_t key[32];
	STACK_OF(X509) * chain; /* the chain built, leaf first, anchor last; NULL: a free slot */
	int64_t not_before;	/* the latest notBefore of the chain */
	int64_t not_after;	/* the earliest notAfter of the chain */
	int64_t added;
};

struct vcache {
	pthread_mutex_t lock; /* guards next and e[] */
	EVP_MD *sha256;	      /* fetched once: a fetch per handshake costs locks and lookups */
	unsigned int n, next; /* next: the slot the next new verdict takes, round robin */
	struct entry e[];
};

static pthread_once_t idx_once = PTHREAD_ONCE_INIT;
static int ex_idx = -1;
static _Atomic uint64_t n_hit, n_miss, n_stale;

int fg_vcache_usable(int64_t not_before, int64_t not_after, int64_t added, int64_t now)
{
	return now > not_before && now < not_after && now >= added &&
	       now - added < FG_VCACHE_MAX_AGE_S;
}

void fg_vcache_counts(struct fg_vcache_counts *out)
{
	out->hit = atomic_load(&n_hit);
	out->miss = atomic_load(&n_miss);
	out->stale = atomic_load(&n_stale);
}

static void entry_clear(struct entry *e)
{
	sk_X509_pop_free(e->chain, X509_free);
	memset(e, 0, sizeof(*e));
}

static void vcache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct vcache *vc = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (!vc)
		return;
	for (unsigned int i = 0; i < vc->n; i++)
		entry_clear(&vc->e[i]);
	EVP_MD_free(vc->sha256);
	pthread_mutex_destroy(&vc->lock);
	free(vc);
}

static void idx_init(void)
{
	ex_idx = SSL_CTX_get_ex_new_index(0, "fedgate verify cache", NULL, NULL, vcache_free);
}

/* A length, then the bytes: no two different inputs hash the same stream. */
static int hash_bytes(EVP_MD_CTX *md, const void *p, size_t len)
{
	uint64_t n = len;

	return EVP_DigestUpdate(md, &n, sizeof(n)) && (!len || EVP_DigestUpdate(md, p, len));
}

static int hash_str(EVP_MD_CTX *md, const char *s)
{
	return hash_bytes(md, s ? s : "", s ? strlen(s) + 1 : 0);
}

static int hash_cert(EVP_MD_CTX *md, X509 *x)
{
	unsigned char buf[DER_ON_STACK], *der = buf, *p;
	int len = i2d_X509(x, NULL), ok;

	if (len <= 0)
		return 0;
	if (len > (int)sizeof(buf)) {
		der = malloc((size_t)len);
		if (!der)
			return 0;
	}
	p = der;
	ok = i2d_X509(x, &p) == len && hash_bytes(md, der, (size_t)len);
	if (der != buf)
		free(der);
	return ok;
}

/*
 * The key of what @xctx is asked to verify: every verification parameter a
 * connection may set, then the peer's certificates in the order sent.
 * 0, or -ENOMEM.
 */
static int chain_key(const struct vcache *vc, X509_STORE_CTX *xctx, uint8_t key[32])
{
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(xctx);
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xctx);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *ip;
	struct {
		uint64_t flags;
		int64_t depth, auth_level, hostflags, inh_flags, n_sent;
	} p;
	const char *host;
	unsigned int len = 0;
	int ok;

	/*
	 * Without an IP set, OpenSSL 3.0 queues "passed a null parameter": it
	 * must not stay in the thread's queue, where SSL_get_error() would take
	 * it for this connection's next read's failure.
	 */
	ERR_set_mark();
	ip = X509_VERIFY_PARAM_get1_ip_asc(param);
	ERR_pop_to_mark();
	memset(&p, 0, sizeof(p));
	p.flags = X509_VERIFY_PARAM_get_flags(param);
	p.depth = X509_VERIFY_PARAM_get_depth(param);
	p.auth_level = X509_VERIFY_PARAM_get_auth_level(param);
	p.hostflags = X509_VERIFY_PARAM_get_hostflags(param);
	p.inh_flags = X509_VERIFY_PARAM_get_inh_flags(param);
	p.n_sent = sent ? sk_X509_num(sent) : -1;
	ok = md && EVP_DigestInit_ex(md, vc->sha256, NULL) && hash_bytes(md, &p, sizeof(p)) &&
	     hash_str(md, ip) && hash_str(md, X509_VERIFY_PARAM_get0_email(param));
	for (int i = 0; ok && (host = X509_VERIFY_PARAM_get0_host(param, i)); i++)
		ok = hash_str(md, host);
	ok = ok && hash_str(md, NULL) && hash_cert(md, X509_STORE_CTX_get0_cert(xctx));
	for (int i = 0; ok && i < p.n_sent; i++)
		ok = hash_cert(md, sk_X509_value(sent, i));
	ok = ok && EVP_DigestFinal_ex(md, key, &len) && len == 32;
	OPENSSL_free(ip);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -ENOMEM;
}

static int unix_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* The window in which every certificate of @chain is valid. 0 or -EINVAL. */
static int chain_window(STACK_OF(X509) * chain, int64_t *nb, int64_t *na)
{
	*nb = INT64_MIN;
	*na = INT64_MAX;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		int64_t b, a;

		if (unix_time(X509_get0_notBefore(x), &b) || unix_time(X509_get0_notAfter(x), &a))
			return -EINVAL;
		*nb = b > *nb ? b : *nb;
		*na = a < *na ? a : *na;
	}
	return sk_X509_num(chain) > 0 ? 0 : -EINVAL;
}

static struct entry *find(struct vcache *vc, const uint8_t key[32])
{
	for (unsigned int i = 0; i < vc->n; i++)
		if (vc->e[i].chain && !memcmp(vc->e[i].key, key, 32))
			return &vc->e[i];
	return NULL;
}

/*
 * The cached verdict for @key as the chain for @leaf (this connection's
 * object first, then the cached ones): a new stack the caller owns, or NULL
 * (none, stale, or out of memory).
 */
static STACK_OF(X509) * lookup(struct vcache *vc, const uint8_t key[32], X509 *leaf, int64_t now)
{
	STACK_OF(X509) *out = NULL;
	struct entry *e;

	pthread_mutex_lock(&vc->lock);
	e = find(vc, key);
	if (!e)
		goto unlock;
	if (!fg_vcache_usable(e->not_before, e->not_after, e->added, now)) {
		entry_clear(e);
		atomic_fetch_add(&n_stale, 1);
		goto unlock;
	}
	out = sk_X509_new_reserve(NULL, sk_X509_num(e->chain));
	if (!out || !X509_up_ref(leaf))
		goto free_out;
	sk_X509_push(out, leaf);
	for (int i = 1; i < sk_X509_num(e->chain); i++) {
		X509 *x = sk_X509_value(e->chain, i);

		if (!X509_up_ref(x))
			goto free_out;
		sk_X509_push(out, x);
	}
	goto unlock;
free_out:
	sk_X509_pop_free(out, X509_free);
	out = NULL;
unlock:
	pthread_mutex_unlock(&vc->lock);
	return out;
}

/* Remembers that @chain (X509_verify_cert's, not taken) verified for @key at @now. */
static void insert(struct vcache *vc, const uint8_t key[32], STACK_OF(X509) * chain, int64_t now)
{
	STACK_OF(X509) * copy;
	struct entry *e;
	int64_t nb, na;

	if (chain_window(chain, &nb, &na) || !fg_vcache_usable(nb, na, now, now))
		return;
	copy = X509_chain_up_ref(chain);
	if (!copy)
		return;
	pthread_mutex_lock(&vc->lock);
	e = find(vc, key);
	if (!e) {
		e = &vc->e[vc->next];
		vc->next = (vc->next + 1) % vc->n;
	}
	entry_clear(e);
	memcpy(e->key, key, 32);
	e->chain = copy;
	e->not_before = nb;
	e->not_after = na;
	e->added = now;
	pthread_mutex_unlock(&vc->lock);
}

/* SSL_CTX_set_cert_verify_callback(): 1 verified, 0 not (the error in @xctx). */
static int verify(X509_STORE_CTX *xctx, void *arg)
{
	struct vcache *vc = arg;
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(xctx);
	X509 *leaf = X509_STORE_CTX_get0_cert(xctx);
	int64_t now = (int64_t)time(NULL);
	STACK_OF(X509) * chain;
	uint8_t key[32];
	int cacheable, ok;

	/* A verification at a set time is not one of now's handshakes. */
	cacheable = leaf && !(X509_VERIFY_PARAM_get_flags(param) & X509_V_FLAG_USE_CHECK_TIME) &&
		    !chain_key(vc, xctx, key);
	if (cacheable) {
		chain = lookup(vc, key, leaf, now);
		if (chain) {
			X509_STORE_CTX_set0_verified_chain(xctx, chain);
			X509_STORE_CTX_set_error(xctx, X509_V_OK);
			atomic_fetch_add(&n_hit, 1);
			return 1;
		}
	}
	atomic_fetch_add(&n_miss, 1);
	ok = X509_verify_cert(xctx);
	if (ok == 1 && cacheable && X509_STORE_CTX_get_error(xctx) == X509_V_OK)
		insert(vc, key, X509_STORE_CTX_get0_chain(xctx), now);
	return ok == 1;
}

int fg_vcache_attach(SSL_CTX *ctx, unsigned int slots)
{
	struct vcache *vc;

	if (!slots)
		return 0;
	pthread_once(&idx_once, idx_init);
	if (ex_idx < 0)
		return -ENOMEM;
	vc = calloc(1, sizeof(*vc) + slots * sizeof(vc->e[0]));
	if (!vc)
		return -ENOMEM;
	vc->n = slots;
	vc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!vc->sha256 || pthread_mutex_init(&vc->lock, NULL)) {
		EVP_MD_free(vc->sha256);
		free(vc);
		return -ENOMEM;
	}
	if (!SSL_CTX_set_ex_data(ctx, ex_idx, vc)) {
		vcache_free(NULL, vc, NULL, 0, 0, NULL);
		return -ENOMEM;
	}
	SSL_CTX_set_cert_verify_callback(ctx, verify, vc);
	return 0;
}
