// SPDX-License-Identifier: MIT
/* Where libbpf's messages go: see libbpf_log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <bpf/libbpf.h>

#include "bpf/libbpf_log.h"

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("FEDGATE_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void fg_bpf_log_init(void)
{
	libbpf_set_print(libbpf_print);
}
