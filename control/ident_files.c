// SPDX-License-Identifier: MIT
/*
 * The files source: identity.cert and identity.key (unless identity.ca
 * writes them) and identity.trust as a file, loaded at start and reloaded
 * when they change and have settled. A change that cannot be used is logged
 * once and the current identity or bundle stays.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/config.h"
#include "control/file_poll.h"
#include "control/ident_source.h"
#include "control/own_cert.h"
#include "control/tls.h"
#include "fedgate/clock.h"
#include "fedgate/log.h"

enum { F_CERT, F_KEY, F_TRUST, F_N };

/* How long a look at the files may take before the loop says so (and start-up gives up). */
#define POLL_DEADLINE_MS FG_FILE_DEADLINE_MS
/* How long a poll waits on its own look, so that a healthy file system is seen at once. */
#define POLL_WAIT_MS 50

struct ident_files {
	struct fg_ident_source base; /* first: the core's handle */
	/* applied = loaded; seen = the last poll; failed = last refused */
	struct fg_file_sig applied[F_N], seen[F_N], failed[F_N];
	struct fg_file_sig incomplete_trust; /* seen ending inside a PEM block once */
	struct fg_file_poll *poll;	     /* the look in flight, or NULL */
	int warned;			     /* the one warning for @poll was logged */
};

static struct ident_files *files_of(struct fg_ident_source *s)
{
	return (struct ident_files *)s;
}

static const char *watched(const struct fg_config *cfg, int which)
{
	switch (which) {
	case F_CERT:
		return cfg->cert_file;
	case F_KEY:
		return cfg->key_file;
	default:
		return cfg->trust_file;
	}
}

/*
 * A trust file still being written can stop between two PEM blocks, and
 * every block before the cut parses: only an open BEGIN without its END
 * shows that it is incomplete. No text (unreadable) counts as complete (the
 * loader names the problem).
 */
static int pem_complete(const char *data)
{
	int open = 0, complete = 1;

	for (const char *line = data; line && *line;
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (!strncmp(line, "-----BEGIN ", 11)) {
			if (open)
				complete = 0;
			open = 1;
		} else if (!strncmp(line, "-----END ", 9)) {
			open = 0;
		}
	}
	return complete && !open;
}

static int start_poll(struct ident_files *f, const struct fg_config *cfg, int read_all)
{
	const char *paths[F_N];

	/* Beside identity.ca the gateway writes cert and key itself: only the trust file. */
	for (int i = 0; i < F_N; i++)
		paths[i] = cfg->ca && i != F_TRUST ? NULL : watched(cfg, i);
	f->warned = 0;
	return fg_file_poll_start(&f->poll, paths, F_N, read_all ? NULL : f->applied);
}

/* No I/O here: the files are looked at, with a deadline, by files_load. */
static struct fg_ident_source *files_alloc(struct fg_ident *id)
{
	return fg_ident_source_new(id, &fg_ident_files_ops, sizeof(struct ident_files));
}

static void files_release(struct fg_ident_source *s)
{
	struct ident_files *f = files_of(s);

	/* Never waited on: a look stuck in a hung mount frees itself when it returns. */
	fg_file_poll_free(f->poll);
	f->poll = NULL;
}

/*
 * Signatures first, then the texts, on a thread given POLL_DEADLINE_MS: a
 * hung mount under a path fails start-up (exit 2) naming it instead of
 * hanging check or run. A change while loading (or enrolling) is seen by
 * the next poll.
 */
static int look_at_start(struct ident_files *f, const struct fg_config *cfg, struct fg_err *err)
{
	static const char *const jpaths[F_N] = {"$.identity.cert", "$.identity.key",
						"$.identity.trust"};
	int ret = start_poll(f, cfg, 1);

	if (ret)
		return ret;
	if (!fg_file_poll_wait(f->poll, POLL_DEADLINE_MS)) {
		const char *path = fg_file_poll_path(f->poll);
		int which = F_TRUST;

		for (int i = 0; i < F_N; i++)
			if (watched(cfg, i) && !strcmp(watched(cfg, i), path))
				which = i;
		return fg_conf_fail(err, cfg->path, jpaths[which],
				    "%s: not readable within %d s (a hung NFS or FUSE mount?)",
				    path, POLL_DEADLINE_MS / 1000);
	}
	for (int i = 0; i < F_N; i++) {
		f->applied[i] = *fg_file_poll_sig(f->poll, i);
		f->seen[i] = f->applied[i];
	}
	return 0;
}

