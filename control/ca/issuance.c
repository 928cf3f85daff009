// SPDX-License-Identifier: MIT
/*
 * Leaf certificates: /sign (a CSR and a one-time token), /renew (the client
 * certificate itself) and the leaves the server issues to itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "control/ca/issuance.h"
#include "control/ca/sans.h"
#include "control/ca/tokens.h"
#include "fedgate/clock.h"
#include "fedgate/json_nul.h"
#include "fedgate/x509name.h"

#define BACKDATE_S 60 /* step-ca backdates notBefore by one minute */

/* @t in seconds since the epoch; 0, or -EINVAL (@s untouched) if it cannot be read. */
static int epoch_of(const ASN1_TIME *t, int64_t *s)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return -EINVAL;
	*s = (int64_t)timegm(&tm);
	return 0;
}

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
	int64_t ia;

	/* A leaf never outlives its issuer. */
	if (!epoch_of(X509_get0_notAfter(ca->intermediate), &ia) && ia < req.not_after)
		req.not_after = ia;
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

/* 1 if step-ca would sign a CSR for @k: EC on those curves, RSA 2048+ or Ed25519. */
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
	return fg_err_http(err, 400, "\"%s\" must be an RFC 3339 time or a duration such as \"5m\"",
			   key);
}

/* @s as "1h05m00s", for messages. */
static void fmt_dur(int64_t s, char *out, size_t len)
{
	snprintf(out, len, "%lldh%02lldm%02llds", (long long)(s / 3600), (long long)(s / 60 % 60),
		 (long long)(s % 60));
}

/* A certificate request that passed csr_read(); csr_free() releases it. */
struct csr {
	X509_REQ *req;
	EVP_PKEY *pub;
	GENERAL_NAMES *gens;	    /* its subjectAltName; NULL when it has none */
	struct fg_ca_san_list sans; /* @gens as comparable strings */
	char cn[256];		    /* its CN in UTF-8; "" when it has none */
};

static void csr_free(struct csr *c)
{
	if (!c)
		return;
	fg_ca_san_list_free(&c->sans);
	GENERAL_NAMES_free(c->gens);
	EVP_PKEY_free(c->pub);
	X509_REQ_free(c->req);
}

/*
 * Reads the PEM request @pem into @c: a key step-ca would sign, a signature
 * that verifies, SANs of the types we issue and a readable CN. Returns 0 or
 * -EACCES with a 400 answer in @err; @c is the caller's to free either way.
 */
static int csr_read(const char *pem, struct csr *c, struct fg_err *err)
{
	STACK_OF(X509_EXTENSION) *exts;
	BIO *bio = BIO_new_mem_buf(pem, -1);

	c->req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (!c->req)
		return fg_err_http(err, 400, "invalid csr: not a PEM certificate request");
	c->pub = X509_REQ_get_pubkey(c->req);
	if (!c->pub || !csr_key_ok(c->pub))
		return fg_err_http(err, 400,
				   "invalid csr: the key must be EC P-256, P-384 or P-521, "
				   "RSA 2048+ or Ed25519");
	if (X509_REQ_verify(c->req, c->pub) != 1) {
		ERR_clear_error();
		return fg_err_http(err, 400,
				   "invalid csr: its signature does not verify with its public "
				   "key");
	}
	exts = X509_REQ_get_extensions(c->req);
	for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) == NID_subject_alt_name) {
			GENERAL_NAMES_free(c->gens);
			c->gens = X509V3_EXT_d2i(x);
		}
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (fg_ca_san_list_from(c->gens, &c->sans) ||
	    fg_x509_cn(X509_REQ_get_subject_name(c->req), c->cn, sizeof(c->cn)) == -EINVAL)
		return fg_err_http(err, 400,
				   "invalid csr: only DNS, IP, e-mail and URI SANs (at most 64) "
				   "and a printable CN");
	return 0;
}

/* Every name of type @type ("dns:", "ip:", "email:", "uri:") in @a is in @b. */
static int type_within(const struct fg_ca_san_list *a, const struct fg_ca_san_list *b,
		       const char *type)
{
	size_t n = strlen(type);

	for (size_t i = 0; i < a->n; i++) {
		int found = 0;

		if (strncmp(a->v[i], type, n))
			continue;
		for (size_t k = 0; k < b->n && !found; k++)
			found = !strcmp(a->v[i], b->v[k]);
		if (!found)
			return 0;
	}
	return 1;
}

