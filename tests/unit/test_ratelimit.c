/* SPDX-License-Identifier: MIT */
/*
 * The flood log rate limiter (lib/ratelimit.c): one report per interval with
 * the count of everything since the last one, nothing lost, nothing twice.
 */
#include <stdint.h>
#include "fedgate/ratelimit.h"
#include "unit.h"

UNIT_TEST(first_event_is_reported_at_once)
{
	struct fg_ratelimit rl;

	fg_ratelimit_init(&rl, 1000);
	CHECK_EQ(fg_ratelimit_hit(&rl, 5), 1);
	CHECK_EQ(fg_ratelimit_flush(&rl, 5), 0);
}

UNIT_TEST(a_burst_is_one_report_per_interval_with_its_count)
{
	struct fg_ratelimit rl;
	uint64_t reports = 0, total = 0;

	fg_ratelimit_init(&rl, 1000);
	/* 100,000 events over 10 s: one report a second at most, every event counted once. */
	for (int64_t t = 0; t < 10000; t++)
		for (int i = 0; i < 10; i++) {
			uint64_t n = fg_ratelimit_hit(&rl, 1000000 + t);

			reports += n > 0;
			total += n;
		}
	total += fg_ratelimit_flush(&rl, 1000000 + 20000);
	CHECK(reports <= 11);
	CHECK(reports >= 10);
	CHECK_EQ(total, 100000);
}

UNIT_TEST(held_events_wait_for_the_interval_then_flush_once)
{
	struct fg_ratelimit rl;

	fg_ratelimit_init(&rl, 1000);
	CHECK_EQ(fg_ratelimit_hit(&rl, 0), 1);
	CHECK_EQ(fg_ratelimit_hit(&rl, 10), 0);
	CHECK_EQ(fg_ratelimit_hit(&rl, 20), 0);
	CHECK_EQ(fg_ratelimit_flush(&rl, 999), 0);
	CHECK_EQ(fg_ratelimit_flush(&rl, 1000), 2);
	CHECK_EQ(fg_ratelimit_flush(&rl, 5000), 0);
	/* Quiet for long: the next event is reported at once, alone. */
	CHECK_EQ(fg_ratelimit_hit(&rl, 9000), 1);
	CHECK_EQ(fg_ratelimit_hit(&rl, 9500), 0);
	CHECK_EQ(fg_ratelimit_hit(&rl, 10000), 2);
}

UNIT_TEST(time_zero_and_negative_clocks_still_report_first)
{
	struct fg_ratelimit rl;

	fg_ratelimit_init(&rl, 1000);
	CHECK_EQ(fg_ratelimit_hit(&rl, -5000), 1);
	CHECK_EQ(fg_ratelimit_hit(&rl, -4500), 0);
	CHECK_EQ(fg_ratelimit_hit(&rl, -4000), 2);
}

UNIT_MAIN("ratelimit", UNIT_CASE(first_event_is_reported_at_once),
	  UNIT_CASE(a_burst_is_one_report_per_interval_with_its_count),
	  UNIT_CASE(held_events_wait_for_the_interval_then_flush_once),
	  UNIT_CASE(time_zero_and_negative_clocks_still_report_first))
