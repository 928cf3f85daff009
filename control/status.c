// SPDX-License-Identifier: MIT
/*
 * GET /status on the admin listener: the gateway now, as one JSON document
 * (`fedgate status` prints it, control/status_cmd.c). Read on the control
 * loop from the modules that own each part; it changes nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "control/config.h"
#include "control/dpctl.h"
#include "control/gateway.h"
#include "control/ident_issued.h"
#include "control/identity-t.h"
#include "control/identity.h"
#include "control/metrics.h"
#include "control/pool.h"
#include "control/status.h"
#include "control/tls.h"
#include "control/version.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/x509name.h"

/* @part into @o as @key (@key NULL: into array @o); @part is freed if it cannot go. 1 or 0. */
static int attach(cJSON *o, const char *key, cJSON *part)
{
	if (part && (key ? cJSON_AddItemToObject(o, key, part) : cJSON_AddItemToArray(o, part)))
		return 1;
	cJSON_Delete(part);
	return 0;
}

/* Peers listed per tunnel at most; the tunnels of the others are counted. */
#define PEERS_MAX 64

/* The open tunnels of one name, by peer. */
struct peers {
	const char *tunnel;
	cJSON *list; /* [{identity, open, being_handed}] */
	size_t more; /* tunnels of peers past PEERS_MAX */
	int failed;
};

/* Every tunnel's peers, in one walk over what the data plane carries (gw_dp_each). */
struct all_peers {
	struct peers *p;
	size_t n;
};

static void add_peer(void *ctx, const char *tunnel, const char *peer, int running)
{
	struct all_peers *all = ctx;
	struct peers *p = NULL;
	cJSON *e;

	for (size_t i = 0; i < all->n && !p; i++)
		if (!strcmp(all->p[i].tunnel, tunnel))
			p = &all->p[i];
	if (!p || p->failed)
		return;
	cJSON_ArrayForEach(e, p->list)
	{
		if (!strcmp(cJSON_GetObjectItem(e, "identity")->valuestring, peer)) {
			cJSON *n = cJSON_GetObjectItem(e, running ? "open" : "being_handed");

			cJSON_SetNumberValue(n, n->valuedouble + 1);
			return;
		}
	}
	if (cJSON_GetArraySize(p->list) >= PEERS_MAX) {
		p->more++;
		return;
	}
	e = cJSON_CreateObject();
	if (!e || !cJSON_AddStringToObject(e, "identity", peer) ||
	    !cJSON_AddNumberToObject(e, "open", running) ||
	    !cJSON_AddNumberToObject(e, "being_handed", !running)) {
		cJSON_Delete(e);
		p->failed = 1;
		return;
	}
	if (!attach(p->list, NULL, e))
		p->failed = 1;
}

/* Where @t's listener is bound now (the config may say port 0), into @out. */
static void bound(const struct gw *gw, const struct fg_tunnel_conf *t, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	snprintf(out, len, "%s", t->listen.text);
	for (size_t i = 0; i < gw->n_listeners; i++)
		if (gw->listeners[i].t == t && gw->listeners[i].fd >= 0 &&
		    !getsockname(gw->listeners[i].fd, (struct sockaddr *)&ss, &sl))
			fg_addr_text(&ss, out, len);
}

