/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_VERIFY_CACHE_H
#define FEDGATE_VERIFY_CACHE_H

#include <stdint.h>
#include <openssl/ssl.h>

/*
 * The verdicts of peer chain verification a context has reached before:
 * every peer gateway sends the same chain on each of its connections, and
 * X509_verify_cert() (building the chain, two ECDSA verifications, the
 * extension and name checks) is a seventh of a handshake's CPU.
 *
 * An entry is only ever a success of X509_verify_cert() on the same context
 * (its store: one trust bundle, one set of verification parameters). Its key
 * is the SHA-256 of the DER of every certificate the peer sent, in order,
 * and of every parameter of the verification that a connection can change
 * (expected host names, IP, e-mail, flags, depth, security level). A hit
 * still checks the validity period of every certificate of the built chain
 * against the time now; an entry outside it, or older than its bound
 * lifetime, is dropped and the chain verified in full. Failures are never
 * cached, so the verify callback reports them as without a cache. A changed
 * trust bundle, identity or configuration builds new contexts, and with
 * them empty caches. Thread-safe: the table is under a mutex.
 */

/* Seconds an entry is trusted at most, whatever its certificates' validity. */
#define FG_VCACHE_MAX_AGE_S 300

/* Since the process started, over every context with a cache: for /metrics. */
struct fg_vcache_counts {
	uint64_t hit;	/* verdicts taken from a cache */
	uint64_t miss;	/* chains verified in full: not cached, or not cacheable */
	uint64_t stale; /* entries dropped at a lookup: expired, not yet valid, or too old */
};

/*
 * Puts a cache of @slots verdicts on @ctx, as its certificate verification
 * callback (SSL_CTX_set_cert_verify_callback); @slots 0: none, @ctx
 * verifies every chain in full. The cache lives as long as @ctx (its
 * ex_data frees it). Returns 0 or -ENOMEM.
 */
int fg_vcache_attach(SSL_CTX *ctx, unsigned int slots);

/* The counts so far, into @out. */
void fg_vcache_counts(struct fg_vcache_counts *out);

/*
 * Whether a cached verdict for a chain whose latest notBefore is
 * @not_before and earliest notAfter @not_after (Unix times), cached at
 * @added, may stand at @now: 1 or 0. On any doubt (a bound on the edge), 0.
 */
int fg_vcache_usable(int64_t not_before, int64_t not_after, int64_t added, int64_t now);

#endif
