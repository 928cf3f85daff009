// SPDX-License-Identifier: MIT
/* Clocks: see clock.h for which one serves what. */
#include <time.h>

#include "fedgate/clock.h"

static int64_t ms_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fg_mono_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}

int64_t fg_wall_ms(void)
{
	return ms_of(CLOCK_REALTIME);
}

int64_t fg_wall_s(void)
{
	return (int64_t)time(NULL);
}
