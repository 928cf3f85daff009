// SPDX-License-Identifier: MIT
/*
 * `fedgate ca init`: step's layout under DIR (certs/, secrets/, config/ca.json,
 * config/defaults.json), every private key encrypted with one password.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "control/ca/init.h"
#include "control/ca/jwt.h"
#include "fedgate/x509name.h"

#define CA_LIFETIME_S (10LL * 365 * 86400) /* step's default for root and intermediate */

/*
 * Creates @path with exactly @mode. A directory that exists already keeps its
 * owner's mode, unless @private: then it must be a real directory (not a
 * symlink) closed to group and others, or init stops and says so.
 */
static int mkdir_mode(const char *path, mode_t mode, int private, struct fg_err *err)
{
	struct stat st;

	if (!mkdir(path, mode)) {
		/* Ours: the exact mode, whatever the umask. */
		if (chmod(path, mode))
			return fg_err_set(err, -errno, "cannot chmod %s: %s", path,
					  strerror(errno));
		return 0;
	}
	if (errno != EEXIST)
		return fg_err_set(err, -errno, "cannot create %s: %s", path, strerror(errno));
	if (private ? lstat(path, &st) : stat(path, &st))
		return fg_err_set(err, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fg_err_set(err, -ENOTDIR, "%s exists and is not a directory", path);
	if (private && st.st_uid != geteuid())
		return fg_err_set(err, -EPERM, "%s exists and belongs to another user (uid %u)",
				  path, (unsigned int)st.st_uid);
	if (private && (st.st_mode & 077))
		return fg_err_set(err, -EPERM,
				  "%s exists with mode %04o: the private keys need a directory "
				  "only its owner can open (chmod 700 it, or remove it)",
				  path, (unsigned int)(st.st_mode & 07777));
	return 0;
}

static int write_cert(const char *path, X509 *x, struct fg_err *err)
{
	char *pem = fg_pki_cert_pem(x);
	int ret;

	if (!pem)
		return fg_err_set(err, -ENOMEM, "out of memory");
	ret = fg_pki_write_file(path, pem, strlen(pem), 0644, err);
	free(pem);
	return ret;
}

static int write_json(const char *path, cJSON *o, struct fg_err *err)
{
	char *text = cJSON_Print(o), *line = NULL;
	int ret;

	if (!text || asprintf(&line, "%s\n", text) < 0) {
		cJSON_free(text);
		return fg_err_set(err, -ENOMEM, "out of memory");
	}
	ret = fg_pki_write_file(path, line, strlen(line), 0644, err);
	free(line);
	cJSON_free(text);
	return ret;
}

/* The provisioner entry: step's JWK shape plus fedgate's "keyFile". */
static cJSON *provisioner_json(const struct fg_ca_init_opts *o, EVP_PKEY *key,
			       const char *key_file)
{
	cJSON *p = cJSON_CreateObject(), *jwk = fg_jwk_public(key);
	char kid[48];

	if (!p || !jwk || fg_jwk_thumbprint(key, kid) ||
	    !cJSON_AddStringToObject(jwk, "use", "sig") ||
	    !cJSON_AddStringToObject(jwk, "kid", kid) ||
	    !cJSON_AddStringToObject(jwk, "alg", "ES256") ||
	    !cJSON_AddStringToObject(p, "type", "JWK") ||
	    !cJSON_AddStringToObject(p, "name", o->provisioner) ||
	    !cJSON_AddItemToObject(p, "key", jwk)) {
		cJSON_Delete(jwk);
		cJSON_Delete(p);
		return NULL;
	}
	if (!cJSON_AddStringToObject(p, "keyFile", key_file)) {
		cJSON_Delete(p);
		return NULL;
	}
	return p;
}

static cJSON *ca_json(const struct fg_ca_init_opts *o, const char *dir, EVP_PKEY *prov_key)
{
	cJSON *c = cJSON_CreateObject(), *auth, *provs, *p, *dns, *tls;
	char path[PATH_MAX + 64];

	if (!c)
		return NULL;
#define PATHOF(rel) (snprintf(path, sizeof(path), "%s/%s", dir, rel), path)
	if (!cJSON_AddStringToObject(c, "root", PATHOF("certs/root_ca.crt")) ||
	    !cJSON_AddArrayToObject(c, "federatedRoots") ||
	    !cJSON_AddStringToObject(c, "crt", PATHOF("certs/intermediate_ca.crt")) ||
	    !cJSON_AddStringToObject(c, "key", PATHOF("secrets/intermediate_ca_key")) ||
	    !cJSON_AddStringToObject(c, "address", o->address) ||
	    !(dns = cJSON_AddArrayToObject(c, "dnsNames")))
		goto fail;
	for (size_t i = 0; i < o->n_dns; i++)
		if (!cJSON_AddItemToArray(dns, cJSON_CreateString(o->dns[i])))
			goto fail;
	if (!(auth = cJSON_AddObjectToObject(c, "authority")) ||
	    !(provs = cJSON_AddArrayToObject(auth, "provisioners")) ||
	    !(p = provisioner_json(o, prov_key, PATHOF("secrets/provisioner_key"))) ||
	    !cJSON_AddItemToArray(provs, p) || !(tls = cJSON_AddObjectToObject(c, "tls")) ||
	    !cJSON_AddNumberToObject(tls, "minVersion", 1.3) ||
	    !cJSON_AddNumberToObject(tls, "maxVersion", 1.3))
		goto fail;
#undef PATHOF
	return c;
fail:
	cJSON_Delete(c);
	return NULL;
}

static cJSON *defaults_json(const struct fg_ca_init_opts *o, const char *dir, X509 *root)
{
	cJSON *d = cJSON_CreateObject();
	const char *colon = strrchr(o->address, ':');
	char path[PATH_MAX + 64], url[600], fp[65];

	if (!d || fg_x509_sha256(root, fp))
		goto fail;
	snprintf(url, sizeof(url), "https://%s%s%s%s", strchr(o->dns[0], ':') ? "[" : "",
		 o->dns[0], strchr(o->dns[0], ':') ? "]" : "", colon ? colon : "");
	if (!cJSON_AddStringToObject(d, "ca-url", url))
		goto fail;
	snprintf(path, sizeof(path), "%s/config/ca.json", dir);
	if (!cJSON_AddStringToObject(d, "ca-config", path) ||
	    !cJSON_AddStringToObject(d, "fingerprint", fp))
		goto fail;
	snprintf(path, sizeof(path), "%s/certs/root_ca.crt", dir);
	if (!cJSON_AddStringToObject(d, "root", path))
		goto fail;
	return d;
fail:
	cJSON_Delete(d);
	return NULL;
}

int fg_ca_init(const struct fg_ca_init_opts *o, struct fg_password *pw, struct fg_err *err)
{
	EVP_PKEY *root_key = NULL, *int_key = NULL, *prov_key = NULL;
	X509 *root = NULL, *inter = NULL;
	cJSON *cfg = NULL, *defaults = NULL;
	char dir[PATH_MAX], path[PATH_MAX + 64], rcn[300], icn[300];
	int64_t now = (int64_t)time(NULL);
	struct fg_pki_issue req = { 0 };
	int ret;

	ret = mkdir_mode(o->dir, 0755, 0, err);
	if (ret)
		return ret;
	if (!realpath(o->dir, dir))
		return fg_err_set(err, -errno, "%s: %s", o->dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/config/ca.json", dir);
	if (access(path, F_OK) == 0)
		return fg_err_set(err, -EEXIST,
				  "%s already exists: this directory holds a CA already", path);
	/* Ask for the password before any work, and fail before writing anything. */
	ret = fg_password_get(pw, err);
	if (ret)
		return ret;
	/* secrets/ first: a refusal there leaves nothing behind. */
	snprintf(path, sizeof(path), "%s/secrets", dir);
	ret = mkdir_mode(path, 0700, 1, err);
	snprintf(path, sizeof(path), "%s/certs", dir);
	ret = ret ?: mkdir_mode(path, 0755, 0, err);
	snprintf(path, sizeof(path), "%s/config", dir);
	ret = ret ?: mkdir_mode(path, 0755, 0, err);
	if (ret)
		return ret;

	root_key = fg_pki_keygen();
	int_key = fg_pki_keygen();
	prov_key = fg_pki_keygen();
	if (!root_key || !int_key || !prov_key) {
		ret = fg_err_set(err, -ENOMEM, "cannot generate keys");
		goto out;
	}
	snprintf(rcn, sizeof(rcn), "%s Root CA", o->name);
	snprintf(icn, sizeof(icn), "%s Intermediate CA", o->name);
	req.cn = rcn;
	req.pubkey = root_key;
	req.issuer_key = root_key;
	req.not_before = now - 60;
	req.not_after = now + CA_LIFETIME_S;
	req.ca = 1;
	req.pathlen = 1;
	root = fg_pki_issue(&req, err);
	if (!root) {
		ret = -EINVAL;
		goto out;
	}
	req.cn = icn;
	req.pubkey = int_key;
	req.issuer = root;
	req.pathlen = 0;
	inter = fg_pki_issue(&req, err);
	if (!inter) {
		ret = -EINVAL;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/secrets/root_ca_key", dir);
	ret = fg_pki_write_key(path, root_key, pw, err);
	snprintf(path, sizeof(path), "%s/secrets/intermediate_ca_key", dir);
	ret = ret ?: fg_pki_write_key(path, int_key, pw, err);
	snprintf(path, sizeof(path), "%s/secrets/provisioner_key", dir);
	ret = ret ?: fg_pki_write_key(path, prov_key, pw, err);
	snprintf(path, sizeof(path), "%s/certs/root_ca.crt", dir);
	ret = ret ?: write_cert(path, root, err);
	snprintf(path, sizeof(path), "%s/certs/intermediate_ca.crt", dir);
	ret = ret ?: write_cert(path, inter, err);
	if (ret)
		goto out;
	cfg = ca_json(o, dir, prov_key);
	defaults = defaults_json(o, dir, root);
	if (!cfg || !defaults) {
		ret = fg_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/config/defaults.json", dir);
	ret = write_json(path, defaults, err);
	/* ca.json last: its presence says the CA is complete. */
	snprintf(path, sizeof(path), "%s/config/ca.json", dir);
	ret = ret ?: write_json(path, cfg, err);
out:
	cJSON_Delete(cfg);
	cJSON_Delete(defaults);
	X509_free(root);
	X509_free(inter);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(int_key);
	EVP_PKEY_free(prov_key);
	return ret;
}
