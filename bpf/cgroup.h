/* SPDX-License-Identifier: MIT */
/*
 * Where cgroup v2 is mounted, and the cgroup directories BPF programs attach
 * to. Used by the capture and legs loaders and by the control process's
 * config checks.
 */
#ifndef FEDGATE_BPF_CGROUP_H
#define FEDGATE_BPF_CGROUP_H

#include <stddef.h>

/*
 * Writes the cgroup2 mount point into @buf: /sys/fs/cgroup/unified if that
 * is cgroup2 (hybrid hosts), else /sys/fs/cgroup if it is. 0; -ENOENT: no
 * cgroup2 at either place; -ENAMETOOLONG: @len is too small.
 */
int fg_cgroup2_root(char *buf, size_t len);

/*
 * Resolves the configured cgroup @path (absolute, or relative to the cgroup2
 * mount) into @buf and checks it is a directory on cgroup2. 0; -ENOENT: it
 * (or cgroup2) does not exist; -ENOTDIR: not a directory; -EMEDIUMTYPE: not
 * on cgroup2; -ENAMETOOLONG; another negative errno of stat/statfs.
 */
int fg_cgroup2_resolve(const char *path, char *buf, size_t len);

/* A static phrase for an error of the two functions above, for messages. */
const char *fg_cgroup2_strerror(int err);

#endif
