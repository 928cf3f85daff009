// SPDX-License-Identifier: MIT
/*
 * step-ca's ca.json: "root", "federatedRoots", "crt", "key", "address",
 * "dnsNames", "tls" (echoed as "tlsOptions"), "authority": {"provisioners":
 * [JWK...], "claims": {...}}, and fedgate's "requestTimeout" and
 * "usedTokensFile". Keys fedgate does not use (db, logger, ...) are ignored
 * so that the same file serves both; the ones it uses are checked.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>

#include "control/ca/ca.h"
#include "control/ca/jwt.h"
#include "fedgate/json_nul.h"
#include "fedgate/x509name.h"

#define DEFAULT_MIN_MS (5 * 60 * 1000LL)
#define DEFAULT_MAX_MS (24 * 3600 * 1000LL)
#define DEFAULT_DUR_MS (24 * 3600 * 1000LL)

static char *resolve(const struct fg_ca *ca, const char *p)
{
	char *out;

	if (p[0] == '/')
		return strdup(p);
	if (asprintf(&out, "%s/%s", ca->dir, p) < 0)
		return NULL;
	return out;
}

static int __attribute__((format(printf, 4, 5)))
fail(struct fg_ca *ca, struct fg_err *err, const char *jpath, const char *fmt, ...)
{
	char why[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return fg_err_set(err, -EINVAL, "%s: %s: %.400s", ca->path, jpath, why);
}

/* Appends the certificates of @file to @sk (deduplicated by SHA-256 when @dedup). */
static int add_certs(struct fg_ca *ca, STACK_OF(X509) *sk, const char *file, int dedup,
		     const char *jpath, struct fg_err *err)
{
	struct fg_err e = { 0 };
	STACK_OF(X509) *in;
	char *path = resolve(ca, file);
	int ret = 0;

	if (!path)
		return fg_err_set(err, -ENOMEM, "out of memory");
	in = fg_pki_read_certs(path, &e);
	free(path);
	if (!in)
		return fail(ca, err, jpath, "%s", e.msg);
	while (sk_X509_num(in) > 0) {
		X509 *x = sk_X509_shift(in);
		char fp[65], fp2[65];
		int dup = 0;

		fg_x509_sha256(x, fp);
		for (int i = 0; dedup && i < sk_X509_num(sk); i++)
			dup |= !fg_x509_sha256(sk_X509_value(sk, i), fp2) && !strcmp(fp, fp2);
		if (dup || !sk_X509_push(sk, x)) {
			X509_free(x);
			if (!dup) {
				ret = fg_err_set(err, -ENOMEM, "out of memory");
				break;
			}
		}
	}
	sk_X509_pop_free(in, X509_free);
	return ret;
}

/* A string or an array of strings (step accepts both for "root"). */
static int add_cert_list(struct fg_ca *ca, STACK_OF(X509) *sk, const cJSON *it, const char *key,
			 int required, struct fg_err *err)
{
	char jp[64];
	int ret, i = 0;
	const cJSON *e;

	snprintf(jp, sizeof(jp), "$.%s", key);
	if (!it || cJSON_IsNull(it))
		return required ? fail(ca, err, jp, "%s", "missing required key") : 0;
	if (cJSON_IsString(it))
		return add_certs(ca, sk, it->valuestring, 1, jp, err);
	if (!cJSON_IsArray(it))
		return fail(ca, err, jp, "%s", "expected a file name or a list of file names");
	cJSON_ArrayForEach(e, it)
	{
		snprintf(jp, sizeof(jp), "$.%s[%d]", key, i++);
		if (!cJSON_IsString(e) || !e->valuestring[0])
			return fail(ca, err, jp, "%s", "expected a file name");
		ret = add_certs(ca, sk, e->valuestring, 1, jp, err);
		if (ret)
			return ret;
	}
	if (required && sk_X509_num(sk) == 0)
		return fail(ca, err, jp, "%s", "no root certificate");
	return 0;
}

static int get_duration(struct fg_ca *ca, const cJSON *claims, const char *key, const char *jp0,
			int64_t *ms, struct fg_err *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(claims, key);
	char jp[128];

	if (!it)
		return 0;
	snprintf(jp, sizeof(jp), "%s.%s", jp0, key);
	if (!cJSON_IsString(it) || fg_duration_parse(it->valuestring, ms) || *ms <= 0)
		return fail(ca, err, jp, "%s",
			    "expected a positive duration such as \"24h\", \"5m\" or \"90s\"");
	return 0;
}

