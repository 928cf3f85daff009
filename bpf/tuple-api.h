/* SPDX-License-Identifier: MIT */
/*
 * Userspace side of bpf/tuple.h: the normalized key of a socket, built from
 * its addresses the way the BPF programs build it from the kernel's.
 */
#ifndef FEDGATE_BPF_TUPLE_API_H
#define FEDGATE_BPF_TUPLE_API_H

#include <sys/socket.h>

#include "bpf/tuple.h"

/*
 * Pure: @t from the socket's own address @local and its peer @remote (both
 * AF_INET or both AF_INET6; IPv4-mapped IPv6 becomes FG_AF_INET). 0, or
 * -EAFNOSUPPORT for another family or a mix.
 */
int fg_tuple_from(const struct sockaddr *local, const struct sockaddr *remote, struct fg_tuple *t);

/* @t of connected socket @fd (getsockname + getpeername). 0 or a negative errno. */
int fg_tuple_of_fd(int fd, struct fg_tuple *t);

#endif
