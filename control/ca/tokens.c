// SPDX-License-Identifier: MIT
/* One-time tokens: step-ca's JWK provisioner checks, and spending them (tokens.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "control/ca/jwt.h"
#include "control/ca/sans.h"
#include "control/ca/tokens.h"
#include "control/ca/url.h"
#include "fedgate/x509name.h"

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
static int token_sans(const cJSON *claims, const char *sub, struct fg_ca_san_list *l,
		      GENERAL_NAMES **out, struct fg_err *err)
{
	const cJSON *sans = cJSON_GetObjectItemCaseSensitive(claims, "sans"), *s;
	const char *names[FG_CA_SANS_MAX];
	struct fg_err e = { 0 };
	GENERAL_NAMES *gens;
	size_t n = 0;
	int ret;

	if (sans && !cJSON_IsArray(sans))
		return fg_err_http(err, 401, "token \"sans\" is not a list of names");
	cJSON_ArrayForEach(s, sans)
	{
		if (!cJSON_IsString(s) || n == FG_CA_SANS_MAX)
			return fg_err_http(err, 401, "token \"sans\" is not a list of names");
		names[n++] = s->valuestring;
	}
	if (!n)
		names[n++] = sub;
	gens = fg_ca_sans(names, n, &e);
	if (!gens)
		return fg_err_http(err, 401, "token \"sans\": %s", e.msg);
	ret = fg_ca_san_list_from(gens, l);
	if (ret) {
		GENERAL_NAMES_free(gens);
		return fg_err_http(err, 401, "token \"sans\" holds a name fedgate cannot issue");
	}
	*out = gens;
	return 0;
}

/* "exp" and "nbf" at @now: numeric, live within the leeway, and not too far ahead. */
static int token_times(const cJSON *claims, int64_t now, struct fg_err *err)
{
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
	const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");

	if (!is_number(exp) || (nbf && !is_number(nbf)))
		return fg_err_http(err, 401, "token needs a numeric \"exp\" (and \"nbf\")");
	if ((int64_t)exp->valuedouble + FG_CA_TOKEN_LEEWAY_S < now)
		return fg_err_http(err, 401, "token expired %lld s ago",
				   (long long)(now - (int64_t)exp->valuedouble));
	/* Its jti is remembered until exp: a far-future exp would keep it (and the token) alive. */
	if ((int64_t)exp->valuedouble - now > FG_CA_TOKEN_MAX_LIFETIME_S + FG_CA_TOKEN_LEEWAY_S)
		return fg_err_http(err, 401,
				   "token expires %lld s from now: at most %d s ahead are "
				   "accepted (mint it with a shorter lifetime)",
				   (long long)((int64_t)exp->valuedouble - now),
				   FG_CA_TOKEN_MAX_LIFETIME_S);
	if (nbf && (int64_t)nbf->valuedouble - FG_CA_TOKEN_LEEWAY_S > now)
		return fg_err_http(err, 401, "token not valid yet (nbf is %lld s ahead)",
				   (long long)((int64_t)nbf->valuedouble - now));
	return 0;
}

/*
 * "sha": the SHA-256 fingerprint of one of our roots, as step's bootstrap pins it. step-ca
 * never reads it, so a token without one is taken; one that names another root is refused
 * (a deliberate difference: such a token was minted for another CA).
 */
static int token_root(struct fg_ca *ca, const cJSON *claims, struct fg_err *err)
{
	const cJSON *sha = cJSON_GetObjectItemCaseSensitive(claims, "sha");
	char fp[65];

	if (!sha)
		return 0;
	for (int i = 0; cJSON_IsString(sha) && i < sk_X509_num(ca->roots); i++)
		if (!fg_x509_sha256(sk_X509_value(ca->roots, i), fp) &&
		    !strcasecmp(fp, sha->valuestring))
			return 0;
	return fg_err_http(err, 401, "token \"sha\" is not the fingerprint of this CA's root");
}

