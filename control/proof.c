// SPDX-License-Identifier: MIT
/* An established tunnel's proof of its peer: see proof.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/proof.h"

int gw_proof_new(struct gw_proof **out, SSL *ssl, STACK_OF(X509) * sent, const char *expect_name,
		 const struct sockaddr_storage *dst, unsigned long epoch)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);

	if (!sent)
		sent = SSL_get_peer_cert_chain(ssl);
	struct gw_proof *p;

	*out = NULL;
	if (!leaf || SSL_get_verify_result(ssl) != X509_V_OK)
		return -EACCES;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->at = time(NULL);
	p->leaf = X509_up_ref(leaf) ? leaf : NULL;
	/* A client's list holds its leaf too (a server's does not): harmless as untrusted. */
	p->sent = sent ? X509_chain_up_ref(sent) : sk_X509_new_null();
	if (expect_name)
		p->expect_name = strdup(expect_name);
	if (!p->leaf || !p->sent || (expect_name && !p->expect_name)) {
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
	X509_free(p->leaf);
	sk_X509_pop_free(p->sent, X509_free);
	free(p->expect_name);
	free(p);
}
