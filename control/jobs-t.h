/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_JOBS_T_H
#define FEDGATE_JOBS_T_H

#include <pthread.h>
#include <stddef.h>
#include "fedgate/err-t.h"

struct fg_config;

/* CONFIG: a config file loaded for a reload (reload.c), whose files may sit on a hung mount. */
enum fg_job_kind { FG_JOB_ENROLL, FG_JOB_RENEW, FG_JOB_FEDERATION, FG_JOB_CONFIG };

struct fg_job {
	struct fg_job *next;
	enum fg_job_kind kind;
	unsigned long owner; /* who asked (the caller's generation), for stale results */
	int index;	     /* FEDERATION: which source */
	char *url, *root;    /* the CA and the root its TLS is pinned to; CONFIG: url is the path */
	char *subject;	     /* ENROLL */
	char **sans;	     /* ENROLL; none: the token's */
	size_t n_sans;
	char *token;	 /* ENROLL */
	int timeout_ms;	 /* for the whole request (connect to answer); 0: the default */
	char *chain_pem; /* RENEW: the current chain; the key goes in key_pem */
	char *key_pem;	 /* RENEW: in; ENROLL: out (the new key) */
	/* results */
	int ret;
	struct fg_err err;
	char *out_chain;  /* ENROLL, RENEW */
	char *out_bundle; /* FEDERATION */
	struct fg_config *out_config; /* CONFIG: loaded and checked (fg_config_load) */
};

struct fg_jobq {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fg_job *todo, *done; /* FIFO, LIFO */
	int efd;
	int stop;
	int exited;   /* the thread has left its loop */
	int orphaned; /* fg_jobq_free() gave up waiting: the thread frees the queue */
};

#endif
