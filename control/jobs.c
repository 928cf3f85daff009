// SPDX-License-Identifier: MIT
/*
 * Work the control loop must not wait for, run by one helper thread per
 * queue: CA requests, and a reload's config load (its files may hang on a
 * mount). Results come back by eventfd.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "control/ca/client.h"
#include "control/config.h"
#include "control/jobs.h"

/* Per network step; a CA that is down answers at once (connection refused). */
#define JOB_TIMEOUT_MS 5000
/* How long fg_jobq_free() waits for a CA request in flight. */
#define EXIT_GRACE_MS 500

static EVP_PKEY *key_from_pem(const char *pem)
{
	BIO *in = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = in ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;

	BIO_free(in);
	return key;
}

/* The config at j->url, into j->out_config; its file checks are bounded (file_poll.h). */
static void load_config(struct fg_job *j)
{
	j->out_config = calloc(1, sizeof(*j->out_config));
	if (!j->out_config) {
		j->ret = fg_err_set(&j->err, -ENOMEM, "out of memory");
		return;
	}
	j->ret = fg_config_load(j->url, j->out_config, &j->err);
	if (j->ret) {
		free(j->out_config);
		j->out_config = NULL;
	}
}

void fg_job_run(struct fg_job *j)
{
	struct fg_ca_client c;
	EVP_PKEY *key = NULL;
	char *new_key = NULL;

	memset(&j->err, 0, sizeof(j->err));
	if (j->kind == FG_JOB_CONFIG) {
		load_config(j);
		return;
	}
	j->ret = fg_ca_client_init(&c, j->url, j->root, &j->err);
	if (j->ret)
		return;
	c.timeout_ms = j->timeout_ms > 0 ? j->timeout_ms : JOB_TIMEOUT_MS;
	switch (j->kind) {
	case FG_JOB_ENROLL:
		j->ret = fg_ca_enroll(&c, j->subject, (const char *const *)j->sans, j->n_sans,
				      j->token, NULL, NULL, &new_key, &j->out_chain, &j->err);
		if (!j->ret) {
			if (j->key_pem) {
				OPENSSL_cleanse(j->key_pem, strlen(j->key_pem));
				free(j->key_pem);
			}
			j->key_pem = new_key;
		}
		break;
	case FG_JOB_RENEW:
		key = key_from_pem(j->key_pem);
		if (!key)
			j->ret = fg_err_set(&j->err, -EINVAL, "the current key does not parse");
		else
			j->ret = fg_ca_renew(&c, j->chain_pem, key, &j->out_chain, &j->err);
		EVP_PKEY_free(key);
		break;
	case FG_JOB_FEDERATION:
		j->ret = fg_ca_federation(&c, &j->out_bundle, &j->err);
		break;
	case FG_JOB_CONFIG:
		break;
	}
	fg_ca_client_exit(&c);
}

void fg_job_free(struct fg_job *j)
{
	if (!j)
		return;
	free(j->url);
	free(j->root);
	free(j->subject);
	for (size_t i = 0; i < j->n_sans; i++)
		free(j->sans[i]);
	free(j->sans);
	if (j->token) {
		OPENSSL_cleanse(j->token, strlen(j->token));
		free(j->token);
	}
	free(j->chain_pem);
	if (j->key_pem) {
		OPENSSL_cleanse(j->key_pem, strlen(j->key_pem));
		free(j->key_pem);
	}
	free(j->out_chain);
	free(j->out_bundle);
	if (j->out_config) {
		fg_config_free(j->out_config);
		free(j->out_config);
	}
	free(j);
}

static void free_list(struct fg_job *j)
{
	while (j) {
		struct fg_job *next = j->next;

		fg_job_free(j);
		j = next;
	}
}

static void worker_destroy(struct fg_jobq *w)
{
	free_list(w->todo);
	free_list(w->done);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	close(w->efd);
	free(w);
}

static void *worker_main(void *arg)
{
	struct fg_jobq *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct fg_job *j;

		while (!w->stop && !w->todo)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		j = w->todo;
		w->todo = j->next;
		pthread_mutex_unlock(&w->lock);
		fg_job_run(j);
		pthread_mutex_lock(&w->lock);
		j->next = w->done;
		w->done = j;
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow at one write per job. */
		}
	}
	w->exited = 1;
	if (w->orphaned) {
		/* Nobody waits for us any more: the worker is ours to free. */
		pthread_mutex_unlock(&w->lock);
		worker_destroy(w);
		return NULL;
	}
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int fg_jobq_new(struct fg_jobq **out)
{
	struct fg_jobq *w;
	sigset_t all, old;
	int ret;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		ret = -errno;
		goto free_worker;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	/* Signals stay with the control loop's signalfd: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		goto destroy_sync;
	*out = w;
	return 0;
destroy_sync:
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	close(w->efd);
free_worker:
	free(w);
	return ret;
}

void fg_jobq_free(struct fg_jobq *w)
{
	struct timespec until;

	if (!w)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)EXIT_GRACE_MS * 1000000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->cond);
	while (!w->exited)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT)
			break;
	if (!w->exited) {
		/* A CA request still runs: its thread frees the worker when it returns. */
		w->orphaned = 1;
		pthread_mutex_unlock(&w->lock);
		pthread_detach(w->thread);
		return;
	}
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	worker_destroy(w);
}

int fg_jobq_fd(struct fg_jobq *w)
{
	return w->efd;
}

void fg_jobq_submit(struct fg_jobq *w, struct fg_job *j)
{
	struct fg_job **tail;

	j->next = NULL;
	pthread_mutex_lock(&w->lock);
	for (tail = &w->todo; *tail; tail = &(*tail)->next)
		;
	*tail = j;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

struct fg_job *fg_jobq_take(struct fg_jobq *w)
{
	struct fg_job *j;
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	j = w->done;
	if (j)
		w->done = j->next;
	else if (read(w->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: already clear. */
	}
	pthread_mutex_unlock(&w->lock);
	return j;
}
