/* SPDX-License-Identifier: MIT */
/*
 * fg_vcache_usable(): when a cached verdict of peer chain verification may
 * stand. Its edges all fall back to a full verification (tests/
 * test_verify_cache.py drives the cache itself through real handshakes).
 */
#include "control/verify_cache.h"
#include "unit.h"

#define NOW 1800000000LL

UNIT_TEST(inside_the_window_is_usable)
{
	CHECK_EQ(fg_vcache_usable(NOW - 3600, NOW + 3600, NOW - 10, NOW), 1);
	CHECK_EQ(fg_vcache_usable(NOW - 1, NOW + 1, NOW, NOW), 1);
}

UNIT_TEST(expired_or_not_yet_valid_is_not)
{
	CHECK_EQ(fg_vcache_usable(NOW - 3600, NOW - 1, NOW - 10, NOW), 0);
	CHECK_EQ(fg_vcache_usable(NOW + 1, NOW + 3600, NOW - 10, NOW), 0);
}

UNIT_TEST(either_edge_second_is_not)
{
	CHECK_EQ(fg_vcache_usable(NOW - 3600, NOW, NOW - 10, NOW), 0);
	CHECK_EQ(fg_vcache_usable(NOW, NOW + 3600, NOW - 10, NOW), 0);
}

UNIT_TEST(an_entry_is_trusted_for_its_max_age_only)
{
	CHECK_EQ(fg_vcache_usable(NOW - 9999, NOW + 9999, NOW - FG_VCACHE_MAX_AGE_S + 1, NOW), 1);
	CHECK_EQ(fg_vcache_usable(NOW - 9999, NOW + 9999, NOW - FG_VCACHE_MAX_AGE_S, NOW), 0);
}

UNIT_TEST(a_clock_that_went_back_is_not)
{
	CHECK_EQ(fg_vcache_usable(NOW - 9999, NOW + 9999, NOW + 1, NOW), 0);
}

UNIT_MAIN("verify_cache", UNIT_CASE(inside_the_window_is_usable),
	  UNIT_CASE(expired_or_not_yet_valid_is_not), UNIT_CASE(either_edge_second_is_not),
	  UNIT_CASE(an_entry_is_trusted_for_its_max_age_only),
	  UNIT_CASE(a_clock_that_went_back_is_not))
