/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_RTNL_H
#define FEDGATE_RTNL_H

#include <stddef.h>
#include "control/capture-t.h"
#include "fedgate/err-t.h"

/*
 * Makes each of the @n entries of @rt present or absent in this network
 * namespace, idempotently: the absent ones are deleted first (last first),
 * then the present ones added in order; one already there, or already gone,
 * is fine. Stops at the first failure: returns 0, or a negative errno
 * (-EPERM without CAP_NET_ADMIN) with @err naming the `ip` command that failed.
 */
int fg_rtnl_apply(const struct fg_rt_entry *rt, size_t n, struct fg_err *err);

#endif
