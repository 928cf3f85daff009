/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_INIT_H
#define FEDGATE_CA_INIT_H

#include <stddef.h>

#include "control/ca/pki.h"

struct fg_ca_init_opts {
	const char *dir;	 /* created if missing (an existing one keeps its mode); */
				 /* must not hold a CA yet */
	const char *name;	 /* "Cloud" -> "Cloud Root CA", "Cloud Intermediate CA" */
	const char *const *dns;	 /* "dnsNames": the CA's TLS names (>= 1) */
	size_t n_dns;
	const char *address;	 /* "address", e.g. "127.0.0.1:9000" or ":9000" */
	const char *provisioner; /* the JWK provisioner's name ("iss" of its tokens) */
};

/*
 * Writes DIR/certs/{root_ca,intermediate_ca}.crt, DIR/secrets/{root_ca_key,
 * intermediate_ca_key,provisioner_key} (PKCS#8, AES-256 under @pw, 0600 in a
 * 0700 directory; an existing secrets/ open to group or others is refused),
 * DIR/config/ca.json ("federatedRoots": []) and
 * DIR/config/defaults.json. Returns 0 or -errno with @err set.
 */
int fg_ca_init(const struct fg_ca_init_opts *o, struct fg_password *pw, struct fg_err *err);

#endif
