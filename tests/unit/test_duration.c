/* SPDX-License-Identifier: MIT */
/*
 * Duration and time parsing (control/ca/duration.c): Go-style durations as
 * step writes them in ca.json claims and requests ("5m", "24h", "1h30m"),
 * their bounds, and RFC 3339 times with the RFC's own examples (section 5.8).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include "control/ca/duration.h"
#include "unit.h"

#define DUR(s, expect)                                                                             \
	do {                                                                                       \
		int64_t _ms = -424242;                                                             \
		int _r = fg_duration_parse((s), &_ms);                                             \
		if (_r || _ms != (int64_t)(expect)) {                                              \
			fprintf(stderr, "    %s:%d: fg_duration_parse(\"%s\") == %d, %lld ms; "     \
					"expected %lld ms\n",                                      \
				__FILE__, __LINE__, (s), _r, (long long)_ms, (long long)(expect)); \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define DUR_BAD(s, err)                                                                            \
	do {                                                                                       \
		int64_t _ms = -424242;                                                             \
		int _r = fg_duration_parse((s), &_ms);                                             \
		if (_r != (err) || _ms != -424242) {                                               \
			fprintf(stderr, "    %s:%d: fg_duration_parse(\"%s\") == %d, %lld ms; "     \
					"expected %d and no value\n",                              \
				__FILE__, __LINE__, (s), _r, (long long)_ms, (err));               \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define TIME(s, expect)                                                                            \
	do {                                                                                       \
		int64_t _t = -1;                                                                   \
		int _r = fg_time_parse((s), &_t);                                                  \
		if (_r || _t != (int64_t)(expect)) {                                               \
			fprintf(stderr, "    %s:%d: fg_time_parse(\"%s\") == %d, %lld; "           \
					"expected %lld\n",                                         \
				__FILE__, __LINE__, (s), _r, (long long)_t, (long long)(expect));  \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define TIME_BAD(s)                                                                                \
	do {                                                                                       \
		int64_t _t = -1;                                                                   \
		int _r = fg_time_parse((s), &_t);                                                  \
		if (_r != -EINVAL || _t != -1) {                                                   \
			fprintf(stderr, "    %s:%d: fg_time_parse(\"%s\") == %d, %lld; "           \
					"expected -EINVAL\n",                                      \
				__FILE__, __LINE__, (s), _r, (long long)_t);                       \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

UNIT_TEST(step_durations)
{
	/* the values of step's ca.json claims and `step ca certificate --not-after` */
	DUR("24h", 24 * 3600 * 1000LL);
	DUR("5m", 5 * 60 * 1000);
	DUR("2m", 120000);
	DUR("90s", 90000);
	DUR("500ms", 500);
	DUR("10s", 10000);
	DUR("2160h", 2160 * 3600 * 1000LL);
	DUR("0s", 0);
}

UNIT_TEST(compound_fractional_and_signed)
{
	DUR("1h30m", 5400000);
	DUR("1h1m1s1ms", 3661001);
	DUR("1m30s500ms", 90500);
	DUR("1.5h", 5400000);
	DUR(".5s", 500);
	DUR("2.5m", 150000);
	DUR("1.0001s", 1000); /* fractions of a millisecond are dropped */
	DUR("-5m", -300000);
	DUR("+5m", 300000);
	DUR("-1h30m", -5400000); /* the sign applies to the whole */
	DUR("5m5m", 600000);
}

UNIT_TEST(ms_is_not_minutes)
{
	DUR("1ms", 1);
	DUR("1m", 60000);
	DUR("1m1ms", 60001);
	DUR_BAD("1mm", -EINVAL);
}

UNIT_TEST(malformed_durations_are_refused)
{
	DUR_BAD("", -EINVAL);
	DUR_BAD("-", -EINVAL);
	DUR_BAD("+", -EINVAL);
	DUR_BAD("5", -EINVAL); /* Go requires a unit except for "0"; so do we, even for 0 */
	DUR_BAD("0", -EINVAL);
	DUR_BAD("h", -EINVAL);
	DUR_BAD("m5", -EINVAL);
	DUR_BAD("5x", -EINVAL);
	DUR_BAD("5 m", -EINVAL);
	DUR_BAD(" 5m", -EINVAL);
	DUR_BAD("5m ", -EINVAL);
	DUR_BAD("5M", -EINVAL);
	DUR_BAD("5d", -EINVAL);
	DUR_BAD("--5m", -EINVAL);
	DUR_BAD("5m-1s", -EINVAL);
	DUR_BAD("1us", -EINVAL);
	DUR_BAD("1ns", -EINVAL);
	DUR_BAD("inf", -EINVAL);
	DUR_BAD("nans", -EINVAL);
	DUR_BAD(".s", -EINVAL);
}

UNIT_TEST(huge_durations_are_bounded)
{
	/* each number at most 10^12, the total at most 10^15 ms (about 31700 years) */
	DUR("1000000000000ms", 1000000000000LL);
	DUR("1000000000000s", 1000000000000000LL);
	DUR_BAD("1000000000001ms", -EINVAL);
	DUR_BAD("1000000000000h", -ERANGE);
	DUR_BAD("300000000h", -ERANGE);
	DUR_BAD("1000000000000s1ms", -ERANGE);
	DUR_BAD("99999999999999999999999999999999h", -EINVAL);
}

UNIT_TEST(rfc3339_times)
{
	TIME("2026-01-02T03:04:05Z", 1767323045);
	TIME("2026-01-02T03:04:05z", 1767323045);
	TIME("1970-01-01T00:00:00Z", 0);
	/* RFC 3339 section 5.8 */
	TIME("1985-04-12T23:20:50.52Z", 482196050);
	TIME("1996-12-19T16:39:57-08:00", 851013597 + 8 * 3600);
	TIME("1990-12-31T23:59:59Z", 662687999);
	TIME("2026-01-02T05:04:05+02:00", 1767323045);
	TIME("2026-01-02T03:04:05.999999999Z", 1767323045); /* fractions dropped */
}

UNIT_TEST(malformed_times_are_refused)
{
	TIME_BAD("");
	TIME_BAD("2026-01-02");
	TIME_BAD("2026-01-02T03:04:05"); /* no zone */
	TIME_BAD("2026-01-02 03:04:05Z");
	TIME_BAD("2026-01-02T03:04:05+0200");
	TIME_BAD("2026-01-02T03:04:05+02:00:00");
	TIME_BAD("2026-01-02T03:04:05Zjunk");
	TIME_BAD("2026-01-02T03:04:05.Zjunk");
	TIME_BAD("2026-13-02T03:04:05Z");
	TIME_BAD("2026-01-02T25:04:05Z");
	TIME_BAD("5m");
}

UNIT_MAIN("duration", UNIT_CASE(step_durations), UNIT_CASE(compound_fractional_and_signed),
	  UNIT_CASE(ms_is_not_minutes), UNIT_CASE(malformed_durations_are_refused),
	  UNIT_CASE(huge_durations_are_bounded), UNIT_CASE(rfc3339_times),
	  UNIT_CASE(malformed_times_are_refused))
