// SPDX-License-Identifier: MIT
/* https:// URL authorities: see url.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control/ca/url.h"

int fg_url_parse(const char *url, char *host, size_t host_len, char *port, size_t port_len,
		 const char **rest)
{
	const char *a, *end, *h, *colon = NULL;
	size_t hlen;

	if (strncasecmp(url, "https://", 8))
		return -EINVAL;
	a = url + 8;
	end = a + strcspn(a, "/?#");
	if (*a == '[') {
		const char *rb = memchr(a, ']', (size_t)(end - a));

		if (!rb)
			return -EINVAL;
		h = a + 1;
		hlen = (size_t)(rb - h);
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -EINVAL;
			colon = rb + 1;
		}
	} else {
		colon = memchr(a, ':', (size_t)(end - a));
		h = a;
		hlen = (size_t)((colon ? colon : end) - a);
	}
	if (hlen == 0 || hlen >= host_len || memchr(a, '@', (size_t)(end - a)))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon) {
		size_t plen = (size_t)(end - colon - 1);

		if (plen == 0 || plen >= port_len || plen > 5 ||
		    strspn(colon + 1, "0123456789") < plen)
			return -EINVAL;
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		if (atoi(port) < 1 || atoi(port) > 65535)
			return -EINVAL;
	} else {
		snprintf(port, port_len, "443");
	}
	if (rest)
		*rest = end;
	return 0;
}
