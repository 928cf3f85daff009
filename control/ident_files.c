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
#include <sys/stat.h>
#include <time.h>

#include "control/ca/pki.h"
#include "control/ident_source.h"
#include "control/own_cert.h"
#include "control/tls.h"
#include "fedgate/log.h"

/* What stat(2) says about a file: a change in any field means "look again". */
struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int missing;
};

enum { F_CERT, F_KEY, F_TRUST, F_N };

struct ident_files {
	struct fg_ident_source base; /* first: the core's handle */
	/* applied = loaded; seen = the last poll; failed = last refused */
	struct file_sig applied[F_N], seen[F_N], failed[F_N];
	struct file_sig incomplete_trust; /* seen ending inside a PEM block once */
};

static struct ident_files *files_of(struct fg_ident_source *s)
{
	return (struct ident_files *)s;
}

static void sig_of(const char *path, struct file_sig *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (!path || stat(path, &st)) {
		s->missing = 1;
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
	s->ctime = st.st_ctim;
}

static int sig_eq(const struct file_sig *a, const struct file_sig *b)
{
	return a->missing == b->missing && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
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
 * shows that it is incomplete. An unreadable file counts as complete (the
 * loader names the problem).
 */
static int pem_complete(const char *path)
{
	struct fg_err err = {0};
	char *data = NULL, *line;
	size_t len = 0;
	int open = 0, complete = 1;

	if (fg_pki_read_file(path, 16 << 20, &data, &len, &err))
		return 1;
	for (line = data; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (!strncmp(line, "-----BEGIN ", 11)) {
			if (open)
				complete = 0;
			open = 1;
		} else if (!strncmp(line, "-----END ", 9)) {
			open = 0;
		}
	}
	free(data);
	return complete && !open;
}

/* Signatures first: a change while loading (or enrolling) is seen by the next poll. */
static struct fg_ident_source *files_alloc(struct fg_ident *id)
{
	struct fg_ident_source *s =
	    fg_ident_source_new(id, &fg_ident_files_ops, sizeof(struct ident_files));
	struct ident_files *f = files_of(s);

	for (int i = 0; s && i < F_N; i++) {
		sig_of(watched(id->cfg, i), &f->applied[i]);
		f->seen[i] = f->applied[i];
	}
	return s;
}

/* The identity from the files (unless identity.ca provides it), then the trust file if any. */
static int files_load(struct fg_ident_source *s, const struct fg_ident_start *st,
		      struct fg_err *err)
{
	struct fg_ident *id = s->id;
	const struct fg_config *cfg = id->cfg;
	struct fg_material m = {0};
	int ret;

	(void)st;
	if (!cfg->ca) {
		ret = fg_ident_load_identity_files(id, &m, err);
		if (ret)
			return ret;
		fg_ident_take_identity(id, &m);
	}
	if (!cfg->trust_file)
		return 0;
	ret = fg_material_load_trust(&m, cfg, cfg->trust_file, NULL, err);
	if (ret)
		goto free_material;
	id->bundles[FG_IDENT_TRUST_FILE_SLOT(cfg)] = fg_ident_take_roots(&m);
free_material:
	fg_material_free(&m);
	return ret;
}

static void reload_identity(struct ident_files *f, const struct file_sig *now)
{
	struct fg_ident *id = f->base.id;
	struct fg_err err = {0};
	struct fg_material m = {0};
	char desc[512];

	if (sig_eq(&now[F_CERT], &f->failed[F_CERT]) && sig_eq(&now[F_KEY], &f->failed[F_KEY]))
		return; /* refused already; wait for the next change */
	if (fg_ident_load_identity_files(id, &m, &err)) {
		f->failed[F_CERT] = now[F_CERT];
		f->failed[F_KEY] = now[F_KEY];
		fg_warn("identity files changed but are not usable: %s; keeping the current "
			"certificate",
			err.msg);
		return;
	}
	fg_ident_take_identity(id, &m);
	f->applied[F_CERT] = now[F_CERT];
	f->applied[F_KEY] = now[F_KEY];
	fg_cert_describe(id->id.leaf, desc, sizeof(desc));
	fg_info("identity reloaded from %s: %s", id->cfg->cert_file, desc);
	/* Taken all the same (the one before may be no better): the operator must know. */
	if (fg_own_cert_state(id->id.leaf, (int64_t)time(NULL), desc, sizeof(desc)))
		fg_warn("the certificate reloaded from %s %s", id->cfg->cert_file, desc);
	fg_ident_rebuild_or_warn(id, "identity reload");
}

static void reload_trust(struct ident_files *f, const struct file_sig *now)
{
	struct fg_ident *id = f->base.id;
	const char *path = id->cfg->trust_file;
	STACK_OF(X509) **slot = &id->bundles[FG_IDENT_TRUST_FILE_SLOT(id->cfg)];
	struct fg_err err = {0};
	struct fg_material m = {0};
	char desc[512];

	if (!pem_complete(path) && !sig_eq(&now[F_TRUST], &f->incomplete_trust)) {
		/* Give a writer one more poll to finish the block. */
		f->incomplete_trust = now[F_TRUST];
		return;
	}
	if (!pem_complete(path)) {
		f->failed[F_TRUST] = now[F_TRUST];
		fg_warn("trust bundle changed but is not usable: %s ends inside a PEM "
			"block; keeping the current bundle",
			path);
	} else if (fg_material_load_trust(&m, id->cfg, path, NULL, &err) ||
		   fg_ident_swap_roots(id, slot, fg_ident_take_roots(&m), &err)) {
		f->failed[F_TRUST] = now[F_TRUST];
		fg_warn("trust bundle changed but is not usable: %s; keeping the current "
			"bundle",
			err.msg[0] ? err.msg : "out of memory");
	} else {
		f->applied[F_TRUST] = now[F_TRUST];
		fg_ident_roots_describe(*slot, desc, sizeof(desc));
		fg_info("trust bundle reloaded from %s: %d root(s): %s", path, sk_X509_num(*slot),
			desc);
	}
	fg_material_free(&m);
}

static void files_poll(struct fg_ident_source *s)
{
	struct ident_files *f = files_of(s);
	const struct fg_config *cfg = s->id->cfg;
	struct file_sig now[F_N];
	int changed_id = 0, changed_trust = 0, settled = 1;

	for (int i = 0; i < F_N; i++) {
		sig_of(watched(cfg, i), &now[i]);
		if (!watched(cfg, i))
			continue;
		if (!sig_eq(&now[i], &f->applied[i]))
			*(i == F_TRUST ? &changed_trust : &changed_id) = 1;
		/* A file still being written changes between two polls: wait until it settles. */
		if (!sig_eq(&now[i], &f->seen[i]))
			settled = 0;
		f->seen[i] = now[i];
	}
	if (cfg->ca)
		changed_id = 0; /* the gateway writes these itself */
	if (!settled)
		return;
	if (changed_id)
		reload_identity(f, now);
	if (changed_trust && !sig_eq(&now[F_TRUST], &f->failed[F_TRUST]))
		reload_trust(f, now);
}

const struct fg_ident_source_ops fg_ident_files_ops = {
	.alloc = files_alloc,
	.load = files_load,
	.poll = files_poll,
};
