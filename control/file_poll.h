/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_FILE_POLL_H
#define FEDGATE_CONTROL_FILE_POLL_H

/*
 * A look at a few files (stat(2), then their text) on a thread of its own,
 * so that a hung NFS or FUSE mount under one of them stalls that thread and
 * never the control loop. The caller waits as long as it chooses, and when
 * it gives up (teardown, a start-up deadline) the thread is left detached
 * with its own copies and frees itself when the file system answers.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum { FG_POLL_MAX_FILES = 3 };

/* How long a look at a file may take before it counts as hung (start-up gives up). */
#define FG_FILE_DEADLINE_MS 5000

struct fg_err;

/* What stat(2) says about a file: a change in any field means "look again". */
struct fg_file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int missing;
};

int fg_file_sig_eq(const struct fg_file_sig *a, const struct fg_file_sig *b);

struct fg_file_poll;

/*
 * Starts a thread that stats each of @paths[0..@n) (NULL entries are
 * skipped and read as missing) and reads the text of each present one
 * whose signature differs from @known[i] (@known NULL: every present one).
 * 0, or -errno (no thread then, *@out NULL).
 */
int fg_file_poll_start(struct fg_file_poll **out, const char *const *paths, size_t n,
		       const struct fg_file_sig *known);
/* 1 once the thread has finished (waiting at most @ms for it), else 0. */
int fg_file_poll_wait(struct fg_file_poll *p, unsigned int ms);
/* When it started (fg_mono_ms) and, while not done, the path it is on. */
uint64_t fg_file_poll_started_ms(const struct fg_file_poll *p);
const char *fg_file_poll_path(struct fg_file_poll *p);
/*
 * Once done: file @i's signature, and its text (NULL: not read, or the
 * read failed; the caller's loader then reads it itself to name why). The
 * text stays @p's, wiped when @p is freed: it may be a key.
 */
const struct fg_file_sig *fg_file_poll_sig(const struct fg_file_poll *p, size_t i);
const char *fg_file_poll_text(const struct fg_file_poll *p, size_t i);
/*
 * Whether a look at @path (stat, then its text) returns within
 * FG_FILE_DEADLINE_MS: 0 (whatever it found: the caller's own read names a
 * problem), -ETIMEDOUT with @err "PATH: not readable within 5 s (a hung NFS
 * or FUSE mount?)", or -ENOMEM (@err set too).
 */
int fg_file_reachable(const char *path, struct fg_err *err);
/* Drops the caller's hold; a thread still running frees @p itself. Accepts NULL. */
void fg_file_poll_free(struct fg_file_poll *p);

#endif
