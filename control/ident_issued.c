// SPDX-License-Identifier: MIT
/*
 * What a CA issued to the gateway: checked against what was asked for,
 * then written next to the files it replaces and renamed into place.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "control/ca/ca.h"
#include "control/ca/pki.h"
#include "control/ident_issued.h"
#include "control/tls.h"
#include "fedgate/log.h"
#include "fedgate/x509name.h"

/* An issued certificate must be valid now; its notBefore may be this far ahead (clock skew). */
#define ISSUED_SKEW_S 60

int64_t fg_ident_cert_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static GENERAL_NAMES *sans_of(X509 *x)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	return g ? g : sk_GENERAL_NAME_new_null();
}

/* Every name of @a is in @b. */
static int names_within(GENERAL_NAMES *a, GENERAL_NAMES *b)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(a); i++) {
		int found = 0;

		for (int k = 0; k < sk_GENERAL_NAME_num(b) && !found; k++)
			found = !GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i),
						  sk_GENERAL_NAME_value(b, k));
		if (!found)
			return 0;
	}
	return 1;
}

int fg_ident_issued_verify(const struct fg_ca_identity *ca, X509 *current, X509 *leaf,
			   STACK_OF(X509) * chain, char *why, size_t len)
{
	int64_t now = (int64_t)time(NULL), nb, na;
	GENERAL_NAMES *want = NULL, *got = NULL;
	char want_cn[1024] = "", got_cn[1024]; /* a URI subject may be long */
	struct fg_err cerr = {0};
	X509_STORE_CTX *xctx = NULL;
	STACK_OF(X509) *roots = NULL;
	X509_STORE *store = NULL;
	int ret = -EINVAL;

	nb = fg_ident_cert_time(X509_get0_notBefore(leaf));
	na = fg_ident_cert_time(X509_get0_notAfter(leaf));
	if (!nb || !na || nb > now + ISSUED_SKEW_S || now >= na) {
		snprintf(why, len,
			 "it is not valid now (notBefore %lld, notAfter %lld, now %lld, Unix "
			 "time)",
			 (long long)nb, (long long)na, (long long)now);
		return -EINVAL;
	}
	store = X509_STORE_new();
	xctx = X509_STORE_CTX_new();
	/* Read as every PEM file is (fg_file_read): a FIFO at the path never blocks the loop. */
	roots = store && xctx ? fg_pki_read_certs(ca->ca.root, &cerr) : NULL;
	for (int i = 0; roots && i < sk_X509_num(roots); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(roots, i)))
			goto no_root;
	if (!roots || !X509_STORE_CTX_init(xctx, store, leaf, chain)) {
	no_root:
		snprintf(why, len, "cannot load the pinned root %s", ca->ca.root);
		goto free_store;
	}
	if (X509_verify_cert(xctx) != 1) {
		snprintf(why, len, "it does not chain to the pinned root %s: %s", ca->ca.root,
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(xctx)));
		goto free_store;
	}
	if (!current) {
		if (fg_pki_cn_fits(ca->subject) || !ca->n_sans)
			snprintf(want_cn, sizeof(want_cn), "%s", ca->subject);
		/* No SANs in the config: the token's, which the CA checks against it. */
		want = ca->n_sans ? fg_ca_sans((const char *const *)ca->sans, ca->n_sans, &cerr)
				  : NULL;
		if (ca->n_sans && !want) {
			snprintf(why, len, "cannot parse the configured SANs: %.512s", cerr.msg);
			goto free_store;
		}
	} else {
		fg_x509_cn(X509_get_subject_name(current), want_cn, sizeof(want_cn));
		want = sans_of(current);
	}
	got = sans_of(leaf);
	if (fg_x509_cn(X509_get_subject_name(leaf), got_cn, sizeof(got_cn)) == -EINVAL) {
		snprintf(why, len, "its subject CN cannot be read as UTF-8");
		goto free_names;
	}
	/*
	 * A subject too long for a CN was asked for without one; fedgate's CA leaves the CN out,
	 * step-ca puts the token's sub there whatever its length: either is what was asked for.
	 */
	if (strcmp(want_cn, got_cn) && (current || !ca->n_sans || fg_pki_cn_fits(ca->subject) ||
					strcmp(ca->subject, got_cn))) {
		snprintf(why, len, "its subject CN is '%s', not the '%s' asked for", got_cn,
			 want_cn);
		goto free_names;
	}
	if (want && (!got || !names_within(want, got) || !names_within(got, want))) {
		snprintf(why, len, "its SANs are not the ones asked for");
		goto free_names;
	}
	ret = 0;
