// SPDX-License-Identifier: MIT
/* Keys and certificates at rest, and as PEM text: see pki.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "control/ca/pki.h"

/* --- keys ----------------------------------------------------------------------------------- */

EVP_PKEY *fg_pki_keygen(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/*
 * PBKDF2-HMAC-SHA256 iterations for keys at rest: OWASP's 2023 figure for
 * PBKDF2-HMAC-SHA256. Each decryption costs about 0.3 s of one core, paid
 * once per `ca serve` start and per `ca token`.
 */
#define KEY_PBKDF2_ITER 600000

/* PKCS#8 EncryptedPrivateKeyInfo: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC, random salt and IV. */
static int encrypt_key(BIO *mem, EVP_PKEY *key, struct fg_password *pw)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	X509_ALGOR *pbe = NULL;
	X509_SIG *sig = NULL;
	int ret = -EIO;

	if (!p8)
		goto out;
	/* NULL salt and IV: random ones, the salt 128 bits (NIST SP 800-132). */
	pbe = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), KEY_PBKDF2_ITER, NULL, 16, NULL,
				   NID_hmacWithSHA256, NULL);
	if (!pbe)
		goto out;
	sig = PKCS8_set0_pbe_ex(pw->buf, (int)pw->len, p8, pbe, NULL, NULL);
	if (!sig)
		goto out;
	pbe = NULL; /* owned by sig */
	if (PEM_write_bio_PKCS8(mem, sig))
		ret = 0;
out:
	X509_SIG_free(sig);
	X509_ALGOR_free(pbe);
	PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the key material */
	return ret;
}

int fg_pki_write_key(const char *path, EVP_PKEY *key, struct fg_password *pw,
		     struct fg_err *err)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ret;

	if (!mem)
		return fg_err_set(err, -ENOMEM, "out of memory");
	if (pw) {
		ret = fg_password_get(pw, err);
		if (ret)
			goto free_bio;
	}
	if (pw ? encrypt_key(mem, key, pw)
	       : !PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)) {
		ret = fg_err_set(err, -EIO, "cannot encode the key for %s", path);
		fg_err_ssl(err);
		goto free_bio;
	}
	len = BIO_get_mem_data(mem, &data);
	ret = fg_pki_write_file(path, data, (size_t)len, 0600, err);
	OPENSSL_cleanse(data, (size_t)len); /* plain PEM when @pw is NULL */
free_bio:
	BIO_free(mem);
	return ret;
}

EVP_PKEY *fg_pki_read_key(const char *path, struct fg_password *pw, struct fg_err *err)
{
	EVP_PKEY *key = NULL;
	char *text = NULL;
	size_t len = 0;
	unsigned long e;
	BIO *in;

	/* fg_file_read: a FIFO at @path is refused at once, never waited on. */
	if (fg_pki_read_file(path, 1 << 20, &text, &len, err))
		return NULL;
	in = BIO_new_mem_buf(text, (int)len);
	key = in ? PEM_read_bio_PrivateKey(in, NULL, fg_password_cb, pw) : NULL;
	BIO_free(in);
	OPENSSL_cleanse(text, len);
	free(text);
	if (key) {
		ERR_clear_error();
		return key;
	}
	e = ERR_peek_last_error();
	if (ERR_GET_REASON(e) == EVP_R_BAD_DECRYPT || ERR_GET_REASON(e) == PEM_R_BAD_DECRYPT ||
	    ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ || (pw && pw->have)) {
		fg_err_set(err, -EACCES,
			   "cannot decrypt the key %s: wrong password (or the key is damaged)",
			   path);
		ERR_clear_error();
	} else {
		fg_err_set(err, -EINVAL, "%s is not a PEM private key", path);
		fg_err_ssl(err);
	}
	return NULL;
}

/* --- certificates ---------------------------------------------------------------------------- */

STACK_OF(X509) *fg_pki_certs_from_pem(const char *pem, size_t len, struct fg_err *err)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(pem, (int)len);
	X509 *x;

	if (!sk || !in || len > INT32_MAX) {
		fg_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			fg_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	/* The loop ends at the end of the text (PEM_R_NO_START_LINE) or at a bad block. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		fg_err_set(err, -EINVAL, "bad PEM certificate");
		fg_err_ssl(err);
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		fg_err_set(err, -EINVAL, "no PEM certificate");
		goto fail;
	}
	BIO_free(in);
	return sk;
fail:
	BIO_free(in);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

STACK_OF(X509) *fg_pki_read_certs(const char *path, struct fg_err *err)
{
	STACK_OF(X509) *sk;
	char *data = NULL;
	size_t len = 0;
	char why[sizeof(err->msg)];

	if (fg_pki_read_file(path, 4 << 20, &data, &len, err))
		return NULL;
	sk = fg_pki_certs_from_pem(data, len, err);
	free(data);
	if (!sk && err) {
		snprintf(why, sizeof(why), "%s", err->msg);
		fg_err_set(err, -EINVAL, "%s: %s", path, why);
	}
	return sk;
}

char *fg_pki_cert_pem(X509 *x)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (mem && PEM_write_bio_X509(mem, x)) {
		len = BIO_get_mem_data(mem, &data);
		out = strndup(data, (size_t)len);
	}
	BIO_free(mem);
	return out;
}

char *fg_pki_key_pem(EVP_PKEY *key)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (mem && PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)) {
		len = BIO_get_mem_data(mem, &data);
		out = strndup(data, (size_t)len);
		OPENSSL_cleanse(data, (size_t)len);
	}
	BIO_free(mem);
	return out;
}

char *fg_pki_certs_pem(STACK_OF(X509) *sk)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;
	int i;

	if (!mem)
		return NULL;
	for (i = 0; i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(mem, sk_X509_value(sk, i)))
			break;
	if (i == sk_X509_num(sk)) {
		len = BIO_get_mem_data(mem, &data);
		out = strndup(data, (size_t)len);
	}
	BIO_free(mem);
	return out;
}
