// SPDX-License-Identifier: MIT
/* EC public keys of certificates decoded without OpenSSL 3.0's decoders: see ec_legacy.h. */
#include <errno.h>
#include <pthread.h>

/* ENGINE and EVP_PKEY_METHOD: deprecated in 3.0, and the only hook x509_pubkey_decode has. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/engine.h>
#include <openssl/evp.h>

#include "control/ec_legacy.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ENGINE *engine;		 /* made once, kept to the end */
static EVP_PKEY_METHOD *ec_meth; /* a copy of the built-in EC method */
static int registered;

static int pmeths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids, int nid)
{
	static const int ours[] = {EVP_PKEY_EC};

	(void)e;
	if (!pmeth) {
		*nids = ours;
		return 1;
	}
	*pmeth = nid == EVP_PKEY_EC ? ec_meth : NULL;
	return *pmeth != NULL;
}

/* The engine and its method, once. 0 or -ENOMEM. */
static int make(void)
{
	const EVP_PKEY_METHOD *builtin = EVP_PKEY_meth_find(EVP_PKEY_EC);
	EVP_PKEY_METHOD *m;
	ENGINE *e;

	if (engine)
		return 0;
	if (!builtin)
		return -ENOMEM;
	m = EVP_PKEY_meth_new(EVP_PKEY_EC, 0);
	if (!m)
		return -ENOMEM;
	EVP_PKEY_meth_copy(m, builtin);
	e = ENGINE_new();
	if (!e)
		goto free_meth;
	ec_meth = m;
	if (!ENGINE_set_id(e, "fedgate-ec") ||
	    !ENGINE_set_name(e, "fedgate: EC keys of certificates decoded without decoders") ||
	    !ENGINE_set_pkey_meths(e, pmeths))
		goto free_engine;
	engine = e;
	return 0;
free_engine:
	ENGINE_free(e);
	ec_meth = NULL;
free_meth:
	EVP_PKEY_meth_free(m);
	return -ENOMEM;
}

int fg_ec_legacy_set(int on)
{
	int ret = 0;

	pthread_mutex_lock(&lock);
	if (on && !registered) {
		ret = make();
		if (!ret && !ENGINE_register_pkey_meths(engine))
			ret = -ENOMEM;
		registered = !ret;
	} else if (!on && registered) {
		ENGINE_unregister_pkey_meths(engine);
		registered = 0;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

int fg_ec_legacy_on(void)
{
	int on;

	pthread_mutex_lock(&lock);
	on = registered;
	pthread_mutex_unlock(&lock);
	return on;
}
