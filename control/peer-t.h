/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_PEER_T_H
#define FEDGATE_PEER_T_H

#include <stddef.h>

#define FG_PEER_NAME_MAX 256
#define FG_PEER_SANS_MAX 32

/*
 * Who the peer is, as its verified certificate says. Strings are empty when
 * absent. SANs past FG_PEER_SANS_MAX are counted in @dropped_sans and never
 * matched, so they can only deny, not admit. SANs of other types (IP, email,
 * otherName...) are counted in @other_sans: allow rules do not match them, and
 * a root with name constraints refuses a certificate that carries any.
 */
struct fg_peer_id {
	char cn[FG_PEER_NAME_MAX];
	char root_cn[FG_PEER_NAME_MAX]; /* the trust anchor, or the claimed one on failure */
	char root_sha256[65];		/* the trust anchor's fingerprint, lowercase hex */
	size_t n_dns, n_uri, dropped_sans, other_sans;
	char dns[FG_PEER_SANS_MAX][FG_PEER_NAME_MAX];
	char uri[FG_PEER_SANS_MAX][FG_PEER_NAME_MAX];
	/* For the log: the CN of the leaf's issuer (often an intermediate, not the root) */
	char issuer_cn[FG_PEER_NAME_MAX];
	int root_claimed; /* verification failed: @root_cn is what the chain claims, unverified */
};

#endif
