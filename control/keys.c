// SPDX-License-Identifier: MIT
/*
 * The export of a handshake's TLS 1.3 traffic secrets for the data plane: see
 * keys.h. Derivation (key and iv from a secret) is lib's key schedule.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "control/keys.h"
#include "fedgate/tls13.h"

/* The SSL ex_data slot holding the connection's fg_tls_conn. */
static int conn_idx = -1;

int fg_keys_init(void)
{
	if (conn_idx < 0)
		conn_idx = SSL_get_ex_new_index(0, "fedgate conn", NULL, NULL, NULL);
	return conn_idx < 0 ? -ENOMEM : 0;
}

struct fg_tls_conn *fg_keys_conn(const SSL *ssl)
{
	return SSL_get_ex_data(ssl, conn_idx);
}

int fg_keylog_secret(const char *line, const char *label, uint8_t *out, size_t *out_len)
{
	size_t n = 0, label_len = strlen(label);
	const char *sp;

	if (strncmp(line, label, label_len) || line[label_len] != ' ')
		return -ENOENT;
	sp = strchr(line + label_len + 1, ' ');
	if (!sp)
		return -EINVAL;
	for (const char *p = sp + 1; p[0] && p[1] && n < FG_SECRET_MAX; p += 2) {
		int hi = OPENSSL_hexchar2int((unsigned char)p[0]);
		int lo = OPENSSL_hexchar2int((unsigned char)p[1]);

		if (hi < 0 || lo < 0)
			break;
		out[n++] = (uint8_t)(hi << 4 | lo);
	}
	*out_len = n;
	return 0;
}

static void keylog_cb(const SSL *ssl, const char *line)
{
	struct fg_tls_conn *st = fg_keys_conn(ssl);

	if (!st)
		return;
	/* At most one of the two labels starts a line. */
	fg_keylog_secret(line, "CLIENT_TRAFFIC_SECRET_0", st->client_secret,
			 &st->client_secret_len);
	fg_keylog_secret(line, "SERVER_TRAFFIC_SECRET_0", st->server_secret,
			 &st->server_secret_len);
}

/*
 * Counts the records protected with the application keys: a direction's keys
 * change right after its Finished, and every record header after that is one
 * sequence number (NewSessionTicket records included).
 */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	struct fg_tls_conn *st = fg_keys_conn(ssl);

	(void)version;
	(void)arg;
	if (!st)
		return;
	if (content_type == SSL3_RT_HEADER) {
		if (write_p && st->write_app)
			st->tx_records++;
		else if (!write_p && st->read_app)
			st->rx_records++;
	} else if (content_type == SSL3_RT_HANDSHAKE && len > 0 &&
		   ((const uint8_t *)buf)[0] == SSL3_MT_FINISHED) {
		if (write_p)
			st->write_app = 1;
		else
			st->read_app = 1;
	}
}

void fg_keys_capture(SSL_CTX *ctx)
{
	SSL_CTX_set_keylog_callback(ctx, keylog_cb);
}

int fg_keys_bind(SSL *ssl, struct fg_tls_conn *st)
{
	if (!SSL_set_ex_data(ssl, conn_idx, st))
		return -ENOMEM;
	SSL_set_msg_callback(ssl, msg_cb);
	return 0;
}

int fg_keys_export(SSL *ssl, struct fg_tls_conn *st, struct fg_session_keys *keys)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	const uint8_t *tx, *rx;
	size_t secret_len, tx_len, rx_len;
	int ret;

	memset(keys, 0, sizeof(*keys));
	keys->cipher = c ? (uint16_t)SSL_CIPHER_get_protocol_id(c) : 0;
	ret = fg_cipher_params(keys->cipher, NULL, &secret_len);
	if (ret)
		goto wipe;
	tx = st->is_server ? st->server_secret : st->client_secret;
	rx = st->is_server ? st->client_secret : st->server_secret;
	tx_len = st->is_server ? st->server_secret_len : st->client_secret_len;
	rx_len = st->is_server ? st->client_secret_len : st->server_secret_len;
	if (tx_len != secret_len || rx_len != secret_len || !st->write_app || !st->read_app) {
		ret = -ENOKEY;
		goto wipe;
	}
	memcpy(keys->tx.secret, tx, secret_len);
	memcpy(keys->rx.secret, rx, secret_len);
	keys->tx.seq = st->tx_records;
	keys->rx.seq = st->rx_records;
	ret = fg_tls13_traffic_keys(keys->cipher, &keys->tx);
	if (!ret)
		ret = fg_tls13_traffic_keys(keys->cipher, &keys->rx);
wipe:
	if (ret)
		OPENSSL_cleanse(keys, sizeof(*keys));
	fg_tls_conn_exit(st);
	return ret;
}

void fg_tls_conn_exit(struct fg_tls_conn *st)
{
	if (!st)
		return;
	OPENSSL_cleanse(st->client_secret, sizeof(st->client_secret));
	OPENSSL_cleanse(st->server_secret, sizeof(st->server_secret));
	st->client_secret_len = st->server_secret_len = 0;
	if (st->failed)
		OPENSSL_cleanse(st->failed, sizeof(*st->failed));
	free(st->failed);
	st->failed = NULL;
	sk_X509_pop_free(st->resume_chain, X509_free);
	sk_X509_pop_free(st->resume_verified, X509_free);
	st->resume_chain = st->resume_verified = NULL;
}
