// SPDX-License-Identifier: MIT
/* The step-ca API over https.c: sign, enroll, renew, federation and roots; CSRs and tokens. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "control/ca/ca.h"
#include "control/ca/client.h"
#include "control/ca/jwe.h"
#include "control/ca/jwk.h"
#include "control/ca/jwt.h"
#include "control/ca/password.h"
#include "fedgate/x509name.h"

/* Turns a non-@want answer into an error that carries the CA's own message. */
static int answer_status(struct fg_ca_client *c, const char *what, int status, int want,
			 const char *resp, struct fg_err *err)
{
	cJSON *o;
	const cJSON *m;

	if (status == want)
		return 0;
	o = cJSON_Parse(resp);
	m = cJSON_GetObjectItemCaseSensitive(o, "message");
	fg_err_set(err, -EACCES, "CA %s: %s: %d %s", c->url, what, status,
		   cJSON_IsString(m) ? m->valuestring : "(no message)");
	err->status = status;
	cJSON_Delete(o);
	return -EACCES;
}

/* The certificates of a {"crts":[...]} or {"certChain":[...]} answer as one checked PEM text. */
static int pem_list(struct fg_ca_client *c, const char *what, const char *resp, const char *key,
		    const char *fallback1, const char *fallback2, char **out,
		    struct fg_err *err)
{
	cJSON *o = cJSON_Parse(resp);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, key), *it;
	const char *parts[2] = { NULL, NULL };
	size_t total = 1, used = 0, n = 0;
	char *text = NULL;
	int ret = -EPROTO;

	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach(it, list)
		{
			if (!cJSON_IsString(it))
				goto bad;
			total += strlen(it->valuestring) + 1;
			n++;
		}
	} else if (fallback1) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, fallback1);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, fallback2);

		if (!cJSON_IsString(a) || !cJSON_IsString(b))
			goto bad;
		parts[0] = a->valuestring;
		parts[1] = b->valuestring;
		total += strlen(parts[0]) + strlen(parts[1]) + 2;
		n = 2;
	}
	if (!n)
		goto bad;
	text = malloc(total);
	if (!text) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	text[0] = '\0';
#define APPEND(s)                                                                                  \
	do {                                                                                       \
		size_t l_ = strlen(s);                                                             \
		memcpy(text + used, s, l_);                                                        \
		used += l_;                                                                        \
		if (l_ && text[used - 1] != '\n')                                                  \
			text[used++] = '\n';                                                       \
		text[used] = '\0';                                                                 \
	} while (0)
	if (parts[0]) {
		APPEND(parts[0]);
		APPEND(parts[1]);
	} else {
		cJSON_ArrayForEach(it, list)
		APPEND(it->valuestring);
	}
#undef APPEND
	{
		struct fg_err e = { 0 };
		STACK_OF(X509) *sk = fg_pki_certs_from_pem(text, used, &e);

		if (!sk || (size_t)sk_X509_num(sk) != n) {
			sk_X509_pop_free(sk, X509_free);
			goto bad;
		}
		sk_X509_pop_free(sk, X509_free);
	}
	*out = text;
	text = NULL;
	ret = 0;
	goto out;
bad:
	ret = fg_err_set(err, -EPROTO, "CA %s: %s: the answer has no valid \"%s\" certificates",
			 c->url, what, key);
out:
	free(text);
	cJSON_Delete(o);
	return ret;
}

/* @chain's leaf must hold @key's public half. */
static int check_leaf_key(struct fg_ca_client *c, const char *chain, EVP_PKEY *key,
			  struct fg_err *err)
{
	struct fg_err e = { 0 };
	STACK_OF(X509) *sk = fg_pki_certs_from_pem(chain, strlen(chain), &e);
	int ok = sk && X509_check_private_key(sk_X509_value(sk, 0), key) == 1;

	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	return ok ? 0
		  : fg_err_set(err, -EPROTO, "CA %s: the certificate returned is not for our key",
			       c->url);
}

