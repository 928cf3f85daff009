/* SPDX-License-Identifier: MIT */
/*
 * base64url tests (control/ca/b64url.c): the RFC 4648 section 10 vectors
 * without padding, the url-safe alphabet (RFC 4648 section 5, RFC 7515
 * appendix C), a JWS header of RFC 7515 appendix A.1, and what the decoder
 * refuses: padding, the standard alphabet, other characters, a length that
 * cannot be, and non-zero leftover bits (a second text for the same bytes).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "control/ca/b64url.h"
#include "unit.h"

/* Encodes @n bytes of @in and expects @text; decodes @text and expects the bytes back. */
#define ROUND(in, n, text)                                                                         \
	do {                                                                                       \
		char *_e = fg_b64url_encode((const uint8_t *)(in), (n));                           \
		uint8_t *_d = NULL;                                                                \
		size_t _dn = 0;                                                                    \
		CHECK(_e && !strcmp(_e, (text)));                                                  \
		if (_e && strcmp(_e, (text)))                                                      \
			fprintf(stderr, "    encoded \"%s\", expected \"%s\"\n", _e, (text));      \
		CHECK_EQ(fg_b64url_decode((text), strlen(text), &_d, &_dn), 0);                    \
		CHECK_EQ(_dn, (n));                                                                \
		if (_d && _dn == (n))                                                              \
			CHECK_MEM(_d, (in), (n));                                                  \
		if (_d)                                                                            \
			CHECK_EQ(_d[_dn], 0); /* NUL-terminated for the JSON parser */             \
		free(_e);                                                                          \
		free(_d);                                                                          \
	} while (0)

/* @text (of @len characters) must be refused with -EINVAL, and nothing handed out. */
#define REFUSED(text, len)                                                                         \
	do {                                                                                       \
		uint8_t *_d = (uint8_t *)"untouched";                                              \
		size_t _dn = 12345;                                                                \
		CHECK_EQ(fg_b64url_decode((text), (len), &_d, &_dn), -EINVAL);                     \
		CHECK(!strcmp((const char *)_d, "untouched") && _dn == 12345);                     \
	} while (0)

UNIT_TEST(rfc4648_vectors_without_padding)
{
	ROUND("", 0, "");
	ROUND("f", 1, "Zg");
	ROUND("fo", 2, "Zm8");
	ROUND("foo", 3, "Zm9v");
	ROUND("foob", 4, "Zm9vYg");
	ROUND("fooba", 5, "Zm9vYmE");
	ROUND("foobar", 6, "Zm9vYmFy");
}

UNIT_TEST(url_safe_alphabet)
{
	/* RFC 7515 appendix C: [3, 236, 255, 224, 193] */
	ROUND("\x03\xec\xff\xe0\xc1", 5, "A-z_4ME");
	/* '+' and '/' of standard base64 are '-' and '_' here */
	ROUND("\xfb\xff", 2, "-_8");
	ROUND("\xfb\xef\xbe", 3, "----");
	ROUND("\xff\xff\xff", 3, "____");
	ROUND("\x00\x00\x00\x00", 4, "AAAAAA");
}

UNIT_TEST(rfc7515_a1_header)
{
	static const char hdr[] = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";

	ROUND(hdr, sizeof(hdr) - 1, "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
}

UNIT_TEST(every_byte_value_round_trips)
{
	uint8_t all[256];

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (size_t n = 0; n <= sizeof(all); n++) {
		char *e = fg_b64url_encode(all, n);
		uint8_t *d = NULL;
		size_t dn = 0;

		CHECK(e != NULL);
		if (!e)
			continue;
		CHECK_EQ(strlen(e), (n * 8 + 5) / 6); /* no padding */
		CHECK_EQ(fg_b64url_decode(e, strlen(e), &d, &dn), 0);
		CHECK_EQ(dn, n);
		if (d && dn == n)
			CHECK_MEM(d, all, n);
		free(e);
		free(d);
	}
}

UNIT_TEST(padding_and_foreign_characters_are_refused)
{
	REFUSED("Zg==", 4);
	REFUSED("Zm8=", 4);
	REFUSED("+_8", 3);
	REFUSED("-/8", 3);
	REFUSED("Zm 9v", 5);
	REFUSED("Zm9v\n", 5);
	REFUSED("Zm9v.", 5);
	REFUSED("Zm\0v", 4); /* a NUL inside the span */
	REFUSED("Zm9v\xc3\xa9", 6);
}

UNIT_TEST(impossible_lengths_and_leftover_bits_are_refused)
{
	REFUSED("Z", 1);
	REFUSED("Zm9vY", 5);
	/* "Zg" is "f"; "Zh" .. "Zv" would decode to "f" too, with bits left over */
	REFUSED("Zh", 2);
	REFUSED("Zv", 2);
	REFUSED("Zm9", 3); /* "Zm8" is "fo" */
	REFUSED("A-z_4MF", 7);
}

UNIT_TEST(decode_reads_only_len_characters)
{
	uint8_t *d = NULL;
	size_t dn = 0;

	/* a JWS part ends at a '.', which is not base64url */
	CHECK_EQ(fg_b64url_decode("Zm9v.Zm9v", 4, &d, &dn), 0);
	CHECK_EQ(dn, 3);
	if (d)
		CHECK_MEM(d, "foo", 3);
	free(d);
}

UNIT_MAIN("b64url", UNIT_CASE(rfc4648_vectors_without_padding), UNIT_CASE(url_safe_alphabet),
	  UNIT_CASE(rfc7515_a1_header), UNIT_CASE(every_byte_value_round_trips),
	  UNIT_CASE(padding_and_foreign_characters_are_refused),
	  UNIT_CASE(impossible_lengths_and_leftover_bits_are_refused),
	  UNIT_CASE(decode_reads_only_len_characters))
