// SPDX-License-Identifier: MIT
/*
 * The CA's answers: step-ca's routes, status codes and JSON shapes, the
 * one-time token checks of a JWK provisioner, and the leaf certificates.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "control/ca/ca.h"
#include "control/ca/jwt.h"
#include "fedgate/log.h"
#include "fedgate/x509name.h"
#include "fedgate/clock.h"

#ifndef FEDGATE_VERSION
#define FEDGATE_VERSION "0.1.0"
#endif

#define JTI_MAX 65536	  /* tokens remembered at once; more is refused, never forgotten */
#define JTI_LEN_MAX 256
#define BACKDATE_S 60	  /* step-ca backdates notBefore by one minute */

/* --- single-use token IDs: open addressing, entries expire with their token ------------------ */

/*
 * The file holds one line per used token, "EXP SHA256HEX\n", appended and
 * fsync'd before the token is accepted. A torn last line (a crash mid-write)
 * is skipped on load. It is rewritten without the expired entries at load and
 * whenever expired lines outnumber the live ones, so it stays proportional to
 * the tokens alive (at most JTI_MAX).
 */
#define JTI_HEX 64
#define JTI_LINE_MAX 96
#define JTI_FILE_MAX ((size_t)JTI_MAX * 4 * JTI_LINE_MAX) /* 4 x the live maximum */

struct jti_entry {
	char *id; /* SHA-256 hex of the token's jti */
	int64_t exp;
};

struct fg_jti_store {
	struct jti_entry *e;
	size_t cap, used;
	char *path;	   /* NULL: memory only */
	int fd;		   /* @path, O_APPEND */
	size_t file_lines; /* lines in the file, live or not */
};

struct fg_jti_store *fg_ca_jti_new(void)
{
	struct fg_jti_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = -1;
	s->cap = 1024;
	s->e = calloc(s->cap, sizeof(*s->e));
	if (!s->e) {
		free(s);
		return NULL;
	}
	return s;
}

void fg_ca_jti_free(struct fg_jti_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->cap; i++)
		free(s->e[i].id);
	free(s->e);
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s);
}

static size_t jti_hash(const char *id)
{
	size_t h = 1469598103934665603ULL;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return h;
}

/* Rebuilds the table with @cap slots, dropping entries expired before @now. */
static int jti_rehash(struct fg_jti_store *s, size_t cap, int64_t now)
{
	struct jti_entry *ne = calloc(cap, sizeof(*ne));

	if (!ne)
		return -ENOMEM;
	s->used = 0;
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (!s->e[i].id)
			continue;
		if (s->e[i].exp < now) {
			free(s->e[i].id);
			continue;
		}
		for (j = jti_hash(s->e[i].id) & (cap - 1); ne[j].id; j = (j + 1) & (cap - 1))
			;
		ne[j] = s->e[i];
		s->used++;
	}
	free(s->e);
	s->e = ne;
	s->cap = cap;
	return 0;
}

/* Adds @id (live until @exp). 0, -EALREADY if present, -ENOSPC if full, -ENOMEM. */
static int jti_add(struct fg_jti_store *s, const char *id, int64_t exp, int64_t now)
{
	size_t i;

	/* Keep the table at most half full; expired entries go first. */
	if (2 * (s->used + 1) > s->cap) {
		size_t cap = s->cap;
		int ret;

		ret = jti_rehash(s, cap, now);
		while (!ret && 2 * (s->used + 1) > cap && cap < 2 * JTI_MAX)
			cap *= 2;
		if (!ret && cap != s->cap)
			ret = jti_rehash(s, cap, now);
		if (ret)
			return ret;
		if (s->used >= JTI_MAX)
			return -ENOSPC;
	}
	for (i = jti_hash(id) & (s->cap - 1); s->e[i].id; i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->e[i].id, id))
			return -EALREADY;
	s->e[i].id = strdup(id);
	if (!s->e[i].id)
		return -ENOMEM;
	s->e[i].exp = exp;
	s->used++;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Rewrites the file with the entries live at @now and reopens it for appending. */
static int jti_compact(struct fg_jti_store *s, int64_t now, struct fg_err *err)
{
	char *text = malloc(s->used * JTI_LINE_MAX + 1);
	size_t len = 0, lines = 0;
	int fd, ret;

	if (!text)
		return fg_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->e[i].id || s->e[i].exp < now)
			continue;
		len += (size_t)snprintf(text + len, JTI_LINE_MAX, "%lld %s\n",
					(long long)s->e[i].exp, s->e[i].id);
		lines++;
	}
	ret = fg_pki_write_file(s->path, text, len, 0600, err);
	free(text);
	if (ret)
		return ret;
	fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fg_err_set(err, -errno, "cannot open %s: %s", s->path, strerror(errno));
	if (s->fd >= 0)
		close(s->fd);
	s->fd = fd;
	s->file_lines = lines;
	return 0;
}

