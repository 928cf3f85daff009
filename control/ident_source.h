/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_IDENT_SOURCE_H
#define FEDGATE_IDENT_SOURCE_H

/*
 * What a source of identity or trust uses of the core (identity.c), and the
 * sources fg_ident_new() chooses from. Everything here runs on the control
 * loop (or, at start, before it).
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "control/config-t.h"
#include "control/identity-t.h"
#include "control/jobs.h"

/* One source each: the files watched, identity.ca, identity.trust.federation. */
extern const struct fg_ident_source_ops fg_ident_files_ops;
extern const struct fg_ident_source_ops fg_ident_ca_ops;
extern const struct fg_ident_source_ops fg_ident_federation_ops;

/*
 * fg_ident_new() once the sources are chosen: allocates each of @ops (in
 * that order), loads each, and builds the contexts (not with @offline when
 * there is no identity or no bundle yet). Returns 0 or a negative errno with
 * @err set where the cause is known.
 */
int fg_ident_create(struct fg_ident **out, const struct fg_config *cfg,
		    const struct fg_ident_source_ops *const *ops, size_t n_ops,
		    struct fg_ident *old, int offline, struct fg_err *err);

/*
 * New contexts from the current identity and the union of the bundles. On
 * failure the current contexts stay and the reason is in @err.
 */
int fg_ident_rebuild(struct fg_ident *id, struct fg_err *err);
/* The same, logging a failure as a warning that names @what. */
void fg_ident_rebuild_or_warn(struct fg_ident *id, const char *what);

/*
 * Puts @roots (taken) in @slot (one of @id->bundles) and rebuilds the
 * contexts; when they cannot be built (two roots with one CN, say), puts the
 * previous bundle back and returns the error in @err: a refused update never
 * becomes the last good one.
 */
int fg_ident_swap_roots(struct fg_ident *id, STACK_OF(X509) * *slot, STACK_OF(X509) * roots,
			struct fg_err *err);
/* The union of @id's bundles, without duplicates (the interim bundle if none); NULL: ENOMEM. */
STACK_OF(X509) * fg_ident_union_roots(struct fg_ident *id);

/* Loads cert+key from the files into @m; -ENOENT when absent, -EINVAL when unusable. */
int fg_ident_load_identity_files(struct fg_ident *id, struct fg_material *m, struct fg_err *err);
/*
 * Moves @m's leaf, chain and key into @id, freeing the identity @id had, and
 * clears them in @m. Contract with fg_material_free(): @m keeps only its
 * roots (if any), so the caller still frees @m as usual and nothing is freed
 * twice.
 */
void fg_ident_take_identity(struct fg_ident *id, struct fg_material *m);
/* @m->roots, which @m no longer holds. */
STACK_OF(X509) * fg_ident_take_roots(struct fg_material *m);

/* How many roots @sk holds; none yet (NULL) is 0, where sk_X509_num() says -1. */
int fg_ident_n_roots(STACK_OF(X509) * sk);
/* "'CN', 'CN'" of @sk for log lines; truncated to fit @len. */
void fg_ident_roots_describe(STACK_OF(X509) * sk, char *out, size_t len);

/* The wait before retry @failures (1, 2, ...): doubling from one second, at most @cap_ms. */
uint64_t fg_ident_backoff_ms(int failures, uint64_t cap_ms);
/* A job of @kind to @ep on behalf of @id; NULL when out of memory. */
struct fg_job *fg_ident_job_new(struct fg_ident *id, enum fg_job_kind kind,
				const struct fg_ca_endpoint *ep);
/* Runs @j now, within what is left of the start-up deadline @until_ms (monotonic). */
void fg_ident_run_startup_job(struct fg_job *j, uint64_t until_ms);

/*
 * A zeroed state of @size bytes (at least the head) for a source with @ops,
 * its head filled in; @id frees it. NULL when out of memory.
 */
struct fg_ident_source *fg_ident_source_new(struct fg_ident *id,
					    const struct fg_ident_source_ops *ops, size_t size);
/* Asks every source that can for a fresh copy at the next tick. */
void fg_ident_refresh(struct fg_ident *id);
/* @id's source with @ops, or NULL. */
struct fg_ident_source *fg_ident_source_of(struct fg_ident *id,
					   const struct fg_ident_source_ops *ops);

#endif