/* Originate: its idle pooled connections and those being made; terminate: those waiting. */
static cJSON *pool_json(const struct gw *gw, const struct fg_tunnel_conf *t)
{
	struct gw_pool_count n = gw_pool_count(gw->pools, t->name);
	cJSON *o = cJSON_CreateObject();
	int ok = o != NULL;

	if (ok && t->mode == FG_MODE_ORIGINATE)
		ok = cJSON_AddNumberToObject(o, "size", t->pool_size) &&
		     cJSON_AddNumberToObject(o, "idle", n.ready) &&
		     cJSON_AddNumberToObject(o, "filling", n.filling);
	else if (ok)
		ok = cJSON_AddNumberToObject(o, "max", t->pool_max) &&
		     cJSON_AddNumberToObject(o, "waiting", n.waiting);
	ok = ok && cJSON_AddNumberToObject(o, "idle_s", t->pool_idle_s);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Tunnel @t's object, its "peers" list @p->list (taken) filled in by the walk already. */
static cJSON *tunnel_json(const struct gw *gw, const struct fg_tunnel_conf *t, struct peers *p)
{
	cJSON *o = cJSON_CreateObject();
	unsigned long long accepted = 0, refused = 0;
	uint64_t up = 0, down = 0;
	char at[INET6_ADDRSTRLEN + 8];
	int ok;

	if (!o)
		return NULL;
	bound(gw, t, at, sizeof(at));
	gw_metrics_counts(t->name, &accepted, &refused);
	gw_dp_bytes(gw->dp, t->name, &up, &down);
	ok = attach(o, "peers", p->list);
	p->list = NULL;
	ok = ok && !p->failed && cJSON_AddStringToObject(o, "name", t->name) &&
	     cJSON_AddStringToObject(o, "mode",
				     t->mode == FG_MODE_ORIGINATE ? "originate" : "terminate") &&
	     cJSON_AddStringToObject(o, "listen", at) &&
	     cJSON_AddStringToObject(o, "target",
				     t->capture	      ? "$.routes"
				     : t->transparent ? "as the peer names it"
						      : t->target.text) &&
	     (!t->server_name || cJSON_AddStringToObject(o, "server_name", t->server_name)) &&
	     cJSON_AddNumberToObject(o, "open", (double)gw_dp_tunnels(gw->dp, t->name)) &&
	     cJSON_AddNumberToObject(o, "accepted", (double)accepted) &&
	     cJSON_AddNumberToObject(o, "refused", (double)refused) &&
	     cJSON_AddNumberToObject(o, "bytes_to_peer", (double)up) &&
	     cJSON_AddNumberToObject(o, "bytes_from_peer", (double)down) &&
	     cJSON_AddStringToObject(o, "offload", gw_dp_backend_name(gw->dp));
	if (ok && (t->pool_size || t->pool_max))
		ok = attach(o, "pool", pool_json(gw, t));
	if (!ok ||
	    (p->more && !cJSON_AddNumberToObject(o, "tunnels_of_other_peers", (double)p->more))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Age in seconds of what was got at wall clock @ms (0: never: null). */
static cJSON *age(int64_t ms, int64_t now)
{
	return ms ? cJSON_CreateNumber((double)((now - ms) / 1000)) : cJSON_CreateNull();
}

static cJSON *source_json(const struct fg_ident *id, size_t slot, int64_t now)
{
	const struct fg_config *cfg = id->cfg;
	int file = slot == FG_IDENT_TRUST_FILE_SLOT(cfg);
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "kind", file ? "file" : "federation") ||
	    !cJSON_AddStringToObject(o, file ? "path" : "url",
				     file ? cfg->trust_file : cfg->federation[slot].url) ||
	    !cJSON_AddNumberToObject(o, "roots",
				     id->bundles[slot] ? sk_X509_num(id->bundles[slot]) : 0) ||
	    !cJSON_AddBoolToObject(o, "from_cache", id->bundle_cached[slot]) ||
	    !attach(o, "age_s", age(id->bundle_ms[slot], now))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *trust_json(struct fg_ident *id, int64_t now)
{
	const struct fg_config *cfg = id->cfg;
	cJSON *o = cJSON_CreateObject(), *list;
	int ok;

	if (!o)
		return NULL;
	list = cJSON_AddArrayToObject(o, "sources");
	ok = list && cJSON_AddNumberToObject(o, "roots", fg_ident_tls(id)->n_roots) &&
	     cJSON_AddNumberToObject(o, "first_root_expiry", (double)fg_ident_roots_expiry(id));
	for (size_t s = 0; ok && s < cfg->n_federation + 1; s++) {
		if (s == FG_IDENT_TRUST_FILE_SLOT(cfg) && !cfg->trust_file)
			continue;
		ok = attach(list, NULL, source_json(id, s, now));
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *identity_json(const struct fg_ident *id, int64_t now)
{
	X509 *leaf = id->id.leaf;
	int64_t na = fg_ident_cert_time(leaf ? X509_get0_notAfter(leaf) : NULL);
	cJSON *o = cJSON_CreateObject();
	char cn[256] = "", desc[512] = "";

	if (leaf) {
		fg_x509_cn(X509_get_subject_name(leaf), cn, sizeof(cn));
		fg_cert_describe(leaf, desc, sizeof(desc));
	}
	if (!o || !cJSON_AddStringToObject(o, "cn", cn) ||
	    !cJSON_AddStringToObject(o, "certificate", desc) ||
	    !cJSON_AddStringToObject(o, "source", id->cfg->ca ? "ca" : "files") ||
	    !cJSON_AddNumberToObject(o, "not_after", (double)na) ||
	    !cJSON_AddNumberToObject(o, "expires_in_s", (double)(na - now / 1000))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *dataplane_json(const struct gw *gw)
{
	cJSON *o = cJSON_CreateObject();
	pid_t pid = gw_dp_pid(gw->dp);

	if (!o || !attach(o, "pid", pid > 0 ? cJSON_CreateNumber(pid) : cJSON_CreateNull()) ||
	    !cJSON_AddStringToObject(o, "offload", gw_dp_backend_name(gw->dp)) ||
	    !cJSON_AddStringToObject(o, "local_redirect",
				     gw->cur->cfg->local_redirect ? "on" : "off") ||
	    !cJSON_AddNumberToObject(o, "restarts", gw_dp_restarts(gw->dp))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int gw_status_render(struct gw *gw, int64_t started_ms, char **out, size_t *len)
{
	const struct fg_config *cfg = gw->cur->cfg;
	int64_t now = fg_wall_ms();
	cJSON *o = cJSON_CreateObject(), *list;
	struct all_peers all = {0};
	int ok, ret = -ENOMEM;

	if (!o)
		return -ENOMEM;
	list = cJSON_AddArrayToObject(o, "tunnels");
	ok = list && cJSON_AddStringToObject(o, "version", FEDGATE_VERSION) &&
	     cJSON_AddNumberToObject(o, "pid", getpid()) &&
	     cJSON_AddNumberToObject(o, "uptime_s", (double)((now - started_ms) / 1000)) &&
	     cJSON_AddStringToObject(o, "config", cfg->path) &&
	     cJSON_AddBoolToObject(o, "draining", gw->draining) &&
	     cJSON_AddNumberToObject(o, "handshakes_in_progress",
				     (double)(gw->n_conns - gw_pool_count(gw->pools, NULL).held));
	ok = ok && attach(o, "dataplane", dataplane_json(gw)) &&
	     attach(o, "identity", identity_json(gw->id, now)) &&
	     attach(o, "trust", trust_json(gw->id, now));
	all.n = cfg->n_tunnels;
	all.p = calloc(all.n ? all.n : 1, sizeof(*all.p));
	ok = ok && all.p;
	for (size_t i = 0; ok && i < all.n; i++) {
		all.p[i].tunnel = cfg->tunnels[i].name;
		all.p[i].list = cJSON_CreateArray();
		ok = all.p[i].list != NULL;
	}
	if (ok)
		gw_dp_each(gw->dp, add_peer, &all);
	for (size_t i = 0; ok && i < cfg->n_tunnels; i++)
		ok = attach(list, NULL, tunnel_json(gw, &cfg->tunnels[i], &all.p[i]));
	for (size_t i = 0; all.p && i < all.n; i++)
		cJSON_Delete(all.p[i].list);
	free(all.p);
	if (ok) {
		*out = cJSON_Print(o);
		if (*out) {
			*len = strlen(*out);
			ret = 0;
		}
	}
	cJSON_Delete(o);
	return ret;
}
