/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CAPTURE_T_H
#define FEDGATE_CAPTURE_T_H

#include <stddef.h>
#include <stdint.h>

/* The nftables table `fedgate capture` owns; nothing outside it is touched. */
#define FG_CAPTURE_NFT_TABLE "inet fedgate"

/*
 * The policy routing rules' priorities: fixed, so that `up` run twice finds
 * the rules it added (the kernel's NLM_F_EXCL compares the priority) and
 * `down` deletes exactly them. Both sit just before "lookup main" (32766),
 * where `ip rule add` without a priority puts its first rule.
 *
 * FG_CAPTURE_PRIO_OWN: "fwmark M iif lo lookup main". fedgate marks the
 * sockets it dials with M as well (so that REDIRECT skips them); without this
 * rule their packets, locally generated (iif lo), would meet the capture rule
 * below and be routed into lo instead of out to the peer.
 * FG_CAPTURE_PRIO_CAPTURE: "fwmark M lookup T", what TPROXY needs: packets it
 * marked are delivered locally by T's "local default dev lo" route.
 */
#define FG_CAPTURE_PRIO_OWN 32764u
#define FG_CAPTURE_PRIO_CAPTURE 32765u
#define FG_CAPTURE_TABLE_MAIN 254u /* RT_TABLE_MAIN */

enum fg_rt_kind {
	FG_RT_ROUTE, /* "local default dev lo table @table" */
	FG_RT_RULE,  /* "fwmark @fwmark [iif lo] lookup @table priority @priority" */
};

/* One routing entry `capture up` makes present or absent (and `down` absent). */
struct fg_rt_entry {
	enum fg_rt_kind kind;
	int family;	   /* AF_INET or AF_INET6 */
	int present;	   /* 1: must exist (added if missing); 0: must not (deleted if there) */
	uint32_t table;	   /* rule: the table it looks up; route: the table it is in */
	uint32_t fwmark;   /* rule only */
	uint32_t priority; /* rule only */
	int iif_lo;	   /* rule only: matches locally generated packets only */
};

/* Per family: the route, the own-sockets rule, the capture rule (the order they are added in). */
#define FG_CAPTURE_RT_MAX 6

/*
 * What `capture up` (or `down`) does: @nft, one nftables transaction, then
 * @rt. Built by fg_capture_plan_up/_down, freed by fg_capture_plan_exit.
 */
struct fg_capture_plan {
	char *nft; /* owned, NUL-terminated nft script */
	struct fg_rt_entry rt[FG_CAPTURE_RT_MAX];
	size_t n_rt;
	size_t n_tproxy, n_redirect; /* capture tunnels in the config */
};

#endif
