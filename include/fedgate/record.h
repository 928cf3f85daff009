/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_RECORD_H
#define FEDGATE_RECORD_H

#include <stddef.h>
#include <sys/types.h>
#include "fedgate/record-t.h"

/*
 * Names the library that seals and opens records in this process: "libgcrypt",
 * or "OpenSSL" where libgcrypt is in FIPS mode (it refuses caller-chosen GCM
 * nonces there) or cannot start. Initialises it on the first call; safe from
 * any thread.
 */
const char *fg_record_aead_lib(void);

/*
 * Sets up @d to seal (@encrypt != 0) or open records with @k (copied).
 * Returns 0, -EINVAL for an unknown cipher, -ENOMEM, -EIO when the AEAD
 * library refuses the cipher or key.
 */
int fg_record_init(struct fg_record_dir *d, uint16_t cipher, const struct fg_traffic_keys *k,
		   int encrypt);

/* Frees the cipher context and wipes the keys. Accepts a zeroed @d. */
void fg_record_exit(struct fg_record_dir *d);

/* Moves @d to the next traffic secret after a KeyUpdate. Returns 0 or -errno. */
int fg_record_key_update(struct fg_record_dir *d);

/*
 * Frees @d's cipher context (about 2 KiB with libgcrypt) while @d is idle; the keys and the
 * sequence number stay. The next seal or open builds a new one (-ENOMEM, -EIO
 * if it cannot).
 */
void fg_record_park(struct fg_record_dir *d);

/*
 * Protects @len bytes (at most FG_TLS_MAX_PLAIN) of content @type into one
 * TLS 1.3 record at @out (outer type application_data, version 0x0303,
 * no padding) and advances the sequence number. @in and @out may not overlap.
 * Returns the record length (len + FG_TLS_HDR + 1 + FG_TLS_TAG), -EMSGSIZE if
 * @len is too big, -ENOBUFS if @cap is too small, -EOVERFLOW when the sequence
 * number is exhausted, -ENOMEM for a parked context that cannot come back,
 * -EIO on a crypto failure.
 */
ssize_t fg_record_seal(struct fg_record_dir *d, uint8_t type, const uint8_t *in, size_t len,
		       uint8_t *out, size_t cap);

/*
 * Opens the first record in @in[0..len): checks the header, decrypts into
 * @out (@cap >= FG_TLS_MAX_PLAIN + 1 is always enough), strips the padding and
 * returns the inner content type in *@type and the content length in
 * *@plain_len, and advances the sequence number.
 * Returns the bytes consumed (> 0), 0 when @in does not yet hold a whole
 * record, -EMSGSIZE for a record over 2^14 + 256 bytes of ciphertext or
 * 2^14 + 1 of inner plaintext, -EPROTO for a bad header (outer type not
 * application_data, bad version, too short for a tag, no content type),
 * -EBADMSG when authentication fails, -ENOBUFS if @cap is too small,
 * -EOVERFLOW when the sequence number is exhausted, -ENOMEM for a parked
 * context that cannot come back, -EIO on a crypto failure. Nothing is
 * consumed and the sequence number stays on any error; after a failed
 * decryption @out holds no unauthenticated bytes.
 */
ssize_t fg_record_open(struct fg_record_dir *d, const uint8_t *in, size_t len, uint8_t *out,
		       size_t cap, uint8_t *type, size_t *plain_len);

#endif
