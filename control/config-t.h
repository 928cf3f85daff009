/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONFIG_T_H
#define FEDGATE_CONFIG_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "fedgate/addr-t.h"
#include "fedgate/err-t.h"
#include "fedgate/legs-t.h"
#include "fedgate/net-t.h"

enum fg_mode { FG_MODE_ORIGINATE = 1, FG_MODE_TERMINATE = 2 };
enum fg_offload { FG_OFFLOAD_AUTO = 0, FG_OFFLOAD_KERNEL, FG_OFFLOAD_USERSPACE };
/* How an originate tunnel's listener gets connections not addressed to it (transparent mode). */
enum fg_capture { FG_CAPTURE_NONE = 0, FG_CAPTURE_TPROXY, FG_CAPTURE_REDIRECT, FG_CAPTURE_CGROUP };


/* Every field that is set must match; NULL fields are not checked. */
struct fg_allow_rule {
	char *dns;  /* pattern over DNS SANs, '*' = one label or part of it */
	char *uri;  /* pattern over URI SANs, '*' = any run of characters */
	char *cn;   /* pattern over the subject CN */
	char *root; /* CN of the trust anchor the chain must end in, or "sha256:HEX" */
	/* transparent terminate tunnels: the destinations this rule's peers may reach */
	struct fg_dest *reach;
	size_t n_reach;
};

/* allow[].root naming the trust anchor by its SHA-256 fingerprint rather than its CN. */
#define FG_ROOT_SHA256_PREFIX "sha256:"

struct fg_tunnel_conf {
	char *name;
	enum fg_mode mode;
	struct fg_addr listen;
	struct fg_addr target; /* originate: the peer gateway; terminate: the upstream */
	char *server_name;     /* originate: SNI and the name the peer must hold */
	int proxy_v2;	       /* terminate: send a PROXY v2 header upstream */
	enum fg_capture capture; /* originate: transparent, dials by $.routes (no target) */
	int transparent;	 /* terminate: dials the destination the peer names (no target) */
	int idle_timeout_s;	 /* the data plane closes a tunnel idle this long; 0: never */
	int max_tunnels;	 /* established at once (control/admit.c); 0: no cap of its own */
	int revalidate; /* a change of trust or rules closes its tunnels that no longer pass */
	/*
	 * $.tunnels[].pool (control/pool.h). Originate: @pool_size idle TLS
	 * connections kept ready to the peer (per route on a capture tunnel),
	 * each closed after @pool_idle_s; 0: no pool. Terminate: pooled
	 * connections are taken, @pool_max at most waiting at once, each
	 * @pool_idle_s for its first bytes; 0 @pool_max: not taken.
	 */
	int pool_size, pool_idle_s, pool_max;
	int resumption; /* TLS 1.3 resumption (control/resume.h) */
	int resumption_lifetime_s; /* tickets last this long from their full handshake, at most */
	struct fg_allow_rule *allow;
	size_t n_allow;
};

/*
 * $.routes[]: where a captured connection goes. A destination matches a route
 * when its address is inside one of @to and its port inside one of @ports (no
 * @ports: any port); the longest matching prefix wins, then the first route.
 */
struct fg_route {
	struct fg_net *to;
	size_t n_to;
	struct fg_port_range *ports;
	size_t n_ports;
	struct fg_addr peer;  /* the peer gateway's transparent terminate tunnel */
	char *server_name;    /* SNI and the name the peer must hold */
	struct fg_allow_rule *allow;
	size_t n_allow;
};

/*
 * $.capture: what `fedgate capture up` installs. Two marks, never equal:
 * @mark is only on the sockets fedgate dials (SO_MARK), so that REDIRECT
 * skips them, and no ip rule matches it: they are routed as the host routes
 * anything. @tproxy_mark is only what the TPROXY rule sets, and what the
 * "fwmark @tproxy_mark lookup @route_table" rule delivers locally. One mark
 * for both would send fedgate's own packets into that rule, and so into lo.
 */
