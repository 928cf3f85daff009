/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_DURATION_H
#define FEDGATE_CA_DURATION_H

/*
 * Times as step writes them in ca.json and requests: Go durations and RFC
 * 3339 timestamps. Pure: no I/O.
 */
#include <stdint.h>

/*
 * Parses a Go-style duration: one or more NUMBER UNIT with units "h", "m",
 * "s" and "ms" and decimal NUMBERs ("24h", "2m", "1h30m", "1.5h", "90s",
 * "500ms"), a leading '-' or '+' allowed, into @ms (fractions of a
 * millisecond dropped). Returns 0, -EINVAL (not a duration) or -ERANGE (over
 * 10^15 ms); @ms is set only on success.
 */
int fg_duration_parse(const char *s, int64_t *ms);

/*
 * Parses an RFC 3339 time ("2026-01-02T03:04:05Z", "...T03:04:05+02:00",
 * fractions of a second dropped) to seconds since the epoch in @t.
 * Returns 0 or -EINVAL; @t is set only on success.
 */
int fg_time_parse(const char *s, int64_t *t);

#endif
