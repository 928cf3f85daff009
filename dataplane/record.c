// SPDX-License-Identifier: MIT
/*
 * The userspace TLS 1.3 record layer (RFC 8446 section 5): the same records the
 * kernel's kTLS writes, so either end can be OpenSSL, the kernel or this.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <gcrypt.h>
#include <openssl/crypto.h>

#include "fedgate/record.h"
#include "fedgate/tls13.h"

/*
 * The AEADs come from libgcrypt, not OpenSSL: on CPUs with VAES (AMD Zen 3 and
 * later, Intel Ice Lake and later) its AES-GCM runs AES on 256-bit vectors where
 * OpenSSL 3.0's uses 128-bit AES-NI, and the bulk cipher is a third of what the
 * userspace backend costs (bench/README.md has the measurements). The wire
 * format is the same; tests/unit/test_record.c checks every record against
 * OpenSSL's EVP AEADs.
 */
#define FG_GCRYPT_MIN "1.8.0"

static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static bool gcry_ok;

/* libgcrypt must be initialised once before any use, from any thread. */
static void gcry_setup(void)
{
	if (!gcry_check_version(FG_GCRYPT_MIN))
		return;
	/* Keys live in our own structs (wiped by fg_record_exit), not in libgcrypt's secure heap. */
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	gcry_ok = true;
}

static int aead_of(uint16_t cipher, int *algo, int *mode)
{
	switch (cipher) {
	case FG_AES_128_GCM:
		*algo = GCRY_CIPHER_AES128;
		*mode = GCRY_CIPHER_MODE_GCM;
		return 0;
	case FG_AES_256_GCM:
		*algo = GCRY_CIPHER_AES256;
		*mode = GCRY_CIPHER_MODE_GCM;
		return 0;
	case FG_CHACHA20_POLY1305:
		*algo = GCRY_CIPHER_CHACHA20;
		*mode = GCRY_CIPHER_MODE_POLY1305;
		return 0;
	}
	return -EINVAL;
}

/* Builds @d's context (NULL before) with the current key; the nonce is set per record. */
static int load_key(struct fg_record_dir *d)
{
	gcry_cipher_hd_t h = NULL;
	gcry_error_t err;
	int algo, mode, ret;

	ret = aead_of(d->cipher, &algo, &mode);
	if (ret)
		goto out;
	pthread_once(&gcry_once, gcry_setup);
	ret = -EIO;
	if (!gcry_ok)
		goto out;
	err = gcry_cipher_open(&h, algo, mode, 0);
	if (err) {
		/* Other errors mean the algorithm is refused (FIPS mode has no ChaCha20). */
		ret = gcry_err_code(err) == GPG_ERR_ENOMEM ? -ENOMEM : -EIO;
		goto out;
	}
	if (gcry_cipher_setkey(h, d->k.key, gcry_cipher_get_algo_keylen(algo)))
		goto close_h;
	d->ctx = h;
	return 0;
close_h:
	gcry_cipher_close(h);
out:
	return ret;
}

int fg_record_init(struct fg_record_dir *d, uint16_t cipher, const struct fg_traffic_keys *k,
		   int encrypt)
{
	int algo, mode, ret;

	if (aead_of(cipher, &algo, &mode))
		return -EINVAL;
	memset(d, 0, sizeof(*d));
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
	gcry_cipher_close(d->ctx); /* libgcrypt wipes the handle */
	OPENSSL_cleanse(d, sizeof(*d));
}

void fg_record_park(struct fg_record_dir *d)
{
	gcry_cipher_close(d->ctx);
	d->ctx = NULL;
}

/* A parked direction gets its context back, keyed with the current secret. */
static int unpark(struct fg_record_dir *d)
{
	return d->ctx ? 0 : load_key(d);
}

int fg_record_key_update(struct fg_record_dir *d)
{
	/* The old key's context goes, whatever happens: the next record builds one with the new key. */
	fg_record_park(d);
	return fg_tls13_key_update(d->cipher, &d->k);
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
	int ret;

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
	/* Two encrypt calls, content then type byte: libgcrypt's AEADs stream like OpenSSL's. */
	if (gcry_cipher_setiv(d->ctx, nonce, sizeof(nonce)) ||
	    gcry_cipher_authenticate(d->ctx, out, FG_TLS_HDR) ||
	    (len && gcry_cipher_encrypt(d->ctx, out + FG_TLS_HDR, len, in, len)) ||
	    gcry_cipher_final(d->ctx) ||
	    gcry_cipher_encrypt(d->ctx, out + FG_TLS_HDR + len, 1, &type, 1) ||
	    gcry_cipher_gettag(d->ctx, out + FG_TLS_HDR + inner, FG_TLS_TAG))
		return -EIO;
	d->k.seq++;
	return (ssize_t)total;
}

ssize_t fg_record_open(struct fg_record_dir *d, const uint8_t *in, size_t len, uint8_t *out,
		       size_t cap, uint8_t *type, size_t *plain_len)
{
	uint8_t nonce[FG_IV_LEN];
	size_t clen, inner;
	gcry_error_t err;
	int ret;

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
	if (gcry_cipher_setiv(d->ctx, nonce, sizeof(nonce)) ||
	    gcry_cipher_authenticate(d->ctx, in, FG_TLS_HDR) || gcry_cipher_final(d->ctx) ||
	    gcry_cipher_decrypt(d->ctx, out, inner, in + FG_TLS_HDR, inner))
		return -EIO;
	err = gcry_cipher_checktag(d->ctx, in + FG_TLS_HDR + inner, FG_TLS_TAG);
	if (err) {
		OPENSSL_cleanse(out, inner);
		return gcry_err_code(err) == GPG_ERR_CHECKSUM ? -EBADMSG : -EIO;
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
