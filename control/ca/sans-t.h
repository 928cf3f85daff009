/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_SANS_T_H
#define FEDGATE_CA_SANS_T_H

#include <stddef.h>

#define FG_CA_SANS_MAX 64

/*
 * SANs as comparable strings, one per name ("dns:a.example" lowercased,
 * "ip:10.0.0.1", "uri:spiffe://...", "email:..."), sorted. Each malloc'd;
 * zero-initialise, free with fg_ca_san_list_free().
 */
struct fg_ca_san_list {
	char *v[FG_CA_SANS_MAX];
	size_t n;
};

#endif
