/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_IDENTITY_T_H
#define FEDGATE_IDENTITY_T_H

/*
 * The gateway's identity over time, as the core (identity.c) and its sources
 * (ident_files.c, ident_ca.c, ident_federation.c) share it. The core holds
 * the material and the TLS contexts built from it; each source fills its part
 * (the certificate and key, or one or more bundles) and keeps it fresh, and
 * the core reaches a source only through its ops.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "control/config-t.h"
#include "control/tls-t.h"

struct fg_err;
struct fg_job;
struct fg_jobq;
struct fg_ident;
struct fg_ident_source;

/* How fg_ident_new() was asked to acquire, for each source's load. */
struct fg_ident_start {
	struct fg_ident *old; /* the running identity on a reload; NULL at start */
	int offline;	      /* fedgate check: no CA is contacted */
	uint64_t until_ms;    /* start-up deadline (CLOCK_MONOTONIC) for blocking requests */
};

/*
 * One source of identity or trust. alloc and load are required; any other
 * hook may be NULL (nothing to do). The core calls them in the order
 * fg_ident_new() chose the sources: the identity's source before the
 * trust's, so that at start an enrollment comes before the bundle is read
 * (and its failure is the one reported).
 */
struct fg_ident_source_ops {
	/* 1 << enum fg_job_kind for each kind of job this source submits. */
	unsigned int job_kinds;
	/*
	 * The source's state for @id, from fg_ident_source_new() (the core frees
	 * it), or NULL when out of memory; no I/O beyond stat(2). Every source
	 * is allocated before any loads, so that what it notes now (the files'
	 * signatures) predates what the others write.
	 */
	struct fg_ident_source *(*alloc)(struct fg_ident *id);
	/* Acquires its part of the material; fails with @err set. */
	int (*load)(struct fg_ident_source *s, const struct fg_ident_start *st, struct fg_err *err);
	/* About every two seconds, attached or not: looks at what it watches. */
	void (*poll)(struct fg_ident_source *s);
	/* About every second once attached: starts the jobs that are due. */
	void (*tick)(struct fg_ident_source *s, uint64_t now_ms);
	/* A finished job of one of @job_kinds that this identity asked for (not freed). */
	void (*job_done)(struct fg_ident_source *s, struct fg_job *j);
	/* Asks for a fresh copy at the next tick (after a renewal, say). */
	void (*refresh)(struct fg_ident_source *s);
	/* Drops what the state holds besides itself, before the core frees it (may be NULL). */
	void (*release)(struct fg_ident_source *s);
};

/* The head of each source's state (its first member); the state is one allocation. */
struct fg_ident_source {
	const struct fg_ident_source_ops *ops;
	struct fg_ident *id; /* the identity it feeds (not owned) */
};

/* identity.ca, the files, identity.trust.federation: at most one of each. */
#define FG_IDENT_MAX_SOURCES 3

#define FG_IDENT_TRUST_FILE_SLOT(cfg) ((cfg)->n_federation)

struct fg_ident {
	const struct fg_config *cfg;
	unsigned long gen;		    /* the owner of the jobs this identity asks for */
	struct fg_jobq *id_jobs, *fed_jobs; /* NULL until attached */
	struct fg_material id;		    /* leaf, chain, key; roots stay NULL */
	/*
	 * The bundles, cfg->n_federation + 1 slots: one per federation source,
	 * then the trust file (FG_IDENT_TRUST_FILE_SLOT). NULL: none yet.
	 */
	STACK_OF(X509) * *bundles;
	/*
	 * Per slot of @bundles, the wall clock (ms) when its source last gave it
	 * as good (fetched, changed or not; a file read): its age in `fedgate
	 * status`. 0: never.
	 */
	int64_t *bundle_ms;
	/* Per slot: its bundle came from identity.trust.cache and no answer since. */
	unsigned char *bundle_cached;
	/* Moves on with each change of the bundle new handshakes trust (revalidate.c). */
	unsigned long trust_gen;
	/*
	 * After a reload that names only new federation sources: the previous
	 * identity's bundle, trusted until one of them answers (never empty).
	 */
	STACK_OF(X509) * interim_roots;
	struct fg_tls tls;
	struct fg_ident_source *src[FG_IDENT_MAX_SOURCES];
	size_t n_src;
	uint64_t next_poll_ms;
};

#endif
