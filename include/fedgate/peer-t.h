/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_PEER_T_H
#define FEDGATE_PEER_T_H

#include <stddef.h>

#define FG_PEER_NAME_MAX 256
#define FG_PEER_SANS_MAX 32

/*
 * Who the peer is, as its verified certificate says. Strings are empty when
 * absent. SANs past FG_PEER_SANS_MAX are counted in @dropped_sans and never
 * matched, so they can only deny, not admit.
 */
struct fg_peer_id {
	char cn[FG_PEER_NAME_MAX];
	char root_cn[FG_PEER_NAME_MAX]; /* the trust anchor, or the claimed one on failure */
	size_t n_dns, n_uri, dropped_sans;
	char dns[FG_PEER_SANS_MAX][FG_PEER_NAME_MAX];
	char uri[FG_PEER_SANS_MAX][FG_PEER_NAME_MAX];
};

#endif
