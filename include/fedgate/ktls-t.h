/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_KTLS_T_H
#define FEDGATE_KTLS_T_H

/* Kernel TLS constants that older libc headers lack (the kernel's values, linux/tls.h). */
#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#endif
