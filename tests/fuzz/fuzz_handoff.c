// SPDX-License-Identifier: MIT
/*
 * Fuzzes the check of a received handoff message: arbitrary bytes as what
 * recvmsg put in the worker's buffer. The input sits in a buffer of exactly its
 * size, so a read past it is reported; an accepted message must hold what the
 * data plane trusts (it copies the names as C strings and the preread bytes).
 * The same bytes go through the ack, close report and drain checks and fg_handoff_id.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/handoff_check.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fg_handoff *h;
	static uint8_t preread[FG_HANDOFF_PREREAD_MAX];
	char name[64], peer[256];
	struct fg_handoff_ack ack;
	struct fg_handoff_drain drain;
	struct fg_handoff_closed closed;
	struct fg_handoff_revoke revoke;
	uint8_t *buf;

	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	h = (const struct fg_handoff *)buf;
	if (!fg_handoff_check(h, size)) {
		if (size > sizeof(*h) || h->preread_len > FG_HANDOFF_PREREAD_MAX ||
		    size != HEADER_LEN + h->preread_len ||
		    fg_cipher_params(h->keys.cipher, NULL, NULL))
			abort();
		if (h->idle_s > FG_HANDOFF_IDLE_MAX_S)
			abort();
		/* what dp_tunnel_start() does with it */
		snprintf(name, sizeof(name), "%s", h->tunnel);
		snprintf(peer, sizeof(peer), "%s", h->peer);
		if (strlen(name) >= sizeof(h->tunnel) || strlen(peer) >= sizeof(h->peer))
			abort();
		memcpy(preread, h->preread, h->preread_len);
	}
	/* The same bytes as an ack or a drain (the other messages on the socket). */
	if (!fg_handoff_ack_check(buf, size, &ack) &&
	    (size != sizeof(ack) || ack.err > 0 || (!ack.id && ack.err)))
		abort();
	if (!fg_handoff_drain_check(buf, size, &drain) && size != sizeof(drain))
		abort();
	if (!fg_handoff_closed_check(buf, size, &closed)) {
		if (!closed.n || closed.n > FG_HANDOFF_CLOSED_MAX ||
		    size != offsetof(struct fg_handoff_closed, t) + sizeof(closed.t[0]) * closed.n ||
		    (closed.magic != FG_HANDOFF_CLOSED_MAGIC && closed.magic != FG_HANDOFF_BYTES_MAGIC))
			abort();
		for (uint32_t i = 0; i < closed.n; i++)
			if (!closed.t[i].id)
				abort();
	}
	if (!fg_handoff_revoke_check(buf, size, &revoke) &&
	    (size != sizeof(revoke) || !revoke.id || !revoke.alert || revoke.alert > 255))
		abort();
	if (fg_handoff_id(h, size) && size < HEADER_LEN)
		abort();
	free(buf);
	return 0;
}
