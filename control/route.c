// SPDX-License-Identifier: MIT
/* The route table's lookup: see route.h. */
#include "control/route.h"
#include "fedgate/net.h"

static int ports_hold(const struct fg_route *r, const struct sockaddr *dst)
{
	if (!r->n_ports)
		return 1;
	for (size_t i = 0; i < r->n_ports; i++)
		if (fg_port_in(&r->ports[i], dst))
			return 1;
	return 0;
}

const struct fg_route *fg_route_find(const struct fg_route *routes, size_t n,
				     const struct sockaddr *dst)
{
	const struct fg_route *best = NULL;
	int best_len = -1;

	for (size_t i = 0; i < n; i++) {
		if (!ports_hold(&routes[i], dst))
			continue;
		for (size_t j = 0; j < routes[i].n_to; j++) {
			const struct fg_net *net = &routes[i].to[j];

			if (net->prefix > best_len && fg_net_contains(net, dst)) {
				best = &routes[i];
				best_len = net->prefix;
			}
		}
	}
	return best;
}
