/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_BPF_LIBBPF_LOG_H
#define FEDGATE_BPF_LIBBPF_LOG_H

/*
 * libbpf's own messages (the verifier log among them) go to stderr only when
 * FEDGATE_DEBUG is set, and never its debug level: every loader calls this
 * before opening its object.
 */
void fg_bpf_log_init(void);

#endif