/* "EXP HEX" with EXP decimal and HEX JTI_HEX lowercase hex digits; 0 or -EINVAL. */
static int jti_parse_line(const char *line, size_t len, int64_t *exp, char id[JTI_HEX + 1])
{
	size_t d = 0;
	int64_t v = 0;

	while (d < len && d < 18 && line[d] >= '0' && line[d] <= '9')
		v = v * 10 + (line[d++] - '0');
	if (!d || len != d + 1 + JTI_HEX || line[d] != ' ' ||
	    strspn(line + d + 1, "0123456789abcdef") < JTI_HEX)
		return -EINVAL;
	memcpy(id, line + d + 1, JTI_HEX);
	id[JTI_HEX] = '\0';
	*exp = v;
	return 0;
}

int fg_ca_jti_open(struct fg_jti_store *s, const char *path, int64_t now, struct fg_err *err)
{
	struct fg_err e = { 0 };
	char *text = NULL, id[JTI_HEX + 1];
	size_t len = 0, skipped = 0;
	int ret;

	s->path = strdup(path);
	if (!s->path)
		return fg_err_set(err, -ENOMEM, "out of memory");
	ret = fg_pki_read_file(path, JTI_FILE_MAX, &text, &len, &e);
	if (ret == -ENOENT) {
		ret = 0;
	} else if (ret) {
		return fg_err_set(err, ret, "the used-token file: %s", e.msg);
	} else {
		for (char *p = text, *nl; p < text + len; p = nl + 1) {
			int64_t exp;

			nl = memchr(p, '\n', (size_t)(text + len - p));
			if (!nl) { /* a torn last line */
				skipped++;
				break;
			}
			if (jti_parse_line(p, (size_t)(nl - p), &exp, id)) {
				skipped++;
				continue;
			}
			if (exp < now)
				continue;
			ret = jti_add(s, id, exp, now);
			if (ret == -EALREADY)
				ret = 0;
			if (ret) {
				free(text);
				return fg_err_set(err, ret, "%s: %s", path,
						  ret == -ENOSPC ? "too many live tokens"
								 : strerror(-ret));
			}
		}
		free(text);
	}
	if (skipped)
		fg_warn("CA: %s: %zu malformed line(s) skipped", path, skipped);
	return jti_compact(s, now, err);
}

int fg_ca_jti_use(struct fg_jti_store *s, const char *jti, int64_t exp, int64_t now)
{
	unsigned char md[32];
	char id[JTI_HEX + 1], line[JTI_LINE_MAX];
	int ret, n;

	if (!EVP_Digest(jti, strlen(jti), md, NULL, EVP_sha256(), NULL))
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	exp += FG_CA_TOKEN_LEEWAY_S;
	ret = jti_add(s, id, exp, now);
	if (ret || s->fd < 0)
		return ret;
	/* Spent in memory now; refused below (and so never accepted) if the disk cannot say so. */
	n = snprintf(line, sizeof(line), "%lld %s\n", (long long)exp, id);
	ret = write_all(s->fd, line, (size_t)n);
	if (!ret && fsync(s->fd))
		ret = -errno;
	if (ret)
		return ret;
	s->file_lines++;
	if (s->file_lines > 2 * s->used + 1024) {
		struct fg_err e = { 0 };

		/* Failing to compact loses nothing: the old file still holds every line. */
		if (jti_compact(s, now, &e))
			fg_warn("CA: %s", e.msg);
	}
	return 0;
}

/* --- SANs ----------------------------------------------------------------------------------- */

