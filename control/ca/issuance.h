/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_ISSUANCE_H
#define FEDGATE_CA_ISSUANCE_H

/*
 * The two routes that issue leaves (fg_ca_issue_leaf(), in ca.h, makes them).
 * Each returns the answer's JSON ({"crt","ca","certChain","tlsOptions"}) with
 * @status 201, or NULL with the refusal (status and message) in @err, or NULL
 * with @err untouched when out of memory.
 */
#include <stddef.h>
#include <cjson/cJSON.h>

#include "control/ca/ca.h"

/* POST /sign: {"csr": PEM, "ott": token[, "notBefore", "notAfter"]}, as step-ca's. */
cJSON *fg_ca_handle_sign(struct fg_ca *ca, const char *body, size_t len, int *status,
			 struct fg_err *err);

/* POST /renew: a new leaf for the client certificate @r->client, as step-ca's. */
cJSON *fg_ca_handle_renew(struct fg_ca *ca, const struct fg_ca_request *r, int *status,
			  struct fg_err *err);

#endif