/* The identity from the files (unless identity.ca provides it), then the trust file if any. */
static int files_load(struct fg_ident_source *s, const struct fg_ident_start *st,
		      struct fg_err *err)
{
	struct ident_files *f = files_of(s);
	struct fg_ident *id = s->id;
	const struct fg_config *cfg = id->cfg;
	struct fg_material m = {0};
	int ret;

	(void)st;
	ret = look_at_start(f, cfg, err);
	if (ret)
		goto free_poll;
	if (!cfg->ca) {
		/* No text (the read failed): the loader reads again to name why. */
		ret = fg_material_load_identity(&m, cfg, cfg->cert_file, cfg->key_file,
						fg_file_poll_text(f->poll, F_CERT),
						fg_file_poll_text(f->poll, F_KEY), err);
		if (ret)
			goto free_material;
		fg_ident_take_identity(id, &m);
	}
	if (!cfg->trust_file)
		goto free_poll;
	ret = fg_material_load_trust(&m, cfg, cfg->trust_file, fg_file_poll_text(f->poll, F_TRUST),
				     err);
	if (ret)
		goto free_material;
	id->bundles[FG_IDENT_TRUST_FILE_SLOT(cfg)] = fg_ident_take_roots(&m);
	id->bundle_ms[FG_IDENT_TRUST_FILE_SLOT(cfg)] = fg_wall_ms();
free_material:
	fg_material_free(&m);
free_poll:
	files_release(s);
	return ret;
}

/* From the texts the look read (@lk); @now its signatures. */
static void reload_identity(struct ident_files *f, struct fg_file_poll *lk,
			    const struct fg_file_sig *now)
{
	struct fg_ident *id = f->base.id;
	const struct fg_config *cfg = id->cfg;
	struct fg_err err = {0};
	struct fg_material m = {0};
	char desc[512];

	if (fg_file_sig_eq(&now[F_CERT], &f->failed[F_CERT]) &&
	    fg_file_sig_eq(&now[F_KEY], &f->failed[F_KEY]))
		return; /* refused already; wait for the next change */
	/* No text: the read failed a moment ago, and the loader reads again to name why. */
	if (fg_material_load_identity(&m, cfg, cfg->cert_file, cfg->key_file,
				      fg_file_poll_text(lk, F_CERT), fg_file_poll_text(lk, F_KEY),
				      &err)) {
		fg_material_free(&m);
		f->failed[F_CERT] = now[F_CERT];
		f->failed[F_KEY] = now[F_KEY];
		fg_warn("identity files changed but are not usable: %s; keeping the current "
			"certificate",
			err.msg);
		return;
	}
	fg_ident_take_identity(id, &m);
	fg_material_free(&m);
	f->applied[F_CERT] = now[F_CERT];
	f->applied[F_KEY] = now[F_KEY];
	fg_cert_describe(id->id.leaf, desc, sizeof(desc));
	fg_info("identity reloaded from %s: %s", cfg->cert_file, desc);
	/* Taken all the same (the one before may be no better): the operator must know. */
	if (fg_own_cert_state(id->id.leaf, (int64_t)time(NULL), desc, sizeof(desc)))
		fg_warn("the certificate reloaded from %s %s", cfg->cert_file, desc);
	fg_ident_rebuild_or_warn(id, "identity reload");
}

