/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CAPTURE_T_H
#define FEDGATE_CAPTURE_T_H

#include <stddef.h>
#include <stdint.h>

/* The nftables table `fedgate capture` owns; nothing outside it is touched. */
#define FG_CAPTURE_NFT_TABLE "inet fedgate"

/*
 * Two marks (config-t.h): fedgate's own sockets carry capture.mark, which only
 * REDIRECT's "meta mark != mark" looks at; TPROXY sets capture.tproxy_mark,
 * and the one policy rule per family, "fwmark tproxy_mark lookup T", sends
 * just those packets to T's "local default dev lo" route. So fedgate's own
 * packets match no ip rule of ours and take the host's routing, whatever tables
 * it uses (rather than being forced onto main, or routed into lo).
 *
 * The rule's priority is fixed, so that `up` run twice finds the rule it
 * added (the kernel's NLM_F_EXCL compares the priority) and `down` deletes
 * exactly it: just before "lookup main" (32766), where `ip rule add` without
 * a priority puts its first rule.
 */
#define FG_CAPTURE_PRIO_CAPTURE 32765u

enum fg_rt_kind {
	FG_RT_ROUTE, /* "local default dev lo table @table" */
	FG_RT_RULE,  /* "fwmark @fwmark lookup @table priority @priority" */
};

/* One routing entry `capture up` makes present or absent (and `down` absent). */
struct fg_rt_entry {
	enum fg_rt_kind kind;
	int family;	   /* AF_INET or AF_INET6 */
	int present;	   /* 1: must exist (added if missing); 0: must not (deleted if there) */
	uint32_t table;	   /* rule: the table it looks up; route: the table it is in */
	uint32_t fwmark;   /* rule only: capture.tproxy_mark */
	uint32_t priority; /* rule only */
};

/* Per family: the route, then the rule (the order they are added in). */
#define FG_CAPTURE_RT_MAX 4

/*
 * What `capture up` (or `down`) does: @nft, one nftables transaction, then
 * @rt. Built by fg_capture_plan_up/_down, freed by fg_capture_plan_exit.
 */
struct fg_capture_plan {
	char *nft; /* owned, NUL-terminated nft script */
	struct fg_rt_entry rt[FG_CAPTURE_RT_MAX];
	size_t n_rt;
	size_t n_tproxy, n_redirect; /* capture tunnels in the config */
	size_t n_cgroup;	     /* "cgroup" ones: nothing for nftables (capture_bpf.h) */
};

#endif
