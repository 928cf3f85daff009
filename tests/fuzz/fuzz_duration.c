// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/ca/duration.c: the input, as a C string, is
 * parsed as a Go duration and as an RFC 3339 time. A duration that parses is
 * within the documented bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/ca/duration.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	int64_t ms = 0, t = 0;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!fg_duration_parse(s, &ms) && (ms > (int64_t)1e15 || ms < -(int64_t)1e15))
		abort();
	fg_time_parse(s, &t);
	free(s);
	return 0;
}
