/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_LOCAL_REDIRECT_H
#define FEDGATE_CONTROL_LOCAL_REDIRECT_H

/*
 * $.dataplane.local_redirect in the control process (README "Local legs
 * redirect"): the programs of bpf/legs.c loaded for the whole run (one per
 * process: they are the kernel's, like the listeners), the listeners
 * registered, and each connection's plain side claimed and released. With
 * the redirect off every gw_lr_ call is a no-op.
 */
#include <stdint.h>
#include <stdio.h>
#include "control/config-t.h"
#include "control/gateway-t.h"

/*
 * `run`: with the redirect on, loads and attaches the programs and logs it;
 * *@slots_fd is the slot array for the data plane (-1 when off). Returns 0,
 * or FG_EXIT_CONFIG with the reason printed: "on" never falls back silently.
 */
int gw_lr_start(const struct fg_config *cfg, int *slots_fd);

/* `run` is over: logs the counters, detaches, frees. */
void gw_lr_stop(void);

/*
 * `check`: with the redirect on, the same verdict without attaching, printed
 * to @out (off prints nothing). 0 or FG_EXIT_CONFIG.
 */
int gw_lr_check(const struct fg_config *cfg, FILE *out);

/* Listener @l is bound: an originate one is registered (its bound address, wildcards too). */
void gw_lr_listener(const struct gw_listener *l);

/* @fd is @c's plain side once connected (accepted app, or dialed upstream): claims its slot. */
void gw_lr_claim(struct gw_conn *c, int fd);

/* fg_sock_dial_with's hook for a plaintext upstream dial (@arg: the gw_conn). 0 or -errno. */
int gw_lr_expect(int fd, void *arg);

/* The control process itself read @n bytes from @c's plain side. */
void gw_lr_read(struct gw_conn *c, uint64_t n);

/*
 * @c ends without a handoff: a redirected plain side is closed here (marked
 * closing, then a reset for an originate app or unread bytes, as TCP would),
 * its slot released, an announced dial forgotten. Before gw_conn_free closes
 * the rest.
 */
void gw_lr_free(struct gw_conn *c);

/* Slot @slot's owner word now (0: none, or the redirect is off), kept with a handoff. */
uint64_t gw_lr_owner(int slot);

/*
 * A handed-off reader is gone without its data plane releasing its slot (the
 * handoff was refused, or the data plane died): @slot is freed if it still
 * holds @owner (gw_lr_owner() when it was handed off), else left alone.
 */
void gw_lr_drop(int slot, uint64_t owner);

#endif