int fg_ca_sign(struct fg_ca_client *c, const char *csr_pem, const char *ott,
	       const char *not_before, const char *not_after, EVP_PKEY *key, char **chain_pem,
	       struct fg_err *err)
{
	cJSON *o = cJSON_CreateObject();
	char *body = NULL, *resp = NULL;
	int status = 0, ret;

	*chain_pem = NULL;
	if (!o || !cJSON_AddStringToObject(o, "csr", csr_pem) ||
	    !cJSON_AddStringToObject(o, "ott", ott) ||
	    (not_before && !cJSON_AddStringToObject(o, "notBefore", not_before)) ||
	    (not_after && !cJSON_AddStringToObject(o, "notAfter", not_after)) ||
	    !(body = cJSON_PrintUnformatted(o))) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = fg_ca_request(c, "POST", "/1.0/sign", body, NULL, NULL, NULL, &status, &resp, err);
	if (!ret)
		ret = answer_status(c, "POST /1.0/sign", status, 201, resp, err);
	if (!ret)
		ret = pem_list(c, "POST /1.0/sign", resp, "certChain", "crt", "ca", chain_pem, err);
	if (!ret && key && check_leaf_key(c, *chain_pem, key, err)) {
		free(*chain_pem);
		*chain_pem = NULL;
		ret = -EPROTO;
	}
out:
	free(resp);
	cJSON_free(body);
	cJSON_Delete(o);
	return ret;
}

int fg_ca_csr(EVP_PKEY *key, const char *subject, const char *const *sans, size_t n_sans,
	      char **csr_pem, struct fg_err *err)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *gens = NULL;
	X509_EXTENSION *ext = NULL;
	X509_NAME *name;
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ret = -EINVAL;

	*csr_pem = NULL;
	if (!req || !exts || !mem)
		goto fail;
	name = X509_REQ_get_subject_name(req);
	/* A subject too long for a CN (a SPIFFE ID, say) is carried by the SANs alone. */
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    ((fg_pki_cn_fits(subject) || !n_sans) &&
	     !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
					 (const unsigned char *)subject, -1, -1, 0)) ||
	    !X509_REQ_set_pubkey(req, key))
		goto fail;
	if (n_sans) {
		gens = fg_ca_sans(sans, n_sans, err);
		if (!gens)
			goto out;
		ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
		if (!ext || !sk_X509_EXTENSION_push(exts, ext) ||
		    !X509_REQ_add_extensions(req, exts))
			goto fail;
		ext = NULL; /* owned by exts */
	}
	if (!X509_REQ_sign(req, key, EVP_sha256()) || !PEM_write_bio_X509_REQ(mem, req))
		goto fail;
	len = BIO_get_mem_data(mem, &data);
	*csr_pem = strndup(data, (size_t)len);
	ret = *csr_pem ? 0 : fg_err_set(err, -ENOMEM, "out of memory");
	goto out;
fail:
	ret = fg_err_set(err, -EINVAL, "cannot make the certificate request for '%.200s'",
			 subject);
	fg_err_ssl(err);
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	BIO_free(mem);
	return ret;
}

/* @name is one of the @n strings of @list. */
static int listed(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, list[i]))
			return 1;
	return 0;
}

/*
 * What a step-ca issues for a token: CN = "sub", SANs = "sans" (else [sub]), whatever the
 * CSR asks. So the token must be for @subject and, when @sans are given, for exactly those
 * (as sets): anything else would be issued, then refused by the caller, and a one-time token
 * spent for nothing. Checked before the request; @names gets the token's SANs.
 */