/* Lifetimes: provisioner claims override the authority's, which override the defaults. */
static int load_claims(struct fg_ca *ca, struct fg_ca_provisioner *p, const cJSON *global,
		       const cJSON *own, const char *jp_own, struct fg_err *err)
{
	int64_t min = -1, max = -1, def = -1;
	int ret = 0;

	if (global)
		ret = get_duration(ca, global, "minTLSCertDuration", "$.authority.claims", &min,
				   err) ?:
		      get_duration(ca, global, "maxTLSCertDuration", "$.authority.claims", &max,
				   err) ?:
		      get_duration(ca, global, "defaultTLSCertDuration", "$.authority.claims",
				   &def, err);
	if (!ret && own)
		ret = get_duration(ca, own, "minTLSCertDuration", jp_own, &min, err) ?:
		      get_duration(ca, own, "maxTLSCertDuration", jp_own, &max, err) ?:
		      get_duration(ca, own, "defaultTLSCertDuration", jp_own, &def, err);
	if (ret)
		return ret;
	if (def < 0)
		def = DEFAULT_DUR_MS;
	/* A short default (tests use "2m") lowers the unset bounds with it. */
	if (min < 0)
		min = def < DEFAULT_MIN_MS ? def : DEFAULT_MIN_MS;
	if (max < 0)
		max = def > DEFAULT_MAX_MS ? def : DEFAULT_MAX_MS;
	if (min > def || def > max)
		return fail(ca, err, own ? jp_own : "$.authority.claims", "%s",
			    "need minTLSCertDuration <= defaultTLSCertDuration <= "
			    "maxTLSCertDuration");
	p->min_ms = min;
	p->max_ms = max;
	p->default_ms = def;
	return 0;
}

static int load_provisioners(struct fg_ca *ca, const cJSON *auth, struct fg_err *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(auth, "provisioners");
	const cJSON *claims = cJSON_GetObjectItemCaseSensitive(auth, "claims");
	const cJSON *p;
	char jp[128];
	int i = 0, ret;

	if (claims && !cJSON_IsObject(claims))
		return fail(ca, err, "$.authority.claims", "%s", "expected an object");
	if (!cJSON_IsArray(list))
		return fail(ca, err, "$.authority.provisioners", "%s",
			    "missing: a list of provisioners is required");
	cJSON_ArrayForEach(p, list)
	{
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(p, "key");
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(key, "kid");
		const cJSON *kf = cJSON_GetObjectItemCaseSensitive(p, "keyFile");
		const cJSON *ek = cJSON_GetObjectItemCaseSensitive(p, "encryptedKey");
		const cJSON *own = cJSON_GetObjectItemCaseSensitive(p, "claims");
		struct fg_ca_provisioner *pv;
		struct fg_err e = { 0 };

		snprintf(jp, sizeof(jp), "$.authority.provisioners[%d]", i++);
		/* Other provisioner types (ACME, OIDC, X5C, ...) are not served by fedgate. */
		if (!cJSON_IsString(type) || strcasecmp(type->valuestring, "JWK"))
			continue;
		if (ca->n_prov == FG_CA_MAX_PROVISIONERS)
			return fail(ca, err, jp, "%s", "too many JWK provisioners");
		if (!cJSON_IsString(name) || !name->valuestring[0])
			return fail(ca, err, jp, "%s", "\"name\" must be a non-empty string");
		if (kf && !cJSON_IsString(kf))
			return fail(ca, err, jp, "%s", "\"keyFile\" must be a file name");
		if (ek && !cJSON_IsString(ek))
			return fail(ca, err, jp, "%s", "\"encryptedKey\" must be a JWE string");
		if (own && !cJSON_IsObject(own))
			return fail(ca, err, jp, "%s", "\"claims\" must be an object");
		pv = &ca->prov[ca->n_prov++];
		pv->pub = fg_jwk_to_pkey(key, &e);
		if (!pv->pub)
			return fg_err_set(err, -EINVAL, "%s: %s.key: %s", ca->path, jp, e.msg);
		if (cJSON_IsString(kid) && kid->valuestring[0])
			snprintf(pv->kid, sizeof(pv->kid), "%s", kid->valuestring);
		else if (fg_jwk_thumbprint(pv->pub, pv->kid))
			return fail(ca, err, jp, "%s", "cannot compute the key's thumbprint");
		pv->name = strdup(name->valuestring);
		pv->key_file = kf ? resolve(ca, kf->valuestring) : NULL;
		pv->encrypted_key = ek ? strdup(ek->valuestring) : NULL;
		if (!pv->name || (kf && !pv->key_file) || (ek && !pv->encrypted_key))
			return fg_err_set(err, -ENOMEM, "out of memory");
		snprintf(jp + strlen(jp), sizeof(jp) - strlen(jp), ".claims");
		ret = load_claims(ca, pv, claims, own, jp, err);
		if (ret)
			return ret;
	}
	if (!ca->n_prov)
		return fail(ca, err, "$.authority.provisioners", "%s",
			    "no JWK provisioner: tokens could not be checked");
	/* Every type, as step-ca lists them; keyFile is a path of this host, not step's. */
	ca->provisioners = cJSON_Duplicate(list, 1);
	if (!ca->provisioners)
		return fg_err_set(err, -ENOMEM, "out of memory");
	for (cJSON *it = ca->provisioners->child; it; it = it->next)
		cJSON_DeleteItemFromObjectCaseSensitive(it, "keyFile");
	/* /renew has no provisioner: the widest bounds that issued the leaf may have had. */
	{
		struct fg_ca_provisioner global = { 0 };

		ret = load_claims(ca, &global, claims, NULL, NULL, err);
		ca->renew_min_ms = global.min_ms;
		ca->renew_max_ms = global.max_ms;
		for (size_t k = 0; k < ca->n_prov; k++) {
			if (ca->prov[k].min_ms < ca->renew_min_ms)
				ca->renew_min_ms = ca->prov[k].min_ms;
			if (ca->prov[k].max_ms > ca->renew_max_ms)
				ca->renew_max_ms = ca->prov[k].max_ms;
		}
	}
	return ret;
}

