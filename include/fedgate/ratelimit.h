/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_RATELIMIT_H
#define FEDGATE_RATELIMIT_H

#include <stdint.h>

/*
 * One log line per interval for an event that can happen thousands of times a
 * second (a flood's refusals): the first event is reported at once, the ones
 * after it are counted and reported together, with their count, by the first
 * event or flush once @interval_ms has passed since the last report. Times
 * are the caller's, in ms on one monotonic clock (fg_mono_ms()).
 */
struct fg_ratelimit {
	int64_t interval_ms;
	int64_t last_ms; /* the last report; valid once @reported */
	uint64_t held;	 /* events counted since then, not yet reported */
	int reported;
};

void fg_ratelimit_init(struct fg_ratelimit *rl, int64_t interval_ms);

/*
 * Counts one event at @now_ms. Returns how many events to report now (this
 * one and those held back since the last report), or 0 to stay quiet.
 */
uint64_t fg_ratelimit_hit(struct fg_ratelimit *rl, int64_t now_ms);

/*
 * What was held back, to report now once @interval_ms has passed since the
 * last report (from a periodic tick, so a burst's tail is not lost); 0: none
 * held, or not yet.
 */
uint64_t fg_ratelimit_flush(struct fg_ratelimit *rl, int64_t now_ms);

#endif