static int token_names(const cJSON *claims, const char *subject, const char *const *sans,
		       size_t n_sans, const char **names, size_t *n_names, struct fg_err *err)
{
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(claims, "sans"), *it;
	size_t n = 0;

	if (!cJSON_IsString(sub) || strcmp(sub->valuestring, subject))
		return fg_err_set(err, -EINVAL,
				  "the token is for '%.200s', not '%.200s': not spending it",
				  cJSON_IsString(sub) ? sub->valuestring : "(no sub)", subject);
	cJSON_ArrayForEach(it, list)
	{
		if (!cJSON_IsString(it) || n == 64)
			return fg_err_set(err, -EINVAL, "the token's \"sans\" are not at most 64 "
					  "strings: not spending it");
		names[n++] = it->valuestring;
	}
	if (!n)
		names[n++] = subject;
	*n_names = n;
	for (size_t i = 0; sans && i < n; i++)
		if (!listed(names[i], sans, n_sans))
			return fg_err_set(err, -EINVAL,
					  "the token names '%.200s', which is not one of the SANs "
					  "asked for: not spending it", names[i]);
	for (size_t i = 0; sans && i < n_sans; i++)
		if (!listed(sans[i], names, n))
			return fg_err_set(err, -EINVAL,
					  "the token does not name '%.200s', one of the SANs asked "
					  "for: not spending it", sans[i]);
	return 0;
}

int fg_ca_enroll(struct fg_ca_client *c, const char *subject, const char *const *sans,
		 size_t n_sans, const char *ott, const char *not_before, const char *not_after,
		 char **key_out, char **chain_pem, struct fg_err *err)
{
	const char *names[64];
	size_t n_names = 0;
	cJSON *claims = NULL;
	EVP_PKEY *key = NULL;
	char *csr = NULL;
	int ret;

	*key_out = *chain_pem = NULL;
	ret = fg_jwt_decode(ott, NULL, &claims, err);
	if (ret)
		return ret;
	ret = token_names(claims, subject, sans, n_sans, names, &n_names, err);
	if (ret)
		goto out;
	key = fg_pki_keygen();
	if (!key) {
		ret = fg_err_set(err, -ENOMEM, "cannot generate a key");
		goto out;
	}
	/* As `step ca certificate`: the CSR asks for the token's SANs. */
	ret = fg_ca_csr(key, subject, names, n_names, &csr, err);
	if (!ret)
		ret = fg_ca_sign(c, csr, ott, not_before, not_after, key, chain_pem, err);
	if (!ret) {
		*key_out = fg_pki_key_pem(key);
		if (!*key_out) {
			free(*chain_pem);
			*chain_pem = NULL;
			ret = fg_err_set(err, -ENOMEM, "out of memory");
		}
	}
out:
	free(csr);
	EVP_PKEY_free(key);
	cJSON_Delete(claims);
	return ret;
}

int fg_ca_renew(struct fg_ca_client *c, const char *chain_pem, EVP_PKEY *key, char **new_chain,
		struct fg_err *err)
{
	STACK_OF(X509) *sk = fg_pki_certs_from_pem(chain_pem, strlen(chain_pem), err);
	X509 *leaf;
	char *resp = NULL;
	int status = 0, ret;

	*new_chain = NULL;
	if (!sk)
		return fg_err_set(err, -EINVAL, "the certificate to renew: %s", err->msg);
	leaf = sk_X509_shift(sk);
	ret = fg_ca_request(c, "POST", "/1.0/renew", NULL, leaf, sk, key, &status, &resp, err);
	if (!ret)
		ret = answer_status(c, "POST /1.0/renew", status, 201, resp, err);
	if (!ret)
		ret = pem_list(c, "POST /1.0/renew", resp, "certChain", "crt", "ca", new_chain,
			       err);
	if (!ret && check_leaf_key(c, *new_chain, key, err)) {
		free(*new_chain);
		*new_chain = NULL;
		ret = -EPROTO;
	}
	free(resp);
	X509_free(leaf);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

static int get_crts(struct fg_ca_client *c, const char *path, char **bundle,
		    struct fg_err *err)
{
	char what[64], *resp = NULL;
	int status = 0, ret;

