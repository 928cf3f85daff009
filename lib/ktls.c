// SPDX-License-Identifier: MIT
/* Kernel TLS (Documentation/networking/tls.rst): probe and install. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/tls.h>
#include <openssl/crypto.h>

#include "fedgate/ktls.h"

static const char *ulp_why(int err)
{
	switch (err) {
	case ENOENT:
		return "TCP_ULP \"tls\": ENOENT, the kernel has no tls module (CONFIG_TLS)";
	case ENOTCONN:
		return "TCP_ULP \"tls\": ENOTCONN, the socket is not established";
	case EEXIST:
		return "TCP_ULP \"tls\": EEXIST, the socket already has a ULP";
	case EPERM:
		return "TCP_ULP \"tls\": EPERM, loading the tls module is not permitted";
	}
	return "TCP_ULP \"tls\" failed";
}

static const char *crypto_why(int err, int tx)
{
	switch (err) {
	case EINVAL:
	case ENOPROTOOPT:
		return tx ? "TLS_TX: the kernel does not support this cipher for TLS 1.3"
			  : "TLS_RX: the kernel does not support this cipher for TLS 1.3";
	case EBUSY:
		return tx ? "TLS_TX: EBUSY, keys already installed (no rekey on this kernel)"
			  : "TLS_RX: EBUSY, keys already installed (no rekey on this kernel)";
	case ENOMEM:
		return "out of kernel memory";
	}
	return tx ? "TLS_TX failed" : "TLS_RX failed";
}

union crypto_info {
	struct tls_crypto_info base;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* Fills @ci from one direction, as tlshd does; returns its size or 0 for an unknown cipher. */
static socklen_t fill(union crypto_info *ci, uint16_t cipher, const struct fg_traffic_keys *k)
{
	uint8_t seq[8];

	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(k->seq >> (56 - 8 * i));
	memset(ci, 0, sizeof(*ci));
	ci->base.version = TLS_1_3_VERSION;
	switch (cipher) {
	case FG_AES_128_GCM:
		ci->base.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci->gcm128.salt, k->iv, 4);
		memcpy(ci->gcm128.iv, k->iv + 4, 8);
		memcpy(ci->gcm128.key, k->key, 16);
		memcpy(ci->gcm128.rec_seq, seq, 8);
		return sizeof(ci->gcm128);
	case FG_AES_256_GCM:
		ci->base.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci->gcm256.salt, k->iv, 4);
		memcpy(ci->gcm256.iv, k->iv + 4, 8);
		memcpy(ci->gcm256.key, k->key, 32);
		memcpy(ci->gcm256.rec_seq, seq, 8);
		return sizeof(ci->gcm256);
	case FG_CHACHA20_POLY1305:
		ci->base.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci->chacha.iv, k->iv, 12);
		memcpy(ci->chacha.key, k->key, 32);
		memcpy(ci->chacha.rec_seq, seq, 8);
		return sizeof(ci->chacha);
	}
	return 0;
}

int fg_ktls_install(int fd, const struct fg_session_keys *keys, const char **why)
{
	union crypto_info ci;
	socklen_t len;
	int ret = 0;

	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		ret = -errno;
		*why = ulp_why(errno);
		goto out;
	}
	len = fill(&ci, keys->cipher, &keys->tx);
	if (!len) {
		ret = -EINVAL;
		*why = "unknown cipher";
		goto wipe;
	}
	if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, len)) {
		ret = -errno;
		*why = crypto_why(errno, 1);
		goto wipe;
	}
	fill(&ci, keys->cipher, &keys->rx);
	if (setsockopt(fd, SOL_TLS, TLS_RX, &ci, len)) {
		ret = -errno;
		*why = crypto_why(errno, 0);
		goto wipe;
	}
	*why = "installed";
wipe:
	OPENSSL_cleanse(&ci, sizeof(ci));
out:
	return ret;
}

int fg_ktls_probe(const char **why)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l, c = -1, s = -1, ret;

	*why = "cannot set up a loopback socket pair";
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len)) {
		ret = -errno;
		goto close_listener;
	}
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a))) {
		ret = -errno;
		goto close_client;
	}
	s = accept(l, NULL, NULL);
	if (s < 0) {
		ret = -errno;
		goto close_client;
	}
	ret = setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ? -errno : 0;
	*why = ret ? ulp_why(-ret) : "TCP_ULP \"tls\" works on a loopback socket";
	close(s);
close_client:
	if (c >= 0)
		close(c);
close_listener:
	close(l);
	return ret;
}
