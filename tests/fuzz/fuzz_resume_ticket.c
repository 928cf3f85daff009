// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for control/resume_ticket.c: arbitrary bytes as the data
 * of a session ticket that decrypted. A decoded one holds a time within
 * 2^40, and encodes back to the same bytes (DER is kept as it came).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/resume_ticket.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *s = NULL, *v = NULL;
	uint8_t *out;
	int64_t at;
	size_t n;

	if (fg_resume_ticket_decode(data, size, &at, &s, &v))
		return 0;
	if (at < 0 || at >= (int64_t)1 << 40)
		abort();
	/* The encoder leaves the verified chain's first out: put a stand-in there. */
	if (sk_X509_num(v) > 0 &&
	    (!X509_up_ref(sk_X509_value(v, 0)) || !sk_X509_insert(v, sk_X509_value(v, 0), 0)))
		abort();
	out = malloc(size + 1);
	if (!out)
		abort();
	n = fg_resume_ticket_encode(out, size + 1, at, s, v);
	if (n != size || memcmp(out, data, size))
		abort();
	free(out);
	sk_X509_pop_free(s, X509_free);
	sk_X509_pop_free(v, X509_free);
	return 0;
}
