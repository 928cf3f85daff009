// SPDX-License-Identifier: MIT
/* TLS 1.3 resumption between gateways: see resume.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/keys.h"
#include "control/resume.h"
#include "control/resume_ticket.h"

/* Sessions a client context keeps: one per peer, the least recently filed goes first. */
#define CACHE_MAX 128
/* A peer that sent no ticket in time: its connections hand off at once for this long. */
#define NO_TICKET_S 60

/* A server context's ticket keys: random, never kept anywhere else. */
struct ticket_keys {
	uint8_t name[16], aes[32], hmac[32];
};

struct cache_entry {
	uint8_t key[32];
	SSL_SESSION *sess;	   /* owned; NULL: a peer that sends no tickets (until @expires) */
	STACK_OF(X509) * verified; /* owned: the peer's chain as its full handshake verified it */
	int64_t expires;	   /* wall clock (s); 0: a free slot */
	uint64_t filed;		   /* order of filing, for eviction */
};

struct cache {
	pthread_mutex_t lock;
	uint64_t filed;
	struct cache_entry e[CACHE_MAX];
};

static int keys_idx = -1, cache_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void keys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr)
		OPENSSL_cleanse(ptr, sizeof(struct ticket_keys));
	free(ptr);
}

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct cache *c = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_MAX; i++) {
		SSL_SESSION_free(c->e[i].sess);
		sk_X509_pop_free(c->e[i].verified, X509_free);
	}
	pthread_mutex_destroy(&c->lock);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static void make_indices(void)
{
	keys_idx = SSL_CTX_get_ex_new_index(0, "fedgate ticket keys", NULL, NULL, keys_free);
	cache_idx = SSL_CTX_get_ex_new_index(0, "fedgate session cache", NULL, NULL, cache_free);
}

int fg_resume_init(void)
{
	pthread_once(&idx_once, make_indices);
	return keys_idx < 0 || cache_idx < 0 ? -ENOMEM : 0;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* The notAfter of @x as Unix time; 0 when it cannot be read (then nothing is kept). */
static int64_t not_after(const X509 *x)
{
	struct tm tm;

	if (!x || !ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static int digest(uint8_t out[32], const char *label, const char *a, const char *b, const char *c,
		  unsigned long epoch)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t e[8];
	int ok;

	for (int i = 0; i < 8; i++)
		e[i] = (uint8_t)((uint64_t)epoch >> (56 - 8 * i));
	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(md, label, strlen(label) + 1) &&
	     EVP_DigestUpdate(md, a, strlen(a) + 1) && EVP_DigestUpdate(md, b, strlen(b) + 1) &&
	     EVP_DigestUpdate(md, c, strlen(c) + 1) && EVP_DigestUpdate(md, e, sizeof(e)) &&
	     EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -ENOMEM;
}

/* OpenSSL's ticket crypto, with this context's keys: AES-256-CBC and HMAC-SHA256. */
static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_keys *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_idx);
	OSSL_PARAM params[3];

	if (!k)
		return -1;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		memcpy(name, k->name, sizeof(k->name));
		if (RAND_bytes(iv, 16) != 1 ||
		    !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) ||
		    !EVP_MAC_CTX_set_params(hctx, params))
			return -1;
		return 1;
	}
	/* Another context's (an older identity, bundle or config): a full handshake. */
	if (CRYPTO_memcmp(name, k->name, sizeof(k->name)))
		return 0;
	if (!EVP_MAC_CTX_set_params(hctx, params) ||
	    !EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
		return -1;
	return 1;
}

