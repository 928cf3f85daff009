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
	uint32_t id;	      /* nonzero; the data plane's fg_handoff_ack names it */
	struct fg_session_keys keys;
	char tunnel[64];
	char peer[256];
	uint32_t idle_s; /* close the tunnel after this many seconds without a byte; 0: never */
	uint8_t preread[FG_HANDOFF_PREREAD_MAX];
};

/*
 * From a data plane worker back on the same socket: the verdict on handoff @id
 * (err 0: the tunnel runs; else -errno: it does not, and the control process
 * closes the client), or with @id 0 a report of how many tunnels it carries.
 */
#define FG_HANDOFF_ACK_MAGIC 0x61686766u /* "fgha" */
struct fg_handoff_ack {
	uint32_t magic;
	uint32_t id;
	int32_t err;
	uint32_t n_tunnels; /* the worker's tunnels, this one counted */
};

/*
 * What one tunnel moved since the worker last told: plaintext bytes toward
 * the TLS peer (@up) and from it (@down), for /metrics and `fedgate status`.
 */
struct fg_handoff_tally {
	uint32_t id; /* its handoff's */
	uint32_t pad;
	uint64_t up, down;
};

/*
 * From a data plane worker: the tunnels of handoffs @t[0..@n) were freed
 * (for the control process's per-tunnel counts, $.tunnels[].max_tunnels),
 * each with the bytes it moved since its last tally. With magic
 * FG_HANDOFF_BYTES_MAGIC the same layout is a tally of tunnels that still
 * run, sent once a second at most. Only offsetof(t) + sizeof(t[0]) * @n
 * bytes travel; a worker sends what closed in one batch after each round of
 * completions. Bytes of tunnels lost with a dead data plane are not told.
 */
#define FG_HANDOFF_CLOSED_MAGIC 0x63686766u /* "fghc" */
#define FG_HANDOFF_BYTES_MAGIC 0x62686766u  /* "fghb" */
#define FG_HANDOFF_CLOSED_MAX 60
struct fg_handoff_closed {
	uint32_t magic;
	uint32_t n;	    /* 1 .. FG_HANDOFF_CLOSED_MAX */
	uint32_t n_tunnels; /* the worker's tunnels, these no longer counted (closed) */
	uint32_t pad;
	struct fg_handoff_tally t[FG_HANDOFF_CLOSED_MAX];
};

/*
 * From the control process: take no more tunnels, let those running finish
 * for @deadline_ms (0: none), then close what is left with close_notify, and
 * exit once none is left.
 */
#define FG_HANDOFF_DRAIN_MAGIC 0x64686766u /* "fghd" */
/* After @deadline_ms, what the close_notify exchange may take before the rest is reset. */
#define FG_DRAIN_GRACE_MS 2000
struct fg_handoff_drain {
	uint32_t magic;
	uint32_t deadline_ms;
};

/*
 * From the control process: close the tunnel of handoff @id now, its TLS peer
 * getting fatal alert @alert (1..255), for its peer no longer passes the
 * trust bundle or the rules (control/revalidate.c). A worker that no longer
 * runs @id ignores it: the tunnel closed on its own meanwhile.
 */
#define FG_HANDOFF_REVOKE_MAGIC 0x78686766u /* "fghx" */
struct fg_handoff_revoke {
	uint32_t magic;
	uint32_t id;
	uint32_t alert;
};

#endif
