/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CLOCK_H
#define FEDGATE_CLOCK_H

#include <stdint.h>

/*
 * The one clock helper. Deadlines, timeouts and intervals use the monotonic
 * clock, which no clock step moves; certificate validity and token expiry are
 * wall-clock times and use the real-time clock.
 */
int64_t fg_mono_ms(void); /* CLOCK_MONOTONIC, milliseconds */
int64_t fg_wall_ms(void); /* CLOCK_REALTIME, milliseconds since the epoch */
int64_t fg_wall_s(void);  /* CLOCK_REALTIME, seconds since the epoch */

#endif
