// SPDX-License-Identifier: MIT
/*
 * The rate limiter of flood log lines (include/fedgate/ratelimit.h): a count
 * and the time of the last report, no allocation, no clock of its own.
 */
#include "fedgate/ratelimit.h"

void fg_ratelimit_init(struct fg_ratelimit *rl, int64_t interval_ms)
{
	rl->interval_ms = interval_ms;
	rl->last_ms = 0;
	rl->held = 0;
	rl->reported = 0;
}

/* Reports what is held if the interval is over (or nothing was ever reported). */
static uint64_t take(struct fg_ratelimit *rl, int64_t now_ms)
{
	uint64_t n = rl->held;

	if (!n || (rl->reported && now_ms - rl->last_ms < rl->interval_ms))
		return 0;
	rl->held = 0;
	rl->last_ms = now_ms;
	rl->reported = 1;
	return n;
}

uint64_t fg_ratelimit_hit(struct fg_ratelimit *rl, int64_t now_ms)
{
	rl->held++;
	return take(rl, now_ms);
}

uint64_t fg_ratelimit_flush(struct fg_ratelimit *rl, int64_t now_ms)
{
	return take(rl, now_ms);
}
