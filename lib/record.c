// SPDX-License-Identifier: MIT
/*
 * The userspace TLS 1.3 record layer (RFC 8446 section 5): the same records the
 * kernel's kTLS writes, so either end can be OpenSSL, the kernel or this.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <gcrypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fedgate/record.h"
#include "fedgate/tls13.h"

/*
 * The AEADs come from libgcrypt, not OpenSSL: on CPUs with VAES (AMD Zen 3 and
 * later, Intel Ice Lake and later) its AES-GCM runs AES on 256-bit vectors where
 * OpenSSL 3.0's uses 128-bit AES-NI, and the bulk cipher is a third of what the
 * userspace backend costs (bench/README.md has the measurements). The wire
 * format is the same; tests/unit/test_record.c checks every record against
 * OpenSSL's EVP AEADs.
 *
 * In FIPS mode libgcrypt refuses to encrypt under a caller-chosen GCM nonce,
 * which TLS 1.3 needs, and has no ChaCha20: there, and if libgcrypt cannot
 * start, every direction uses OpenSSL's EVP instead. The choice is made once
 * per process.
 */
enum aead_lib { AEAD_GCRYPT, AEAD_EVP };

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static enum aead_lib lib;

static void lib_setup(void)
{
	lib = AEAD_EVP;
	if (!gcry_check_version(GCRYPT_VERSION) || gcry_fips_mode_active())
		return;
	/* Keys live in our own structs (wiped by fg_record_exit), not in libgcrypt's secure heap. */
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	lib = AEAD_GCRYPT;
}

const char *fg_record_aead_lib(void)
{
	pthread_once(&lib_once, lib_setup);
	return lib == AEAD_GCRYPT ? "libgcrypt" : "OpenSSL";
}

/* Each TLS 1.3 cipher suite's AEAD, in both libraries. */
static const struct aead {
	uint16_t cipher;
	int gcry_algo, gcry_mode;
	const EVP_CIPHER *(*evp)(void);
} aeads[] = {
	{ FG_AES_128_GCM, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_GCM, EVP_aes_128_gcm },
	{ FG_AES_256_GCM, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, EVP_aes_256_gcm },
	{ FG_CHACHA20_POLY1305, GCRY_CIPHER_CHACHA20, GCRY_CIPHER_MODE_POLY1305,
	  EVP_chacha20_poly1305 },
};

/* Returns @cipher's entry, or NULL for a suite the record layer does not know. */
static const struct aead *aead_of(uint16_t cipher)
{
	for (size_t i = 0; i < sizeof(aeads) / sizeof(aeads[0]); i++)
		if (aeads[i].cipher == cipher)
			return &aeads[i];
	return NULL;
}

/* ---- libgcrypt ---- */

static int gcry_load(struct fg_record_dir *d)
{
	const struct aead *a = aead_of(d->cipher);
	gcry_cipher_hd_t h = NULL;
	gcry_error_t err;

	err = gcry_cipher_open(&h, a->gcry_algo, a->gcry_mode, 0);
	if (err)
		return gcry_err_code(err) == GPG_ERR_ENOMEM ? -ENOMEM : -EIO;
	if (gcry_cipher_setkey(h, d->k.key, gcry_cipher_get_algo_keylen(a->gcry_algo))) {
		gcry_cipher_close(h);
		return -EIO;
	}
	d->ctx = h;
	return 0;
}

/* Two encrypt calls, content then type byte: libgcrypt's AEADs stream like OpenSSL's. */
static int gcry_seal(void *h, const uint8_t *nonce, uint8_t type, const uint8_t *in, size_t len,
		     uint8_t *out)
{
	if (gcry_cipher_setiv(h, nonce, FG_IV_LEN) || gcry_cipher_authenticate(h, out, FG_TLS_HDR) ||
	    (len && gcry_cipher_encrypt(h, out + FG_TLS_HDR, len, in, len)) ||
	    gcry_cipher_final(h) || gcry_cipher_encrypt(h, out + FG_TLS_HDR + len, 1, &type, 1) ||
	    gcry_cipher_gettag(h, out + FG_TLS_HDR + len + 1, FG_TLS_TAG))
		return -EIO;
	return 0;
}

