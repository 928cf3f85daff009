// SPDX-License-Identifier: MIT
/*
 * The bytes of a received handoff message, checked without I/O: everything
 * the data plane later trusts in struct fg_handoff (lib/handoff.c does the
 * socket and its fds).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "fedgate/handoff.h"
#include "fedgate/legs-t.h"
#include "fedgate/tls13.h"

#define HEADER_LEN offsetof(struct fg_handoff, preread)

int fg_handoff_check(const struct fg_handoff *h, size_t len)
{
	/* Only the header is read before its length is known to be there. */
	if (len < HEADER_LEN || h->magic != FG_HANDOFF_MAGIC ||
	    h->preread_len > FG_HANDOFF_PREREAD_MAX || len != HEADER_LEN + h->preread_len)
		return -EPROTO;
	/* The key and secret lengths follow from the cipher: one fedgate carries. */
	if (fg_cipher_params(h->keys.cipher, NULL, NULL))
		return -EPROTO;
	if (h->legs_slot < -1 || h->legs_slot >= FG_LEGS_SLOTS)
		return -EPROTO;
	if (h->idle_s > FG_HANDOFF_IDLE_MAX_S)
		return -EPROTO;
	/* Names are copied as C strings: each must end inside its array. */
	if (!memchr(h->tunnel, '\0', sizeof(h->tunnel)) || !memchr(h->peer, '\0', sizeof(h->peer)))
		return -EPROTO;
	if (!h->id)
		return -EPROTO;
	return 0;
}

uint32_t fg_handoff_id(const struct fg_handoff *h, size_t len)
{
	if (len < HEADER_LEN || h->magic != FG_HANDOFF_MAGIC)
		return 0;
	return h->id;
}

int fg_handoff_ack_check(const void *buf, size_t len, struct fg_handoff_ack *ack)
{
	if (len != sizeof(*ack))
		return -EPROTO;
	memcpy(ack, buf, sizeof(*ack));
	/* An error is a negative errno, as the data plane's functions return. */
	if (ack->magic != FG_HANDOFF_ACK_MAGIC || ack->err > 0 || ack->err < -4095 ||
	    (!ack->id && ack->err))
		return -EPROTO;
	return 0;
}

int fg_handoff_closed_check(const void *buf, size_t len, struct fg_handoff_closed *c)
{
	const size_t hdr = offsetof(struct fg_handoff_closed, t);

	if (len < hdr || len > sizeof(*c))
		return -EPROTO;
	memcpy(c, buf, len);
	if ((c->magic != FG_HANDOFF_CLOSED_MAGIC && c->magic != FG_HANDOFF_BYTES_MAGIC) || !c->n ||
	    c->n > FG_HANDOFF_CLOSED_MAX || len != hdr + c->n * sizeof(c->t[0]))
		return -EPROTO;
	/* 0 is no handoff's id: a report naming it is not one fedgate sends. */
	for (uint32_t i = 0; i < c->n; i++)
		if (!c->t[i].id)
			return -EPROTO;
	return 0;
}

int fg_handoff_drain_check(const void *buf, size_t len, struct fg_handoff_drain *d)
{
	if (len != sizeof(*d))
		return -EPROTO;
	memcpy(d, buf, sizeof(*d));
	/* A day at most: a longer one is a bug, not a config (config caps it lower). */
	if (d->magic != FG_HANDOFF_DRAIN_MAGIC || d->deadline_ms > 86400u * 1000u)
		return -EPROTO;
	return 0;
}

int fg_handoff_revoke_check(const void *buf, size_t len, struct fg_handoff_revoke *r)
{
	if (len != sizeof(*r))
		return -EPROTO;
	memcpy(r, buf, sizeof(*r));
	if (r->magic != FG_HANDOFF_REVOKE_MAGIC || !r->id || !r->alert || r->alert > 255)
		return -EPROTO;
	return 0;
}
