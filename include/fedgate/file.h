/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_FILE_H
#define FEDGATE_FILE_H

/*
 * The one way fedgate reads a whole file it was pointed at: certificates,
 * keys, trust bundles, its config, the CA's files, tokens and passwords.
 * Each must be a regular file. The open is O_NONBLOCK, so that a FIFO (or a
 * device) at such a path is refused at once instead of waiting for a writer:
 * the control loop that polls these files never blocks on one.
 */
#include <stddef.h>

struct fg_err;

/*
 * Reads regular file @path (at most @max bytes, else -EFBIG) into a
 * NUL-terminated malloc'd buffer *@out that the caller frees; *@len (may be
 * NULL) gets its length. Returns 0 or -errno with @err set to one line naming
 * @path: -EINVAL "PATH: not a regular file (a FIFO)" and the like for
 * anything else at the path (a directory, a FIFO, a socket, a device),
 * checked with fstat(2) on the descriptor read, so a file swapped in between
 * is seen too. On failure what was read is wiped (it may be a key).
 */
int fg_file_read(const char *path, size_t max, char **out, size_t *len, struct fg_err *err);

/* Whether @path opens for reading as a regular file: 0, or -errno with @err as above. */
int fg_file_check(const char *path, struct fg_err *err);

#endif
