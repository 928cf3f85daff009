// SPDX-License-Identifier: MIT
/* A fatal alert after the handshake, sealed with the exported keys: see alert.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/crypto.h>

#include "control/alert.h"
#include "control/keys.h"
#include "fedgate/log.h"
#include "fedgate/record.h"

void fg_alert_send(SSL *ssl, struct fg_tls_conn *st, int fd, uint8_t desc)
{
	const uint8_t alert[2] = {2, desc};
	uint8_t rec[64];
	struct fg_session_keys keys;
	struct fg_record_dir tx = {0};
	ssize_t n;

	/* OpenSSL has no call that sends a chosen alert on an established connection. */
	if (fg_keys_export(ssl, st, &keys))
		return;
	if (!fg_record_init(&tx, keys.cipher, &keys.tx, 1)) {
		n = fg_record_seal(&tx, FG_CT_ALERT, alert, sizeof(alert), rec, sizeof(rec));
		if (n > 0 && send(fd, rec, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			fg_debug("alert %u not sent: %s", desc, strerror(errno));
	}
	fg_record_exit(&tx);
	OPENSSL_cleanse(&keys, sizeof(keys));
}
