// SPDX-License-Identifier: MIT
/* Reading the config's JSON one member at a time: each check with its located message. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/config.h"
#include "control/config_walk.h"
#include "fedgate/err.h"

int fg_conf_fail(struct fg_err *err, const char *file, const char *jpath, const char *fmt, ...)
{
	char what[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return fg_err_set(err, -EINVAL, "%s: %s: %s", file, jpath, what);
}

const char *fg_conf_key_path(char *buf, size_t len, const char *path, const char *key)
{
	snprintf(buf, len, "%s.%s", path, key);
	return buf;
}

int fg_conf_check_keys(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		       const char *const *allowed)
{
	char jp[256];
	const cJSON *it;

	if (!cJSON_IsObject(obj))
		return fg_conf_fail(w->err, w->file, path, "expected an object");
	cJSON_ArrayForEach(it, obj)
	{
		int ok = 0;

		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(it->string, *a);
		snprintf(jp, sizeof(jp), "%s.%s", path, it->string);
		if (!ok)
			return fg_conf_fail(w->err, w->file, jp, "unknown key");
		/* JSON tools disagree on which duplicate wins: refuse the doubt. */
		for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
			if (!strcmp(prev->string, it->string))
				return fg_conf_fail(w->err, w->file, jp, "key given twice");
	}
	return 0;
}

int fg_conf_get_str(struct fg_conf_walk *w, const cJSON *obj, const char *path, const char *key,
		    int required, char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char jp[256];

	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!it) {
		if (required)
			return fg_conf_fail(w->err, w->file, jp, "missing required key");
		return 0;
	}
	if (!cJSON_IsString(it))
		return fg_conf_fail(w->err, w->file, jp, "expected a string");
	if (!it->valuestring[0])
		return fg_conf_fail(w->err, w->file, jp, "must not be empty");
	*out = strdup(it->valuestring);
	return *out ? 0 : -ENOMEM;
}

int fg_conf_get_bool(struct fg_conf_walk *w, const cJSON *obj, const char *path, const char *key,
		     int *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char jp[256];

	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return fg_conf_fail(w->err, w->file, fg_conf_key_path(jp, sizeof(jp), path, key),
				    "expected true or false");
	*out = cJSON_IsTrue(it);
	return 0;
}

int fg_conf_get_int(struct fg_conf_walk *w, const cJSON *obj, const char *path, const char *key,
		    int lo, int hi, int *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char jp[256];

	if (!it)
		return 0;
	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!cJSON_IsNumber(it))
		return fg_conf_fail(w->err, w->file, jp, "expected an integer");
	if (!(it->valuedouble >= lo && it->valuedouble <= hi))
		return fg_conf_fail(w->err, w->file, jp, "must be between %d and %d", lo, hi);
	if (it->valuedouble != (double)(int)it->valuedouble)
		return fg_conf_fail(w->err, w->file, jp, "expected an integer");
	*out = (int)it->valuedouble;
	return 0;
}

int fg_conf_get_str_array(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			  const char *key, char ***out, size_t *n)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
	char jp[256];
	int i = 0;

	if (!arr)
		return 0;
	snprintf(jp, sizeof(jp), "%s.%s", path, key);
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return fg_conf_fail(w->err, w->file, jp, "expected a non-empty array of strings");
	*out = calloc((size_t)cJSON_GetArraySize(arr), sizeof(**out));
	if (!*out)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		snprintf(jp, sizeof(jp), "%s.%s[%d]", path, key, i++);
		if (!cJSON_IsString(it) || !it->valuestring[0])
			return fg_conf_fail(w->err, w->file, jp, "expected a non-empty string");
		(*out)[*n] = strdup(it->valuestring);
		if (!(*out)[*n])
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

int fg_conf_get_parsed_array(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			     const struct fg_conf_elem *e, void **out, size_t *n)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, e->key), *it;
	const char *why;
	char jp[320];
	int i = 0;

	snprintf(jp, sizeof(jp), "%s.%s", path, e->key);
	if (!arr)
		return e->required ? fg_conf_fail(w->err, w->file, jp, "missing required key") : 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return fg_conf_fail(w->err, w->file, jp,
				    "expected a non-empty array of %s such as %s", e->plural,
				    e->example);
	*out = calloc((size_t)cJSON_GetArraySize(arr), e->size);
	if (!*out)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		snprintf(jp, sizeof(jp), "%s.%s[%d]", path, e->key, i++);
		if (!cJSON_IsString(it))
			return fg_conf_fail(w->err, w->file, jp, "expected a string such as %s",
					    e->example);
		if (e->parse(it->valuestring, (char *)*out + *n * e->size, &why))
			return fg_conf_fail(w->err, w->file, jp, "\"%s\": %s", it->valuestring,
					    why);
		(*n)++;
	}
	return 0;
}

void fg_conf_free_str_array(char **a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

int fg_conf_resolve_path(struct fg_conf_walk *w, char **p)
{
	char *abs;

	if (!*p || (*p)[0] == '/')
		return 0;
	if (asprintf(&abs, "%s/%s", w->dir, *p) < 0)
		return -ENOMEM;
	free(*p);
	*p = abs;
	return 0;
}

int fg_conf_normalize_sha256(char *fp)
{
	size_t n = 0;

	for (const char *p = fp; *p; p++) {
		if (*p == ':')
			continue;
		if (!strchr("0123456789abcdefABCDEF", *p) || n >= 64)
			return -EINVAL;
		fp[n++] = (char)tolower((unsigned char)*p);
	}
	if (n != 64)
		return -EINVAL;
	fp[n] = '\0';
	return 0;
}

/* Appends a check of @kind; 0 or -ENOMEM. */
static int defer(struct fg_conf_walk *w, enum fg_conf_check_kind kind, const char *jpath,
		 const char *arg, struct fg_addr *addr)
{
	struct fg_conf_checks *cs = w->checks;
	struct fg_conf_check *c;

	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? 2 * cs->cap : 8;
		struct fg_conf_check *v = reallocarray(cs->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		cs->v = v;
		cs->cap = cap;
	}
	c = &cs->v[cs->n];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	snprintf(c->jpath, sizeof(c->jpath), "%s", jpath);
	c->addr = addr;
	c->arg = strdup(arg);
	if (!c->arg)
		return -ENOMEM;
	cs->n++;
	return 0;
}

int fg_conf_defer_readable(struct fg_conf_walk *w, const char *jpath, const char *file)
{
	return defer(w, FG_CONF_CHECK_READABLE, jpath, file, NULL);
}

int fg_conf_defer_addr(struct fg_conf_walk *w, const char *jpath, const char *text, int passive,
		       struct fg_addr *addr)
{
	return defer(w, passive ? FG_CONF_CHECK_LISTEN : FG_CONF_CHECK_CONNECT, jpath, text, addr);
}

void fg_conf_checks_free(struct fg_conf_checks *checks)
{
	if (!checks)
		return;
	for (size_t i = 0; i < checks->n; i++)
		free(checks->v[i].arg);
	free(checks->v);
	memset(checks, 0, sizeof(*checks));
}
