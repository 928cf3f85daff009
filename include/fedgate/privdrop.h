/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_PRIVDROP_H
#define FEDGATE_PRIVDROP_H

#include <sys/types.h>

/*
 * Becomes @uid/@gid for good: no supplementary groups, real, effective and
 * saved ids all set, and then checks that root cannot be had back. A process
 * that already is exactly @uid/@gid returns 0 untouched (a respawned data
 * plane). Returns 0 or -errno. Clears the parent-death signal (the kernel
 * does on any credential change): arm it after this.
 */
int fg_privdrop(uid_t uid, gid_t gid);

/*
 * @user: a name in the user database; its uid and primary group into
 * @uid and @gid. Returns 0, or -ENOENT when there is no such user, or -errno.
 */
int fg_privdrop_resolve(const char *user, uid_t *uid, gid_t *gid);

#endif