#define FG_CAPTURE_MARK_DEFAULT 0x4647u	       /* "FG" = 17991 */
#define FG_CAPTURE_TPROXY_MARK_DEFAULT 0x4648u /* 17992 */
#define FG_CAPTURE_TABLE_DEFAULT 0x4647u       /* 17991: the policy routing table for TPROXY */
struct fg_capture_conf {
	uint32_t mark;
	uint32_t tproxy_mark;
	uint32_t route_table;
	/*
	 * "cgroup" capture: the cgroup v2 directory whose processes' connects
	 * are captured, as written (absolute, or relative to the cgroup2
	 * mount); NULL when absent. Owned.
	 */
	char *cgroup;
};

#define FG_MAX_CIPHERS 3
/* tls.groups as OpenSSL's list, "X25519:P-256:P-384" (each of five names at most once). */
#define FG_TLS_GROUPS_MAX 64
#define FG_TLS_VERIFY_DEPTH_MAX 16
/* tls.verify_cache: verified peer chains remembered per TLS context, at most. */
#define FG_TLS_VERIFY_CACHE_MAX 4096

/*
 * $.limits: what unauthenticated connections on terminate tunnels may hold
 * (control/admit.c). At a limit the oldest of them is shed for the newest.
 */
#define FG_LIMIT_HANDSHAKES_DEFAULT 4096
#define FG_LIMIT_HANDSHAKES_MAX 1000000
#define FG_LIMIT_TUNNELS_MAX 10000000
/* $.tunnels[].pool: the bounds and defaults (config_tunnels.c) */
#define FG_POOL_SIZE_MAX 64
#define FG_POOL_IDLE_MAX_S 3600
#define FG_POOL_IDLE_ORIGINATE_S 30
#define FG_POOL_IDLE_TERMINATE_S 60
#define FG_POOL_MAX_DEFAULT 256
/* $.tunnels[].resumption_lifetime_s: well under any leaf's lifetime, and never past it */
#define FG_RESUMPTION_LIFETIME_DEFAULT_S 600
#define FG_RESUMPTION_LIFETIME_MAX_S 86400
/* $.limits.open_files: the RLIMIT_NOFILE soft limit both processes run with (control/nofile.c). */
#define FG_OPEN_FILES_MIN 256
#define FG_OPEN_FILES_MAX (1 << 30)
struct fg_limits_conf {
	int handshakes;		   /* pending at once, every source together */
	int handshakes_per_source; /* pending at once from one address (IPv6: one /64) */
	int tunnels;		   /* established at once, all tunnels; 0: no cap but fds */
	int open_files;		   /* RLIMIT_NOFILE to run with; 0: the hard limit */
};
#define FG_RUN_AS_MAX 33 /* $.run_as: a user name of at most 32 characters, and its NUL */

/* A CA's address and the root file the TLS connection to it is pinned to. */
struct fg_ca_endpoint {
	char *url;  /* "https://host[:port]" */
	char *root; /* PEM file: the only trust anchor for this CA's own TLS certificate */
};

/* identity.ca: the gateway keeps identity.cert/key fresh from this CA. */
struct fg_ca_identity {
	struct fg_ca_endpoint ca;
	char *token_file; /* one-time token for the first enrollment (NULL: none) */
	char *subject;	  /* the certificate's CN ("sub" of the token) */
	char **sans;	  /* the SANs asked for; none: the token's "sans" */
	size_t n_sans;
};

/*
 * roots[]: the names one trust anchor may vouch for. A peer whose chain ends
 * in a root that has a rule must have at least one DNS or URI SAN, every DNS
 * SAN must match one of @dns, every URI SAN one of @uri, and (if @leaf_cn is
 * set) its CN one of @leaf_cn. Roots without a rule are unconstrained.
 */
struct fg_root_rule {
	char *cn;     /* the root's subject CN, exact; NULL: any */
	char *sha256; /* the root's SHA-256 fingerprint, lowercase hex; NULL: any */
	char **dns, **uri, **leaf_cn;
	size_t n_dns, n_uri, n_leaf_cn;
};

/* $.dns.refresh_s when absent: names are re-resolved every 30 s (control/resolve.c). */
#define FG_DNS_REFRESH_DEFAULT_S 30

/* identity.trust.cache_max_age_s: a week by default, a year at most. */
#define FG_TRUST_CACHE_MAX_AGE_DEFAULT 604800
#define FG_TRUST_CACHE_MAX_AGE_MAX 31536000

