/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_JSON_NUL_H
#define FEDGATE_JSON_NUL_H

/*
 * cJSON decodes "\u0000" inside a string into a NUL and hands back a C
 * string: "t\u0000evil" reads as "t". It also copies a raw NUL byte inside
 * a string the same way. Every JSON text fedgate reads from a file or a peer
 * (its config, the CA's config, /sign bodies, JWT headers and claims) is
 * first searched for either, and refused if one is there.
 */
#include <stddef.h>

/*
 * Searches @len bytes of @text for a NUL byte anywhere or a \u0000 escape
 * inside a string (a key or a value; "\\u0000" is not one). Pure, and safe on
 * any bytes. Returns 0 when there is none; 1 with *@at (may be NULL) the
 * offset of the NUL or of the escape's backslash, and @path (@path_len
 * bytes, at least 2; may be NULL) the JSON path where it is, "$.a.b[3]" (for
 * a key: the path it names, as far as it got). The path is exact only for
 * well-formed JSON (parse it first), truncated past 32 levels of nesting or
 * at @path_len, and a key is shown up to 64 bytes, escapes as written.
 */
int fg_json_nul_find(const char *text, size_t len, char *path, size_t path_len, size_t *at);

#endif
