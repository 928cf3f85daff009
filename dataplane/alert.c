// SPDX-License-Identifier: MIT
/*
 * TLS alerts and refused records, named for the log, and the alert a peer gets
 * for what it did wrong: the same words and the same alerts for both backends.
 */
#include <errno.h>
#include <string.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"
#include "fedgate/record-t.h"

const char *dp_alert_name(uint8_t desc)
{
	switch (desc) {
	case 0:
		return "close_notify";
	case 10:
		return "unexpected_message";
	case 20:
		return "bad_record_mac";
	case 22:
		return "record_overflow";
	case 40:
		return "handshake_failure";
	case 42:
		return "bad_certificate";
	case 45:
		return "certificate_expired";
	case 46:
		return "certificate_unknown";
	case 48:
		return "unknown_ca";
	case 49:
		return "access_denied";
	case 50:
		return "decode_error";
	case 51:
		return "decrypt_error";
	case 80:
		return "internal_error";
	case 90:
		return "user_canceled";
	case 109:
		return "missing_extension";
	case 116:
		return "certificate_required";
	}
	return "unknown alert";
}

int dp_down_alert(struct dp_tunnel *t, const uint8_t *p, size_t len)
{
	if (len != 2) {
		fg_warn("tunnel %s: malformed alert record", t->name);
		return dp_peer_error(t, TLS_ALERT_DECODE_ERROR);
	}
	if (p[1] == TLS_ALERT_CLOSE_NOTIFY)
		return 0;
	if (p[1] == TLS_ALERT_USER_CANCELED) {
		fg_info("tunnel %s: peer sent user_canceled", t->name);
		return 1;
	}
	fg_warn("tunnel %s: peer sent %s alert %s (%u)", t->name, p[0] == 2 ? "fatal" : "warning",
		dp_alert_name(p[1]), p[1]);
	return -ECONNABORTED;
}

int dp_peer_error(struct dp_tunnel *t, uint8_t desc)
{
	t->alert_due = true;
	t->alert_desc = desc;
	return -EPROTO;
}

int dp_record_alert(int err, const uint8_t *hdr)
{
	switch (err) {
	case -EBADMSG: /* kTLS: also a ciphertext shorter than its tag, or nothing but padding */
		return TLS_ALERT_BAD_RECORD_MAC;
	case -EMSGSIZE:
		return TLS_ALERT_RECORD_OVERFLOW;
	case -EINVAL: /* kTLS: a header whose version is not 0x0303 */
		return TLS_ALERT_DECODE_ERROR;
	case -EPROTO:
		/*
		 * The userspace layer's: an outer type other than application_data
		 * is an unexpected record (5), so is a record with nothing but
		 * padding (5.4); a wrong version or a length shorter than the tag
		 * cannot be decoded.
		 */
		if (!hdr || hdr[0] != FG_CT_APPLICATION_DATA)
			return TLS_ALERT_UNEXPECTED_MESSAGE;
		if (hdr[1] != 0x03 || hdr[2] != 0x03 ||
		    ((size_t)hdr[3] << 8 | hdr[4]) < FG_TLS_TAG + 1)
			return TLS_ALERT_DECODE_ERROR;
		return TLS_ALERT_UNEXPECTED_MESSAGE;
	case -EIO: /* the cipher failed us, not the peer */
	case -ENOMEM:
	case -EOVERFLOW:
	case -ENOBUFS:
		return TLS_ALERT_INTERNAL_ERROR;
	}
	return -1; /* the socket's error (a reset, a timeout): nobody to tell */
}

const char *dp_record_error(int err)
{
	switch (err) {
	case -EBADMSG:
		return "record authentication failed (bad_record_mac)";
	case -EMSGSIZE:
		return "record too long (record_overflow)";
	case -EPROTO:
		return "malformed record";
	case -EINVAL:
		return "malformed record header (decode_error)";
	}
	return strerror(-err);
}

const char *dp_down_error(int err)
{
	switch (err) {
	case -ECONNABORTED:
		return "peer alert";
	case -EKEYEXPIRED:
		return "KeyUpdate not supported by kernel TLS";
	}
	return "protocol error";
}