/* Server: a ticket is being made. Always 1: a ticket we cannot fill is made unusable. */
static int gen_cb(SSL *ssl, void *arg)
{
	struct fg_tls_conn *st = fg_keys_conn(ssl);
	SSL_SESSION *sess = SSL_get_session(ssl);
	int reused = SSL_session_reused(ssl);
	int64_t now = now_s(), auth_at, end, na;
	uint8_t *buf = malloc(FG_RESUME_TICKET_MAX);
	uint8_t dead[FG_RESUME_TICKET_DEAD_LEN];
	size_t len = 0;

	(void)arg;
	if (!sess)
		goto out;
	auth_at = reused && st ? st->resume_auth_at : now;
	end = auth_at + (st ? st->resume_lifetime_s : 0);
	na = not_after(SSL_SESSION_get0_peer(sess));
	if (na && na < end)
		end = na;
	if (buf && st && st->resume_lifetime_s && end > now)
		len = fg_resume_ticket_encode(
		    buf, FG_RESUME_TICKET_MAX, auth_at,
		    reused ? st->resume_chain : SSL_get_peer_cert_chain(ssl),
		    reused ? st->resume_verified : SSL_get0_verified_chain(ssl));
	/* The lifetime the client is told; the decryption checks @end itself. */
	SSL_SESSION_set_timeout(sess, end > now ? (long)(end - now) : 1);
	if (!len || !SSL_SESSION_set1_ticket_appdata(sess, buf, len)) {
		fg_resume_ticket_dead(dead);
		SSL_SESSION_set1_ticket_appdata(sess, dead, sizeof(dead));
	}
out:
	free(buf);
	return 1;
}

/* Server: whether a ticket the client offered may resume this connection. */
static SSL_TICKET_RETURN dec_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
				size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{

	struct fg_tls_conn *st = fg_keys_conn(ssl);
	STACK_OF(X509) *chain = NULL, *verified = NULL;
	const unsigned char *sid;
	unsigned int sid_len = 0;
	void *data = NULL;
	size_t data_len = 0;
	int64_t auth_at, now = now_s(), na;

	(void)keyname, (void)keyname_len, (void)arg;
	if (!st)
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	if (status == SSL_TICKET_NO_DECRYPT)
		st->resume_why = "ticket key unknown: issued before a change of trust, rules or "
				 "identity";
	/* _RENEW: a full handshake that issues a fresh ticket (plain IGNORE issues none). */
	if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	sid = SSL_SESSION_get0_id_context(sess, &sid_len);
	if (!st->resume_lifetime_s) {
		st->resume_why = "resumption is off on this tunnel";
	} else if (sid_len != sizeof(st->resume_key) ||
		   CRYPTO_memcmp(sid, st->resume_key, sizeof(st->resume_key))) {
		st->resume_why = "issued for another tunnel or rules";
	} else if (!SSL_SESSION_get0_peer(sess)) {
		st->resume_why = "no peer certificate in it";
	} else if (!SSL_SESSION_get0_ticket_appdata(sess, &data, &data_len) ||
		   fg_resume_ticket_decode(data, data_len, &auth_at, &chain, &verified)) {
		st->resume_why = "not usable";
	} else if (now >= auth_at + st->resume_lifetime_s || auth_at > now + 60) {
		st->resume_why = "expired";
	} else if ((na = not_after(SSL_SESSION_get0_peer(sess))) == 0 || na <= now) {
		st->resume_why = "the peer's certificate has expired";
	} else if (!X509_up_ref(SSL_SESSION_get0_peer(sess)) ||
		   !sk_X509_insert(verified, SSL_SESSION_get0_peer(sess), 0)) {
		X509_free(SSL_SESSION_get0_peer(sess));
		st->resume_why = "out of memory";
	} else {
		st->resume_why = NULL;
		sk_X509_pop_free(st->resume_chain, X509_free);
		sk_X509_pop_free(st->resume_verified, X509_free);
		st->resume_chain = chain;
		st->resume_verified = verified;
		st->resume_auth_at = auth_at;
		/* It keeps the ticket it has, bounded by the same full handshake. */
		SSL_set_num_tickets(ssl, 0);
		return SSL_TICKET_RETURN_USE;
	}
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(verified, X509_free);
	return SSL_TICKET_RETURN_IGNORE_RENEW;
}

static struct cache *cache_of(SSL *ssl)
{
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), cache_idx);
}

