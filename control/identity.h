/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_IDENTITY_H
#define FEDGATE_IDENTITY_H

/*
 * The gateway's identity and trust over time: certificate and key from files
 * (reloaded when they change) or from a CA (enrolled, renewed at about two
 * thirds of the lifetime); the trust bundle from a file (reloaded) or from
 * CAs' /federation endpoints (refreshed). Each change that verifies builds
 * fresh TLS contexts for new handshakes; a handshake in flight keeps the
 * context it started with (its SSL holds a reference). A change that does not
 * verify is logged and the current identity and bundle stay.
 *
 * The core (identity.c) holds the material and builds the contexts; each
 * source of identity or trust is one file behind one ops table
 * (identity-t.h, ident_source.h): ident_files.c, ident_ca.c,
 * ident_federation.c; ident_setup.c chooses them for a config.
 */
struct fg_config;
struct fg_err;
struct fg_ident;
struct fg_job;
struct fg_jobq;
struct fg_tls;

/*
 * Acquires what @cfg names. At start (@old NULL) it blocks, for at most
 * about 30 s in all: loads the files; with identity.ca, enrolls (token_file)
 * unless a valid certificate and key are on disk; with federation, fetches
 * each bundle. On a reload (@old: the running identity) it never touches the
 * network: sources @old has keep their state (their bundle, or none yet),
 * new ones and an enrollment that is needed run on the job queues once
 * attached, and @old's certificate (and bundle, while no new source has
 * answered) serve meanwhile. Fails with @err set when there is no usable
 * identity or no root at all, or the bundle holds two roots with one CN
 * while rules name roots by CN. @cfg must outlive the result. With @offline
 * (fedgate check) no CA is contacted.
 */
int fg_ident_new(struct fg_ident **out, const struct fg_config *cfg, struct fg_ident *old,
		 int offline, struct fg_err *err);
void fg_ident_free(struct fg_ident *id);

/* The first notAfter among the roots new handshakes trust, Unix time; 0: none (or no memory). */
int64_t fg_ident_roots_expiry(struct fg_ident *id);

/* The contexts for new handshakes; valid until the next tick/job/free. */
struct fg_tls *fg_ident_tls(struct fg_ident *id);

/*
 * From now on enrollments and renewals run on @id_jobs, federation fetches
 * on @fed_jobs (neither owned): a slow federation source does not delay a
 * renewal.
 */
void fg_ident_attach(struct fg_ident *id, struct fg_jobq *id_jobs, struct fg_jobq *fed_jobs);

/* Called about every second: polls watched files, starts due CA jobs. */
void fg_ident_tick(struct fg_ident *id);

/* Applies a finished job (ignored if another identity asked for it); frees @j. */
void fg_ident_job_done(struct fg_ident *id, struct fg_job *j);

#endif