	*bundle = NULL;
	snprintf(what, sizeof(what), "GET %s", path);
	ret = fg_ca_request(c, "GET", path, NULL, NULL, NULL, NULL, &status, &resp, err);
	/* step-ca answers 201 here; a 200 is taken too. */
	if (!ret && status == 200)
		status = 201;
	if (!ret)
		ret = answer_status(c, what, status, 201, resp, err);
	if (!ret)
		ret = pem_list(c, what, resp, "crts", NULL, NULL, bundle, err);
	free(resp);
	return ret;
}

int fg_ca_federation(struct fg_ca_client *c, char **bundle_pem, struct fg_err *err)
{
	return get_crts(c, "/federation", bundle_pem, err);
}

int fg_ca_roots(struct fg_ca_client *c, char **bundle_pem, struct fg_err *err)
{
	return get_crts(c, "/roots", bundle_pem, err);
}

/* GET @path: its JSON answer (status 200) in @out, the caller's to free. */
static int get_json(struct fg_ca_client *c, const char *path, cJSON **out, struct fg_err *err)
{
	char what[300], *resp = NULL;
	int status = 0, ret;

	*out = NULL;
	snprintf(what, sizeof(what), "GET %s", path);
	ret = fg_ca_request(c, "GET", path, NULL, NULL, NULL, NULL, &status, &resp, err);
	if (!ret)
		ret = answer_status(c, what, status, 200, resp, err);
	if (!ret && !(*out = cJSON_Parse(resp)))
		ret = fg_err_set(err, -EPROTO, "CA %s: %s: the answer is not JSON", c->url, what);
	free(resp);
	return ret;
}

/* A kid goes into a path: base64url only (RFC 7638 thumbprints are). */
#define B64URL_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/* The JWK provisioner of @list named @name (NULL: the only one) that has an encryptedKey. */
static const cJSON *pick_provisioner(struct fg_ca_client *c, const cJSON *list, const char *name,
				     struct fg_err *err)
{
	const cJSON *p, *found = NULL;
	int n = 0;

	cJSON_ArrayForEach(p, list)
	{
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(p, "name");
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(p, "key"), "kid");

		if (!cJSON_IsString(type) || strcasecmp(type->valuestring, "JWK") ||
		    !cJSON_IsString(nm) || (name && strcmp(nm->valuestring, name)) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "encryptedKey")) ||
		    !cJSON_IsString(kid) || !kid->valuestring[0] || strlen(kid->valuestring) > 64 ||
		    kid->valuestring[strspn(kid->valuestring, B64URL_CHARS)])
			continue;
		found = p;
		n++;
	}
	if (!found)
		fg_err_set(err, -ENOENT, "CA %s has no JWK provisioner %s%s%swith an encrypted key",
			   c->url, name ? "\"" : "", name ? name : "", name ? "\" " : "");
	else if (n > 1)
		fg_err_set(err, -EINVAL,
			   "CA %s has %d JWK provisioners with an encrypted key: name one with "
			   "--provisioner", c->url, n);
	return found && n == 1 ? found : NULL;
}

