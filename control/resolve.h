/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_RESOLVE_H
#define FEDGATE_RESOLVE_H

/*
 * Re-resolution of the names in the current config: each tunnel's peer or
 * upstream and each route's peer that was given as a host name (not an IP
 * literal) is looked up again every $.dns.refresh_s seconds, by one helper
 * thread, so that a slow resolver never blocks the control loop.
 * getaddrinfo() reports no TTL: the interval stands in for one.
 *
 * Threads: fg_resolver_tick() and fg_resolver_apply() run on the loop
 * thread, which alone reads and writes the config's addresses; the helper
 * only fills the resolver's own entries, which the loop thread does not
 * touch while a round is in flight. A round's result is written into the
 * config's struct fg_addr (sa, len) by fg_resolver_apply(), so every dial
 * after it uses the new address and dials already made are untouched. A
 * lookup that fails keeps the last good address.
 */
#include "control/config-t.h"

struct fg_resolver;

/* Starts the helper thread; 0 or -errno. */
int fg_resolver_new(struct fg_resolver **out);
/*
 * Stops the thread and frees the resolver. A lookup in flight gets a short
 * grace period; after it the thread frees the resolver itself, so that
 * shutdown never waits on a slow DNS server. Accepts NULL.
 */
void fg_resolver_free(struct fg_resolver *r);
/* Readable when a round has finished: then call fg_resolver_apply(). */
int fg_resolver_fd(const struct fg_resolver *r);
/*
 * Once a second: starts a round over @cfg's names when @cfg->dns_refresh_s
 * has passed since the last one began and none is in flight.
 */
void fg_resolver_tick(struct fg_resolver *r, const struct fg_config *cfg);
/*
 * A finished round into @cfg (the current config): each address that still
 * names the same host:port takes the new result; changes, failures (once a
 * streak) and recoveries are logged. A round begun for another config
 * (a reload came between) only matches the entries whose text is the same.
 */
void fg_resolver_apply(struct fg_resolver *r, struct fg_config *cfg);

#endif
