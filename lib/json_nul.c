// SPDX-License-Identifier: MIT
/* The NUL in a JSON text that cJSON would cut a string at: see json_nul.h. */
#include <stdio.h>
#include <string.h>

#include "fedgate/json_nul.h"

#define DEPTH_MAX 32
#define KEY_MAX 64

/* One open object or array, for the path. */
struct frame {
	char kind;    /* '{' or '[' */
	int has_key;  /* objects: a key was met since the last ',' */
	size_t index; /* arrays: of the current element */
	size_t key_len;
	char key[KEY_MAX + 1];
};

struct scan {
	struct frame f[DEPTH_MAX];
	size_t depth; /* may exceed DEPTH_MAX: those levels are not recorded */
};

static struct frame *top(struct scan *s)
{
	return s->depth && s->depth <= DEPTH_MAX ? &s->f[s->depth - 1] : NULL;
}

static void put_path(const struct scan *s, char *path, size_t len)
{
	size_t used;

	snprintf(path, len, "$");
	for (size_t i = 0; i < s->depth && i < DEPTH_MAX; i++) {
		const struct frame *f = &s->f[i];

		used = strlen(path);
		if (f->kind == '[')
			snprintf(path + used, len - used, "[%zu]", f->index);
		else if (f->has_key)
			snprintf(path + used, len - used, ".%s", f->key);
	}
	used = strlen(path);
	if (s->depth > DEPTH_MAX)
		snprintf(path + used, len - used, "...");
}

static int found(const struct scan *s, size_t i, char *path, size_t path_len, size_t *at)
{
	if (at)
		*at = i;
	if (path && path_len)
		put_path(s, path, path_len);
	return 1;
}

static void key_add(struct frame *f, char c)
{
	if (f && f->key_len < KEY_MAX) {
		f->key[f->key_len++] = c;
		f->key[f->key_len] = '\0';
	}
}

static int is_nul_escape(const char *p, size_t left)
{
	return left >= 6 && !memcmp(p, "\\u0000", 6);
}

int fg_json_nul_find(const char *text, size_t len, char *path, size_t path_len, size_t *at)
{
	struct scan s = {.depth = 0};
	struct frame *key = NULL; /* the frame whose key the current string is */
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		struct frame *f = top(&s);

		if (c == '\0')
			return found(&s, i, path, path_len, at);
		if (in_string) {
			if (c == '"') {
				in_string = 0;
				key = NULL;
			} else if (c == '\\') {
				size_t end = i + (i + 1 < len && text[i + 1] == 'u' ? 6 : 2);

				if (is_nul_escape(text + i, len - i))
					return found(&s, i, path, path_len, at);
				/* The escape as written; a NUL byte inside it is still one. */
				for (; i < end && i < len; i++) {
					if (!text[i])
						return found(&s, i, path, path_len, at);
					key_add(key, text[i]);
				}
				i--; /* the loop's i++ comes next */
			} else {
				key_add(key, c);
			}
			continue;
		}
		switch (c) {
		case '"':
			in_string = 1;
			if (f && f->kind == '{' && !f->has_key) {
				f->has_key = 1;
				f->key_len = 0;
				f->key[0] = '\0';
				key = f;
			}
			break;
		case '{':
		case '[':
			if (s.depth < DEPTH_MAX)
				s.f[s.depth] = (struct frame){.kind = c};
			s.depth++;
			break;
		case '}':
		case ']':
			if (s.depth)
				s.depth--;
			break;
		case ',':
			if (f && f->kind == '{')
				f->has_key = 0;
			else if (f)
				f->index++;
			break;
		default:
			break;
		}
	}
	return 0;
}
