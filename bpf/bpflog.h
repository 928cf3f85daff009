/* SPDX-License-Identifier: MIT */
/*
 * What every loader does before opening a skeleton: libbpf's own messages go
 * to stderr only under FEDGATE_DEBUG (warnings and info; debug never), and one
 * phrase per load error for the caller's message.
 */
#ifndef FEDGATE_BPF_BPFLOG_H
#define FEDGATE_BPF_BPFLOG_H

/* Installs the print callback; idempotent. */
void fg_bpf_log_init(void);

/*
 * A static phrase for @err (a negative errno from open/load/attach) naming
 * what to do, about the programs called @what ("the cgroup capture BPF
 * programs"), e.g. "... need CAP_BPF and CAP_NET_ADMIN (or root)".
 * Written into @buf (@len bytes), which is returned.
 */
const char *fg_bpf_why(int err, const char *what, char *buf, unsigned long len);

#endif
