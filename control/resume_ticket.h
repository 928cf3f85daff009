/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CONTROL_RESUME_TICKET_H
#define FEDGATE_CONTROL_RESUME_TICKET_H

/*
 * The data a terminate side seals into each session ticket it issues
 * (control/resume.c): the wall-clock time of the full handshake the session
 * comes from, the chain the peer sent then and the chain its verification
 * built (after the leaf, up to the anchor; the session itself keeps only the
 * leaf), so that a resumption is bounded from that handshake and the resumed
 * peer is checked against the rules again. "FG", version 1, a usable flag,
 * the time (8 bytes, big-endian), then each list as a count and each
 * certificate as a 2-byte length and its DER. Pure: no I/O, no global state.
 */
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

/* The most a ticket's data takes: a longer chain gets an unusable ticket. */
#define FG_RESUME_TICKET_MAX 16384
/* The length of an unusable one. */
#define FG_RESUME_TICKET_DEAD_LEN 12

/*
 * Writes the data for @auth_at, @sent and @verified (leaf first, which is
 * left out; NULL: empty) into @out (@len bytes). Its length, or 0 when it does not fit (or a
 * certificate cannot be encoded).
 */
size_t fg_resume_ticket_encode(uint8_t *out, size_t len, int64_t auth_at, STACK_OF(X509) * sent,
			       STACK_OF(X509) * verified);

/* An unusable ticket's data, which the decoder refuses (FG_RESUME_TICKET_DEAD_LEN bytes). */
void fg_resume_ticket_dead(uint8_t out[FG_RESUME_TICKET_DEAD_LEN]);

/*
 * Parses @len bytes of @in, exactly: 0 with *@auth_at, *@sent and *@verified
 * (without its leaf) * (the caller's, freed with sk_X509_pop_free), or -EINVAL (an unusable,
 * truncated or malformed one; nothing is set).
 */
int fg_resume_ticket_decode(const uint8_t *in, size_t len, int64_t *auth_at, STACK_OF(X509) * *sent,
			    STACK_OF(X509) * *verified);

#endif
