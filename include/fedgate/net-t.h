/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_NET_T_H
#define FEDGATE_NET_T_H

#include <stdint.h>

/* An IPv4 or IPv6 prefix; bits past @prefix are zero. */
struct fg_net {
	int family;	  /* AF_INET or AF_INET6 */
	uint8_t prefix;	  /* 0..32 or 0..128 */
	uint8_t addr[16]; /* network order; the first 4 bytes for IPv4 */
};

/* TCP ports @lo..@hi, both included, 1 <= lo <= hi. */
struct fg_port_range {
	uint16_t lo, hi;
};

/* A prefix and a port range: "10.20.0.0/24:80-443", "[fd20::/64]:5432", "10.20.0.5". */
struct fg_dest {
	struct fg_net net;
	struct fg_port_range ports;
};

#endif
