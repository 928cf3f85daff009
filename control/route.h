/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ROUTE_H
#define FEDGATE_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>
#include "control/config-t.h"

/*
 * The route for a captured connection to @dst (AF_INET or AF_INET6; an
 * IPv4-mapped address counts as IPv4): among the routes with a prefix that
 * holds @dst and a port range that holds its port, the longest prefix, then
 * the first in the file. NULL when none: the connection is refused (default
 * deny). Pure.
 */
const struct fg_route *fg_route_find(const struct fg_route *routes, size_t n,
				     const struct sockaddr *dst);

#endif
