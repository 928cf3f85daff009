// SPDX-License-Identifier: MIT
/*
 * OpenSSL 3 at the control process: contexts, per-connection verification,
 * peer identity. The session keys' capture and export are keys.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "control/config.h"
#include "control/ec_legacy.h"
#include "control/keys.h"
#include "control/pool.h"
#include "control/resume.h"
#include "control/tls.h"
#include "control/verify_cache.h"
#include "fedgate/err.h"
#include "fedgate/file.h"
#include "fedgate/tls13.h"
#include "fedgate/x509name.h"

const char *fg_tls_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* Fills CN, issuer CN and SANs of @leaf into @peer; @root_cn stays as the caller set it. */
static void peer_from_leaf(X509 *leaf, struct fg_peer_id *peer)
{
	GENERAL_NAMES *sans;

	fg_x509_cn(X509_get_subject_name(leaf), peer->cn, sizeof(peer->cn));
	fg_x509_cn(X509_get_issuer_name(leaf), peer->issuer_cn, sizeof(peer->issuer_cn));
	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const ASN1_IA5STRING *s;
		char(*slot)[FG_PEER_NAME_MAX];
		size_t *count;

		if (gn->type == GEN_DNS) {
			s = gn->d.dNSName;
			slot = peer->dns;
			count = &peer->n_dns;
		} else if (gn->type == GEN_URI) {
			s = gn->d.uniformResourceIdentifier;
			slot = peer->uri;
			count = &peer->n_uri;
		} else {
			peer->other_sans++;
			continue;
		}
		if (*count >= FG_PEER_SANS_MAX || s->length <= 0 ||
		    (size_t)s->length >= FG_PEER_NAME_MAX ||
		    memchr(s->data, 0, (size_t)s->length)) {
			peer->dropped_sans++;
			continue;
		}
		memcpy(slot[*count], s->data, (size_t)s->length);
		slot[*count][s->length] = '\0';
		(*count)++;
	}
	GENERAL_NAMES_free(sans);
}

int fg_tls_peer_of(X509 *leaf, STACK_OF(X509) * verified, struct fg_peer_id *peer)
{
	X509 *root;

	memset(peer, 0, sizeof(*peer));
	if (!leaf || !verified || sk_X509_num(verified) < 1)
		return -EACCES;
	peer_from_leaf(leaf, peer);
	root = sk_X509_value(verified, sk_X509_num(verified) - 1);
	fg_x509_cn(X509_get_subject_name(root), peer->root_cn, sizeof(peer->root_cn));
	return fg_x509_sha256(root, peer->root_sha256) ? -EACCES : 0;
}

int fg_tls_verify_again(struct fg_tls *t, int is_server, X509 *leaf, STACK_OF(X509) * sent,
			const char *expect_name, int64_t at, STACK_OF(X509) * *verified, char *why,
			size_t len)
{
	SSL_CTX *ctx = is_server ? t->server : t->client;
	X509_STORE_CTX *xctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int ret = -ENOMEM, err, ok;

	*verified = NULL;
	if (!xctx || !ctx || !leaf)
		goto out;
	/* What the peer sent is all a new handshake would have: only the store anchors it. */
	if (!X509_STORE_CTX_init(xctx, SSL_CTX_get_cert_store(ctx), leaf, sent))
		goto out;
	/* As ssl_verify_cert_chain() does for a handshake of this context. */
	param = X509_STORE_CTX_get0_param(xctx);
	if (!X509_STORE_CTX_set_default(xctx, is_server ? "ssl_client" : "ssl_server") ||
	    !X509_VERIFY_PARAM_set1(param, SSL_CTX_get0_param(ctx)) ||
	    (expect_name && !X509_VERIFY_PARAM_set1_host(param, expect_name, 0)))
		goto out;
	X509_VERIFY_PARAM_set_auth_level(param, SSL_CTX_get_security_level(ctx));
	X509_VERIFY_PARAM_set_time(param, (time_t)at);
	ERR_clear_error();
	ok = X509_verify_cert(xctx);
	err = X509_STORE_CTX_get_error(xctx);
	if (ok < 0 || (!ok && (!err || err == X509_V_ERR_OUT_OF_MEM)))
		goto out; /* an internal error, not a verdict: the tunnel runs on */
	if (!ok) {
		snprintf(why, len, "%s (depth %d)", X509_verify_cert_error_string(err),
			 X509_STORE_CTX_get_error_depth(xctx));
		ret = -EACCES;
		goto out;
	}
	*verified = X509_STORE_CTX_get1_chain(xctx);
	ret = *verified ? 0 : -ENOMEM;
out:
	X509_STORE_CTX_free(xctx);
	return ret;
}

