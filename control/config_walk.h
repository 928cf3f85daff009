/* SPDX-License-Identifier: MIT */
/*
 * Internal to the config parser: reading one JSON member with its check and
 * its message. Each returns 0, -ENOMEM, or -EINVAL with w->err set to
 * "FILE: $.path.key: problem". None does I/O.
 */
#ifndef FEDGATE_CONFIG_WALK_H
#define FEDGATE_CONFIG_WALK_H

#include <cjson/cJSON.h>
#include "control/config_walk-t.h"

/* "@path.@key" into @buf; returns @buf. */
const char *fg_conf_key_path(char *buf, size_t len, const char *path, const char *key);

/* @obj must be an object whose keys are all in @allowed (NULL-terminated), each once. */
int fg_conf_check_keys(struct fg_conf_walk *w, const cJSON *obj, const char *path,
		       const char *const *allowed);

/* Copies non-empty string member @key into *@out; a missing one is an error only if @required. */
int fg_conf_get_str(struct fg_conf_walk *w, const cJSON *obj, const char *path, const char *key,
		    int required, char **out);

/* Boolean member @key into *@out (0 or 1); a missing one leaves *@out as it is. */
int fg_conf_get_bool(struct fg_conf_walk *w, const cJSON *obj, const char *path, const char *key,
		     int *out);

/* Integer member @key in @lo..@hi into *@out; a missing one leaves *@out as it is. */
int fg_conf_get_int(struct fg_conf_walk *w, const cJSON *obj, const char *path, const char *key,
		    int lo, int hi, int *out);

/* Copies an optional non-empty array of non-empty strings; *@out and *@n as far as it got. */
int fg_conf_get_str_array(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			  const char *key, char ***out, size_t *n);
void fg_conf_free_str_array(char **a, size_t n);

/* One kind of element of an array of strings that each parse into a value. */
struct fg_conf_elem {
	const char *key;
	int required;	     /* a missing key is an error (else: left empty) */
	size_t size;	     /* of one parsed element */
	const char *plural;  /* "prefixes", for the messages */
	const char *example; /* "\"10.20.0.0/16\"", for the messages */
	/* @text into @out (@size bytes); 0, or -EINVAL with a static reason in *@why */
	int (*parse)(const char *text, void *out, const char **why);
};

/*
 * @obj's @e->key: a non-empty array of strings, each parsed by @e->parse into
 * a new array *@out of *@n elements (as far as it got, for the caller to free).
 */
int fg_conf_get_parsed_array(struct fg_conf_walk *w, const cJSON *obj, const char *path,
			     const struct fg_conf_elem *e, void **out, size_t *n);

/* Makes *@p relative to w->dir unless absolute (or NULL); frees the old string. */
int fg_conf_resolve_path(struct fg_conf_walk *w, char **p);

/*
 * A fingerprint as "AB:CD:..." (openssl x509 -fingerprint) or plain hex,
 * rewritten in place as plain lowercase hex. -EINVAL unless 64 hex digits.
 */
int fg_conf_normalize_sha256(char *fp);

/* Leave to the loader: @file must be readable, reported at @jpath. */
int fg_conf_defer_readable(struct fg_conf_walk *w, const char *jpath, const char *file);

/* Leave to the loader: resolve @text into @addr (@passive: a listener), reported at @jpath. */
int fg_conf_defer_addr(struct fg_conf_walk *w, const char *jpath, const char *text, int passive,
		       struct fg_addr *addr);

/*
 * @obj's "allow": a non-empty array of rules into *@rules / *@n (as far as it
 * got, for the caller to free). @reach_ok: rules may carry "reach".
 */
int fg_conf_parse_allow(struct fg_conf_walk *w, const cJSON *obj, const char *path, int reach_ok,
			struct fg_allow_rule **rules, size_t *n);

/* The sections of the file, each into @cfg (config_identity.c, config_tunnels.c...). */
int fg_conf_parse_identity(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *id);
int fg_conf_parse_roots(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *arr);
int fg_conf_parse_tunnels(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *arr);
/* $.routes and $.capture (config_routes.c); after the tunnels, which decide what is needed. */
int fg_conf_parse_routes(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *arr);
int fg_conf_parse_capture(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj);
/* $.dns (config_routes.c): how often the names of peers and upstreams are re-resolved. */
int fg_conf_parse_dns(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj);
/* $.limits (config_limits.c); defaults when @obj is NULL. */
int fg_conf_parse_limits(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj);
/* $.admin (config_admin.c): the admin listener's address, if any. */
int fg_conf_parse_admin(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj);
/* $.run_as, $.sandbox and $.dataplane.seccomp (config_sandbox.c), from the document's root. */
int fg_conf_parse_sandbox(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *root);

#endif