int fg_ca_provisioner_key(struct fg_ca_client *c, const char *name, struct fg_password *pw,
			  EVP_PKEY **key, char **prov, struct fg_err *err)
{
	cJSON *list = NULL, *ek = NULL;
	const cJSON *p, *kid, *jwe;
	EVP_PKEY *pub = NULL;
	char path[128];
	int ret;

	*key = NULL;
	*prov = NULL;
	ret = get_json(c, "/1.0/provisioners", &list, err);
	if (ret)
		return ret;
	p = pick_provisioner(c, cJSON_GetObjectItemCaseSensitive(list, "provisioners"), name,
			     err);
	if (!p) {
		ret = err->msg[0] ? -ENOENT : fg_err_set(err, -ENOENT, "no provisioner");
		goto out;
	}
	kid = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "key"), "kid");
	snprintf(path, sizeof(path), "/1.0/provisioners/%s/encrypted-key", kid->valuestring);
	ret = get_json(c, path, &ek, err);
	if (ret)
		goto out;
	jwe = cJSON_GetObjectItemCaseSensitive(ek, "key");
	pub = fg_jwk_to_pkey(cJSON_GetObjectItemCaseSensitive(p, "key"), err);
	/* The password last: nothing is asked for when the CA has no key to give. */
	if (cJSON_IsString(jwe) && pub && !(ret = fg_password_get(pw, err)))
		*key = fg_jwe_private_jwk(jwe->valuestring, pw->buf, pw->len, err);
	if (!*key) {
		if (!cJSON_IsString(jwe))
			fg_err_set(err, -EPROTO, "CA %s: GET %s: no \"key\" in the answer", c->url,
				   path);
		ret = ret ?: -EINVAL;
		goto out;
	}
	/* The key the CA checks tokens with, not only one it handed out. */
	if (EVP_PKEY_eq(pub, *key) != 1) {
		ret = fg_err_set(err, -EINVAL,
				 "CA %s: the encrypted key of provisioner kid %s is not its key",
				 c->url, kid->valuestring);
		goto out;
	}
	*prov = strdup(cJSON_GetObjectItemCaseSensitive(p, "name")->valuestring);
	ret = *prov ? 0 : fg_err_set(err, -ENOMEM, "out of memory");
out:
	if (ret) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	EVP_PKEY_free(pub);
	cJSON_Delete(ek);
	cJSON_Delete(list);
	return ret;
}

int fg_ca_token(const struct fg_ca_token_req *r, char **token, struct fg_err *err)
{
	STACK_OF(X509) *roots = NULL;
	cJSON *claims = cJSON_CreateObject(), *sans;
	unsigned char rnd[32];
	char fp[65], kid[48], jti[65], aud[1100];
	int64_t now = (int64_t)time(NULL);
	size_t ul = strlen(r->ca_url);
	int ret;

	*token = NULL;
	if (!claims) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	roots = fg_pki_read_certs(r->root_file, err);
	if (!roots) {
		ret = -EINVAL;
		goto out;
	}
	if (fg_x509_sha256(sk_X509_value(roots, 0), fp) || fg_jwk_thumbprint(r->key, kid) ||
	    RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ret = fg_err_set(err, -EINVAL, "the provisioner key is not an EC P-256 key");
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	while (ul && r->ca_url[ul - 1] == '/')
		ul--;
	snprintf(aud, sizeof(aud), "%.*s/1.0/sign", (int)ul, r->ca_url);
	sans = cJSON_AddArrayToObject(claims, "sans");
	for (size_t i = 0; sans && i < r->n_sans; i++)
		cJSON_AddItemToArray(sans, cJSON_CreateString(r->sans[i]));
	if (sans && !r->n_sans)
		cJSON_AddItemToArray(sans, cJSON_CreateString(r->subject));
	if (!sans || !cJSON_AddStringToObject(claims, "aud", aud) ||
	    !cJSON_AddNumberToObject(claims, "exp",
				     (double)(now + (r->lifetime_s ? r->lifetime_s : 300))) ||
	    !cJSON_AddNumberToObject(claims, "iat", (double)now) ||
	    !cJSON_AddStringToObject(claims, "iss", r->provisioner) ||
	    !cJSON_AddStringToObject(claims, "jti", jti) ||
	    !cJSON_AddNumberToObject(claims, "nbf", (double)now) ||
	    !cJSON_AddStringToObject(claims, "sha", fp) ||
	    !cJSON_AddStringToObject(claims, "sub", r->subject)) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = fg_jwt_sign(r->key, kid, claims, token, err);
out:
	sk_X509_pop_free(roots, X509_free);
	cJSON_Delete(claims);
	return ret;
}
