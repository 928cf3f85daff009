// SPDX-License-Identifier: MIT
/* Peer authorization: the tunnel's allow rules over a verified identity. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fedgate/allow.h"

static int char_eq(char a, char b, enum fg_pattern_kind kind)
{
	if (kind == FG_PATTERN_DNS)
		return tolower((unsigned char)a) == tolower((unsigned char)b);
	return a == b;
}

int fg_pattern_match(const char *p, const char *s, enum fg_pattern_kind kind)
{
	if (*p == '\0')
		return *s == '\0';
	if (*p == '*') {
		/* Try every length; DNS stars need one character and stay in a label. */
		size_t i = kind == FG_PATTERN_DNS ? 1 : 0;

		for (;; i++) {
			if (i > strlen(s))
				return 0;
			if (kind == FG_PATTERN_DNS && i > 0 && s[i - 1] == '.')
				return 0;
			if (fg_pattern_match(p + 1, s + i, kind))
				return 1;
		}
	}
	return *s && char_eq(*p, *s, kind) && fg_pattern_match(p + 1, s + 1, kind);
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
	if (r->root && !fg_pattern_match(r->root, peer->root_cn, FG_PATTERN_CN)) {
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

void fg_peer_describe(const struct fg_peer_id *peer, char *out, size_t len)
{
	size_t used;
	int w;

	w = snprintf(out, len, "%s [", peer->cn[0] ? peer->cn : "(no CN)");
	used = w > 0 ? (size_t)w : 0;
	for (size_t i = 0; i < peer->n_dns && used < len; i++) {
		w = snprintf(out + used, len - used, "%sdns:%s", used > 0 && out[used - 1] != '[' ? " " : "",
			     peer->dns[i]);
		used += w > 0 ? (size_t)w : 0;
	}
	for (size_t i = 0; i < peer->n_uri && used < len; i++) {
		w = snprintf(out + used, len - used, "%suri:%s", out[used - 1] != '[' ? " " : "",
			     peer->uri[i]);
		used += w > 0 ? (size_t)w : 0;
	}
	if (used < len)
		snprintf(out + used, len - used, "]");
}
