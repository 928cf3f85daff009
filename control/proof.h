/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_PROOF_H
#define FEDGATE_CONTROL_PROOF_H

/*
 * What an established tunnel's peer showed, kept while the tunnel runs so
 * that a change of trust or rules can check it again (control/revalidate.c):
 * its leaf and the chain it sent (references), when, the name it had to
 * hold, and the destination a transparent tunnel carries.
 */
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

struct gw_proof_chain;

struct gw_proof {
	/* shared with other tunnels whose peers sent the same certificates (proof.c): read only */
	X509 *leaf;
	/* what the peer sent besides its leaf, as a new handshake would have it: no more */
	STACK_OF(X509) * sent;
	struct gw_proof_chain *chain; /* what holds @leaf and @sent */
	int64_t at;	   /* wall clock (s) of the handshake: validity is judged as of then */
	char *expect_name; /* originate: the name the peer had to hold; NULL: none */
	struct sockaddr_storage dst; /* transparent tunnels' destination; ss_family 0: none */
	unsigned long epoch; /* the rules it was last found to pass (struct gw reval_epoch) */
};

/*
 * The proof of @ssl's verified peer (the handshake is done), with
 * @expect_name and @dst (both may be NULL) copied, accepted under the rules
 * of @epoch. @sent: the chain the peer sent (a resumed session's, which the
 * SSL does not hold; references taken), NULL: the SSL's. 0 with *@out, or
 * -EACCES (no verified chain) / -ENOMEM.
 */
int gw_proof_new(struct gw_proof **out, SSL *ssl, STACK_OF(X509) * sent, const char *expect_name,
		 const struct sockaddr_storage *dst, unsigned long epoch);

/* NULL is fine. */
void gw_proof_free(struct gw_proof *p);

#endif
