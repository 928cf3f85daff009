/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ADDR_H
#define FEDGATE_ADDR_H

#include <stddef.h>
#include "fedgate/addr-t.h"

/*
 * Parses and resolves @text, "host:port" or "[v6]:port" (@passive: for a
 * listener, port 0 allowed). Returns 0, -EINVAL with the reason in *@why, or
 * -ENOMEM.
 */
int fg_addr_parse(const char *text, int passive, struct fg_addr *addr, const char **why);

/* Frees what fg_addr_parse() allocated; NULL and a zeroed @addr are fine. */
void fg_addr_exit(struct fg_addr *addr);

/* The numeric host of @ss into @host ("?" for another family); returns the port (0 then). */
unsigned fg_addr_host(const struct sockaddr_storage *ss, char *host, size_t size);

/* "host:port" or "[v6]:port" of @ss into @out, "?" for another family. */
void fg_addr_text(const struct sockaddr_storage *ss, char *out, size_t len);

#endif
