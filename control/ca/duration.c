// SPDX-License-Identifier: MIT
/* Go durations and RFC 3339 times: see duration.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/ca/duration.h"

int fg_duration_parse(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "ms", 1 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };
	int64_t total = 0;
	int neg = 0;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!*s)
		return -EINVAL;
	while (*s) {
		char *end;
		double v;
		size_t i;

		if (!(*s >= '0' && *s <= '9') && *s != '.')
			return -EINVAL;
		errno = 0;
		v = strtod(s, &end);
		/* Bounded so that v * 3600000 and the sum below stay far inside int64_t. */
		if (end == s || errno || v < 0 || v > 1e12)
			return -EINVAL;
		s = end;
		/* "ms" before "m": the first unit that matches wins. */
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strncmp(s, units[i].unit, strlen(units[i].unit)))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		s += strlen(units[i].unit);
		total += (int64_t)(v * (double)units[i].ms);
		if (total > (int64_t)1e15)
			return -ERANGE;
	}
	*ms = neg ? -total : total;
	return 0;
}

int fg_time_parse(const char *s, int64_t *t)
{
	struct tm tm = { 0 };
	const char *p;
	int64_t off = 0;

	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') /* fractions of a second are dropped */
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int h = atoi(p + 1), m = atoi(p + 4);

		off = (int64_t)(h * 3600 + m * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*t = (int64_t)timegm(&tm) - off;
	return 0;
}