GENERAL_NAMES *fg_ca_sans(const char *const *names, size_t n, struct fg_err *err)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();

	if (!gens)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const char *s = names[i];
		unsigned char ip[16];
		GENERAL_NAME *gn = NULL;
		ASN1_OCTET_STRING *os;
		ASN1_IA5STRING *ia5;
		int type, iplen = 0;

		if (inet_pton(AF_INET, s, ip) == 1)
			iplen = 4;
		else if (inet_pton(AF_INET6, s, ip) == 1)
			iplen = 16;
		if (iplen) {
			os = ASN1_OCTET_STRING_new();
			gn = GENERAL_NAME_new();
			if (!os || !gn || !ASN1_OCTET_STRING_set(os, ip, iplen)) {
				ASN1_OCTET_STRING_free(os);
				GENERAL_NAME_free(gn);
				goto oom;
			}
			GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
		} else {
			if (!*s || strlen(s) > 1024) {
				fg_err_set(err, -EINVAL, "bad name \"%.64s\"", s);
				goto fail;
			}
			type = strchr(s, '@') ? GEN_EMAIL : strchr(s, ':') ? GEN_URI : GEN_DNS;
			ia5 = ASN1_IA5STRING_new();
			gn = GENERAL_NAME_new();
			if (!ia5 || !gn || !ASN1_STRING_set(ia5, s, (int)strlen(s))) {
				ASN1_IA5STRING_free(ia5);
				GENERAL_NAME_free(gn);
				goto oom;
			}
			GENERAL_NAME_set0_value(gn, type, ia5);
		}
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			goto oom;
		}
	}
	return gens;
oom:
	fg_err_set(err, -ENOMEM, "out of memory");
fail:
	GENERAL_NAMES_free(gens);
	return NULL;
}

/* One comparable string per SAN ("dns:a.example", "ip:10.0.0.1", ...), sorted, in @out. */
struct san_list {
	char *v[64];
	size_t n;
};