static int gcry_open(void *h, const uint8_t *nonce, const uint8_t *in, size_t inner, uint8_t *out)
{
	gcry_error_t err;

	if (gcry_cipher_setiv(h, nonce, FG_IV_LEN) || gcry_cipher_authenticate(h, in, FG_TLS_HDR) ||
	    gcry_cipher_final(h) || gcry_cipher_decrypt(h, out, inner, in + FG_TLS_HDR, inner))
		return -EIO;
	err = gcry_cipher_checktag(h, in + FG_TLS_HDR + inner, FG_TLS_TAG);
	if (err)
		return gcry_err_code(err) == GPG_ERR_CHECKSUM ? -EBADMSG : -EIO;
	return 0;
}

/* ---- OpenSSL EVP ---- */

static int evp_load(struct fg_record_dir *d)
{
	const EVP_CIPHER *c = aead_of(d->cipher)->evp();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx)
		return -ENOMEM;
	if (EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, d->encrypt) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, FG_IV_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, d->k.key, NULL, d->encrypt) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	d->ctx = ctx;
	return 0;
}

static int evp_seal(void *ctx, const uint8_t *nonce, uint8_t type, const uint8_t *in, size_t len,
		    uint8_t *out)
{
	int n;

	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, out, FG_TLS_HDR) != 1 ||
	    (len && EVP_EncryptUpdate(ctx, out + FG_TLS_HDR, &n, in, (int)len) != 1) ||
	    EVP_EncryptUpdate(ctx, out + FG_TLS_HDR + len, &n, &type, 1) != 1 ||
	    EVP_EncryptFinal_ex(ctx, out + FG_TLS_HDR + len + 1, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, FG_TLS_TAG,
				out + FG_TLS_HDR + len + 1) != 1)
		return -EIO;
	return 0;
}

static int evp_open(void *ctx, const uint8_t *nonce, const uint8_t *in, size_t inner,
		    uint8_t *out)
{
	int n;

	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, in, FG_TLS_HDR) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n, in + FG_TLS_HDR, (int)inner) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FG_TLS_TAG,
				(void *)(in + FG_TLS_HDR + inner)) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(ctx, out + inner, &n) != 1)
		return -EBADMSG;
	return 0;
}

/* ---- either ---- */

/* Builds @d's context (NULL before) with the current key; the nonce is set per record. */
static int load_key(struct fg_record_dir *d)
{
	pthread_once(&lib_once, lib_setup);
	return lib == AEAD_GCRYPT ? gcry_load(d) : evp_load(d);
}

int fg_record_init(struct fg_record_dir *d, uint16_t cipher, const struct fg_traffic_keys *k,
		   int encrypt)
{
	int ret;

	if (!aead_of(cipher))
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
	fg_record_park(d);
	OPENSSL_cleanse(d, sizeof(*d));
}

/* Both libraries wipe the key schedule when they free a context. */
void fg_record_park(struct fg_record_dir *d)
{
	if (lib == AEAD_GCRYPT)
		gcry_cipher_close(d->ctx);
	else
		EVP_CIPHER_CTX_free(d->ctx);
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
	ret = lib == AEAD_GCRYPT ? gcry_seal(d->ctx, nonce, type, in, len, out)
				 : evp_seal(d->ctx, nonce, type, in, len, out);
	if (ret) {
		/* A record cut short leaves partial state in the context: start afresh. */
		fg_record_park(d);
		return ret;
	}
	d->k.seq++;
	return (ssize_t)total;
}

ssize_t fg_record_open(struct fg_record_dir *d, const uint8_t *in, size_t len, uint8_t *out,
		       size_t cap, uint8_t *type, size_t *plain_len)
{
	uint8_t nonce[FG_IV_LEN];
	size_t clen, inner;
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
	ret = lib == AEAD_GCRYPT ? gcry_open(d->ctx, nonce, in, inner, out)
				 : evp_open(d->ctx, nonce, in, inner, out);
	if (ret) {
		/* Nothing unauthenticated is left behind, nor partial state in the context. */
		OPENSSL_cleanse(out, inner);
		fg_record_park(d);
		return ret;
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
