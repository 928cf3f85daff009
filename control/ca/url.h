/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_URL_H
#define FEDGATE_CA_URL_H

/* The authority of an https:// URL, for the CA's client and a token's "aud". Pure: no I/O. */
#include <stddef.h>

/*
 * Parses a "host:port" URL authority of an https:// URL: @host gets the host
 * (brackets removed for IPv6), @port the port ("443" if absent), @rest the
 * path after the authority ("" if none). No userinfo ('@'); a port is 1 to
 * 65535. Returns 0 or -EINVAL (@host and @port are then undefined).
 */
int fg_url_parse(const char *url, char *host, size_t host_len, char *port, size_t port_len,
		 const char **rest);

#endif