static void san_list_free(struct san_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @gens -> sorted strings. -EINVAL for a SAN type fedgate does not issue (or too many). */
static int san_list_from(const GENERAL_NAMES *gens, struct san_list *l)
{
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const char *tag;
		char buf[1100], ipt[INET6_ADDRSTRLEN];
		const ASN1_STRING *s;
		int r;

		if (l->n == sizeof(l->v) / sizeof(l->v[0]))
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

/* Both sorted: equal as lists, entry by entry (never through truncated text). */
static int san_list_equal(const struct san_list *a, const struct san_list *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

/* For messages only: the list as text, cut at @len. */
static void san_list_text(const struct san_list *l, char *out, size_t len)
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

/* --- leaves --------------------------------------------------------------------------------- */

X509 *fg_ca_issue_leaf(struct fg_ca *ca, const char *cn, const GENERAL_NAMES *sans,
		       EVP_PKEY *pub, int64_t not_before, int64_t not_after,
		       struct fg_err *err)
{
	struct fg_pki_issue req = {
		.cn = cn,
		.pubkey = pub,
		.issuer = ca->intermediate,
		.issuer_key = ca->intermediate_key,
		.not_before = not_before,
		.not_after = not_after,
		.pathlen = -1,
		.sans = sans,
	};
	const ASN1_TIME *ia = X509_get0_notAfter(ca->intermediate);
	struct tm tm;

	/* A leaf never outlives its issuer. */
	if (ASN1_TIME_to_tm(ia, &tm) && (int64_t)timegm(&tm) < req.not_after)
		req.not_after = (int64_t)timegm(&tm);
	return fg_pki_issue(&req, err);
}

/* {"crt":leaf,"ca":intermediate,"certChain":[leaf,intermediate],"tlsOptions":{...}} */
static cJSON *chain_response(struct fg_ca *ca, X509 *leaf)
{
	char *lp = fg_pki_cert_pem(leaf), *ip = fg_pki_cert_pem(ca->intermediate);
	cJSON *o = cJSON_CreateObject(), *chain;

	if (!lp || !ip || !o || !cJSON_AddStringToObject(o, "crt", lp) ||
	    !cJSON_AddStringToObject(o, "ca", ip) ||
	    !(chain = cJSON_AddArrayToObject(o, "certChain")) ||
	    !cJSON_AddItemToArray(chain, cJSON_CreateString(lp)) ||
	    !cJSON_AddItemToArray(chain, cJSON_CreateString(ip)) ||
	    (ca->tls_options &&
	     !cJSON_AddItemToObject(o, "tlsOptions", cJSON_Duplicate(ca->tls_options, 1)))) {
		cJSON_Delete(o);
		o = NULL;
	}
	free(lp);
	free(ip);
	return o;
}

/* --- /sign ---------------------------------------------------------------------------------- */

static int is_number(const cJSON *it)
{
	return cJSON_IsNumber(it) && it->valuedouble > 0 && it->valuedouble < 1e11;
}

/* "aud" is this CA's sign URL: https://<one of dnsNames>[:any port]/sign or /1.0/sign. */
static int audience_ok(struct fg_ca *ca, const char *aud)
{
	char host[256], port[8];
	const char *rest;

	if (fg_url_parse(aud, host, sizeof(host), port, sizeof(port), &rest))
		return 0;
	if (strcmp(rest, "/sign") && strcmp(rest, "/1.0/sign"))
		return 0;
	/* As step-ca's matchesAudience: the port is not compared (proxies, NAT). */
	for (size_t i = 0; i < ca->n_dns; i++)
		if (!strcasecmp(host, ca->dns[i]))
			return 1;
	return 0;
}

static int check_audience(struct fg_ca *ca, const cJSON *aud, struct fg_err *err)
{
	const cJSON *a;

	if (cJSON_IsString(aud)) {
		if (audience_ok(ca, aud->valuestring))
			return 0;
		return fg_err_http(err, 401,
				       "token audience \"%.200s\" is not this CA's sign URL "
				       "(https://%s/1.0/sign)",
				       aud->valuestring, ca->dns[0]);
	}
	if (cJSON_IsArray(aud)) {
		cJSON_ArrayForEach(a, aud)
		{
			if (cJSON_IsString(a) && audience_ok(ca, a->valuestring))
				return 0;
		}
	}
	return fg_err_http(err, 401,
			       "token audience does not name this CA's sign URL "
			       "(https://%s/1.0/sign)",
			       ca->dns[0]);
}

/* The provisioner a token names: "iss" and, when the header has one, "kid". */
static struct fg_ca_provisioner *find_prov(struct fg_ca *ca, const cJSON *hdr,
					   const cJSON *claims, struct fg_err *err)
{
	const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(hdr, "kid");

	if (!cJSON_IsString(iss)) {
		fg_err_http(err, 401, "token has no issuer (\"iss\")");
		return NULL;
	}
	for (size_t i = 0; i < ca->n_prov; i++)
		if (!strcmp(ca->prov[i].name, iss->valuestring) &&
		    (!cJSON_IsString(kid) || !strcmp(kid->valuestring, ca->prov[i].kid)))
			return &ca->prov[i];
	fg_err_http(err, 401, "token issuer \"%.100s\"%s%.60s%s is not a provisioner of this CA",
			iss->valuestring, cJSON_IsString(kid) ? " (kid " : "",
			cJSON_IsString(kid) ? kid->valuestring : "", cJSON_IsString(kid) ? ")" : "");
	return NULL;
}

/* The token's "sans" (or [sub] when absent, as step does), as comparable strings. */
static int token_sans(const cJSON *claims, const char *sub, struct san_list *l,
		      struct fg_err *err)
{
	const cJSON *sans = cJSON_GetObjectItemCaseSensitive(claims, "sans"), *s;
	const char *names[64];
	GENERAL_NAMES *gens;
	size_t n = 0;
	int ret;

	if (sans && !cJSON_IsArray(sans))
		return fg_err_http(err, 401, "token \"sans\" is not a list of names");
	cJSON_ArrayForEach(s, sans)
	{
		if (!cJSON_IsString(s) || n == 64)
			return fg_err_http(err, 401, "token \"sans\" is not a list of names");
		names[n++] = s->valuestring;
	}
	if (!n)
		names[n++] = sub;
	gens = fg_ca_sans(names, n, err);
	if (!gens)
		return fg_err_http(err, 401, "token \"sans\": %s", err->msg);
	ret = san_list_from(gens, l);
	GENERAL_NAMES_free(gens);
	if (ret)
		return fg_err_http(err, 401, "token \"sans\" holds a name fedgate cannot issue");
	return 0;
}

/*
 * Checks @ott like step-ca's JWK provisioner; on success @p, @sub, the SANs,
 * @jti and @exp are set. The token is not spent here: spend() does that once
 * the request is known to be issuable, so no token is lost to a refusal of
 * the CSR or to a failure that is not the token's.
 */
static int authorize(struct fg_ca *ca, const char *ott, struct fg_ca_provisioner **p,
		     char **sub, struct san_list *sans, char **jti_out, int64_t *exp_out,
		     struct fg_err *err)
{
	cJSON *hdr = NULL, *claims = NULL;
	const cJSON *it, *exp, *nbf, *jti;
	struct fg_err e = { 0 };
	int64_t now = fg_wall_s();
	char fp[65];
	int ret, sha_ok = 0;

	if (fg_jwt_decode(ott, &hdr, &claims, &e)) {
		ret = fg_err_http(err, 401, "invalid token: %s", e.msg);
		goto out;
	}
	*p = find_prov(ca, hdr, claims, err);
	if (!*p) {
		ret = -EACCES;
		goto out;
	}
	if (fg_jwt_verify(ott, (*p)->pub, &e)) {
		ret = fg_err_http(err, 401, "invalid token: %s", e.msg);
		goto out;
	}
	ret = check_audience(ca, cJSON_GetObjectItemCaseSensitive(claims, "aud"), err);
	if (ret)
		goto out;
	exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
	nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");
	if (!is_number(exp) || (nbf && !is_number(nbf))) {
		ret = fg_err_http(err, 401, "token needs a numeric \"exp\" (and \"nbf\")");
		goto out;
	}
	if ((int64_t)exp->valuedouble + FG_CA_TOKEN_LEEWAY_S < now) {
		ret = fg_err_http(err, 401, "token expired %lld s ago",
				      (long long)(now - (int64_t)exp->valuedouble));
		goto out;
	}
	/* Its jti is remembered until exp: a far-future exp would keep it (and the token) alive. */
	if ((int64_t)exp->valuedouble - now > FG_CA_TOKEN_MAX_LIFETIME_S + FG_CA_TOKEN_LEEWAY_S) {
		ret = fg_err_http(err, 401,
				      "token expires %lld s from now: at most %d s ahead are "
				      "accepted (mint it with a shorter lifetime)",
				      (long long)((int64_t)exp->valuedouble - now),
				      FG_CA_TOKEN_MAX_LIFETIME_S);
		goto out;
	}
	if (nbf && (int64_t)nbf->valuedouble - FG_CA_TOKEN_LEEWAY_S > now) {
		ret = fg_err_http(err, 401, "token not valid yet (nbf is %lld s ahead)",
				      (long long)((int64_t)nbf->valuedouble - now));
		goto out;
	}
	it = cJSON_GetObjectItemCaseSensitive(claims, "sub");
	if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > 1024) {
		ret = fg_err_http(err, 401, "token has no subject (\"sub\")");
		goto out;
	}
	*sub = strdup(it->valuestring);
	if (!*sub) {
		ret = -ENOMEM;
		goto out;
	}
	it = cJSON_GetObjectItemCaseSensitive(claims, "sha");
	for (int i = 0; cJSON_IsString(it) && i < sk_X509_num(ca->roots); i++)
		sha_ok |= !fg_x509_sha256(sk_X509_value(ca->roots, i), fp) &&
			  !strcasecmp(fp, it->valuestring);
	if (!sha_ok) {
		ret = fg_err_http(err, 401,
				      "token \"sha\" is not the fingerprint of this CA's root");
		goto out;
	}
	ret = token_sans(claims, *sub, sans, err);
	if (ret)
		goto out;
	jti = cJSON_GetObjectItemCaseSensitive(claims, "jti");
	if (!cJSON_IsString(jti) || !jti->valuestring[0] ||
	    strlen(jti->valuestring) > JTI_LEN_MAX) {
		ret = fg_err_http(err, 401, "token has no usable ID (\"jti\")");
		goto out;
	}
	*jti_out = strdup(jti->valuestring);
	*exp_out = (int64_t)exp->valuedouble;
	ret = *jti_out ? 0 : fg_err_http(err, 500, "out of memory");
out:
	cJSON_Delete(hdr);
	cJSON_Delete(claims);
	return ret;
}

/*
 * Spends the token @jti (valid until @exp): from here on it is never good
 * again, even if issuing fails. Returns 0 or -EACCES with the answer in @err.
 */
static int spend(struct fg_ca *ca, const char *jti, int64_t exp, int64_t now,
		 struct fg_err *err)
{
	int ret = fg_ca_jti_use(ca->jti, jti, exp, now);

	if (ret == -EALREADY)
		return fg_err_http(err, 401, "token already used (jti \"%.64s\")", jti);
	if (ret == -ENOSPC)
		return fg_err_http(err, 503, "too many live tokens; retry later");
	if (ret)
		return fg_err_http(err, 500, "cannot record the token as used: %s",
				       strerror(-ret));
	return 0;
}

/* The curves Go's crypto/x509 (and so step-ca) issues for: P-256, P-384, P-521. */
static int ec_curve_ok(EVP_PKEY *k)
{
	char group[64];
	size_t n = 0;

	if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    &n)) {
		ERR_clear_error(); /* explicit curve parameters: no name, refused */
		return 0;
	}
	return !strcmp(group, "prime256v1") || !strcmp(group, "secp384r1") ||
	       !strcmp(group, "secp521r1");
}

