/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_HANDOFF_T_H
#define FEDGATE_HANDOFF_T_H

#include <stdint.h>
#include "fedgate/keys-t.h"

#define FG_HANDOFF_MAGIC 0x31686766u /* "fgh1" */
#define FG_HANDOFF_PREREAD_MAX 16384
/* The longest idle timeout a tunnel may have ($.tunnels[].idle_timeout_s): 30 days. */
#define FG_HANDOFF_IDLE_MAX_S 2592000u

/*
 * One established tunnel, from the control process to a data plane worker,
 * sent with SCM_RIGHTS carrying [plain socket, TLS socket]. Only the first
 * offsetof(preread) + preread_len bytes travel. Both sides wipe it after use.
 */
struct fg_handoff {
	uint32_t magic;
	uint32_t preread_len; /* plaintext OpenSSL had already read, for the plain side */
	uint32_t sent_len;    /* plaintext the control process already sent to the TLS peer */
	int32_t legs_slot;    /* the plain side's local redirect slot (fedgate/legs-t.h), -1: none */
	struct fg_session_keys keys;
	char tunnel[64];
	char peer[256];
	uint32_t idle_s; /* close the tunnel after this many seconds without a byte; 0: never */
	uint8_t preread[FG_HANDOFF_PREREAD_MAX];
};

#endif
