// SPDX-License-Identifier: MIT
/*
 * Single-use token IDs (see fg_ca_jti_new() in ca.h): open addressing, entries
 * expire with their token.
 *
 * The file holds one line per used token, "EXP SHA256HEX\n", appended and
 * fsync'd before the token is accepted. A torn last line (a crash mid-write)
 * is skipped on load. It is rewritten without the expired entries at load and
 * whenever expired lines outnumber the live ones, so it stays proportional to
 * the tokens alive (at most JTI_MAX).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "control/ca/ca.h"
#include "control/ca/files.h"
#include "fedgate/log.h"

#define JTI_MAX 65536 /* tokens remembered at once; more is refused, never forgotten */
#define JTI_HEX 64
#define JTI_LINE_MAX 96
#define JTI_FILE_MAX ((size_t)JTI_MAX * 4 * JTI_LINE_MAX) /* 4 x the live maximum */

struct jti_entry {
	char *id; /* SHA-256 hex of the token's jti */
	int64_t exp;
};

struct fg_jti_store {
	struct jti_entry *e;
	size_t cap, used;
	char *path;	   /* NULL: memory only */
	int fd;		   /* @path, O_APPEND */
	size_t file_lines; /* lines in the file, live or not */
};

struct fg_jti_store *fg_ca_jti_new(void)
{
	struct fg_jti_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = -1;
	s->cap = 1024;
	s->e = calloc(s->cap, sizeof(*s->e));
	if (!s->e) {
		free(s);
		return NULL;
	}
	return s;
}

void fg_ca_jti_free(struct fg_jti_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->cap; i++)
		free(s->e[i].id);
	free(s->e);
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s);
}

static size_t jti_hash(const char *id)
{
	size_t h = 1469598103934665603ULL;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return h;
}

/* Rebuilds the table with @cap slots, dropping entries expired before @now. */
static int jti_rehash(struct fg_jti_store *s, size_t cap, int64_t now)
{
	struct jti_entry *ne = calloc(cap, sizeof(*ne));

	if (!ne)
		return -ENOMEM;
	s->used = 0;
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (!s->e[i].id)
			continue;
		if (s->e[i].exp < now) {
			free(s->e[i].id);
			continue;
		}
		for (j = jti_hash(s->e[i].id) & (cap - 1); ne[j].id; j = (j + 1) & (cap - 1))
			;
		ne[j] = s->e[i];
		s->used++;
	}
	free(s->e);
	s->e = ne;
	s->cap = cap;
	return 0;
}

/* Adds @id (live until @exp). 0, -EALREADY if present, -ENOSPC if full, -ENOMEM. */
static int jti_add(struct fg_jti_store *s, const char *id, int64_t exp, int64_t now)
{
	size_t i;

	/* Keep the table at most half full; expired entries go first. */
	if (2 * (s->used + 1) > s->cap) {
		size_t cap = s->cap;
		int ret;

		ret = jti_rehash(s, cap, now);
		while (!ret && 2 * (s->used + 1) > cap && cap < 2 * JTI_MAX)
			cap *= 2;
		if (!ret && cap != s->cap)
			ret = jti_rehash(s, cap, now);
		if (ret)
			return ret;
		if (s->used >= JTI_MAX)
			return -ENOSPC;
	}
	for (i = jti_hash(id) & (s->cap - 1); s->e[i].id; i = (i + 1) & (s->cap - 1))
		if (!strcmp(s->e[i].id, id))
			return -EALREADY;
	s->e[i].id = strdup(id);
	if (!s->e[i].id)
		return -ENOMEM;
	s->e[i].exp = exp;
	s->used++;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Rewrites the file with the entries live at @now and reopens it for appending. */
static int jti_compact(struct fg_jti_store *s, int64_t now, struct fg_err *err)
{
	char *text = malloc(s->used * JTI_LINE_MAX + 1);
	size_t len = 0, lines = 0;
	int fd, ret;

	if (!text)
		return fg_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->e[i].id || s->e[i].exp < now)
			continue;
		len += (size_t)snprintf(text + len, JTI_LINE_MAX, "%lld %s\n",
					(long long)s->e[i].exp, s->e[i].id);
		lines++;
	}
	ret = fg_pki_write_file(s->path, text, len, 0600, err);
	free(text);
	if (ret)
		return ret;
	fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fg_err_set(err, -errno, "cannot open %s: %s", s->path, strerror(errno));
	if (s->fd >= 0)
		close(s->fd);
	s->fd = fd;
	s->file_lines = lines;
	return 0;
}

