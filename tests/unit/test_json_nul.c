/* SPDX-License-Identifier: MIT */
/*
 * fg_json_nul_find (lib/json_nul.c): the NUL that cJSON would cut a string
 * at, as a \u0000 escape in a value or a key or as a raw byte anywhere; what
 * is not one (an escaped backslash before "u0000", \u0001, text outside
 * strings); the JSON path and offset it reports; and its bounds (deep
 * nesting, a long key, a short path buffer, an escape cut by the end).
 */
#include <string.h>
#include "fedgate/json_nul.h"
#include "unit.h"

/* @text must hold a NUL at offset @off, reported at JSON path @want. */
#define FOUND(text, off, want)                                                                     \
	do {                                                                                       \
		char _p[256] = "untouched";                                                        \
		size_t _at = 9999;                                                                 \
		CHECK_EQ(fg_json_nul_find((text), sizeof(text) - 1, _p, sizeof(_p), &_at), 1);     \
		CHECK_EQ(_at, (off));                                                              \
		if (strcmp(_p, (want))) {                                                          \
			fprintf(stderr, "    %s:%d: path \"%s\", expected \"%s\"\n", __FILE__,     \
				__LINE__, _p, (want));                                             \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define CLEAN(text) CHECK_EQ(fg_json_nul_find((text), sizeof(text) - 1, NULL, 0, NULL), 0)

UNIT_TEST(escape_in_a_value_is_found_with_its_path)
{
	FOUND("{\"tunnels\":[{\"name\":\"t\\u0000evil\"}]}", 22, "$.tunnels[0].name");
	FOUND("{\"a\":1,\"b\":[0,1,\"\\u0000\"]}", 17, "$.b[2]");
	FOUND("\"\\u0000\"", 1, "$");
	FOUND("[[],[{}],{\"k\":{\"x\":[\"\",\"x\\u0000\"]}}]", 25, "$[2].k.x[1]");
}

UNIT_TEST(escape_in_a_key_is_found)
{
	FOUND("{\"ok\":1,\"na\\u0000me\":2}", 11, "$.na");
}

UNIT_TEST(raw_nul_byte_is_found_anywhere)
{
	FOUND("{\"a\":\"x\0y\"}", 7, "$.a");
	FOUND("{\"a\":1}\0junk", 7, "$");
	FOUND("{\"a\\\0\":1}", 4, "$.a\\");
}

UNIT_TEST(what_is_not_a_nul_is_not_reported)
{
	CLEAN("{\"a\":\"\\\\u0000\"}"); /* an escaped backslash, then text */
	CLEAN("{\"a\":\"\\u0001\"}");	/* \u0001 is not NUL */
	CLEAN("{\"a\":\"\\\"\\u0030\"}");
	CLEAN("{\"u0000\":\"\\\\\\\\u0000\"}");
	CLEAN("{}");
	CLEAN("");
}

UNIT_TEST(cut_escape_at_the_end_is_not_read_past)
{
	static const char t[] = "{\"a\":\"\\u000";
	char p[64];

	CHECK_EQ(fg_json_nul_find(t, sizeof(t) - 1, p, sizeof(p), NULL), 0);
	CHECK_EQ(fg_json_nul_find("\"\\", 2, p, sizeof(p), NULL), 0);
	/* A length shorter than the text: only those bytes count. */
	CHECK_EQ(fg_json_nul_find("\"\\u0000\"", 6, p, sizeof(p), NULL), 0);
}

UNIT_TEST(deep_nesting_long_keys_and_short_buffers_stay_bounded)
{
	char deep[200], p[8], big[512];
	size_t n = 0, at = 0;

	for (int i = 0; i < 40; i++)
		deep[n++] = '[';
	memcpy(deep + n, "\"\\u0000\"", 8);
	n += 8;
	CHECK_EQ(fg_json_nul_find(deep, n, big, sizeof(big), &at), 1);
	CHECK_EQ(at, 41);
	CHECK(strstr(big, "...") != NULL);
	CHECK_EQ(fg_json_nul_find(deep, n, p, sizeof(p), NULL), 1);
	CHECK_EQ(strlen(p), sizeof(p) - 1);

	n = 0;
	deep[n++] = '{';
	deep[n++] = '"';
	memset(deep + n, 'k', 100);
	n += 100;
	memcpy(deep + n, "\":\"\\u0000\"}", 11);
	n += 11;
	CHECK_EQ(fg_json_nul_find(deep, n, big, sizeof(big), NULL), 1);
	CHECK_EQ(strlen(big), 2 + 64);
}

UNIT_MAIN("json_nul", UNIT_CASE(escape_in_a_value_is_found_with_its_path),
	  UNIT_CASE(escape_in_a_key_is_found), UNIT_CASE(raw_nul_byte_is_found_anywhere),
	  UNIT_CASE(what_is_not_a_nul_is_not_reported),
	  UNIT_CASE(cut_escape_at_the_end_is_not_read_past),
	  UNIT_CASE(deep_nesting_long_keys_and_short_buffers_stay_bounded))