static void entry_clear(struct cache_entry *e)
{
	SSL_SESSION_free(e->sess);
	sk_X509_pop_free(e->verified, X509_free);
	memset(e, 0, sizeof(*e));
}

/* The entry of @key, or NULL. Under the lock. */
static struct cache_entry *cache_find(struct cache *c, const uint8_t key[32], int64_t now)
{
	for (size_t i = 0; i < CACHE_MAX; i++) {
		struct cache_entry *e = &c->e[i];

		if (e->expires && e->expires <= now)
			entry_clear(e);
		if (e->expires && !memcmp(e->key, key, 32))
			return e;
	}
	return NULL;
}

/*
 * Files @sess and @verified (both taken; NULL: a peer without tickets) under
 * @key until @expires. Under the lock.
 */
static void cache_file(struct cache *c, const uint8_t key[32], SSL_SESSION *sess,
		       STACK_OF(X509) * verified, int64_t expires, int64_t now)
{
	struct cache_entry *e = cache_find(c, key, now), *oldest = NULL;

	for (size_t i = 0; !e && i < CACHE_MAX; i++) {
		if (!c->e[i].expires)
			e = &c->e[i];
		else if (!oldest || c->e[i].filed < oldest->filed)
			oldest = &c->e[i];
	}
	if (!e)
		e = oldest;
	entry_clear(e);
	memcpy(e->key, key, 32);
	e->sess = sess;
	e->verified = verified;
	e->expires = expires;
	e->filed = ++c->filed;
}

/* Client: a NewSessionTicket was read; the cache files a copy of @sess. Always 0. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct fg_tls_conn *st = fg_keys_conn(ssl);
	struct cache *c = cache_of(ssl);
	int64_t now = now_s(), end, na;
	uint32_t hint = SSL_SESSION_get_ticket_lifetime_hint(sess);
	STACK_OF(X509) * verified;
	SSL_SESSION *copy;

	/* A resumed connection's ticket is no fresher than the one it used. */
	if (!st || !c || !st->resume_lifetime_s || SSL_session_reused(ssl) ||
	    !SSL_SESSION_is_resumable(sess))
		return 0;
	end = now + st->resume_lifetime_s;
	if (hint && now + (int64_t)hint < end)
		end = now + (int64_t)hint;
	na = not_after(SSL_SESSION_get0_peer(sess));
	if (!na || na <= now)
		return 0;
	if (na < end)
		end = na;
	/*
	 * A copy of its own: the connection's session is marked used up when
	 * the connection ends without a shutdown (ssl_clear_bad_session()).
	 */
	verified = X509_chain_up_ref(SSL_get0_verified_chain(ssl));
	copy = verified ? SSL_SESSION_dup(sess) : NULL;
	if (!copy) {
		sk_X509_pop_free(verified, X509_free);
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	cache_file(c, st->resume_key, copy, verified, end, now);
	pthread_mutex_unlock(&c->lock);
	st->got_ticket = 1;
	return 0;
}

int fg_resume_ctx_setup(SSL_CTX *ctx, int is_server)
{
	struct ticket_keys *k = NULL;
	struct cache *c = NULL;
	int ret = -ENOMEM;

	if (fg_resume_init())
		goto out;
	/* PSK with (EC)DHE only, whatever a default changes: psk_ke has no forward secrecy. */
	SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX | SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (is_server) {
		k = calloc(1, sizeof(*k));
		if (!k || RAND_priv_bytes((unsigned char *)k, sizeof(*k)) != 1 ||
		    !SSL_CTX_set_ex_data(ctx, keys_idx, k))
			goto free_keys;
		k = NULL; /* the context's: keys_free() wipes it with the context */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		if (!SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) ||
		    !SSL_CTX_set_session_ticket_cb(ctx, gen_cb, dec_cb, NULL))
			goto out;
		ret = 0;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c || pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		goto out;
	}
	if (!SSL_CTX_set_ex_data(ctx, cache_idx, c)) {
		cache_free(NULL, c, NULL, 0, 0, NULL);
		goto out;
	}
	SSL_CTX_set_session_cache_mode(ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	ret = 0;
	goto out;
free_keys:
	if (k)
		OPENSSL_cleanse(k, sizeof(*k));
	free(k);
out:
	return ret;
}

