// SPDX-License-Identifier: MIT
/*
 * The CA's HTTP routes, step-ca's paths, status codes and JSON shapes: the
 * small read-only endpoints here, /sign and /renew in issuance.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>

#include "control/ca/ca.h"
#include "control/ca/issuance.h"
#include "fedgate/x509name.h"

#ifndef FEDGATE_VERSION
#define FEDGATE_VERSION "0.1.0"
#endif

/* {"crts": [PEM...]} of @sk, as step-ca's /roots and /federation. */
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

/* /root/SHA256: {"ca": PEM} of our root with that fingerprint, or a 404 in @err. */
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

/* /provisioners: all of them, as step-ca lists them, on one page (no "limit" or "cursor"). */
static cJSON *provisioners(struct fg_ca *ca)
{
	cJSON *o = cJSON_CreateObject(), *list = cJSON_Duplicate(ca->provisioners, 1);

	if (!o || !list || !cJSON_AddItemToObject(o, "provisioners", list)) {
		cJSON_Delete(list);
		cJSON_Delete(o);
		return NULL;
	}
	if (!cJSON_AddStringToObject(o, "nextCursor", "")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/*
 * /provisioners/KID/encrypted-key: {"key": JWE} of the JWK provisioner whose kid is @kid
 * (the step CLI decrypts it with the provisioner's password to mint a token), or a 404 in
 * @err when there is none or it has no "encryptedKey" (fedgate's own init keeps the key in a
 * file: keyFile).
 */
static cJSON *encrypted_key(struct fg_ca *ca, const char *kid, size_t len, struct fg_err *err)
{
	cJSON *o;

	for (size_t i = 0; i < ca->n_prov; i++) {
		if (strlen(ca->prov[i].kid) != len || strncmp(ca->prov[i].kid, kid, len) ||
		    !ca->prov[i].encrypted_key)
			continue;
		o = cJSON_CreateObject();
		if (o && !cJSON_AddStringToObject(o, "key", ca->prov[i].encrypted_key)) {
			cJSON_Delete(o);
			o = NULL;
		}
		return o;
	}
	fg_err_http(err, 404, "no JWK provisioner with kid %.64s and an encryptedKey here", kid);
	return NULL;
}

/* /provisioners/KID/encrypted-key: the length of KID, or 0 if @route is not that. */
static size_t encrypted_key_route(const char *route)
{
	const char *tail = "/encrypted-key";
	size_t n = strlen(route), t = strlen(tail), k;

	if (strncmp(route, "/provisioners/", 14) || n < 14 + t || strcmp(route + n - t, tail))
		return 0;
	k = n - t - 14;
	return k && !memchr(route + 14, '/', k) ? k : 0;
}

/* step-ca's error shape: {"status": N, "message": "..."}; malloc'd, or NULL. */
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
	size_t rlen, klen;
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
	} else if (!strcmp(route, "/provisioners") && get) {
		out = provisioners(ca);
	} else if ((klen = encrypted_key_route(route)) && get) {
		out = encrypted_key(ca, route + 14, klen, &err);
	} else if (!strcmp(route, "/sign") && post) {
		out = fg_ca_handle_sign(ca, req->body, req->body_len, status, &err);
	} else if (!strcmp(route, "/renew") && post) {
		out = fg_ca_handle_renew(ca, req, status, &err);
	} else if (!strcmp(route, "/health") || !strcmp(route, "/version") ||
		   !strcmp(route, "/roots") || !strcmp(route, "/roots.pem") ||
		   !strcmp(route, "/federation") || !strncmp(route, "/root/", 6) ||
		   !strcmp(route, "/sign") || !strcmp(route, "/renew") ||
		   !strcmp(route, "/provisioners") || encrypted_key_route(route)) {
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
