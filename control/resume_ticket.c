// SPDX-License-Identifier: MIT
/* What a fedgate session ticket carries besides the session: see resume_ticket.h. */
#include <errno.h>
#include <string.h>
#include <openssl/x509.h>

#include "control/resume_ticket.h"

#define MAGIC0 'F'
#define MAGIC1 'G'
#define VERSION 1
#define HDR 12 /* magic (2), version, usable, auth_at (8) */

void fg_resume_ticket_dead(uint8_t out[FG_RESUME_TICKET_DEAD_LEN])
{
	memset(out, 0, FG_RESUME_TICKET_DEAD_LEN);
	out[0] = MAGIC0;
	out[1] = MAGIC1;
	out[2] = VERSION;
}

static void put_u64(uint8_t *p, int64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
}

static int64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* Appends @sk after its first @skip as a count and each certificate's 2-byte length and DER. 0 when
 * it does not fit. */
static size_t put_list(uint8_t *out, size_t len, size_t used, STACK_OF(X509) * sk, int skip)
{
	int n = sk ? sk_X509_num(sk) : 0;

	if (n - skip > 255 || used + 1 > len)
		return 0;
	out[used++] = (uint8_t)(n > skip ? n - skip : 0);
	for (int i = skip; i < n; i++) {
		X509 *x = sk_X509_value(sk, i);
		int dl = i2d_X509(x, NULL);
		unsigned char *p = out + used + 2;

		if (dl <= 0 || dl > 0xffff || used + 2 + (size_t)dl > len)
			return 0;
		out[used] = (uint8_t)(dl >> 8);
		out[used + 1] = (uint8_t)dl;
		if (i2d_X509(x, &p) != dl)
			return 0;
		used += 2 + (size_t)dl;
	}
	return used;
}

size_t fg_resume_ticket_encode(uint8_t *out, size_t len, int64_t auth_at, STACK_OF(X509) * sent,
			       STACK_OF(X509) * verified)
{
	size_t used;

	if (len < HDR)
		return 0;
	out[0] = MAGIC0;
	out[1] = MAGIC1;
	out[2] = VERSION;
	out[3] = 1;
	put_u64(out + 4, auth_at);
	used = put_list(out, len, HDR, sent, 0);
	return used ? put_list(out, len, used, verified, 1) : 0;
}

/* Reads a list put_list() wrote at *@off into a new stack. NULL when malformed. */
static STACK_OF(X509) * get_list(const uint8_t *in, size_t len, size_t *off)
{
	STACK_OF(X509) * sk;
	int n;

	if (*off + 1 > len)
		return NULL;
	n = in[(*off)++];
	sk = sk_X509_new_null();
	for (int i = 0; sk && i < n; i++) {
		const unsigned char *p;
		size_t dl;
		X509 *x;

		if (*off + 2 > len)
			goto fail;
		dl = (size_t)in[*off] << 8 | in[*off + 1];
		*off += 2;
		if (dl == 0 || *off + dl > len)
			goto fail;
		p = in + *off;
		x = d2i_X509(NULL, &p, (long)dl);
		if (!x || p != in + *off + dl || !sk_X509_push(sk, x)) {
			X509_free(x);
			goto fail;
		}
		*off += dl;
	}
	return sk;
fail:
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

int fg_resume_ticket_decode(const uint8_t *in, size_t len, int64_t *auth_at, STACK_OF(X509) * *sent,
			    STACK_OF(X509) * *verified)
{
	STACK_OF(X509) *s = NULL, *v = NULL;
	size_t off = HDR;
	int64_t at;

	if (len < HDR || in[0] != MAGIC0 || in[1] != MAGIC1 || in[2] != VERSION || in[3] != 1)
		return -EINVAL;
	at = get_u64(in + 4);
	s = get_list(in, len, &off);
	v = s ? get_list(in, len, &off) : NULL;
	/* Whole seconds within 2^40: a time past that is no time we wrote. */
	if (!v || off != len || at < 0 || at >= (int64_t)1 << 40) {
		sk_X509_pop_free(s, X509_free);
		sk_X509_pop_free(v, X509_free);
		return -EINVAL;
	}
	*auth_at = at;
	*sent = s;
	*verified = v;
	return 0;
}