static int has_type(const struct fg_ca_san_list *l, const char *type)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strncmp(l->v[i], type, strlen(type)))
			return 1;
	return 0;
}

/*
 * The CSR names what the token grants, as step-ca's JWK validators judge it
 * (403 otherwise): for each SAN type the CSR holds, exactly the token's names
 * of that type (a type it leaves out is not asked for); a CN that is empty or
 * the token's subject. The leaf gets the token's names either way.
 */
static int names_match(const struct csr *c, const struct fg_ca_token *tok, struct fg_err *err)
{
	static const char *const types[] = { "dns:", "ip:", "email:", "uri:" };
	char a[512], b[512];

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		if (!has_type(&c->sans, types[t]) ||
		    (type_within(&c->sans, &tok->sans, types[t]) &&
		     type_within(&tok->sans, &c->sans, types[t])))
			continue;
		fg_ca_san_list_text(&c->sans, a, sizeof(a));
		fg_ca_san_list_text(&tok->sans, b, sizeof(b));
		return fg_err_http(err, 403,
				   "the CSR's SANs [%.200s] are not the token's SANs [%.200s]",
				   a, b);
	}
	if (c->cn[0] && strcmp(c->cn, tok->sub))
		return fg_err_http(err, 403,
				   "the CSR's CN \"%.100s\" is not the token's subject \"%.100s\"",
				   c->cn, tok->sub);
	return 0;
}

/*
 * The leaf's [@nb, @na] from the request's "notBefore"/"notAfter" (now and
 * the provisioner's default lifetime when absent), within @p's bounds; an
 * unrequested notBefore is backdated as step-ca does. 0 or -EACCES with @err.
 */
static int sign_window(const cJSON *in, const struct fg_ca_provisioner *p, int64_t now,
		       int64_t *nb, int64_t *na, struct fg_err *err)
{
	char d1[32], d2[32];
	int has_nb, has_na;
	int64_t life;

	if (req_time(in, "notBefore", now, nb, &has_nb, err) ||
	    req_time(in, "notAfter", now, na, &has_na, err))
		return -EACCES;
	if (!has_nb)
		*nb = now;
	if (!has_na)
		*na = *nb + p->default_ms / 1000;
	life = *na - *nb;
	if (life * 1000 < p->min_ms || life * 1000 > p->max_ms || *nb > now + 86400 * 365) {
		fmt_dur(life, d1, sizeof(d1));
		fmt_dur(life * 1000 < p->min_ms ? p->min_ms / 1000 : p->max_ms / 1000, d2,
			sizeof(d2));
		/* step-ca answers an out-of-bounds duration with 403 Forbidden. */
		return fg_err_http(err, 403, "requested lifetime %s is %s the %s of %s", d1,
				   life * 1000 < p->min_ms ? "below" : "above",
				   life * 1000 < p->min_ms ? "minimum" : "maximum", d2);
	}
	if (!has_nb)
		*nb -= BACKDATE_S;
	return 0;
}

cJSON *fg_ca_handle_sign(struct fg_ca *ca, const char *body, size_t len, int *status,
			 struct fg_err *err)
{
	struct fg_ca_token tok = { 0 };
	struct csr c = { 0 };
	const cJSON *csr, *ott;
	cJSON *in, *out = NULL;
	int64_t now = fg_wall_s(), nb, na;
	X509 *leaf = NULL;
	char jp[128];

	/* cJSON would cut a string at a NUL ("ott":"a\u0000b" read as "a"): refused first. */
	if (fg_json_nul_find(body, len, jp, sizeof(jp), NULL)) {
		fg_err_http(err, 400, "the body holds a NUL (\\u0000) at %s", jp);
		return NULL;
	}
	in = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(in)) {
		fg_err_http(err, 400, "the body is not a JSON object");
		goto free_in;
	}
	csr = cJSON_GetObjectItemCaseSensitive(in, "csr");
	ott = cJSON_GetObjectItemCaseSensitive(in, "ott");
	if (!cJSON_IsString(csr) || !csr->valuestring[0]) {
		fg_err_http(err, 400, "missing \"csr\": a PEM certificate request");
		goto free_in;
	}
	if (!cJSON_IsString(ott) || !ott->valuestring[0]) {
		fg_err_http(err, 400, "missing \"ott\": a one-time token");
		goto free_in;
	}
	/* The CSR first, as step-ca's body validation: a bad one is a 400 whatever the token. */
	if (csr_read(csr->valuestring, &c, err) ||
	    fg_ca_token_check(ca, ott->valuestring, now, &tok, err) ||
	    names_match(&c, &tok, err) || sign_window(in, tok.prov, now, &nb, &na, err) ||
	    fg_ca_token_spend(ca, &tok, now, err))
		goto free_all;
	/*
	 * The subject and SANs are the token's, as step's default template (the
	 * CN left out when too long for one: RFC 5280's 64, which OpenSSL holds to).
	 */
	leaf = fg_ca_issue_leaf(ca, tok.sub, tok.gens, c.pub, nb, na, err);
	if (!leaf) {
		err->status = 500;
		goto free_all;
	}
	out = chain_response(ca, leaf);
	*status = 201;
	X509_free(leaf);
