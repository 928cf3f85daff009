// SPDX-License-Identifier: MIT
/* Peer authorization: the tunnel's allow rules over a verified identity. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "control/allow.h"
#include "fedgate/net.h"

static int char_eq(char a, char b, int fold)
{
	if (fold)
		return tolower((unsigned char)a) == tolower((unsigned char)b);
	return a == b;
}

/*
 * Glob over @s[0..sl) with '*' as the only wildcard; with @min1 each star
 * takes at least one character. Greedy with one backtrack point: O(pl * sl)
 * even for many stars, since the peer chooses @s.
 */
static int glob(const char *p, size_t pl, const char *s, size_t sl, int fold, int min1)
{
	size_t i = 0, j = 0, star_i = SIZE_MAX, star_j = 0;

	while (j < sl) {
		if (i < pl && p[i] == '*') {
			if (min1)
				j++;
			star_i = ++i;
			star_j = j;
		} else if (i < pl && char_eq(p[i], s[j], fold)) {
			i++;
			j++;
		} else if (star_i != SIZE_MAX) {
			i = star_i;
			j = ++star_j;
		} else {
			return 0;
		}
	}
	if (j > sl)
		return 0;
	for (; i < pl && p[i] == '*'; i++)
		if (min1)
			return 0;
	return i == pl;
}

/* DNS: same number of labels, each label a glob whose stars take 1+ characters. */
static int dns_match(const char *p, const char *s)
{
	for (;;) {
		const char *pd = strchr(p, '.'), *sd = strchr(s, '.');
		size_t pl = pd ? (size_t)(pd - p) : strlen(p);
		size_t sl = sd ? (size_t)(sd - s) : strlen(s);

		if (!glob(p, pl, s, sl, 1, 1))
			return 0;
		if (!pd || !sd)
			return !pd && !sd;
		p = pd + 1;
		s = sd + 1;
	}
}

int fg_pattern_match(const char *p, const char *s, enum fg_pattern_kind kind)
{
	if (kind == FG_PATTERN_DNS)
		return dns_match(p, s);
	return glob(p, strlen(p), s, strlen(s), 0, 0);
}

static int any_match(const char *pattern, const char (*names)[FG_PEER_NAME_MAX], size_t n,
		     enum fg_pattern_kind kind)
{
	for (size_t i = 0; i < n; i++)
		if (fg_pattern_match(pattern, names[i], kind))
			return 1;
	return 0;
}

/* Returns NULL when @r matches, else a description of the first field that fails. */
static const char *rule_fails(const struct fg_allow_rule *r, const struct fg_peer_id *peer,
			      char *buf, size_t len)
{
	if (r->dns && !any_match(r->dns, peer->dns, peer->n_dns, FG_PATTERN_DNS)) {
		snprintf(buf, len, "dns '%s' matches no DNS SAN", r->dns);
		return buf;
	}
	if (r->uri && !any_match(r->uri, peer->uri, peer->n_uri, FG_PATTERN_URI)) {
		snprintf(buf, len, "uri '%s' matches no URI SAN", r->uri);
		return buf;
	}
	if (r->cn && !fg_pattern_match(r->cn, peer->cn, FG_PATTERN_CN)) {
		snprintf(buf, len, "cn '%s' does not match '%s'", r->cn, peer->cn);
		return buf;
	}
	if (r->root && !strncmp(r->root, FG_ROOT_SHA256_PREFIX, strlen(FG_ROOT_SHA256_PREFIX))) {
		/* By fingerprint: the one root, whatever its CN (config.c lowercased it). */
		if (strcmp(r->root + strlen(FG_ROOT_SHA256_PREFIX), peer->root_sha256)) {
			snprintf(buf, len, "root '%s' is not the trust anchor (sha256:%s)", r->root,
				 peer->root_sha256);
			return buf;
		}
	} else if (r->root && !fg_pattern_match(r->root, peer->root_cn, FG_PATTERN_CN)) {
		snprintf(buf, len, "root '%s' does not match '%s'", r->root, peer->root_cn);
		return buf;
	}
	return NULL;
}

int fg_allow_check(const struct fg_allow_rule *rules, size_t n, const struct fg_peer_id *peer,
		   char *why, size_t why_len)
{
	size_t used = 0;
	char buf[512];

	if (why_len)
		why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *fail = rule_fails(&rules[i], peer, buf, sizeof(buf));
		int w;

		if (!fail)
			return 0;
		if (used >= why_len)
			continue;
		w = snprintf(why + used, why_len - used, "%sallow[%zu]: %s", i ? "; " : "", i,
			     fail);
		if (w > 0)
			used += (size_t)w;
	}
	return -EACCES;
}

int fg_allow_reach(const struct fg_allow_rule *rules, size_t n, const struct fg_peer_id *peer,
		   const struct sockaddr *dst)
{
	char buf[512];

	for (size_t i = 0; i < n; i++) {
		if (rule_fails(&rules[i], peer, buf, sizeof(buf)))
			continue;
		for (size_t j = 0; j < rules[i].n_reach; j++)
			if (fg_net_contains(&rules[i].reach[j].net, dst) &&
			    fg_port_in(&rules[i].reach[j].ports, dst))
				return 0;
	}
	return -EACCES;
}

void fg_peer_describe(const struct fg_peer_id *peer, char *out, size_t len)
{
	size_t used = 0;
	int first = 1;

	if (!len)
		return;
#define PUT(...)                                                                                   \
	do {                                                                                       \
		int _w = used < len ? snprintf(out + used, len - used, __VA_ARGS__) : 0;           \
		used += _w > 0 ? (size_t)_w : 0;                                                   \
	} while (0)
	PUT("%s [", peer->cn[0] ? peer->cn : "(no CN)");
	for (size_t i = 0; i < peer->n_dns; i++, first = 0)
		PUT("%sdns:%s", first ? "" : " ", peer->dns[i]);
	for (size_t i = 0; i < peer->n_uri; i++, first = 0)
		PUT("%suri:%s", first ? "" : " ", peer->uri[i]);
	PUT("]");
#undef PUT
}
