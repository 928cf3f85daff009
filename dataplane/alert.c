// SPDX-License-Identifier: MIT
/* TLS alerts and refused records, named for the log: the same words for both backends. */
#include <errno.h>
#include <string.h>

#include "dataplane/dp.h"
#include "fedgate/log.h"

static const char *alert_name(uint8_t desc)
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
		return -EPROTO;
	}
	if (p[1] == TLS_ALERT_CLOSE_NOTIFY)
		return 0;
	if (p[1] == TLS_ALERT_USER_CANCELED) {
		fg_info("tunnel %s: peer sent user_canceled", t->name);
		return 1;
	}
	fg_warn("tunnel %s: peer sent %s alert %s (%u)", t->name, p[0] == 2 ? "fatal" : "warning",
		alert_name(p[1]), p[1]);
	return -ECONNABORTED;
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