/*
 * step-ca's "tlsOptions" (authority/config/tls_options.go): the "tls" object
 * of ca.json with step's defaults for what it leaves out. step-ca echoes it in
 * /sign and /renew answers; fedgate's own listener is TLS 1.3 whatever it says.
 */
static int load_tls_options(struct fg_ca *ca, const cJSON *root, struct fg_err *err)
{
	static const char *const suites[] = { "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
					      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" };
	const cJSON *tls = cJSON_GetObjectItemCaseSensitive(root, "tls"), *it;
	const cJSON *cs = cJSON_GetObjectItemCaseSensitive(tls, "cipherSuites");
	const cJSON *minv = cJSON_GetObjectItemCaseSensitive(tls, "minVersion");
	const cJSON *maxv = cJSON_GetObjectItemCaseSensitive(tls, "maxVersion");
	const cJSON *reneg = cJSON_GetObjectItemCaseSensitive(tls, "renegotiation");
	cJSON *o, *list;

	if (tls && !cJSON_IsObject(tls))
		return fail(ca, err, "$.tls", "%s", "expected an object");
	if ((cs && !cJSON_IsArray(cs)) || (minv && !cJSON_IsNumber(minv)) ||
	    (maxv && !cJSON_IsNumber(maxv)) || (reneg && !cJSON_IsBool(reneg)))
		return fail(ca, err, "$.tls", "%s",
			    "expected {\"cipherSuites\":[names],\"minVersion\":1.2,"
			    "\"maxVersion\":1.3,\"renegotiation\":false}");
	o = cJSON_CreateObject();
	ca->tls_options = o;
	list = cJSON_AddArrayToObject(o, "cipherSuites");
	if (!list)
		return fg_err_set(err, -ENOMEM, "out of memory");
	if (cs && cJSON_GetArraySize(cs) > 0) {
		cJSON_ArrayForEach(it, cs)
		{
			if (!cJSON_IsString(it))
				return fail(ca, err, "$.tls.cipherSuites", "%s",
					    "expected a list of cipher suite names");
			if (!cJSON_AddItemToArray(list, cJSON_CreateString(it->valuestring)))
				return fg_err_set(err, -ENOMEM, "out of memory");
		}
	} else {
		for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
			if (!cJSON_AddItemToArray(list, cJSON_CreateString(suites[i])))
				return fg_err_set(err, -ENOMEM, "out of memory");
	}
	if (!cJSON_AddNumberToObject(o, "minVersion",
				     minv && minv->valuedouble > 0 ? minv->valuedouble : 1.2) ||
	    !cJSON_AddNumberToObject(o, "maxVersion",
				     maxv && maxv->valuedouble > 0 ? maxv->valuedouble : 1.3) ||
	    !cJSON_AddBoolToObject(o, "renegotiation", cJSON_IsTrue(reneg)))
		return fg_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

static int load_dns(struct fg_ca *ca, const cJSON *root, struct fg_err *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "dnsNames"), *e;

	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
		return fail(ca, err, "$.dnsNames", "%s",
			    "expected a non-empty list of the CA's names (its certificate's SANs)");
	cJSON_ArrayForEach(e, list)
	{
		if (!cJSON_IsString(e) || !e->valuestring[0] ||
		    strlen(e->valuestring) > 253 || strpbrk(e->valuestring, " /\t"))
			return fail(ca, err, "$.dnsNames", "%s",
				    "each name must be a host name or an IP address");
		if (ca->n_dns == FG_CA_MAX_DNS)
			return fail(ca, err, "$.dnsNames", "%s", "too many names");
		ca->dns[ca->n_dns] = strdup(e->valuestring);
		if (!ca->dns[ca->n_dns++])
			return fg_err_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int check_intermediate(struct fg_ca *ca, struct fg_err *err)
{
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	int ok;

	if (!xs || !X509_STORE_CTX_init(xs, ca->store, ca->intermediate, NULL)) {
		X509_STORE_CTX_free(xs);
		return fg_err_set(err, -ENOMEM, "out of memory");
	}
	ok = X509_verify_cert(xs) == 1;
	if (!ok)
		fail(ca, err, "$.crt", "the intermediate does not chain to \"root\": %s",
		     X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	return ok ? 0 : -EINVAL;
}

int fg_ca_load(struct fg_ca *ca, const char *path, int want_key, struct fg_password *pw,
	       struct fg_err *err)
{
	const cJSON *crt, *key, *addr, *auth, *rt;
	struct fg_err e = { 0 };
	STACK_OF(X509) *ic = NULL;
	cJSON *root = NULL;
	char *text = NULL, *slash, *kp = NULL, jp[128];
	size_t len = 0, at = 0;
	int64_t ms;
	int ret;

	memset(ca, 0, sizeof(*ca));
	ca->path = strdup(path);
	slash = ca->path ? strrchr(ca->path, '/') : NULL;
	ca->dir = slash ? strndup(ca->path, (size_t)(slash - ca->path)) : strdup(".");
	ca->roots = sk_X509_new_null();
	ca->federation = sk_X509_new_null();
	ca->store = X509_STORE_new();
	ca->jti = fg_ca_jti_new();
	ca->request_timeout_ms = 10000;
	if (!ca->path || !ca->dir || !ca->roots || !ca->federation || !ca->store || !ca->jti) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	ret = fg_pki_read_file(path, 1 << 20, &text, &len, err);
	if (ret)
		goto fail;
	/* cJSON would cut a string at a NUL ("key":"a\u0000b" read as "a"): refused first. */
	if (fg_json_nul_find(text, len, jp, sizeof(jp), &at)) {
		ret = fail(ca, err, jp,
			   "a NUL (\\u0000) at byte %zu: not allowed, it would cut "
			   "the text short there",
			   at);
		goto fail;
	}
	root = cJSON_Parse(text);
	if (!cJSON_IsObject(root)) {
		ret = fg_err_set(err, -EINVAL, "%s: not a JSON object (error near byte %ld)", path,
				 cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - text) : 0L);
		goto fail;
	}
	ret = add_cert_list(ca, ca->roots, cJSON_GetObjectItemCaseSensitive(root, "root"), "root",
			    1, err);
	if (ret)
		goto fail;
	for (int i = 0; i < sk_X509_num(ca->roots); i++) {
		if (!X509_STORE_add_cert(ca->store, sk_X509_value(ca->roots, i)) ||
		    !X509_up_ref(sk_X509_value(ca->roots, i)) ||
		    !sk_X509_push(ca->federation, sk_X509_value(ca->roots, i))) {
			ret = fg_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	ret = add_cert_list(ca, ca->federation,
			    cJSON_GetObjectItemCaseSensitive(root, "federatedRoots"),
			    "federatedRoots", 0, err);
	if (ret)
		goto fail;
	crt = cJSON_GetObjectItemCaseSensitive(root, "crt");
	key = cJSON_GetObjectItemCaseSensitive(root, "key");
	if (!cJSON_IsString(crt) || !cJSON_IsString(key)) {
		ret = fail(ca, err, cJSON_IsString(crt) ? "$.key" : "$.crt", "%s",
			   "missing: the intermediate's certificate and key file names");
		goto fail;
	}
	kp = resolve(ca, crt->valuestring);
	ic = kp ? fg_pki_read_certs(kp, &e) : NULL;
	free(kp);
	kp = NULL;
	if (!ic) {
		ret = fail(ca, err, "$.crt", "%s", e.msg);
		goto fail;
	}
	ca->intermediate = sk_X509_shift(ic);
	ret = check_intermediate(ca, err);
	if (ret)
		goto fail;
	if (want_key) {
		kp = resolve(ca, key->valuestring);
		ca->intermediate_key = kp ? fg_pki_read_key(kp, pw, &e) : NULL;
		if (!ca->intermediate_key) {
			ret = fail(ca, err, "$.key", "%s", e.msg);
			goto fail;
		}
		if (X509_check_private_key(ca->intermediate, ca->intermediate_key) != 1) {
			ERR_clear_error();
			ret = fail(ca, err, "$.key", "%s",
				   "the key does not match the intermediate certificate in \"crt\"");
			goto fail;
		}
	}
	addr = cJSON_GetObjectItemCaseSensitive(root, "address");
	if (!cJSON_IsString(addr) || !addr->valuestring[0]) {
		ret = fail(ca, err, "$.address", "%s", "missing: \"host:port\" to listen on");
		goto fail;
	}
	ca->address = strdup(addr->valuestring);
	ret = ca->address ? load_dns(ca, root, err) : -ENOMEM;
	if (ret)
		goto fail;
	rt = cJSON_GetObjectItemCaseSensitive(root, "requestTimeout");
	if (rt) {
		if (!cJSON_IsString(rt) || fg_duration_parse(rt->valuestring, &ms) || ms < 100 ||
		    ms > 600000) {
			ret = fail(ca, err, "$.requestTimeout", "%s",
				   "expected a duration between \"100ms\" and \"10m\"");
			goto fail;
		}
		ca->request_timeout_ms = (int)ms;
	}
	rt = cJSON_GetObjectItemCaseSensitive(root, "usedTokensFile");
	if (rt && (!cJSON_IsString(rt) || !rt->valuestring[0])) {
		ret = fail(ca, err, "$.usedTokensFile", "%s", "expected a file name");
		goto fail;
	}
	ca->jti_path = resolve(ca, rt ? rt->valuestring : "used_tokens");
	if (!ca->jti_path) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	ret = load_tls_options(ca, root, err);
	if (ret)
		goto fail;
	auth = cJSON_GetObjectItemCaseSensitive(root, "authority");
	if (!cJSON_IsObject(auth)) {
		ret = fail(ca, err, "$.authority", "%s", "missing: an object with \"provisioners\"");
		goto fail;
	}
	ret = load_provisioners(ca, auth, err);
	if (ret)
		goto fail;
	free(kp);
	sk_X509_pop_free(ic, X509_free);
	cJSON_Delete(root);
	free(text);
	return 0;
fail:
	free(kp);
	sk_X509_pop_free(ic, X509_free);
	cJSON_Delete(root);
	free(text);
	fg_ca_free(ca);
	return ret ? ret : -EINVAL;
}

void fg_ca_free(struct fg_ca *ca)
{
	if (!ca)
		return;
	free(ca->path);
	free(ca->dir);
	sk_X509_pop_free(ca->roots, X509_free);
	sk_X509_pop_free(ca->federation, X509_free);
	X509_free(ca->intermediate);
	EVP_PKEY_free(ca->intermediate_key); /* EVP_PKEY_free cleanses the private key */
	X509_STORE_free(ca->store);
	free(ca->address);
	for (size_t i = 0; i < ca->n_dns; i++)
		free(ca->dns[i]);
	for (size_t i = 0; i < ca->n_prov; i++) {
		free(ca->prov[i].name);
		free(ca->prov[i].key_file);
		free(ca->prov[i].encrypted_key);
		EVP_PKEY_free(ca->prov[i].pub);
	}
	fg_ca_jti_free(ca->jti);
	free(ca->jti_path);
	cJSON_Delete(ca->tls_options);
	cJSON_Delete(ca->provisioners);
	memset(ca, 0, sizeof(*ca));
}
