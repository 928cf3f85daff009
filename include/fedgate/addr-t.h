/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ADDR_T_H
#define FEDGATE_ADDR_T_H

#include <sys/socket.h>

/* A resolved "host:port"; @text is what the config said (owned, fg_addr_exit frees it). */
struct fg_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char *text;
	/*
	 * The host was a name, not an IP literal: the control loop re-resolves
	 * @text every $.dns.refresh_s (control/resolve.c) and writes @sa and
	 * @len in place, on its own thread, between dials.
	 */
	int name;
};

#endif
