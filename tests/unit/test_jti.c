/* SPDX-License-Identifier: MIT */
/*
 * The used-token store (control/ca/jti.c): a token ID is good once, until
 * its token expires (plus the leeway); the file keeps that across restarts,
 * skips torn and malformed lines, and drops the expired ones when loaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "control/ca/ca.h"
#include "unit.h"

#define NOW 1767323045LL
/* SHA-256("a"), as the file holds a used "a" */
#define SHA_A "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"

static char dir[] = "/tmp/fedgate-test-jti-XXXXXX";

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static char *read_text(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

UNIT_TEST(an_id_is_good_once)
{
	struct fg_jti_store *s = fg_ca_jti_new();

	CHECK(s != NULL);
	CHECK_EQ(fg_ca_jti_use(s, "a", NOW + 300, NOW), 0);
	CHECK_EQ(fg_ca_jti_use(s, "a", NOW + 300, NOW), -EALREADY);
	CHECK_EQ(fg_ca_jti_use(s, "a", NOW + 900, NOW + 100), -EALREADY);
	CHECK_EQ(fg_ca_jti_use(s, "b", NOW + 300, NOW), 0);
	CHECK_EQ(fg_ca_jti_use(s, "A", NOW + 300, NOW), 0); /* IDs compare exactly */
	fg_ca_jti_free(s);
	fg_ca_jti_free(NULL);
}

UNIT_TEST(many_ids_grow_the_table_and_stay_spent)
{
	struct fg_jti_store *s = fg_ca_jti_new();
	char id[32];
	int fails = 0;

	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "jti-%d", i);
		fails += fg_ca_jti_use(s, id, NOW + 300, NOW) != 0;
	}
	CHECK_EQ(fails, 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "jti-%d", i);
		fails += fg_ca_jti_use(s, id, NOW + 300, NOW + 1) != -EALREADY;
	}
	CHECK_EQ(fails, 0);
	fg_ca_jti_free(s);
}

UNIT_TEST(expired_ids_are_forgotten_only_after_the_leeway)
{
	struct fg_jti_store *s = fg_ca_jti_new();
	char id[32];
	int fails = 0;

	CHECK_EQ(fg_ca_jti_use(s, "old", NOW, NOW - 300), 0);
	/* many later tokens make the table rebuild, which drops what expired */
	for (int i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "later-%d", i);
		fails += fg_ca_jti_use(s, id, NOW + 300, NOW + FG_CA_TOKEN_LEEWAY_S - 1) != 0;
	}
	CHECK_EQ(fails, 0);
	/* still within exp + leeway: spent */
	CHECK_EQ(fg_ca_jti_use(s, "old", NOW + 300, NOW + FG_CA_TOKEN_LEEWAY_S - 1), -EALREADY);
	for (int i = 3000; i < 9000; i++) {
		snprintf(id, sizeof(id), "later-%d", i);
		fails += fg_ca_jti_use(s, id, NOW + 300, NOW + FG_CA_TOKEN_LEEWAY_S + 1) != 0;
	}
	CHECK_EQ(fails, 0);
	/* past it, and the table rebuilt since: forgotten (the token itself is refused as expired) */
	CHECK_EQ(fg_ca_jti_use(s, "old", NOW + 300, NOW + FG_CA_TOKEN_LEEWAY_S + 1), 0);
	fg_ca_jti_free(s);
}

UNIT_TEST(the_file_keeps_ids_across_restarts)
{
	char path[256];
	struct fg_err err = { 0 };
	struct fg_jti_store *s = fg_ca_jti_new();

	snprintf(path, sizeof(path), "%s/used_tokens", dir);
	CHECK_EQ(fg_ca_jti_open(s, path, NOW, &err), 0); /* missing: none used yet */
	CHECK_EQ(fg_ca_jti_use(s, "a", NOW + 300, NOW), 0);
	fg_ca_jti_free(s);
	CHECK(!strcmp(read_text(path), "1767323405 " SHA_A "\n"));
	s = fg_ca_jti_new();
	CHECK_EQ(fg_ca_jti_open(s, path, NOW + 10, &err), 0);
	CHECK_EQ(fg_ca_jti_use(s, "a", NOW + 300, NOW + 10), -EALREADY);
	CHECK_EQ(fg_ca_jti_use(s, "b", NOW + 300, NOW + 10), 0);
	fg_ca_jti_free(s);
	unlink(path);
}

UNIT_TEST(torn_malformed_and_expired_lines_are_dropped_on_load)
{
	char path[256];
	struct fg_err err = { 0 };
	struct fg_jti_store *s = fg_ca_jti_new();

	snprintf(path, sizeof(path), "%s/used_tokens", dir);
	write_text(path, "1767323000 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
			 "junk\n"
			 "1767323405 " SHA_A "\n"
			 "1767323405 CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB\n"
			 "1767323405 ca978112ca1b");
	CHECK_EQ(fg_ca_jti_open(s, path, NOW, &err), 0);
	/* the file is rewritten with the one live, well-formed line */
	CHECK(!strcmp(read_text(path), "1767323405 " SHA_A "\n"));
	CHECK_EQ(fg_ca_jti_use(s, "a", NOW + 300, NOW), -EALREADY);
	fg_ca_jti_free(s);
	unlink(path);
}

UNIT_TEST(an_unreadable_file_is_an_error)
{
	struct fg_err err = { 0 };
	struct fg_jti_store *s = fg_ca_jti_new();

	CHECK(fg_ca_jti_open(s, dir, NOW, &err) < 0); /* a directory */
	CHECK(strstr(err.msg, "used-token file") != NULL);
	fg_ca_jti_free(s);
}

static void setup(void)
{
	CHECK(mkdtemp(dir) != NULL);
}

static void teardown(void)
{
	CHECK_EQ(rmdir(dir), 0);
}

UNIT_MAIN("jti", UNIT_CASE(setup), UNIT_CASE(an_id_is_good_once),
	  UNIT_CASE(many_ids_grow_the_table_and_stay_spent),
	  UNIT_CASE(expired_ids_are_forgotten_only_after_the_leeway),
	  UNIT_CASE(the_file_keeps_ids_across_restarts),
	  UNIT_CASE(torn_malformed_and_expired_lines_are_dropped_on_load),
	  UNIT_CASE(an_unreadable_file_is_an_error), UNIT_CASE(teardown))