/* The hex SHA-256 of @ott (malloc'd), step-ca's reuse key for a token without a "jti". */
static char *token_hash(const char *ott)
{
	unsigned char md[32];
	unsigned int n = 0;
	char *hex = malloc(65);

	if (!hex || !EVP_Digest(ott, strlen(ott), md, &n, EVP_sha256(), NULL) || n != 32) {
		free(hex);
		return NULL;
	}
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

int fg_ca_token_check(struct fg_ca *ca, const char *ott, int64_t now, struct fg_ca_token *tok,
		      struct fg_err *err)
{
	cJSON *hdr = NULL, *claims = NULL;
	const cJSON *sub, *jti;
	struct fg_err e = { 0 };
	int ret;

	if (fg_jwt_decode(ott, &hdr, &claims, &e)) {
		ret = fg_err_http(err, 401, "invalid token: %s", e.msg);
		goto free_json;
	}
	tok->prov = find_prov(ca, hdr, claims, err);
	if (!tok->prov) {
		ret = -EACCES;
		goto free_json;
	}
	if (fg_jwt_verify(ott, tok->prov->pub, &e)) {
		ret = fg_err_http(err, 401, "invalid token: %s", e.msg);
		goto free_json;
	}
	ret = check_audience(ca, cJSON_GetObjectItemCaseSensitive(claims, "aud"), err) ?:
	      token_times(claims, now, err);
	if (ret)
		goto free_json;
	sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
	if (!cJSON_IsString(sub) || !sub->valuestring[0] || strlen(sub->valuestring) > 1024) {
		ret = fg_err_http(err, 401, "token has no subject (\"sub\")");
		goto free_json;
	}
	tok->sub = strdup(sub->valuestring);
	if (!tok->sub) {
		ret = -ENOMEM;
		goto free_json;
	}
	ret = token_root(ca, claims, err) ?:
	      token_sans(claims, tok->sub, &tok->sans, &tok->gens, err);
	if (ret)
		goto free_json;
	jti = cJSON_GetObjectItemCaseSensitive(claims, "jti");
	if ((jti && !cJSON_IsString(jti)) ||
	    (cJSON_IsString(jti) && strlen(jti->valuestring) > FG_CA_JTI_LEN_MAX)) {
		ret = fg_err_http(err, 401, "token has no usable ID (\"jti\")");
		goto free_json;
	}
	/* As step-ca: a token without a "jti" is remembered by the SHA-256 of its text. */
	tok->jti = cJSON_IsString(jti) && jti->valuestring[0] ? strdup(jti->valuestring)
							       : token_hash(ott);
	tok->exp = (int64_t)cJSON_GetObjectItemCaseSensitive(claims, "exp")->valuedouble;
	ret = tok->jti ? 0 : fg_err_http(err, 500, "out of memory");
free_json:
	cJSON_Delete(hdr);
	cJSON_Delete(claims);
	return ret;
}

int fg_ca_token_spend(struct fg_ca *ca, const struct fg_ca_token *tok, int64_t now,
		      struct fg_err *err)
{
	int ret = fg_ca_jti_use(ca->jti, tok->jti, tok->exp, now);

	if (ret == -EALREADY)
		return fg_err_http(err, 401, "token already used (jti \"%.64s\")", tok->jti);
	if (ret == -ENOSPC)
		return fg_err_http(err, 503, "too many live tokens; retry later");
	if (ret)
		return fg_err_http(err, 500, "cannot record the token as used: %s",
				   strerror(-ret));
	return 0;
}

void fg_ca_token_exit(struct fg_ca_token *tok)
{
	if (!tok)
		return;
	free(tok->sub);
	free(tok->jti);
	fg_ca_san_list_free(&tok->sans);
	GENERAL_NAMES_free(tok->gens);
	memset(tok, 0, sizeof(*tok));
}