static int csr_key_ok(EVP_PKEY *k)
{
	if (EVP_PKEY_is_a(k, "EC"))
		return ec_curve_ok(k);
	if (EVP_PKEY_is_a(k, "RSA"))
		return EVP_PKEY_get_bits(k) >= 2048;
	return EVP_PKEY_is_a(k, "ED25519");
}

/* "notBefore"/"notAfter": RFC 3339 time or a duration from now (step accepts both). */
static int req_time(const cJSON *body, const char *key, int64_t now, int64_t *t, int *given,
		    struct fg_err *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, key);
	int64_t ms;

	*given = 0;
	if (!it || cJSON_IsNull(it) || (cJSON_IsString(it) && !it->valuestring[0]))
		return 0;
	if (cJSON_IsString(it) && !fg_time_parse(it->valuestring, t)) {
		*given = 1;
		return 0;
	}
	if (cJSON_IsString(it) && !fg_duration_parse(it->valuestring, &ms)) {
		*t = now + ms / 1000;
		*given = 1;
		return 0;
	}
	return fg_err_http(err, 400,
			       "\"%s\" must be an RFC 3339 time or a duration such as \"5m\"", key);
}

static void fmt_dur(int64_t s, char *out, size_t len)
{
	snprintf(out, len, "%lldh%02lldm%02llds", (long long)(s / 3600), (long long)(s / 60 % 60),
		 (long long)(s % 60));
}

