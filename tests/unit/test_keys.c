/* SPDX-License-Identifier: MIT */
/*
 * Key export tests: fg_keylog_secret() (the keylog line parser: labels, the
 * secret's bounds, malformed lines) and fg_keys_export() failing closed (keys
 * and the captured secrets wiped).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <openssl/ssl.h>
#include "control/keys.h"
#include "unit.h"

#define CANARY 0x5a
#define RANDOM "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HEX32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX48 HEX32 "202122232425262728292a2b2c2d2e2f"
#define CLIENT "CLIENT_TRAFFIC_SECRET_0"
#define SERVER "SERVER_TRAFFIC_SECRET_0"

static int is_count(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != i)
			return 0;
	return 1;
}

UNIT_TEST(parses_sha256_and_sha384_secrets)
{
	uint8_t out[FG_SECRET_MAX + 8];
	size_t len = 0;

	memset(out, CANARY, sizeof(out));
	CHECK_EQ(fg_keylog_secret(CLIENT " " RANDOM " " HEX32, CLIENT, out, &len), 0);
	CHECK_EQ(len, 32);
	CHECK(is_count(out, 32));
	CHECK_EQ(out[32], CANARY);
	CHECK_EQ(fg_keylog_secret(SERVER " " RANDOM " " HEX48, SERVER, out, &len), 0);
	CHECK_EQ(len, 48);
	CHECK(is_count(out, 48));
	CHECK_EQ(out[48], CANARY);
}

UNIT_TEST(upper_case_hex_is_hex)
{
	uint8_t out[FG_SECRET_MAX];
	size_t len = 0;

	CHECK_EQ(fg_keylog_secret(CLIENT " " RANDOM " ABCDEFabcdef", CLIENT, out, &len), 0);
	CHECK_EQ(len, 6);
	CHECK_EQ(out[0], 0xab);
	CHECK_EQ(out[2], 0xef);
	CHECK_EQ(out[5], 0xef);
}

UNIT_TEST(other_labels_are_not_read)
{
	uint8_t out[FG_SECRET_MAX];
	size_t len = 7;

	memset(out, CANARY, sizeof(out));
	CHECK_EQ(fg_keylog_secret(SERVER " " RANDOM " " HEX32, CLIENT, out, &len), -ENOENT);
	CHECK_EQ(fg_keylog_secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET " RANDOM " " HEX32, CLIENT, out,
				  &len),
		 -ENOENT);
	/* the label must be the whole first field */
	CHECK_EQ(fg_keylog_secret(CLIENT "X " RANDOM " " HEX32, CLIENT, out, &len), -ENOENT);
	CHECK_EQ(fg_keylog_secret("CLIENT_TRAFFIC_SECRET_", CLIENT, out, &len), -ENOENT);
	CHECK_EQ(fg_keylog_secret("", CLIENT, out, &len), -ENOENT);
	CHECK_EQ(len, 7);
	CHECK_EQ(out[0], CANARY);
}

UNIT_TEST(a_line_without_the_secret_field_leaves_out_alone)
{
	uint8_t out[FG_SECRET_MAX];
	size_t len = 7;

	memset(out, CANARY, sizeof(out));
	CHECK_EQ(fg_keylog_secret(CLIENT " " RANDOM, CLIENT, out, &len), -EINVAL);
	CHECK_EQ(fg_keylog_secret(CLIENT " ", CLIENT, out, &len), -EINVAL);
	CHECK_EQ(len, 7);
	CHECK_EQ(out[0], CANARY);
}

UNIT_TEST(secret_is_bounded_and_stops_at_non_hex)
{
	uint8_t out[FG_SECRET_MAX + 8];
	size_t len = 0;

	/* longer than any TLS 1.3 secret: cut at FG_SECRET_MAX, nothing written past it */
	memset(out, CANARY, sizeof(out));
	CHECK_EQ(fg_keylog_secret(CLIENT " " RANDOM " " HEX48 "3031323334", CLIENT, out, &len), 0);
	CHECK_EQ(len, FG_SECRET_MAX);
	CHECK(is_count(out, FG_SECRET_MAX));
	for (size_t i = FG_SECRET_MAX; i < sizeof(out); i++)
		CHECK_EQ(out[i], CANARY);
	CHECK_EQ(fg_keylog_secret(CLIENT " " RANDOM " 0001zz02", CLIENT, out, &len), 0);
	CHECK_EQ(len, 2);
	/* an odd digit at the end is not a byte */
	CHECK_EQ(fg_keylog_secret(CLIENT " " RANDOM " 0001020", CLIENT, out, &len), 0);
	CHECK_EQ(len, 3);
	CHECK_EQ(fg_keylog_secret(CLIENT " " RANDOM " ", CLIENT, out, &len), 0);
	CHECK_EQ(len, 0);
}

/* Before a handshake there is no cipher: the export fails and wipes both sides. */
UNIT_TEST(export_fails_closed_and_wipes)
{
	static const uint8_t zero[sizeof(struct fg_session_keys)];
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	struct fg_session_keys keys;
	struct fg_tls_conn st = { 0 };

	CHECK(ssl != NULL);
	if (!ssl)
		goto out;
	CHECK_EQ(fg_keys_init(), 0);
	CHECK_EQ(fg_keys_bind(ssl, &st), 0);
	CHECK(fg_keys_conn(ssl) == &st);
	memset(&keys, CANARY, sizeof(keys));
	memset(st.client_secret, CANARY, sizeof(st.client_secret));
	memset(st.server_secret, CANARY, sizeof(st.server_secret));
	st.client_secret_len = st.server_secret_len = 32;
	st.write_app = st.read_app = 1;
	CHECK_EQ(fg_keys_export(ssl, &st, &keys), -EINVAL);
	CHECK_MEM(&keys, zero, sizeof(keys));
	CHECK_MEM(st.client_secret, zero, sizeof(st.client_secret));
	CHECK_MEM(st.server_secret, zero, sizeof(st.server_secret));
	CHECK_EQ(st.client_secret_len, 0);
	CHECK_EQ(st.server_secret_len, 0);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

UNIT_MAIN("keys", UNIT_CASE(parses_sha256_and_sha384_secrets), UNIT_CASE(upper_case_hex_is_hex),
	  UNIT_CASE(other_labels_are_not_read),
	  UNIT_CASE(a_line_without_the_secret_field_leaves_out_alone),
	  UNIT_CASE(secret_is_bounded_and_stops_at_non_hex),
	  UNIT_CASE(export_fails_closed_and_wipes))
