// SPDX-License-Identifier: MIT
/*
 * The userspace TLS 1.3 record layer (RFC 8446 section 5): the same records the
 * kernel's kTLS writes, so either end can be OpenSSL, the kernel or this.
 */
#include <errno.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fedgate/record.h"
#include "fedgate/tls13.h"

static const EVP_CIPHER *aead_of(uint16_t cipher)
{
	switch (cipher) {
	case FG_AES_128_GCM:
		return EVP_aes_128_gcm();
	case FG_AES_256_GCM:
		return EVP_aes_256_gcm();
	case FG_CHACHA20_POLY1305:
		return EVP_chacha20_poly1305();
	}
	return NULL;
}

/* Loads the current key into the context; the nonce is set per record. */
static int load_key(struct fg_record_dir *d)
{
	if (EVP_CipherInit_ex(d->ctx, aead_of(d->cipher), NULL, NULL, NULL, d->encrypt) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_IVLEN, FG_IV_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(d->ctx, NULL, NULL, d->k.key, NULL, d->encrypt) != 1)
		return -EIO;
	return 0;
}

int fg_record_init(struct fg_record_dir *d, uint16_t cipher, const struct fg_traffic_keys *k,
		   int encrypt)
{
	int ret;

	if (!aead_of(cipher))
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->ctx = EVP_CIPHER_CTX_new();
	if (!d->ctx)
		return -ENOMEM;
	d->cipher = cipher;
	d->encrypt = !!encrypt;
	d->k = *k;
	ret = load_key(d);
	if (ret)
		fg_record_exit(d);
	return ret;
}

void fg_record_exit(struct fg_record_dir *d)
{
	if (!d)
		return;
	EVP_CIPHER_CTX_free(d->ctx);
	OPENSSL_cleanse(d, sizeof(*d));
}

void fg_record_park(struct fg_record_dir *d)
{
	EVP_CIPHER_CTX_free(d->ctx);
	d->ctx = NULL;
}

/* A parked direction gets its context back, keyed with the current secret. */
static int unpark(struct fg_record_dir *d)
{
	int ret;

	if (d->ctx)
		return 0;
	d->ctx = EVP_CIPHER_CTX_new();
	if (!d->ctx)
		return -ENOMEM;
	ret = load_key(d);
	if (ret)
		fg_record_park(d);
	return ret;
}

int fg_record_key_update(struct fg_record_dir *d)
{
	int ret;

	ret = fg_tls13_key_update(d->cipher, &d->k);
	if (ret || !d->ctx) /* a parked context is keyed when it comes back */
		return ret;
	return load_key(d);
}

static void make_nonce(const struct fg_record_dir *d, uint8_t nonce[FG_IV_LEN])
{
	memcpy(nonce, d->k.iv, FG_IV_LEN);
	for (int i = 0; i < 8; i++)
		nonce[FG_IV_LEN - 1 - i] ^= (uint8_t)(d->k.seq >> (8 * i));
}

ssize_t fg_record_seal(struct fg_record_dir *d, uint8_t type, const uint8_t *in, size_t len,
		       uint8_t *out, size_t cap)
{
	size_t inner = len + 1, total = FG_TLS_HDR + inner + FG_TLS_TAG;
	uint8_t nonce[FG_IV_LEN];
	int n, fin, ret;

	if (len > FG_TLS_MAX_PLAIN)
		return -EMSGSIZE;
	if (cap < total)
		return -ENOBUFS;
	if (d->k.seq == UINT64_MAX)
		return -EOVERFLOW;
	ret = unpark(d);
	if (ret)
		return ret;

	out[0] = FG_CT_APPLICATION_DATA;
	out[1] = 0x03;
	out[2] = 0x03;
	out[3] = (uint8_t)((inner + FG_TLS_TAG) >> 8);
	out[4] = (uint8_t)(inner + FG_TLS_TAG);
	make_nonce(d, nonce);
	if (EVP_EncryptInit_ex(d->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(d->ctx, NULL, &n, out, FG_TLS_HDR) != 1)
		return -EIO;
	if (len && EVP_EncryptUpdate(d->ctx, out + FG_TLS_HDR, &n, in, (int)len) != 1)
		return -EIO;
	if (EVP_EncryptUpdate(d->ctx, out + FG_TLS_HDR + len, &n, &type, 1) != 1 ||
	    EVP_EncryptFinal_ex(d->ctx, out + FG_TLS_HDR + inner, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, FG_TLS_TAG,
				out + FG_TLS_HDR + inner) != 1)
		return -EIO;
	d->k.seq++;
	return (ssize_t)total;
}

ssize_t fg_record_open(struct fg_record_dir *d, const uint8_t *in, size_t len, uint8_t *out,
		       size_t cap, uint8_t *type, size_t *plain_len)
{
	uint8_t nonce[FG_IV_LEN];
	size_t clen, inner;
	int n, fin, ret;

	if (len < FG_TLS_HDR)
		return 0;
	clen = (size_t)in[3] << 8 | in[4];
	if (clen > FG_TLS_MAX_CIPHER)
		return -EMSGSIZE;
	if (in[0] != FG_CT_APPLICATION_DATA || in[1] != 0x03 || in[2] != 0x03)
		return -EPROTO;
	if (clen < FG_TLS_TAG + 1)
		return -EPROTO;
	if (len < FG_TLS_HDR + clen)
		return 0;
	inner = clen - FG_TLS_TAG;
	if (inner > FG_TLS_MAX_PLAIN + 1)
		return -EMSGSIZE;
	if (cap < inner)
		return -ENOBUFS;
	if (d->k.seq == UINT64_MAX)
		return -EOVERFLOW;
	ret = unpark(d);
	if (ret)
		return ret;

	make_nonce(d, nonce);
	if (EVP_DecryptInit_ex(d->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_DecryptUpdate(d->ctx, NULL, &n, in, FG_TLS_HDR) != 1 ||
	    EVP_DecryptUpdate(d->ctx, out, &n, in + FG_TLS_HDR, (int)inner) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_TAG, FG_TLS_TAG,
				(void *)(in + FG_TLS_HDR + inner)) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(d->ctx, out + inner, &fin) != 1) {
		OPENSSL_cleanse(out, inner);
		return -EBADMSG;
	}
	/* The content type is the last non-zero byte; zeros after it are padding. */
	while (inner > 0 && out[inner - 1] == 0)
		inner--;
	if (inner == 0)
		return -EPROTO;
	*type = out[inner - 1];
	*plain_len = inner - 1;
	d->k.seq++;
	return (ssize_t)(FG_TLS_HDR + clen);
}