static cJSON *handle_sign(struct fg_ca *ca, const char *body, size_t len, int *status,
			  struct fg_err *err)
{
	struct san_list csr_sans = { 0 }, tok_sans = { 0 };
	struct fg_ca_provisioner *p = NULL;
	const cJSON *csr, *ott;
	GENERAL_NAMES *gens = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	cJSON *in = NULL, *out = NULL;
	char *sub = NULL, *jti = NULL, cn[256], a[512], b[512], d1[32], d2[32];
	int64_t now = fg_wall_s(), nb, na, life, exp = 0;
	int has_nb, has_na;
	X509 *leaf = NULL;
	BIO *bio = NULL;

	in = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(in)) {
		fg_err_http(err, 400, "the body is not a JSON object");
		goto out;
	}
	csr = cJSON_GetObjectItemCaseSensitive(in, "csr");
	ott = cJSON_GetObjectItemCaseSensitive(in, "ott");
	if (!cJSON_IsString(csr) || !csr->valuestring[0]) {
		fg_err_http(err, 400, "missing \"csr\": a PEM certificate request");
		goto out;
	}
	if (!cJSON_IsString(ott) || !ott->valuestring[0]) {
		fg_err_http(err, 400, "missing \"ott\": a one-time token");
		goto out;
	}
	/* The CSR first, as step-ca's body validation: a bad request is a 400 whatever the token. */
	bio = BIO_new_mem_buf(csr->valuestring, -1);
	req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	ERR_clear_error();
	if (!req) {
		fg_err_http(err, 400, "invalid csr: not a PEM certificate request");
		goto out;
	}
	pub = X509_REQ_get_pubkey(req);
	if (!pub || !csr_key_ok(pub)) {
		fg_err_http(err, 400,
				"invalid csr: the key must be EC P-256, P-384 or P-521, RSA 2048+ "
				"or Ed25519");
		goto out;
	}
	if (X509_REQ_verify(req, pub) != 1) {
		ERR_clear_error();
		fg_err_http(err, 400,
				"invalid csr: its signature does not verify with its public key");
		goto out;
	}
	exts = X509_REQ_get_extensions(req);
	for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) == NID_subject_alt_name) {
			GENERAL_NAMES_free(gens);
			gens = X509V3_EXT_d2i(x);
		}
	}
	if (san_list_from(gens, &csr_sans) ||
	    fg_x509_cn(X509_REQ_get_subject_name(req), cn, sizeof(cn)) == -EINVAL) {
		fg_err_http(err, 400,
				"invalid csr: only DNS, IP, e-mail and URI SANs (at most 64) and "
				"a printable CN");
		goto out;
	}
	if (authorize(ca, ott->valuestring, &p, &sub, &tok_sans, &jti, &exp, err))
		goto out;
	if (!san_list_equal(&csr_sans, &tok_sans)) {
		san_list_text(&csr_sans, a, sizeof(a));
		san_list_text(&tok_sans, b, sizeof(b));
		fg_err_http(err, 401, "the CSR's SANs [%.200s] are not the token's SANs [%.200s]",
				a, b);
		goto out;
	}
	if (cn[0] && strcmp(cn, sub)) {
		int in_sans = 0;

		for (size_t i = 0; i < tok_sans.n; i++)
			in_sans |= !strcmp(strchr(tok_sans.v[i], ':') + 1, cn);
		if (!in_sans) {
			fg_err_http(err, 401,
					"the CSR's CN \"%.100s\" is neither the token's subject "
					"\"%.100s\" nor one of its SANs",
					cn, sub);
			goto out;
		}
	}
	if (req_time(in, "notBefore", now, &nb, &has_nb, err) ||
	    req_time(in, "notAfter", now, &na, &has_na, err))
		goto out;
	if (!has_nb)
		nb = now;
	if (!has_na)
		na = nb + p->default_ms / 1000;
	life = na - nb;
	if (life * 1000 < p->min_ms || life * 1000 > p->max_ms || nb > now + 86400 * 365) {
		fmt_dur(life, d1, sizeof(d1));
		fmt_dur(life * 1000 < p->min_ms ? p->min_ms / 1000 : p->max_ms / 1000, d2,
			sizeof(d2));
		/* step-ca answers an out-of-bounds duration with 403 Forbidden. */
		fg_err_http(err, 403, "requested lifetime %s is %s the %s of %s", d1,
				life * 1000 < p->min_ms ? "below" : "above",
				life * 1000 < p->min_ms ? "minimum" : "maximum", d2);
		goto out;
	}
	if (!has_nb)
		nb -= BACKDATE_S;
	if (spend(ca, jti, exp, now, err))
		goto out;
	/*
	 * The subject is the token's, as step's default template (left out when
	 * too long for a CN); the SANs are the CSR's (the token's, checked above).
	 */
	leaf = fg_ca_issue_leaf(ca, sub, gens, pub, nb, na, err);
	if (!leaf) {
		err->status = 500;
		goto out;
	}
	out = chain_response(ca, leaf);
	*status = 201;