static void reload_trust(struct ident_files *f, struct fg_file_poll *lk,
			 const struct fg_file_sig *now)
{
	struct fg_ident *id = f->base.id;
	const char *path = id->cfg->trust_file;
	const char *text = fg_file_poll_text(lk, F_TRUST);
	STACK_OF(X509) **slot = &id->bundles[FG_IDENT_TRUST_FILE_SLOT(id->cfg)];
	struct fg_err err = {0};
	struct fg_material m = {0};
	char desc[512];

	if (!pem_complete(text) && !fg_file_sig_eq(&now[F_TRUST], &f->incomplete_trust)) {
		/* Give a writer one more poll to finish the block. */
		f->incomplete_trust = now[F_TRUST];
		return;
	}
	if (!pem_complete(text)) {
		f->failed[F_TRUST] = now[F_TRUST];
		fg_warn("trust bundle changed but is not usable: %s ends inside a PEM "
			"block; keeping the current bundle",
			path);
	} else if (fg_material_load_trust(&m, id->cfg, path, text, &err) ||
		   fg_ident_swap_roots(id, slot, fg_ident_take_roots(&m), &err)) {
		f->failed[F_TRUST] = now[F_TRUST];
		fg_warn("trust bundle changed but is not usable: %s; keeping the current "
			"bundle",
			err.msg[0] ? err.msg : "out of memory");
	} else {
		f->applied[F_TRUST] = now[F_TRUST];
		id->bundle_ms[FG_IDENT_TRUST_FILE_SLOT(id->cfg)] = fg_wall_ms();
		fg_ident_roots_describe(*slot, desc, sizeof(desc));
		fg_info("trust bundle reloaded from %s: %d root(s): %s", path, sk_X509_num(*slot),
			desc);
	}
	fg_material_free(&m);
}

/* What one finished look saw: reloads what changed and has settled. */
static void apply_look(struct ident_files *f, struct fg_file_poll *lk)
{
	const struct fg_config *cfg = f->base.id->cfg;
	struct fg_file_sig now[F_N];
	int changed_id = 0, changed_trust = 0, settled = 1;

	for (int i = 0; i < F_N; i++) {
		now[i] = *fg_file_poll_sig(lk, i);
		if (!watched(cfg, i))
			continue;
		if (!fg_file_sig_eq(&now[i], &f->applied[i]))
			*(i == F_TRUST ? &changed_trust : &changed_id) = 1;
		/* A file still being written changes between two polls: wait until it settles. */
		if (!fg_file_sig_eq(&now[i], &f->seen[i]))
			settled = 0;
		f->seen[i] = now[i];
	}
	if (cfg->ca)
		changed_id = 0; /* the gateway writes these itself */
	if (!settled)
		return;
	if (changed_id)
		reload_identity(f, lk, now);
	if (changed_trust && !fg_file_sig_eq(&now[F_TRUST], &f->failed[F_TRUST]))
		reload_trust(f, lk, now);
}

/*
 * The loop's side of a look: applies the last one if it has come back,
 * then starts the next and gives it POLL_WAIT_MS. One still out after
 * POLL_DEADLINE_MS is named once, and no other starts until it returns.
 */
static void files_poll(struct fg_ident_source *s)
{
	struct ident_files *f = files_of(s);
	const struct fg_config *cfg = s->id->cfg;

	if (f->poll && !fg_file_poll_wait(f->poll, 0)) {
		if (!f->warned &&
		    fg_mono_ms() - fg_file_poll_started_ms(f->poll) >= POLL_DEADLINE_MS) {
			f->warned = 1;
			fg_warn("identity: polling %s has not returned for %d s (a hung NFS or "
				"FUSE mount?); still serving the current identity",
				fg_file_poll_path(f->poll), POLL_DEADLINE_MS / 1000);
		}
		return;
	}
	if (f->poll) {
		if (f->warned)
			fg_info("identity: polling the identity files has returned");
		apply_look(f, f->poll);
		files_release(s);
		return;
	}
	if (start_poll(f, cfg, 0)) {
		fg_warn("identity: cannot start polling the identity files: out of resources");
		return;
	}
	if (!fg_file_poll_wait(f->poll, POLL_WAIT_MS))
		return;
	apply_look(f, f->poll);
	files_release(s);
}

const struct fg_ident_source_ops fg_ident_files_ops = {
    .alloc = files_alloc,
    .load = files_load,
    .poll = files_poll,
    .release = files_release,
};
