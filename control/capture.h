/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CAPTURE_H
#define FEDGATE_CAPTURE_H

/*
 * What `fedgate capture up|down` installs, as data: pure, no I/O. The nft
 * script replaces table inet fedgate atomically ("add table" + "delete table"
 * + the whole table in one transaction), so running it twice is harmless.
 */
#include <stdio.h>
#include "control/capture-t.h"
#include "control/config-t.h"

/*
 * Fills @plan (zeroed) with what `up` needs for @cfg: the table (a prerouting
 * TPROXY chain for each tproxy tunnel, an output REDIRECT chain for each
 * redirect one, over every route's prefixes and ports) and, with a tproxy
 * tunnel, for each family the routes use, the rules and the local route;
 * the entries of the other family are listed absent. A config without a
 * capture tunnel gives n_tproxy == n_redirect == 0 and an empty table.
 * @cfg is as fg_config_load leaves it (a mark and a table of fedgate's own:
 * the parser refuses 0 and the kernel's tables). Returns 0, -EINVAL (a
 * capture tunnel listening on port 0, which nftables cannot send to) or
 * -ENOMEM, with @err set; on error @plan is empty.
 */
int fg_capture_plan_up(const struct fg_config *cfg, struct fg_capture_plan *plan,
		       struct fg_err *err);

/*
 * Fills @plan (zeroed) with what `down` does: delete the table (no error if
 * absent) and every entry `up` could have added for @cfg's mark and table,
 * listed absent. Returns 0 or -ENOMEM (@err set; @plan empty).
 */
int fg_capture_plan_down(const struct fg_config *cfg, struct fg_capture_plan *plan,
			 struct fg_err *err);

/* Frees what @plan owns and zeroes it; NULL and a zeroed plan are fine. */
void fg_capture_plan_exit(struct fg_capture_plan *plan);

/*
 * The `ip` command that adds (@add) or deletes @e, e.g. "ip -6 rule add
 * fwmark 0x4647 lookup 18247 priority 32765", into @out (truncated to @len).
 */
void fg_rt_entry_text(const struct fg_rt_entry *e, int add, char *out, size_t len);

#endif
