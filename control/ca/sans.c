// SPDX-License-Identifier: MIT
/* Subject alternative names: built from step's strings, compared as sorted lists (sans.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509v3.h>

#include "control/ca/ca.h"
#include "control/ca/sans.h"

/* One SAN from one of step's strings (see fg_ca_sans()), or NULL with @err set. */
static GENERAL_NAME *san_from_string(const char *s, struct fg_err *err)
{
	unsigned char ip[16];
	int iplen = 0, type;
	ASN1_STRING *v;
	GENERAL_NAME *gn;

	if (inet_pton(AF_INET, s, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, s, ip) == 1)
		iplen = 16;
	if (!iplen && (!*s || strlen(s) > 1024)) {
		fg_err_set(err, -EINVAL, "bad name \"%.64s\"", s);
		return NULL;
	}
	type = iplen ? GEN_IPADD : strchr(s, '@') ? GEN_EMAIL : strchr(s, ':') ? GEN_URI : GEN_DNS;
	v = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	gn = GENERAL_NAME_new();
	if (!v || !gn ||
	    !(iplen ? ASN1_STRING_set(v, ip, iplen) : ASN1_STRING_set(v, s, (int)strlen(s)))) {
		ASN1_STRING_free(v);
		GENERAL_NAME_free(gn);
		fg_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, type, v);
	return gn;
}

GENERAL_NAMES *fg_ca_sans(const char *const *names, size_t n, struct fg_err *err)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();

	if (!gens) {
		fg_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = san_from_string(names[i], err);

		if (!gn)
			goto free_gens;
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			fg_err_set(err, -ENOMEM, "out of memory");
			goto free_gens;
		}
	}
	return gens;
free_gens:
	GENERAL_NAMES_free(gens);
	return NULL;
}

void fg_ca_san_list_free(struct fg_ca_san_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int fg_ca_san_list_from(const GENERAL_NAMES *gens, struct fg_ca_san_list *l)
{
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const char *tag;
		char buf[1100], ipt[INET6_ADDRSTRLEN];
		const ASN1_STRING *s;
		int r;

		if (l->n == FG_CA_SANS_MAX)
			return -E2BIG;
		switch (gn->type) {
		case GEN_DNS:
			tag = "dns";
			s = gn->d.dNSName;
			break;
		case GEN_URI:
			tag = "uri";
			s = gn->d.uniformResourceIdentifier;
			break;
		case GEN_EMAIL:
			tag = "email";
			s = gn->d.rfc822Name;
			break;
		case GEN_IPADD:
			s = gn->d.iPAddress;
			if (!inet_ntop(s->length == 4 ? AF_INET : AF_INET6, s->data, ipt,
				       sizeof(ipt)) ||
			    (s->length != 4 && s->length != 16))
				return -EINVAL;
			r = snprintf(buf, sizeof(buf), "ip:%s", ipt);
			goto add;
		default:
			return -EINVAL;
		}
		if (s->length <= 0 || s->length > 1024 || memchr(s->data, 0, (size_t)s->length))
			return -EINVAL;
		r = snprintf(buf, sizeof(buf), "%s:%.*s", tag, s->length, (const char *)s->data);
		if (gn->type == GEN_DNS) /* DNS names compare case-insensitively */
			for (char *p = buf; *p; p++)
				*p = (char)tolower((unsigned char)*p);
add:
		if (r < 0)
			return -EINVAL;
		l->v[l->n] = strdup(buf);
		if (!l->v[l->n])
			return -ENOMEM;
		l->n++;
	}
	qsort(l->v, l->n, sizeof(l->v[0]), cmp_str);
	return 0;
}

int fg_ca_san_list_equal(const struct fg_ca_san_list *a, const struct fg_ca_san_list *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

void fg_ca_san_list_text(const struct fg_ca_san_list *l, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < l->n && used < len; i++) {
		int w = snprintf(out + used, len - used, "%s%s", i ? " " : "", l->v[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}