int fg_resume_accept(SSL *ssl, struct fg_tls_conn *st, const char *tunnel, unsigned long epoch,
		     int lifetime_s)
{
	if (digest(st->resume_key, "fedgate resume server", tunnel, "", "", epoch) ||
	    !SSL_set_session_id_context(ssl, st->resume_key, sizeof(st->resume_key)))
		return -ENOMEM;
	st->resume_lifetime_s = lifetime_s > 0 ? lifetime_s : 0;
	SSL_set_num_tickets(ssl, st->resume_lifetime_s ? 1 : 0);
	return 0;
}

int fg_resume_offer(SSL *ssl, struct fg_tls_conn *st, const char *tunnel, const char *addr,
		    const char *sni, unsigned long epoch, int lifetime_s)
{
	struct cache *c = cache_of(ssl);
	STACK_OF(X509) * verified;
	SSL_SESSION *copy;
	struct cache_entry *e;
	int ret = 0, have;

	if (lifetime_s <= 0 || !c)
		return 0;
	if (digest(st->resume_key, "fedgate resume client", tunnel, addr, sni ? sni : "", epoch))
		return -ENOMEM;
	st->resume_lifetime_s = lifetime_s;
	pthread_mutex_lock(&c->lock);
	e = cache_find(c, st->resume_key, now_s());
	/*
	 * A copy for each connection: OpenSSL marks a TLS 1.3 session it
	 * resumed as used up, and the ticket is good until it expires.
	 */
	have = e && e->sess;
	copy = have ? SSL_SESSION_dup(e->sess) : NULL;
	verified = have ? X509_chain_up_ref(e->verified) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (have) {
		if (copy && verified && SSL_set_session(ssl, copy)) {
			st->resume_offered = 1;
			st->resume_verified = verified;
			verified = NULL;
		} else {
			ret = -ENOMEM;
		}
	}
	sk_X509_pop_free(verified, X509_free);
	SSL_SESSION_free(copy);
	return ret;
}

int fg_resume_ticket_due(SSL *ssl, const struct fg_tls_conn *st)
{
	struct cache *c = cache_of(ssl);
	struct cache_entry *e;
	int due;

	if (!c || !st->resume_lifetime_s || st->got_ticket || SSL_session_reused(ssl))
		return 0;
	pthread_mutex_lock(&c->lock);
	e = cache_find(c, st->resume_key, now_s());
	/* The peer did not take what we offered (its keys changed): that one is done. */
	if (e && st->resume_offered) {
		entry_clear(e);
		e = NULL;
	}
	due = !e;
	pthread_mutex_unlock(&c->lock);
	return due;
}

void fg_resume_no_ticket(SSL *ssl, const struct fg_tls_conn *st)
{
	struct cache *c = cache_of(ssl);
	int64_t now = now_s();

	if (!c || !st->resume_lifetime_s)
		return;
	pthread_mutex_lock(&c->lock);
	if (!cache_find(c, st->resume_key, now))
		cache_file(c, st->resume_key, NULL, NULL, now + NO_TICKET_S, now);
	pthread_mutex_unlock(&c->lock);
}

const char *fg_resume_describe(SSL *ssl, const struct fg_tls_conn *st, char *buf, size_t len)
{
	if (SSL_session_reused(ssl))
		snprintf(buf, len, "handshake resumed");
	else if (st->resume_why)
		snprintf(buf, len, "handshake full (ticket not used: %s)", st->resume_why);
	else if (st->resume_offered)
		snprintf(buf, len, "handshake full (the peer did not take our ticket)");
	else
		snprintf(buf, len, "handshake full");
	return buf;
}
