// SPDX-License-Identifier: MIT
/* Files looked at off the control loop: see file_poll.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>

#include "control/file_poll.h"
#include "fedgate/clock.h"
#include "fedgate/err.h"
#include "fedgate/file.h"

/* Largest file read: a PEM chain, a key or a bundle of many roots (as tls.c). */
#define MAX_FILE (16 << 20)

struct fg_file_poll {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs; /* the caller's and the thread's: the last one frees */
	int done;
	size_t n, at; /* at: the file the thread is on */
	uint64_t started_ms;
	char *paths[FG_POLL_MAX_FILES];
	int have_known;
	struct fg_file_sig known[FG_POLL_MAX_FILES], sig[FG_POLL_MAX_FILES];
	char *text[FG_POLL_MAX_FILES];
	size_t len[FG_POLL_MAX_FILES];
};

int fg_file_sig_eq(const struct fg_file_sig *a, const struct fg_file_sig *b)
{
	return a->missing == b->missing && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void sig_of(const char *path, struct fg_file_sig *s)
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

static void poll_destroy(struct fg_file_poll *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (p->text[i])
			OPENSSL_cleanse(p->text[i], p->len[i]);
		free(p->text[i]);
		free(p->paths[i]);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

static void poll_unref(struct fg_file_poll *p)
{
	int last;

	pthread_mutex_lock(&p->lock);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (last)
		poll_destroy(p);
}

/* Stats every file, then reads every present one if any differs from what is known. */
static void *poll_main(void *arg)
{
	struct fg_file_poll *p = arg;
	struct fg_err err = {0};
	int changed = !p->have_known;

	for (size_t i = 0; i < 2 * p->n; i++) {
		size_t k = i % p->n;
		struct fg_file_sig s;
		char *text = NULL;
		size_t len = 0;

		if (i == p->n && !changed)
			break;
		pthread_mutex_lock(&p->lock);
		p->at = k;
		pthread_mutex_unlock(&p->lock);
		if (i < p->n) {
			sig_of(p->paths[k], &s);
			changed |= p->have_known && !fg_file_sig_eq(&s, &p->known[k]);
			pthread_mutex_lock(&p->lock);
			p->sig[k] = s;
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		if (p->sig[k].missing || fg_file_read(p->paths[k], MAX_FILE, &text, &len, &err))
			continue;
		pthread_mutex_lock(&p->lock);
		p->text[k] = text;
		p->len[k] = len;
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_lock(&p->lock);
	p->done = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	poll_unref(p);
	return NULL;
}

int fg_file_poll_start(struct fg_file_poll **out, const char *const *paths, size_t n,
		       const struct fg_file_sig *known)
{
	struct fg_file_poll *p;
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	int ret = -ENOMEM;

	*out = NULL;
	if (n > FG_POLL_MAX_FILES)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->n = n;
	p->refs = 2;
	p->started_ms = fg_mono_ms();
	for (size_t i = 0; i < n; i++)
		if (paths[i] && !(p->paths[i] = strdup(paths[i])))
			goto destroy_poll;
	if (known) {
		p->have_known = 1;
		memcpy(p->known, known, n * sizeof(*known));
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Signals stay with the control loop's signalfd: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&thread, &attr, poll_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret)
		goto destroy_poll;
	*out = p;
	return 0;
destroy_poll:
	poll_destroy(p);
	return ret;
}

int fg_file_poll_wait(struct fg_file_poll *p, unsigned int ms)
{
	struct timespec until;
	int done;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	pthread_mutex_lock(&p->lock);
	while (!p->done)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT)
			break;
	done = p->done;
	pthread_mutex_unlock(&p->lock);
	return done;
}

uint64_t fg_file_poll_started_ms(const struct fg_file_poll *p)
{
	return p->started_ms;
}

const char *fg_file_poll_path(struct fg_file_poll *p)
{
	size_t at;

	pthread_mutex_lock(&p->lock);
	at = p->at;
	pthread_mutex_unlock(&p->lock);
	return p->paths[at] ? p->paths[at] : "(none)";
}

const struct fg_file_sig *fg_file_poll_sig(const struct fg_file_poll *p, size_t i)
{
	return &p->sig[i];
}

const char *fg_file_poll_text(const struct fg_file_poll *p, size_t i)
{
	return p->text[i];
}

int fg_file_reachable(const char *path, struct fg_err *err)
{
	struct fg_file_poll *p;
	int ret = fg_file_poll_start(&p, &path, 1, NULL);

	if (ret)
		return fg_err_set(err, ret, "cannot look at %s: %s", path, strerror(-ret));
	if (!fg_file_poll_wait(p, FG_FILE_DEADLINE_MS))
		ret = fg_err_set(err, -ETIMEDOUT,
				 "%s: not readable within %d s (a hung NFS or FUSE mount?)", path,
				 FG_FILE_DEADLINE_MS / 1000);
	fg_file_poll_free(p);
	return ret;
}

void fg_file_poll_free(struct fg_file_poll *p)
{
	if (p)
		poll_unref(p);
}
