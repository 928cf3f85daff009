/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ALLOW_H
#define FEDGATE_ALLOW_H

#include <stddef.h>
#include <sys/socket.h>
#include "control/config-t.h"
#include "control/peer-t.h"

enum fg_pattern_kind {
	FG_PATTERN_DNS, /* case-insensitive; '*' matches 1+ characters within one label */
	FG_PATTERN_URI, /* case-sensitive; '*' matches any run, '/' included */
	FG_PATTERN_CN,	/* case-sensitive; '*' matches any run */
};

/* Returns 1 if @s matches @pattern, else 0. */
int fg_pattern_match(const char *pattern, const char *s, enum fg_pattern_kind kind);

/*
 * Checks @peer against @rules: admitted if any rule matches, and a rule
 * matches when every field it sets matches. Returns 0 when admitted, -EACCES
 * otherwise with the failing field of each rule written to @why.
 */
int fg_allow_check(const struct fg_allow_rule *rules, size_t n, const struct fg_peer_id *peer,
		   char *why, size_t why_len);

/*
 * A transparent tunnel's destination policy: @peer may reach @dst when some
 * rule of @rules admits it (as fg_allow_check) and lists @dst in its reach.
 * Returns 0, or -EACCES (no rule lists it: the default is no destination).
 */
int fg_allow_reach(const struct fg_allow_rule *rules, size_t n, const struct fg_peer_id *peer,
		   const struct sockaddr *dst);

/* "foo.internal [dns:a dns:b uri:spiffe://x]" for log lines; truncated to fit @len. */
void fg_peer_describe(const struct fg_peer_id *peer, char *out, size_t len);

#endif
