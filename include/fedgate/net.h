/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_NET_H
#define FEDGATE_NET_H

/*
 * Prefixes, port ranges and destinations as the config writes them; pure, no
 * I/O, no resolver (numeric addresses only). Parsers return 0, or -EINVAL with
 * a static reason in *@why.
 */
#include <stddef.h>
#include <sys/socket.h>
#include "fedgate/net-t.h"

/* "10.20.0.0/16", "fd20::/64", "10.20.0.5" (/32), "fd20::5" (/128). Host bits must be zero. */
int fg_net_parse(const char *text, struct fg_net *net, const char **why);

/* "5432" or "8000-8100". */
int fg_port_range_parse(const char *text, struct fg_port_range *r, const char **why);

/*
 * "10.20.0.0/24", "10.20.0.0/24:80", "10.20.0.5:80-443", "[fd20::/64]:443",
 * "[fd20::5]", "fd20::/64" (no port part: every port).
 */
int fg_dest_parse(const char *text, struct fg_dest *d, const char **why);

/* 1 if @sa (AF_INET or AF_INET6, IPv4-mapped counts as IPv4) is inside @net, else 0. */
int fg_net_contains(const struct fg_net *net, const struct sockaddr *sa);

/* 1 if @sa's port is inside @r, else 0. */
int fg_port_in(const struct fg_port_range *r, const struct sockaddr *sa);

/* The length of the socket address in @ss, AF_INET or AF_INET6 (as connect() takes it). */
socklen_t fg_sockaddr_len(const struct sockaddr_storage *ss);

/* An IPv4-mapped AF_INET6 address in @ss becomes the AF_INET one, in place. */
void fg_sockaddr_unmap(struct sockaddr_storage *ss);

/* "10.20.0.0/16" or "fd20::/64" into @out. */
void fg_net_text(const struct fg_net *net, char *out, size_t len);

#endif
