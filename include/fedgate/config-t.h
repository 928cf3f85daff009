/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONFIG_T_H
#define FEDGATE_CONFIG_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum fg_mode { FG_MODE_ORIGINATE = 1, FG_MODE_TERMINATE = 2 };
enum fg_offload { FG_OFFLOAD_AUTO = 0, FG_OFFLOAD_KERNEL, FG_OFFLOAD_USERSPACE };

/* A resolved "host:port"; @text is what the config said. */
struct fg_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char *text;
};

/* Every field that is set must match; NULL fields are not checked. */
struct fg_allow_rule {
	char *dns;  /* pattern over DNS SANs, '*' = one label or part of it */
	char *uri;  /* pattern over URI SANs, '*' = any run of characters */
	char *cn;   /* pattern over the subject CN */
	char *root; /* CN of the trust anchor the chain must end in */
};

struct fg_tunnel_conf {
	char *name;
	enum fg_mode mode;
	struct fg_addr listen;
	struct fg_addr target; /* originate: the peer gateway; terminate: the upstream */
	char *server_name;     /* originate: SNI and the name the peer must hold */
	int proxy_v2;	       /* terminate: send a PROXY v2 header upstream */
	struct fg_allow_rule *allow;
	size_t n_allow;
};

#define FG_MAX_CIPHERS 3

struct fg_config {
	char *path; /* the file, for messages */
	char *dir;  /* relative paths in the file are relative to this */
	char *cert_file, *key_file, *trust_file;
	uint16_t ciphers[FG_MAX_CIPHERS];
	size_t n_ciphers;
	int handshake_timeout_ms;
	int workers;
	enum fg_offload offload;
	int kernel_tx_splice; /* dataplane.kernel_tx "splice": kTLS TX through a pipe */
	struct fg_tunnel_conf *tunnels;
	size_t n_tunnels;
};

/* Where a config problem is: "FILE: JSONPATH: problem". */
struct fg_conf_err {
	char msg[8192];
};

#endif
