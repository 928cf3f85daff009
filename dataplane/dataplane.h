/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_DATAPLANE_H
#define FEDGATE_DATAPLANE_H

/*
 * `fedgate dataplane --workers N --backend B [--kernel-tx copy|splice]`: runs
 * the workers; returns the exit status. The process's only entry point.
 */
int fg_dataplane_main(int argc, char **argv);

#endif
