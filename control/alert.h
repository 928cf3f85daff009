/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_ALERT_H
#define FEDGATE_ALERT_H

#include <openssl/ssl.h>
#include "control/tls-t.h"

#define FG_ALERT_CERTIFICATE_UNKNOWN 46
#define FG_ALERT_ACCESS_DENIED 49
#define FG_ALERT_DECODE_ERROR 50

/*
 * After a completed handshake: sends a fatal alert @desc on @fd under the
 * application key, best effort and never blocking. It exports (and so wipes)
 * the secrets in @st: nothing else may be sent on the connection afterwards.
 */
void fg_alert_send(SSL *ssl, struct fg_tls_conn *st, int fd, uint8_t desc);

#endif