out:
	X509_free(leaf);
	san_list_free(&csr_sans);
	san_list_free(&tok_sans);
	free(sub);
	free(jti);
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	BIO_free(bio);
	cJSON_Delete(in);
	return out;
}

/* --- /renew --------------------------------------------------------------------------------- */

static cJSON *handle_renew(struct fg_ca *ca, const struct fg_ca_request *r, int *status,
			   struct fg_err *err)
{
	X509_STORE_CTX *xs = NULL;
	GENERAL_NAMES *gens = NULL;
	EVP_PKEY *pub = NULL;
	X509 *leaf = NULL;
	cJSON *out = NULL;
	char cn[256] = "";
	int64_t now = fg_wall_s(), old_nb = 0, old_na = 0, life;
	struct tm tm;
	int e;

	if (!r->client) {
		/* step-ca: 400 "missing client certificate" */
		fg_err_http(err, 400,
				"missing client certificate: /renew is authenticated by the "
				"certificate to renew, sent as the TLS client certificate");
		goto out;
	}
	xs = X509_STORE_CTX_new();
	if (!xs || !X509_STORE_CTX_init(xs, ca->store, r->client, r->client_chain)) {
		fg_err_http(err, 500, "out of memory");
		goto out;
	}
	X509_STORE_CTX_set_purpose(xs, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(xs) != 1) {
		e = X509_STORE_CTX_get_error(xs);
		ERR_clear_error();
		if (e == X509_V_ERR_CERT_HAS_EXPIRED)
			fg_err_http(err, 401, "the client certificate has expired: renew it "
						  "before its notAfter, or enroll again with a token");
		else
			fg_err_http(err, 401,
					"the client certificate was not issued by this CA: %s "
					"(depth %d)",
					X509_verify_cert_error_string(e),
					X509_STORE_CTX_get_error_depth(xs));
		goto out;
	}
	if (X509_check_ca(r->client)) {
		fg_err_http(err, 401, "the client certificate is a CA certificate");
		goto out;
	}
	if (fg_x509_cn(X509_get_subject_name(r->client), cn, sizeof(cn)) == -EINVAL) {
		fg_err_http(err, 400, "the client certificate's CN cannot be read as UTF-8");
		goto out;
	}
	gens = X509_get_ext_d2i(r->client, NID_subject_alt_name, NULL, NULL);
	pub = X509_get_pubkey(r->client);
	/*
	 * Same subject, SANs, key and lifetime, as step-ca's Rekey: notBefore
	 * backdated, notAfter = now + (old notAfter - old notBefore - backdate),
	 * so NotAfter - NotBefore is kept; within the bounds the CA allows.
	 */
	if (ASN1_TIME_to_tm(X509_get0_notBefore(r->client), &tm))
		old_nb = (int64_t)timegm(&tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(r->client), &tm))
		old_na = (int64_t)timegm(&tm);
	life = old_na - old_nb - BACKDATE_S;
	if (life * 1000 > ca->renew_max_ms)
		life = ca->renew_max_ms / 1000;
	if (life * 1000 < ca->renew_min_ms)
		life = ca->renew_min_ms / 1000;
	leaf = pub ? fg_ca_issue_leaf(ca, cn, gens, pub, now - BACKDATE_S, now + life, err) : NULL;
	if (!leaf) {
		fg_err_http(err, 500, "cannot issue the renewed certificate");
		goto out;
	}
	out = chain_response(ca, leaf);
	*status = 201;