free_all:
	fg_ca_token_exit(&tok);
	csr_free(&c);
free_in:
	cJSON_Delete(in);
	return out;
}

/*
 * The client certificate of a /renew: one of our leaves, chained to our
 * roots and still valid. @cn gets its CN ("" if none). 0 or -EACCES with @err.
 */
static int renew_check(struct fg_ca *ca, const struct fg_ca_request *r, char *cn, size_t len,
		       struct fg_err *err)
{
	X509_STORE_CTX *xs;
	int e, ret = 0;

	if (!r->client)
		/* step-ca: 400 "missing client certificate" */
		return fg_err_http(err, 400,
				   "missing client certificate: /renew is authenticated by the "
				   "certificate to renew, sent as the TLS client certificate");
	xs = X509_STORE_CTX_new();
	if (!xs || !X509_STORE_CTX_init(xs, ca->store, r->client, r->client_chain)) {
		ret = fg_err_http(err, 500, "out of memory");
		goto free_xs;
	}
	X509_STORE_CTX_set_purpose(xs, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(xs) != 1) {
		e = X509_STORE_CTX_get_error(xs);
		ERR_clear_error();
		if (e == X509_V_ERR_CERT_HAS_EXPIRED)
			ret = fg_err_http(err, 401,
					  "the client certificate has expired: renew it "
					  "before its notAfter, or enroll again with a token");
		else
			ret = fg_err_http(err, 401,
					  "the client certificate was not issued by this CA: %s "
					  "(depth %d)",
					  X509_verify_cert_error_string(e),
					  X509_STORE_CTX_get_error_depth(xs));
	} else if (X509_check_ca(r->client)) {
		ret = fg_err_http(err, 401, "the client certificate is a CA certificate");
	} else if (fg_x509_cn(X509_get_subject_name(r->client), cn, len) == -EINVAL) {
		ret = fg_err_http(err, 400, "the client certificate's CN cannot be read as UTF-8");
	}
free_xs:
	X509_STORE_CTX_free(xs);
	return ret;
}

cJSON *fg_ca_handle_renew(struct fg_ca *ca, const struct fg_ca_request *r, int *status,
			  struct fg_err *err)
{
	GENERAL_NAMES *gens = NULL;
	EVP_PKEY *pub = NULL;
	X509 *leaf = NULL;
	cJSON *out = NULL;
	char cn[256] = "";
	int64_t now = fg_wall_s(), old_nb = 0, old_na = 0, life;

	if (renew_check(ca, r, cn, sizeof(cn), err))
		return NULL;
	gens = X509_get_ext_d2i(r->client, NID_subject_alt_name, NULL, NULL);
	pub = X509_get_pubkey(r->client);
	/*
	 * Same subject, SANs, key and lifetime, as step-ca's Rekey: notBefore
	 * backdated, notAfter = now + (old notAfter - old notBefore - backdate),
	 * so NotAfter - NotBefore is kept; within the bounds the CA allows.
	 */
	epoch_of(X509_get0_notBefore(r->client), &old_nb);
	epoch_of(X509_get0_notAfter(r->client), &old_na);
	life = old_na - old_nb - BACKDATE_S;
	if (life * 1000 > ca->renew_max_ms)
		life = ca->renew_max_ms / 1000;
	if (life * 1000 < ca->renew_min_ms)
		life = ca->renew_min_ms / 1000;
	leaf = pub ? fg_ca_issue_leaf(ca, cn, gens, pub, now - BACKDATE_S, now + life, err) : NULL;
	if (leaf) {
		out = chain_response(ca, leaf);
		*status = 201;
	} else {
		fg_err_http(err, 500, "cannot issue the renewed certificate");
	}
	X509_free(leaf);
	EVP_PKEY_free(pub);
	GENERAL_NAMES_free(gens);
	return out;
}