int fg_tls_peer(SSL *ssl, struct fg_peer_id *peer)
{
	if (SSL_get_verify_result(ssl) != X509_V_OK) {
		memset(peer, 0, sizeof(*peer));
		return -EACCES;
	}
	return fg_tls_peer_of(SSL_get0_peer_certificate(ssl), SSL_get0_verified_chain(ssl), peer);
}

/* Remembers the first failure with the identity it concerns; the verdict stays OpenSSL's. */
static int verify_cb(int ok, X509_STORE_CTX *xctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct fg_tls_conn *st = ssl ? fg_keys_conn(ssl) : NULL;
	STACK_OF(X509) * chain;
	X509 *top;

	if (ok || !st || st->verify_error)
		return ok;
	st->verify_error = X509_STORE_CTX_get_error(xctx);
	st->verify_depth = X509_STORE_CTX_get_error_depth(xctx);
	/* Only for the log line: without memory the refusal names the address alone. */
	st->failed = calloc(1, sizeof(*st->failed));
	if (!st->failed)
		return ok;
	if (X509_STORE_CTX_get0_cert(xctx))
		peer_from_leaf(X509_STORE_CTX_get0_cert(xctx), st->failed);
	/*
	 * The root the peer claims: the issuer of the last CA certificate we
	 * could place. A lone leaf names only its issuer (issuer_cn), no root.
	 */
	st->failed->root_claimed = 1;
	chain = X509_STORE_CTX_get0_chain(xctx);
	top = chain && sk_X509_num(chain) > 1 ? sk_X509_value(chain, sk_X509_num(chain) - 1) : NULL;
	if (top)
		fg_x509_cn(X509_get_issuer_name(top), st->failed->root_cn,
			   sizeof(st->failed->root_cn));
	return ok;
}

SSL *fg_tls_conn_new(struct fg_tls *t, int is_server, int fd, const char *expect_name,
		     struct fg_tls_conn *st)
{
	SSL *ssl;
	BIO *bio;

	ssl = SSL_new(is_server ? t->server : t->client);
	if (!ssl)
		goto out;
	st->is_server = is_server;
	if (fg_keys_bind(ssl, st))
		goto free_ssl;
	bio = BIO_new(BIO_s_socket());
	if (!bio)
		goto free_ssl;
	BIO_set_fd(bio, fd, BIO_NOCLOSE);
	SSL_set_bio(ssl, bio, bio);
	if (is_server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (!SSL_set_tlsext_host_name(ssl, expect_name) || !SSL_set1_host(ssl, expect_name))
			goto free_ssl;
	}
	return ssl;
free_ssl:
	SSL_free(ssl);
out:
	return NULL;
}

static int cipher_string(const struct fg_config *cfg, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cfg->n_ciphers; i++) {
		int w = snprintf(out + used, len - used, "%s%s", i ? ":" : "",
				 fg_cipher_name(cfg->ciphers[i]));

		if (w < 0 || (size_t)w >= len - used)
			return -EINVAL;
		used += (size_t)w;
	}
	return 0;
}

/* Largest PEM file read: a chain, a key or a bundle of many roots. */
#define MAX_PEM_FILE (16 << 20)

