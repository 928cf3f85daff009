// SPDX-License-Identifier: MIT
/* /metrics: the counts of control/metrics.h and the rest read from the gateway at render. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/x509.h>

#include "control/config.h"
#include "control/ident_issued.h"
#include "control/metrics.h"
#include "control/pool-t.h"
#include "control/verify_cache.h"
#include "control/version.h"

#define REASONS_MAX 64
#define REASON_LEN 64
#define LIMITS_MAX 8

struct tunnel_counts {
	char *name;
	unsigned long long accepted, refused;
};

/* Refusals by (tunnel, reason): few, so a list. */
struct reason_count {
	size_t tunnel;
	char reason[REASON_LEN];
	unsigned long long n;
};

static struct {
	struct tunnel_counts *t;
	size_t n;
	struct reason_count reasons[REASONS_MAX];
	size_t n_reasons;
	unsigned long long reloads[2];	   /* failed, ok */
	unsigned long long renewals[2][2]; /* [renew, enroll][failed, ok] */
	struct {
		const char *limit; /* a literal of the caller's */
		unsigned long long n;
	} limits[LIMITS_MAX];
	size_t n_limits;
	/*
	 * /proc/net/tls_stat, opened before Landlock: procfs makes a new inode
	 * at each lookup of a /proc/net file, so no path rule can allow it
	 * later. -1: no kTLS here.
	 */
	int tls_stat_fd;
} m = {.tls_stat_fd = -1};

int gw_metrics_init(const struct fg_config *cfg)
{
	m.tls_stat_fd = open("/proc/net/tls_stat", O_RDONLY | O_CLOEXEC);
	m.t = calloc(cfg->n_tunnels ? cfg->n_tunnels : 1, sizeof(*m.t));
	if (!m.t)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_tunnels; i++) {
		m.t[i].name = strdup(cfg->tunnels[i].name);
		if (!m.t[i].name) {
			gw_metrics_exit();
			return -ENOMEM;
		}
		m.n = i + 1;
	}
	return 0;
}

void gw_metrics_exit(void)
{
	for (size_t i = 0; i < m.n; i++)
		free(m.t[i].name);
	free(m.t);
	if (m.tls_stat_fd >= 0)
		close(m.tls_stat_fd);
	memset(&m, 0, sizeof(m));
	m.tls_stat_fd = -1;
}

static struct tunnel_counts *counts_of(const char *tunnel)
{
	for (size_t i = 0; i < m.n; i++)
		if (!strcmp(m.t[i].name, tunnel))
			return &m.t[i];
	return NULL;
}

void gw_metrics_accepted(const char *tunnel)
{
	struct tunnel_counts *c = counts_of(tunnel);

	if (c)
		c->accepted++;
}

void gw_metrics_refused(const char *tunnel, const char *reason)
{
	struct tunnel_counts *c = counts_of(tunnel);
	size_t t, i;

	if (!c)
		return;
	c->refused++;
	t = (size_t)(c - m.t);
	for (i = 0; i < m.n_reasons; i++)
		if (m.reasons[i].tunnel == t && !strcmp(m.reasons[i].reason, reason))
			break;
	if (i == m.n_reasons) {
		if (m.n_reasons == REASONS_MAX) {
			reason = "other";
			for (i = 0; i < m.n_reasons; i++)
				if (m.reasons[i].tunnel == t &&
				    !strcmp(m.reasons[i].reason, reason))
					break;
		}
		if (i == m.n_reasons) {
			if (m.n_reasons == REASONS_MAX)
				i = REASONS_MAX - 1; /* "other" of another tunnel: the last slot */
			else
				m.n_reasons++;
			m.reasons[i].tunnel = t;
			snprintf(m.reasons[i].reason, sizeof(m.reasons[i].reason), "%s", reason);
		}
	}
	m.reasons[i].n++;
}

void gw_metrics_reloaded(int ok)
{
	m.reloads[!!ok]++;
}

void gw_metrics_counts(const char *tunnel, unsigned long long *accepted,
		       unsigned long long *refused)
{
	const struct tunnel_counts *c = counts_of(tunnel);

	*accepted = c ? c->accepted : 0;
	*refused = c ? c->refused : 0;
}

void gw_metrics_renewal(int enroll, int ok)
{
	m.renewals[!!enroll][!!ok]++;
}

