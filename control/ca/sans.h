/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_SANS_H
#define FEDGATE_CA_SANS_H

/*
 * SAN lists, to compare a CSR's names with its token's. fg_ca_sans(), which
 * builds GENERAL_NAMES from step's strings, is in ca.h.
 */
#include <stddef.h>
#include <openssl/x509v3.h>

#include "control/ca/sans-t.h"

/*
 * Appends @gens (may be NULL) to @l and sorts it. Returns 0, -EINVAL for a
 * SAN type fedgate does not issue or a malformed one, -E2BIG past
 * FG_CA_SANS_MAX, -ENOMEM; @l is the caller's to free in every case.
 */
int fg_ca_san_list_from(const GENERAL_NAMES *gens, struct fg_ca_san_list *l);
/* 1 if both (sorted) lists are equal entry by entry (never through truncated text), else 0. */
int fg_ca_san_list_equal(const struct fg_ca_san_list *a, const struct fg_ca_san_list *b);
/* For messages only: the list as text, cut at @len bytes. */
void fg_ca_san_list_text(const struct fg_ca_san_list *l, char *out, size_t len);
/* Frees the strings of @l (may be NULL) and empties it. */
void fg_ca_san_list_free(struct fg_ca_san_list *l);

#endif