/* "EXP HEX" with EXP decimal and HEX JTI_HEX lowercase hex digits; 0 or -EINVAL. */
static int jti_parse_line(const char *line, size_t len, int64_t *exp, char id[JTI_HEX + 1])
{
	size_t d = 0;
	int64_t v = 0;

	while (d < len && d < 18 && line[d] >= '0' && line[d] <= '9')
		v = v * 10 + (line[d++] - '0');
	if (!d || len != d + 1 + JTI_HEX || line[d] != ' ' ||
	    strspn(line + d + 1, "0123456789abcdef") < JTI_HEX)
		return -EINVAL;
	memcpy(id, line + d + 1, JTI_HEX);
	id[JTI_HEX] = '\0';
	*exp = v;
	return 0;
}

int fg_ca_jti_open(struct fg_jti_store *s, const char *path, int64_t now, struct fg_err *err)
{
	struct fg_err e = { 0 };
	char *text = NULL, id[JTI_HEX + 1];
	size_t len = 0, skipped = 0;
	int ret;

	s->path = strdup(path);
	if (!s->path)
		return fg_err_set(err, -ENOMEM, "out of memory");
	ret = fg_pki_read_file(path, JTI_FILE_MAX, &text, &len, &e);
	if (ret == -ENOENT) {
		ret = 0;
	} else if (ret) {
		return fg_err_set(err, ret, "the used-token file: %s", e.msg);
	} else {
		for (char *p = text, *nl; p < text + len; p = nl + 1) {
			int64_t exp;

			nl = memchr(p, '\n', (size_t)(text + len - p));
			if (!nl) { /* a torn last line */
				skipped++;
				break;
			}
			if (jti_parse_line(p, (size_t)(nl - p), &exp, id)) {
				skipped++;
				continue;
			}
			if (exp < now)
				continue;
			ret = jti_add(s, id, exp, now);
			if (ret == -EALREADY)
				ret = 0;
			if (ret) {
				free(text);
				return fg_err_set(err, ret, "%s: %s", path,
						  ret == -ENOSPC ? "too many live tokens"
								 : strerror(-ret));
			}
		}
		free(text);
	}
	if (skipped)
		fg_warn("CA: %s: %zu malformed line(s) skipped", path, skipped);
	return jti_compact(s, now, err);
}

int fg_ca_jti_use(struct fg_jti_store *s, const char *jti, int64_t exp, int64_t now)
{
	unsigned char md[32];
	char id[JTI_HEX + 1], line[JTI_LINE_MAX];
	int ret, n;

	if (!EVP_Digest(jti, strlen(jti), md, NULL, EVP_sha256(), NULL))
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	exp += FG_CA_TOKEN_LEEWAY_S;
	ret = jti_add(s, id, exp, now);
	if (ret || s->fd < 0)
		return ret;
	/* Spent in memory now; refused below (and so never accepted) if the disk cannot say so. */
	n = snprintf(line, sizeof(line), "%lld %s\n", (long long)exp, id);
	ret = write_all(s->fd, line, (size_t)n);
	if (!ret && fsync(s->fd))
		ret = -errno;
	if (ret)
		return ret;
	s->file_lines++;
	if (s->file_lines > 2 * s->used + 1024) {
		struct fg_err e = { 0 };

		/* Failing to compact loses nothing: the old file still holds every line. */
		if (jti_compact(s, now, &e))
			fg_warn("CA: %s", e.msg);
	}
	return 0;
}
