// SPDX-License-Identifier: MIT
/* libbpf's messages and load errors, said once for every loader: bpf/bpflog.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "bpf/bpflog.h"

static int print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("FEDGATE_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void fg_bpf_log_init(void)
{
	libbpf_set_print(print);
}

const char *fg_bpf_why(int err, const char *what, char *buf, unsigned long len)
{
	const char *how;

	switch (err) {
	case -EPERM:
	case -EACCES:
		how = "is not permitted: it needs CAP_BPF and CAP_NET_ADMIN (or root)";
		break;
	case -EINVAL:
	case -524: /* the kernel's ENOTSUPP: a helper or attach type it lacks */
	case -EOPNOTSUPP:
		how = "was refused by the kernel (CONFIG_CGROUP_BPF, CONFIG_BPF_SYSCALL?); "
		      "FEDGATE_DEBUG=1 shows the verifier log";
		break;
	case -ENOMEM:
		how = "ran out of memory (locked memory limit?)";
		break;
	default:
		how = "failed; FEDGATE_DEBUG=1 shows libbpf's reason";
		break;
	}
	snprintf(buf, len, "loading %s %s (%s)", what, how, strerror(-err));
	return buf;
}
