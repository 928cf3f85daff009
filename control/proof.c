// SPDX-License-Identifier: MIT
/* An established tunnel's proof of its peer: see proof.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "control/proof.h"

/*
 * Chains as tunnels keep them, shared: a peer gateway's thousands of tunnels
 * hold one copy of its leaf and chain, not one each (a parsed certificate is
 * several KiB, which an idle tunnel must not cost). Keyed by the SHA-256 of
 * every certificate's DER in order: the same bytes are the same certificates.
 */
#define BUCKETS 256

struct gw_proof_chain {
	struct gw_proof_chain *next;
	uint8_t key[32];
	unsigned long refs;
	X509 *leaf;
	STACK_OF(X509) * sent;
};

static struct gw_proof_chain *table[BUCKETS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

/* The key of @leaf and @sent. 0, or -ENOMEM. */
static int chain_key(X509 *leaf, STACK_OF(X509) * sent, uint8_t key[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0, kl = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);

	for (int i = -1; ok && i < sk_X509_num(sent); i++) {
		ok = X509_digest(i < 0 ? leaf : sk_X509_value(sent, i), EVP_sha256(), d, &dl) &&
		     EVP_DigestUpdate(md, d, dl);
	}
	ok = ok && EVP_DigestFinal_ex(md, key, &kl) && kl == 32;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -ENOMEM;
}

/* The shared chain for @leaf and @sent, one more reference taken; NULL without memory. */
static struct gw_proof_chain *chain_get(X509 *leaf, STACK_OF(X509) * sent)
{
	struct gw_proof_chain *c = NULL;
	uint8_t key[32];

	if (chain_key(leaf, sent, key))
		return NULL;
	pthread_mutex_lock(&table_lock);
	for (c = table[key[0]]; c; c = c->next)
		if (!memcmp(c->key, key, sizeof(key)))
			break;
	if (c) {
		c->refs++;
		goto unlock;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto unlock;
	memcpy(c->key, key, sizeof(key));
	c->refs = 1;
	c->leaf = X509_up_ref(leaf) ? leaf : NULL;
	/* A client's list holds its leaf too (a server's does not): harmless as untrusted. */
	c->sent = sent ? X509_chain_up_ref(sent) : sk_X509_new_null();
	if (!c->leaf || !c->sent) {
		X509_free(c->leaf);
		sk_X509_pop_free(c->sent, X509_free);
		free(c);
		c = NULL;
		goto unlock;
	}
	c->next = table[key[0]];
	table[key[0]] = c;
unlock:
	pthread_mutex_unlock(&table_lock);
	return c;
}

static void chain_put(struct gw_proof_chain *c)
{
	struct gw_proof_chain **pp;

	if (!c)
		return;
	pthread_mutex_lock(&table_lock);
	if (--c->refs) {
		pthread_mutex_unlock(&table_lock);
		return;
	}
	for (pp = &table[c->key[0]]; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	pthread_mutex_unlock(&table_lock);
	X509_free(c->leaf);
	sk_X509_pop_free(c->sent, X509_free);
	free(c);
}

int gw_proof_new(struct gw_proof **out, SSL *ssl, STACK_OF(X509) * sent, const char *expect_name,
		 const struct sockaddr_storage *dst, unsigned long epoch)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	struct gw_proof *p;

	if (!sent)
		sent = SSL_get_peer_cert_chain(ssl);
	*out = NULL;
	if (!leaf || SSL_get_verify_result(ssl) != X509_V_OK)
		return -EACCES;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->at = time(NULL);
	p->chain = chain_get(leaf, sent);
	if (expect_name)
		p->expect_name = strdup(expect_name);
	if (!p->chain || (expect_name && !p->expect_name)) {
		gw_proof_free(p);
		return -ENOMEM;
	}
	p->leaf = p->chain->leaf;
	p->sent = p->chain->sent;
	if (dst)
		p->dst = *dst;
	p->epoch = epoch;
	*out = p;
	return 0;
}

void gw_proof_free(struct gw_proof *p)
{
	if (!p)
		return;
	chain_put(p->chain);
	free(p->expect_name);
	free(p);
}