free_names:
	GENERAL_NAMES_free(want);
	GENERAL_NAMES_free(got);
free_store:
	X509_STORE_CTX_free(xctx);
	X509_STORE_free(store);
	sk_X509_pop_free(roots, X509_free);
	return ret;
}

static int path_with(char *buf, size_t len, const char *path, const char *suffix)
{
	return snprintf(buf, len, "%s%s", path, suffix) >= (int)len ? -ENAMETOOLONG : 0;
}

/*
 * Both go to temporary files first; the key being replaced is kept as
 * KEY.prev; the key and then the certificate are renamed into place, and
 * when the certificate cannot be, KEY.prev goes back. A crash between the
 * two renames leaves KEY.prev matching CERT, which the next start picks up
 * (fg_ident_issued_recover_key()).
 */
int fg_ident_issued_write(const struct fg_config *cfg, const char *key_pem, const char *chain_pem,
			  struct fg_err *err)
{
	const char *crt = cfg->cert_file, *key = cfg->key_file;
	char crt_new[4096], key_new[4096], key_prev[4096];
	int enroll = key_pem != NULL, had_key = 0, ret;

	if (path_with(crt_new, sizeof(crt_new), crt, ".new") ||
	    path_with(key_new, sizeof(key_new), key, ".new") ||
	    path_with(key_prev, sizeof(key_prev), key, ".prev"))
		return fg_err_set(err, -ENAMETOOLONG, "path too long: %s", crt);
	if (enroll) {
		ret = fg_pki_write_file(key_new, key_pem, strlen(key_pem), 0600, err);
		if (ret)
			return ret;
	}
	ret = fg_pki_write_file(crt_new, chain_pem, strlen(chain_pem), 0644, err);
	if (ret)
		goto unlink_key_new;
	if (enroll) {
		unlink(key_prev);
		had_key = !link(key, key_prev);
		if (!had_key && errno != ENOENT) {
			ret = fg_err_set(err, -errno, "cannot keep the previous key as %s: %s",
					 key_prev, strerror(errno));
			goto unlink_crt_new;
		}
		if (rename(key_new, key)) {
			ret = fg_err_set(err, -errno, "cannot rename %s to %s: %s", key_new, key,
					 strerror(errno));
			goto unlink_key_prev;
		}
	}
	if (rename(crt_new, crt)) {
		ret = fg_err_set(err, -errno, "cannot rename %s to %s: %s", crt_new, crt,
				 strerror(errno));
		goto restore_key;
	}
	if (had_key)
		unlink(key_prev);
	return 0;
restore_key:
	if (enroll && (had_key ? rename(key_prev, key) : unlink(key)))
		fg_warn("cannot put the previous key back in %s: %s", key, strerror(errno));
unlink_key_prev:
	if (had_key)
		unlink(key_prev);
unlink_crt_new:
	unlink(crt_new);
unlink_key_new:
	if (enroll)
		unlink(key_new);
	return ret;
}

int fg_ident_issued_recover_key(const struct fg_config *cfg, struct fg_material *m)
{
	struct fg_err err = {0};
	char prev[4096];
	int ret;

	if (path_with(prev, sizeof(prev), cfg->key_file, ".prev") || access(prev, F_OK))
		return -ENOENT;
	if (fg_material_load_identity(m, cfg, cfg->cert_file, prev, NULL, NULL, &err)) {
		fg_material_free(m);
		return -EINVAL;
	}
	if (rename(prev, cfg->key_file)) {
		ret = -errno;
		fg_material_free(m);
		return ret;
	}
	fg_warn("%s did not match %s (an interrupted enrollment): restored the previous key "
		"from %s",
		cfg->key_file, cfg->cert_file, prev);
	return 0;
}