/* What one PEM input is read through: a memory BIO and the file's text it reads. */
struct input {
	BIO *bio;
	char *text; /* owned: the file's text (may be a key), wiped when freed */
	size_t len;
};

/*
 * @in->bio over @pem, or over the text of regular file @file (fg_file_read:
 * a FIFO there is refused at once, never waited on). 0; -errno with @ferr
 * set when @file cannot be read; -ENOMEM with @ferr empty. Either way the
 * caller ends with free_input().
 */
static int open_input(struct input *in, const char *file, const char *pem, struct fg_err *ferr)
{
	int ret;

	memset(in, 0, sizeof(*in));
	if (!pem) {
		ret = fg_file_read(file, MAX_PEM_FILE, &in->text, &in->len, ferr);
		if (ret)
			return ret;
	}
	in->bio = pem ? BIO_new_mem_buf(pem, -1) : BIO_new_mem_buf(in->text, (int)in->len);
	return in->bio ? 0 : -ENOMEM;
}

static void free_input(struct input *in)
{
	BIO_free(in->bio);
	if (in->text)
		OPENSSL_cleanse(in->text, in->len);
	free(in->text);
	memset(in, 0, sizeof(*in));
}

/* What @jpath says when open_input() failed: @why, or out of memory (-ENOMEM). */
static int input_fail(struct fg_err *err, const struct fg_config *cfg, const char *jpath,
		      const struct fg_err *why)
{
	if (why->msg[0])
		return fg_conf_fail(err, cfg->path, jpath, "%s", why->msg);
	return -ENOMEM;
}

int fg_material_load_identity(struct fg_material *m, const struct fg_config *cfg,
			      const char *cert_file, const char *key_file, const char *cert_pem,
			      const char *key_pem, struct fg_err *err)
{
	struct fg_err ferr = {0};
	struct input in;
	char ebuf[256];
	X509 *x;
	int ret = 0;

	ERR_clear_error();
	if (open_input(&in, cert_file, cert_pem, &ferr)) {
		ret = input_fail(err, cfg, "$.identity.cert", &ferr);
		goto free_bio;
	}
	m->leaf = PEM_read_bio_X509_AUX(in.bio, NULL, NULL, NULL);
	if (!m->leaf) {
		ret = fg_conf_fail(err, cfg->path, "$.identity.cert",
				   "%s is not a usable PEM certificate chain: %s", cert_file,
				   fg_tls_error(ebuf, sizeof(ebuf)));
		goto free_bio;
	}
	m->chain = sk_X509_new_null();
	if (!m->chain) {
		ret = -ENOMEM;
		goto free_bio;
	}
	while ((x = PEM_read_bio_X509(in.bio, NULL, NULL, NULL)))
		if (!sk_X509_push(m->chain, x)) {
			X509_free(x);
			ret = -ENOMEM;
			goto free_bio;
		}
	/* The end of the text is the only error expected after the leaf. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE && ERR_peek_last_error()) {
		ret = fg_conf_fail(err, cfg->path, "$.identity.cert",
				   "%s is not a usable PEM certificate chain: %s", cert_file,
				   fg_tls_error(ebuf, sizeof(ebuf)));
		goto free_bio;
	}
	ERR_clear_error();
	free_input(&in);
	if (open_input(&in, key_file, key_pem, &ferr)) {
		ret = input_fail(err, cfg, "$.identity.key", &ferr);
		goto free_bio;
	}
	m->key = PEM_read_bio_PrivateKey(in.bio, NULL, NULL, NULL);
	if (!m->key) {
		ret = fg_conf_fail(err, cfg->path, "$.identity.key",
				   "%s is not a usable PEM private key (or does not match %s): %s",
				   key_file, cert_file, fg_tls_error(ebuf, sizeof(ebuf)));
		goto free_bio;
	}
	if (X509_check_private_key(m->leaf, m->key) != 1)
		ret = fg_conf_fail(err, cfg->path, "$.identity.key",
				   "the key in %s does not match the certificate in %s", key_file,
				   cert_file);
free_bio:
	free_input(&in);
	ERR_clear_error();
	return ret;
}

/* An empty bundle trusts nothing and is an error. */
int fg_material_load_trust(struct fg_material *m, const struct fg_config *cfg, const char *file,
			   const char *pem, struct fg_err *err)
{
	STACK_OF(X509_INFO) *infos = NULL;
	struct fg_err ferr = {0};
	struct input in;
	char ebuf[256];
	int ret = 0;

	ERR_clear_error();
	if (open_input(&in, file, pem, &ferr)) {
		ret = input_fail(err, cfg, "$.identity.trust", &ferr);
		goto free_bio;
	}
	infos = PEM_X509_INFO_read_bio(in.bio, NULL, NULL, NULL);
	if (!infos) {
		ret = fg_conf_fail(err, cfg->path, "$.identity.trust",
				   "%s is not a PEM certificate bundle: %s", file,
				   fg_tls_error(ebuf, sizeof(ebuf)));
		goto free_bio;
	}
	m->roots = sk_X509_new_null();
	if (!m->roots) {
		ret = -ENOMEM;
		goto free_infos;
	}
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);

		if (!xi->x509)
			continue;
		if (!sk_X509_push(m->roots, xi->x509)) {
			ret = -ENOMEM;
			goto free_infos;
		}
		xi->x509 = NULL;
	}
	if (sk_X509_num(m->roots) == 0)
		ret = fg_conf_fail(err, cfg->path, "$.identity.trust",
				   "%s holds no certificate: an empty bundle trusts no peer", file);
