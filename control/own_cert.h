/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_OWN_CERT_H
#define FEDGATE_OWN_CERT_H

/*
 * Whether the gateway's own certificate is good for long enough: what
 * `fedgate check` and `fedgate run` warn about at start (README "Identity").
 * A warning, not a refusal: a gateway started with an expired certificate
 * takes a replaced file within seconds (identity reload), and with
 * identity.ca it enrolls again.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

enum fg_own_cert {
	FG_OWN_CERT_OK = 0,
	/* in the last third of its lifetime: where identity.ca renews, and a file is late */
	FG_OWN_CERT_RENEW_DUE,
	FG_OWN_CERT_NOT_YET_VALID, /* notBefore more than a minute ahead: peers refuse it */
	FG_OWN_CERT_EXPIRED,	   /* notAfter passed (or unreadable): peers refuse it */
};

/*
 * The state of @leaf at Unix time @now. Pure. For all but FG_OWN_CERT_OK,
 * @why (@len bytes) gets one line (without the file's name) saying what and
 * when, e.g. "has expired (notAfter 2026-12-01 13:00:00 UTC, 3600 s ago): ...".
 */
enum fg_own_cert fg_own_cert_state(X509 *leaf, int64_t now, char *why, size_t len);

#endif