out:
	X509_free(leaf);
	EVP_PKEY_free(pub);
	GENERAL_NAMES_free(gens);
	X509_STORE_CTX_free(xs);
	return out;
}

/* --- routes --------------------------------------------------------------------------------- */

static cJSON *crts(STACK_OF(X509) *sk)
{
	cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "crts");

	if (!a) {
		cJSON_Delete(o);
		return NULL;
	}
	for (int i = 0; i < sk_X509_num(sk); i++) {
		char *pem = fg_pki_cert_pem(sk_X509_value(sk, i));

		if (!pem || !cJSON_AddItemToArray(a, cJSON_CreateString(pem))) {
			free(pem);
			cJSON_Delete(o);
			return NULL;
		}
		free(pem);
	}
	return o;
}

static cJSON *root_by_sha(struct fg_ca *ca, const char *sha, struct fg_err *err)
{
	char fp[65];
	cJSON *o;

	for (int i = 0; i < sk_X509_num(ca->roots); i++) {
		char *pem;

		if (fg_x509_sha256(sk_X509_value(ca->roots, i), fp) || strcasecmp(fp, sha))
			continue;
		pem = fg_pki_cert_pem(sk_X509_value(ca->roots, i));
		o = cJSON_CreateObject();
		if (!pem || !o || !cJSON_AddStringToObject(o, "ca", pem)) {
			cJSON_Delete(o);
			o = NULL;
		}
		free(pem);
		return o;
	}
	fg_err_http(err, 404, "no root with SHA-256 fingerprint %.64s here", sha);
	return NULL;
}

static char *error_body(const struct fg_err *err)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;

	if (o && cJSON_AddNumberToObject(o, "status", err->status) &&
	    cJSON_AddStringToObject(o, "message", err->msg))
		text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

int fg_ca_handle(struct fg_ca *ca, const struct fg_ca_request *req, int *status, char **body,
		 const char **content_type)
{
	struct fg_err err = { 0 };
	const char *path = req->path;
	int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
	int post = !strcmp(req->method, "POST");
	char route[256];
	size_t rlen;
	cJSON *out = NULL;

	*body = NULL;
	*status = 200;
	*content_type = "application/json";
	if (!strncmp(path, "/1.0/", 5))
		path += 4;
	rlen = strcspn(path, "?");
	snprintf(route, sizeof(route), "%.*s", (int)(rlen < 255 ? rlen : 255), path);
	if (!strcmp(route, "/health") && get) {
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "status", "ok");
	} else if (!strcmp(route, "/version") && get) {
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "version", "fedgate " FEDGATE_VERSION);
		cJSON_AddBoolToObject(out, "requireClientAuthentication", 0);
	} else if (!strcmp(route, "/roots") && get) {
		out = crts(ca->roots);
		*status = 201; /* sic: step-ca answers 201 */
	} else if (!strcmp(route, "/roots.pem") && get) {
		*body = fg_pki_certs_pem(ca->roots);
		*content_type = "application/x-pem-file";
		return *body ? 0 : -ENOMEM;
	} else if (!strcmp(route, "/federation") && get) {
		out = crts(ca->federation);
		*status = 201;
	} else if (!strncmp(route, "/root/", 6) && get) {
		out = root_by_sha(ca, route + 6, &err);
	} else if (!strcmp(route, "/sign") && post) {
		out = handle_sign(ca, req->body, req->body_len, status, &err);
	} else if (!strcmp(route, "/renew") && post) {
		out = handle_renew(ca, req, status, &err);
	} else if (!strcmp(route, "/health") || !strcmp(route, "/version") ||
		   !strcmp(route, "/roots") || !strcmp(route, "/roots.pem") ||
		   !strcmp(route, "/federation") || !strncmp(route, "/root/", 6) ||
		   !strcmp(route, "/sign") || !strcmp(route, "/renew")) {
		fg_err_http(&err, 405, "method %s is not allowed on %s", req->method, route);
	} else {
		fg_err_http(&err, 404, "no such endpoint: %s", route);
	}
	if (!out && !err.status)
		fg_err_http(&err, 500, "out of memory");
	if (err.status) {
		cJSON_Delete(out);
		*status = err.status;
		*body = error_body(&err);
		return *body ? 0 : -ENOMEM;
	}
	*body = cJSON_PrintUnformatted(out);
	cJSON_Delete(out);
	return *body ? 0 : -ENOMEM;
}
