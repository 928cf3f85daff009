/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CA_HTTPS_T_H
#define FEDGATE_CA_HTTPS_T_H

#include <openssl/types.h>

struct Curl_URL; /* libcurl's CURLU */

/* Where a CA is and what it must prove: fg_ca_client_init() sets it; only timeout_ms may change. */
struct fg_ca_client {
	char *url;	       /* the CA URL as given, without a trailing '/' */
	struct Curl_URL *base; /* that URL parsed; each request sets its path */
	char *prefix;	       /* the URL's path without a trailing '/', "" usually */
	X509_STORE *pin;       /* the root file's certificates: the only trust anchors */
	int timeout_ms;	       /* the deadline of one whole request; fg_ca_client_init(): 15000 */
};

#endif
