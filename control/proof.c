// SPDX-License-Identifier: MIT
/* An established tunnel's proof of its peer: see proof.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/proof.h"

int gw_proof_new(struct gw_proof **out, SSL *ssl, const char *expect_name,
		 const struct sockaddr_storage *dst, unsigned long epoch)
{
	STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
	struct gw_proof *p;

	*out = NULL;
	if (!chain || sk_X509_num(chain) < 1 || SSL_get_verify_result(ssl) != X509_V_OK)
		return -EACCES;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->chain = X509_chain_up_ref(chain);
	if (expect_name)
		p->expect_name = strdup(expect_name);
	if (!p->chain || (expect_name && !p->expect_name)) {
		gw_proof_free(p);
		return -ENOMEM;
	}
	if (dst)
		p->dst = *dst;
	p->epoch = epoch;
	*out = p;
	return 0;
}

void gw_proof_free(struct gw_proof *p)
{
	if (!p)
		return;
	sk_X509_pop_free(p->chain, X509_free);
	free(p->expect_name);
	free(p);
}