/* sizeof(struct sockaddr_un.sun_path) */
#define FG_ADMIN_SOCKET_MAX 108

struct fg_config {
	char *path; /* the file, for messages */
	char *dir;  /* relative paths in the file are relative to this */
	char *cert_file, *key_file;
	char *trust_file;		   /* identity.trust as a file; NULL with federation */
	struct fg_ca_identity *ca;	   /* identity.ca; NULL: cert and key are plain files */
	struct fg_ca_endpoint *federation; /* identity.trust.federation[] */
	size_t n_federation;
	int refresh_s; /* identity.trust.refresh_s */
	/* identity.trust.cache: the last good federation bundle on disk (trust_cache.c); NULL: none */
	char *trust_cache;
	int trust_cache_max_age_s; /* an older cache is not used */
	struct fg_root_rule *root_rules;
	size_t n_root_rules;
	uint16_t ciphers[FG_MAX_CIPHERS]; /* in tls.ciphers order: the server's preference */
	size_t n_ciphers;
	char groups[FG_TLS_GROUPS_MAX]; /* tls.groups for SSL_CTX_set1_groups_list, in order */
	int verify_depth; /* tls.verify_depth: CA certificates a peer chain may hold */
	int verify_cache; /* tls.verify_cache: verdicts kept per context (control/verify_cache.h) */
	int ec_legacy_decode; /* tls.ec_legacy_decode: control/ec_legacy.h */
	int handshake_timeout_ms;
	/* tls.handshake_threads: 0 on the loop thread, -1 (absent) one per CPU (hs_thread.h) */
	int handshake_threads;
	int workers;
	enum fg_offload offload;
	int kernel_tx_splice; /* dataplane.kernel_tx "splice": kTLS TX through a pipe */
	int drain_timeout_s;  /* dataplane.drain_timeout_s: SIGTERM lets tunnels run this long */
	/* dataplane.local_redirect "on": sk_msg moves the local legs fedgate reads (README) */
	int local_redirect;
	int local_redirect_budget;   /* bytes, FG_LEGS_BUDGET_MIN..FG_LEGS_BUDGET_MAX */
	char *local_redirect_cgroup; /* where the sock_ops program attaches; NULL: cgroup2 root */
	struct fg_tunnel_conf *tunnels;
	size_t n_tunnels;
	struct fg_route *routes;
	size_t n_routes;
	struct fg_capture_conf capture; /* defaults even when $.capture is absent */
	int dns_refresh_s; /* $.dns.refresh_s: how often names are re-resolved; 0: never */
	struct fg_limits_conf limits;	/* defaults even when $.limits is absent */
	/* $.admin.listen (config_admin.c): /metrics over HTTP there; has_admin 0: none */
	int has_admin;
	struct fg_addr admin_listen;
	/* $.admin.socket: the unix socket `run --take-over` takes the listeners from; NULL: none */
	char *admin_socket;
	/* config_sandbox.c: $.dataplane.seccomp, $.sandbox.landlock, $.run_as ("": stay root) */
	int seccomp, landlock;
	char run_as[FG_RUN_AS_MAX];
};

/*
 * What the pure parser (fg_config_parse) leaves to fg_config_load: the checks
 * that need the file system or the resolver. Each is one the file states, in
 * the order the parser met it, so the loader reports the same first problem as
 * a parser that checked in place.
 */
enum fg_conf_check_kind {
	FG_CONF_CHECK_READABLE, /* @arg must open for reading */
	FG_CONF_CHECK_LISTEN,	/* resolve @arg into @addr, port 0 allowed */
	FG_CONF_CHECK_CONNECT,	/* resolve @arg into @addr, port 1..65535 */
};

#define FG_CONF_JPATH_MAX 256

struct fg_conf_check {
	enum fg_conf_check_kind kind;
	char jpath[FG_CONF_JPATH_MAX]; /* where, for the message */
	char *arg;		       /* owned: the file (resolved) or "host:port" */
	struct fg_addr *addr;	       /* LISTEN, CONNECT: in the config's tunnels */
};

struct fg_conf_checks {
	struct fg_conf_check *v;
	size_t n, cap;
};

#endif
