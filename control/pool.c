// SPDX-License-Identifier: MIT
/* The warm pool's bookkeeping and its ALPN mark: see pool.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>

#include "control/config-t.h"
#include "control/gateway-t.h"
#include "control/keys.h"
#include "control/pool.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000

int gw_pools_new(struct gw_pools **out, struct gw_gen *gen)
{
	const struct fg_config *cfg = gen->cfg;
	struct gw_pools *ps;
	size_t n = 0;

	*out = NULL;
	for (size_t i = 0; i < cfg->n_tunnels; i++)
		if (cfg->tunnels[i].mode == FG_MODE_ORIGINATE && cfg->tunnels[i].pool_size)
			n += cfg->tunnels[i].capture ? cfg->n_routes : 1;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->gen = gen;
	ps->pool = n ? calloc(n, sizeof(*ps->pool)) : NULL;
	if (n && !ps->pool) {
		free(ps);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		const struct fg_tunnel_conf *t = &cfg->tunnels[i];

		if (t->mode != FG_MODE_ORIGINATE || !t->pool_size)
			continue;
		if (!t->capture) {
			ps->pool[ps->n++].t = t;
			continue;
		}
		for (size_t r = 0; r < cfg->n_routes; r++) {
			ps->pool[ps->n].t = t;
			ps->pool[ps->n++].route = &cfg->routes[r];
		}
	}
	*out = ps;
	return 0;
}

void gw_pools_free(struct gw_pools *ps)
{
	if (!ps)
		return;
	free(ps->pool);
	free(ps);
}

struct gw_pool *gw_pools_find(struct gw_pools *ps, const struct fg_tunnel_conf *t,
			      const struct fg_route *route)
{
	for (size_t i = 0; ps && i < ps->n; i++)
		if (ps->pool[i].t == t && ps->pool[i].route == route)
			return &ps->pool[i];
	return NULL;
}

unsigned int gw_pool_want(const struct gw_pool *p, int64_t now_ms)
{
	unsigned int have = p->n_ready + p->n_filling, size = (unsigned int)p->t->pool_size;

	if (now_ms < p->retry_at || have >= size)
		return 0;
	return size - have;
}

void gw_pool_add_filler(struct gw_pool *p, struct gw_conn *c)
{
	c->pool = p;
	c->pool_role = GW_POOL_FILLER;
	p->n_filling++;
}

/* Pushes @c at the head of the list at @head. */
static void push(struct gw_conn **head, struct gw_conn *c)
{
	c->pool_prev = NULL;
	c->pool_next = *head;
	if (*head)
		(*head)->pool_prev = c;
	*head = c;
}

static void unlink_from(struct gw_conn **head, struct gw_conn *c)
{
	if (c->pool_prev)
		c->pool_prev->pool_next = c->pool_next;
	else
		*head = c->pool_next;
	if (c->pool_next)
		c->pool_next->pool_prev = c->pool_prev;
	c->pool_prev = c->pool_next = NULL;
}

void gw_pool_park(struct gw_conn *c)
{
	struct gw_pool *p = c->pool;

	p->n_filling--;
	p->n_ready++;
	p->fails = 0;
	c->pool_role = GW_POOL_READY;
	push(&p->ready, c);
}

struct gw_conn *gw_pool_pop(struct gw_pool *p)
{
	struct gw_conn *c = p->ready;

	if (!c)
		return NULL;
	unlink_from(&p->ready, c);
	p->n_ready--;
	c->pool = NULL;
	c->pool_role = GW_POOL_NONE;
	return c;
}

void gw_pool_wait(struct gw_pools *ps, struct gw_conn *c)
{
	c->pool_role = GW_POOL_WAITING;
	push(&ps->waiting, c);
}

struct gw_pool_count gw_pool_count(const struct gw_pools *ps, const char *name)
{
	struct gw_pool_count n = {0};

	for (size_t i = 0; ps && i < ps->n; i++) {
		if (name && strcmp(ps->pool[i].t->name, name))
			continue;
		n.ready += ps->pool[i].n_ready;
		n.filling += ps->pool[i].n_filling;
	}
	for (const struct gw_conn *c = ps ? ps->waiting : NULL; c; c = c->pool_next)
		n.waiting += !name || !strcmp(c->t->name, name);
	n.held = n.ready + n.waiting;
	return n;
}

void gw_pool_unlink(struct gw_pools *ps, struct gw_conn *c, int64_t now_ms)
{
	struct gw_pool *p = c->pool;
	int64_t wait;

	switch (c->pool_role) {
	case GW_POOL_NONE:
		return;
	case GW_POOL_FILLER:
		/* NULL once its pool was rebuilt (a reload): nothing to count. */
		if (p) {
			p->n_filling--;
			wait = (int64_t)BACKOFF_FIRST_MS << (p->fails < 6 ? p->fails : 6);
			p->retry_at = now_ms + (wait < BACKOFF_MAX_MS ? wait : BACKOFF_MAX_MS);
			p->fails++;
		}
		break;
	case GW_POOL_READY:
		unlink_from(&p->ready, c);
		p->n_ready--;
		break;
	case GW_POOL_WAITING:
		unlink_from(&ps->waiting, c);
		break;
	}
	c->pool = NULL;
	c->pool_role = GW_POOL_NONE;
}

int fg_pool_offer(SSL *ssl)
{
	static const unsigned char proto[] = "\x0e" FG_POOL_ALPN;

	/* 0 is success here, as documented for SSL_set_alpn_protos. */
	return SSL_set_alpn_protos(ssl, proto, sizeof(proto) - 1) ? -ENOMEM : 0;
}

static int select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		     const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char proto[] = "\x0e" FG_POOL_ALPN;
	const struct fg_tls_conn *st = fg_keys_conn(ssl);
	unsigned char *sel = NULL;

	(void)arg;
	if (!st || !st->pool_ok ||
	    SSL_select_next_proto(&sel, outlen, proto, sizeof(proto) - 1, in, inlen) !=
		OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

void fg_pool_ctx(SSL_CTX *ctx)
{
	SSL_CTX_set_alpn_select_cb(ctx, select_cb, NULL);
}

int fg_pool_agreed(const SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;

	SSL_get0_alpn_selected(ssl, &p, &len);
	return len == sizeof(FG_POOL_ALPN) - 1 && !memcmp(p, FG_POOL_ALPN, len);
}