void gw_metrics_limit(const char *limit)
{
	size_t i;

	for (i = 0; i < m.n_limits && strcmp(m.limits[i].limit, limit); i++)
		;
	if (i == m.n_limits) {
		if (i == LIMITS_MAX)
			return;
		m.limits[m.n_limits++].limit = limit;
	}
	m.limits[i].n++;
}

/* A growing text; on a failed append @failed is set and the rest are no-ops. */
struct text {
	char *buf;
	size_t len, cap;
	int failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (t->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1;
			return;
		}
		if (t->buf && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		char *nb;

		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		nb = realloc(t->buf, cap);
		if (!nb) {
			t->failed = 1;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
}

/* HELP and TYPE of one metric family. */
static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the format wants it: \ " and newline escaped (names are the config's). */
static const char *label(const char *v, char *buf, size_t len)
{
	size_t o = 0;

	for (; *v && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			buf[o++] = '\\';
			buf[o++] = *v == '\n' ? 'n' : *v;
		} else {
			buf[o++] = *v;
		}
	}
	buf[o] = '\0';
	return buf;
}

/* /proc/net/tls_stat, where the kernel has kTLS: "TlsCurrTxSw   3" lines, read again. */
static void tls_stat(struct text *t)
{
	char buf[8192], name[64], lb[128];
	unsigned long long v;
	const char *p = buf;
	ssize_t n;
	int used;

	if (m.tls_stat_fd < 0)
		return;
	n = pread(m.tls_stat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	family(t, "fedgate_kernel_tls_stat", "gauge",
	       "The kernel's TLS counters (/proc/net/tls_stat), machine-wide.");
	while (sscanf(p, "%63s %llu%n", name, &v, &used) == 2) {
		put(t, "fedgate_kernel_tls_stat{counter=\"%s\"} %llu\n",
		    label(name, lb, sizeof(lb)), v);
		p += used;
	}
}

int gw_metrics_render(const struct gw_metrics_now *now, char **out, size_t *len)
{
	struct fg_vcache_counts vc;
	struct text t = {0};
	char lb[256];

	family(&t, "fedgate_info", "gauge",
	       "The running fedgate: version, offload and local legs redirect in use.");
	put(&t, "fedgate_info{version=\"%s\",offload=\"%s\",local_redirect=\"%s\"} 1\n",
	    FEDGATE_VERSION, now->backend, now->local_redirect ? "on" : "off");
	family(&t, "fedgate_connections_accepted_total", "counter",
	       "Connections authorized and taken by the data plane, by tunnel.");
	for (size_t i = 0; i < m.n; i++)
		put(&t, "fedgate_connections_accepted_total{tunnel=\"%s\"} %llu\n",
		    label(m.t[i].name, lb, sizeof(lb)), m.t[i].accepted);
	family(&t, "fedgate_connections_refused_total", "counter",
	       "Connections refused (handshake, verification, allow rules, handoff), by tunnel.");
	for (size_t i = 0; i < m.n; i++)
		put(&t, "fedgate_connections_refused_total{tunnel=\"%s\"} %llu\n",
		    label(m.t[i].name, lb, sizeof(lb)), m.t[i].refused);
	family(&t, "fedgate_connections_refused_by_reason_total", "counter",
	       "Refusals by tunnel and reason (the start of the refusal's log line).");
	for (size_t i = 0; i < m.n_reasons; i++) {
		char rb[2 * REASON_LEN + 1];

		put(&t,
		    "fedgate_connections_refused_by_reason_total{tunnel=\"%s\",reason=\"%s\"} "
		    "%llu\n",
		    label(m.t[m.reasons[i].tunnel].name, lb, sizeof(lb)),
		    label(m.reasons[i].reason, rb, sizeof(rb)), m.reasons[i].n);
	}
	family(&t, "fedgate_tunnels_open", "gauge",
	       "Tunnels the data plane carries or is being handed now, by tunnel.");
	for (size_t i = 0; i < m.n; i++)
		put(&t, "fedgate_tunnels_open{tunnel=\"%s\"} %zu\n",
		    label(m.t[i].name, lb, sizeof(lb)), i < now->n_open ? now->open[i] : 0);
	family(&t, "fedgate_tunnel_bytes_total", "counter",
	       "Plaintext bytes tunnels carried, by tunnel and direction (running ones: up to a "
	       "second behind).");
	for (size_t i = 0; i < m.n; i++) {
		label(m.t[i].name, lb, sizeof(lb));
		put(&t, "fedgate_tunnel_bytes_total{tunnel=\"%s\",direction=\"to_peer\"} %llu\n",
		    lb, i < now->n_open ? (unsigned long long)now->bytes[i][0] : 0ULL);
		put(&t, "fedgate_tunnel_bytes_total{tunnel=\"%s\",direction=\"from_peer\"} %llu\n",
		    lb, i < now->n_open ? (unsigned long long)now->bytes[i][1] : 0ULL);
	}
	family(&t, "fedgate_pool_connections", "gauge",
	       "Warm pool connections, by tunnel and state: idle (originate, ready), filling "
	       "(originate, being made), waiting (terminate, before their first record).");
	for (size_t i = 0; i < m.n && i < now->n_open; i++) {
		label(m.t[i].name, lb, sizeof(lb));
		put(&t, "fedgate_pool_connections{tunnel=\"%s\",state=\"idle\"} %zu\n", lb,
		    now->pool[i].ready);
		put(&t, "fedgate_pool_connections{tunnel=\"%s\",state=\"filling\"} %zu\n", lb,
		    now->pool[i].filling);
		put(&t, "fedgate_pool_connections{tunnel=\"%s\",state=\"waiting\"} %zu\n", lb,
		    now->pool[i].waiting);
	}
	family(&t, "fedgate_limit_hits_total", "counter",
	       "Connections shed or refused at a limit, by the limit's config key.");
	for (size_t i = 0; i < m.n_limits; i++)
		put(&t, "fedgate_limit_hits_total{limit=\"%s\"} %llu\n", m.limits[i].limit,
		    m.limits[i].n);
	family(&t, "fedgate_handshakes_in_progress", "gauge",
	       "Connections accepted and not yet handed to the data plane or refused.");
	put(&t, "fedgate_handshakes_in_progress %zu\n", now->handshakes);
	family(&t, "fedgate_dataplane_restarts_total", "counter",
	       "Times the data plane died and was started again.");
	put(&t, "fedgate_dataplane_restarts_total %u\n", now->restarts);
	family(&t, "fedgate_reloads_total", "counter", "SIGHUP reloads, by result.");
	put(&t, "fedgate_reloads_total{result=\"ok\"} %llu\n", m.reloads[1]);
	put(&t, "fedgate_reloads_total{result=\"failed\"} %llu\n", m.reloads[0]);
	family(&t, "fedgate_renewals_total", "counter",
	       "Enrollments and renewals at identity.ca, by kind and result.");
	for (int k = 0; k < 2; k++)
		for (int ok = 1; ok >= 0; ok--)
			put(&t, "fedgate_renewals_total{kind=\"%s\",result=\"%s\"} %llu\n",
			    k ? "enroll" : "renew", ok ? "ok" : "failed", m.renewals[k][ok]);
	family(&t, "fedgate_certificate_expiry_timestamp_seconds", "gauge",
	       "notAfter of the gateway's own certificate, Unix time.");
	put(&t, "fedgate_certificate_expiry_timestamp_seconds %lld\n",
	    (long long)fg_ident_cert_time(now->leaf ? X509_get0_notAfter(now->leaf) : NULL));
	family(&t, "fedgate_trust_bundle_roots", "gauge",
	       "Roots in the trust bundle new handshakes verify against.");
	put(&t, "fedgate_trust_bundle_roots %d\n", now->n_roots);
	family(&t, "fedgate_trust_bundle_expiry_timestamp_seconds", "gauge",
	       "The first notAfter among the trust bundle's roots, Unix time (0: no root).");
	put(&t, "fedgate_trust_bundle_expiry_timestamp_seconds %lld\n", now->roots_expiry);
	fg_vcache_counts(&vc);
	family(&t, "fedgate_tls_verify_cache_total", "counter",
	       "Peer chain verifications: from the cache (hit), in full (miss), and cached "
	       "verdicts dropped as out of their validity (stale).");
	put(&t, "fedgate_tls_verify_cache_total{result=\"hit\"} %llu\n",
	    (unsigned long long)vc.hit);
	put(&t, "fedgate_tls_verify_cache_total{result=\"miss\"} %llu\n",
	    (unsigned long long)vc.miss);
	put(&t, "fedgate_tls_verify_cache_total{result=\"stale\"} %llu\n",
	    (unsigned long long)vc.stale);
	tls_stat(&t);
	if (t.failed) {
		free(t.buf);
		return -ENOMEM;
	}
	*out = t.buf;
	*len = t.len;
	return 0;
}
