// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/ca/url.c: the input, as a C string, is parsed
 * into small buffers (ASan sees any overrun). What parses has a host and a
 * port of 1 to 65535, and the rest lies within the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/ca/url.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *host = malloc(16), *port = malloc(6);
	const char *rest = NULL;

	if (!s || !host || !port)
		goto free_all;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!fg_url_parse(s, host, 16, port, 6, &rest)) {
		if (!host[0] || strlen(host) >= 16 || atoi(port) < 1 || atoi(port) > 65535 ||
		    rest < s || rest > s + strlen(s))
			abort();
	}
free_all:
	free(port);
	free(host);
	free(s);
	return 0;
}