free_infos:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
free_bio:
	free_input(&in);
	ERR_clear_error();
	return ret;
}

void fg_material_free(struct fg_material *m)
{
	if (!m)
		return;
	X509_free(m->leaf);
	sk_X509_pop_free(m->chain, X509_free);
	EVP_PKEY_free(m->key);
	sk_X509_pop_free(m->roots, X509_free);
	memset(m, 0, sizeof(*m));
}

void fg_cert_describe(X509 *x, char *out, size_t len)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	BIGNUM *bn = serial ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	char cn[FG_PEER_NAME_MAX], until[64] = "?";
	BIO *mem = BIO_new(BIO_s_mem());

	fg_x509_cn(X509_get_subject_name(x), cn, sizeof(cn));
	if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(x))) {
		int n = BIO_read(mem, until, sizeof(until) - 1);

		until[n > 0 ? n : 0] = '\0';
	}
	snprintf(out, len, "%s, serial %s, valid until %s", cn[0] ? cn : "(no CN)", hex ? hex : "?",
		 until);
	BIO_free(mem);
	OPENSSL_free(hex);
	BN_free(bn);
}

static SSL_CTX *ctx_new(const struct fg_config *cfg, int is_server, const struct fg_material *m,
			struct fg_err *err)
{
	char ciphers[256], ebuf[256];
	X509_STORE *store;
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		fg_conf_fail(err, cfg->path, "$", "SSL_CTX_new: %s",
			     fg_tls_error(ebuf, sizeof(ebuf)));
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    cipher_string(cfg, ciphers, sizeof(ciphers)) ||
	    !SSL_CTX_set_ciphersuites(ctx, ciphers)) {
		fg_conf_fail(err, cfg->path, "$.tls", "cannot set TLS 1.3 and ciphers: %s",
			     fg_tls_error(ebuf, sizeof(ebuf)));
		goto free_ctx;
	}
	/*
	 * tls.ciphers is a preference order: as a server, the first of ours the
	 * client offers wins, not the client's first. tls.groups: only these
	 * key exchanges (no finite-field ones), in their order.
	 */
	if (is_server) {
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
		fg_pool_ctx(ctx); /* the warm pool's ALPN mark (pool.h) */
	}
	if (!SSL_CTX_set1_groups_list(ctx, cfg->groups)) {
		fg_conf_fail(err, cfg->path, "$.tls.groups", "cannot offer %s: %s", cfg->groups,
			     fg_tls_error(ebuf, sizeof(ebuf)));
		goto free_ctx;
	}
	/* Keys go to the data plane: OpenSSL must not buffer records or set up kTLS itself. */
	SSL_CTX_set_read_ahead(ctx, 0);
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* No tickets unless a tunnel's connection asks (control/resume.h). */
	if (fg_resume_ctx_setup(ctx, is_server)) {
		fg_conf_fail(err, cfg->path, "$", "out of memory");
		goto free_ctx;
	}
	fg_keys_capture(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	/* tls.verify_depth: CA certificates between a peer's leaf and its trust anchor. */
	SSL_CTX_set_verify_depth(ctx, cfg->verify_depth);
	/* tls.verify_cache: the same peer chain is not verified again on each connection. */
	if (fg_vcache_attach(ctx, (unsigned int)cfg->verify_cache)) {
		fg_conf_fail(err, cfg->path, "$.tls.verify_cache", "out of memory");
		goto free_ctx;
	}

	if (SSL_CTX_use_certificate(ctx, m->leaf) != 1 ||
	    (m->chain && SSL_CTX_set1_chain(ctx, m->chain) != 1)) {
		fg_conf_fail(err, cfg->path, "$.identity.cert", "%s: cannot use the chain: %s",
			     cfg->cert_file, fg_tls_error(ebuf, sizeof(ebuf)));
		goto free_ctx;
	}
	if (SSL_CTX_use_PrivateKey(ctx, m->key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		fg_conf_fail(err, cfg->path, "$.identity.key",
			     "the key in %s does not match the certificate in %s", cfg->key_file,
			     cfg->cert_file);
		goto free_ctx;
	}
	store = SSL_CTX_get_cert_store(ctx);
	for (int i = 0; i < sk_X509_num(m->roots); i++) {
		if (!X509_STORE_add_cert(store, sk_X509_value(m->roots, i))) {
			fg_conf_fail(err, cfg->path, "$.identity.trust", "%s",
				     fg_tls_error(ebuf, sizeof(ebuf)));
			goto free_ctx;
		}
	}
	return ctx;
free_ctx:
	SSL_CTX_free(ctx);
out:
	ERR_clear_error();
	return NULL;
}

int fg_tls_build(struct fg_tls *t, const struct fg_config *cfg, const struct fg_material *m,
		 struct fg_err *err)
{
	int ret = 0;

	memset(t, 0, sizeof(*t));
	if (fg_keys_init())
		return -ENOMEM;
	/* Before the peers' certificates are parsed: it decides how their keys are decoded. */
	if (fg_ec_legacy_set(cfg->ec_legacy_decode))
		return fg_conf_fail(err, cfg->path, "$.tls.ec_legacy_decode", "out of memory");
	if (!m->leaf || !m->key || sk_X509_num(m->roots) < 1)
		return fg_conf_fail(err, cfg->path, "$.identity", "no %s yet",
				    m->leaf && m->key ? "trust bundle" : "certificate and key");
	t->server = ctx_new(cfg, 1, m, err);
	if (!t->server) {
		ret = -EINVAL;
		goto out;
	}
	t->client = ctx_new(cfg, 0, m, err);
	if (!t->client) {
		ret = -EINVAL;
		goto free_server;
	}
	t->n_roots = sk_X509_num(m->roots);
	return 0;
free_server:
	SSL_CTX_free(t->server);
	t->server = NULL;
out:
	return ret;
}

int fg_tls_share(struct fg_tls *dst, const struct fg_tls *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src->server && !SSL_CTX_up_ref(src->server))
		return -ENOMEM;
	dst->server = src->server;
	if (src->client && !SSL_CTX_up_ref(src->client)) {
		fg_tls_exit(dst);
		return -ENOMEM;
	}
	dst->client = src->client;
	dst->n_roots = src->n_roots;
	return 0;
}

void fg_tls_exit(struct fg_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->server);
	SSL_CTX_free(t->client);
	memset(t, 0, sizeof(*t));
}
