// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the used-token store, control/ca/jti.c, in memory (no
 * file: nothing here does I/O). Each input line is read as a line of the
 * store's file (jti_parse_line()) and then spent as a token ID, with an
 * expiry and a clock taken from its first bytes. Checked against a model: an
 * ID spent before and still live is refused; an ID never spent is accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/ca/jti.c"
#include "control/ca/tokens-t.h"

#define SEEN_MAX 4096

struct seen {
	char *jti;
	int64_t exp; /* as the store keeps it: the token's exp plus the leeway */
};

/* A parsed line printed back parses to the same values. */
static void check_line(const char *p, size_t len)
{
	char id[JTI_HEX + 1], id2[JTI_HEX + 1], again[JTI_LINE_MAX];
	int64_t exp, exp2;
	int n;

	if (jti_parse_line(p, len, &exp, id))
		return;
	n = snprintf(again, sizeof(again), "%lld %s", (long long)exp, id);
	if (n <= 0 || jti_parse_line(again, (size_t)n, &exp2, id2) || exp2 != exp ||
	    strcmp(id, id2) || exp < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fg_jti_store *s = fg_ca_jti_new();
	struct seen *seen = calloc(SEEN_MAX, sizeof(*seen));
	char *text = malloc(size + 1);
	size_t n_seen = 0;
	int64_t now = 1000000;

	if (!s || !seen || !text)
		goto free_all;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *p = text, *nl; p < text + size; p = nl + 1) {
		size_t len, i;
		int64_t exp;
		int ret;

		nl = memchr(p, '\n', (size_t)(text + size - p));
		if (!nl)
			nl = text + size;
		len = (size_t)(nl - p);
		check_line(p, len);
		*nl = '\0';
		if (!p[0] || strlen(p) > FG_CA_JTI_LEN_MAX)
			continue;
		/* some tokens expired already, some live; the clock moves on a little */
		exp = now + (unsigned char)p[0] % 64 - 90;
		now += (unsigned char)p[len - 1] % 4;
		for (i = 0; i < n_seen && strcmp(seen[i].jti, p); i++)
			;
		ret = fg_ca_jti_use(s, p, exp, now);
		if (i < n_seen && seen[i].exp >= now && ret != -EALREADY)
			abort(); /* spent and live: must be refused */
		if (i == n_seen && ret != 0)
			abort(); /* never spent: must be accepted */
		if (ret == 0 && i < n_seen) {
			seen[i].exp = exp + FG_CA_TOKEN_LEEWAY_S;
		} else if (ret == 0 && n_seen < SEEN_MAX) {
			seen[n_seen].jti = strdup(p);
			if (!seen[n_seen].jti)
				break;
			seen[n_seen++].exp = exp + FG_CA_TOKEN_LEEWAY_S;
		} else if (ret == 0) {
			break; /* the model is full */
		}
	}
free_all:
	for (size_t i = 0; seen && i < n_seen; i++)
		free(seen[i].jti);
	free(seen);
	free(text);
	fg_ca_jti_free(s);
	return 0;
}
