/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_VERSION_H
#define FEDGATE_VERSION_H

/* The release, as `fedgate version` and the start-up line say it (the build may set it). */
#ifndef FEDGATE_VERSION
#define FEDGATE_VERSION "0.1.0"
#endif

#endif
