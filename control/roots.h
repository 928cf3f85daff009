/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ROOTS_H
#define FEDGATE_ROOTS_H

#include <stddef.h>
#include <openssl/x509.h>
#include "control/config-t.h"
#include "control/peer-t.h"

/*
 * Per-root name constraints: finds the rule of @root (by CN and/or SHA-256,
 * as the rule names it) and checks @peer's names against it. Returns 0 when
 * @root has no rule or every name is inside its namespace, -EACCES with the
 * root and the first name outside it written to @why.
 */
int fg_roots_check(const struct fg_root_rule *rules, size_t n, X509 *root,
		   const struct fg_peer_id *peer, char *why, size_t why_len);

/*
 * When @cfg names roots by CN ($.roots[].cn, allow[].root other than
 * "sha256:HEX"), a second root with the same CN would inherit the first
 * one's standing: refuses a bundle holding two different roots with one CN.
 * Returns 0, -EEXIST with the CN and both fingerprints in @why, or -EINVAL
 * (why in @why) for a root whose CN cannot be read as UTF-8.
 */
int fg_roots_unique_cns(const struct fg_config *cfg, STACK_OF(X509) * roots, char *why,
			size_t why_len);

#endif
