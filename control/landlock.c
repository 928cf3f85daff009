// SPDX-License-Identifier: MIT
/* The control process's Landlock ruleset: what it may open once its listeners are up. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "control/landlock.h"
#include "fedgate/log.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_EXEC (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE)
/* Renewal: KEY.new written, renamed over KEY, KEY.prev removed (ident_issued.c). */
#define FS_WRITE                                                                                   \
	(FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG |                   \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE)
/* The rights that apply to a file (not a directory): others make add_rule fail. */
#define FS_FILE_RIGHTS                                                                             \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                              \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* Everything the kernel's ABI @abi can refuse; handled rights not in a rule are denied. */
static uint64_t handled_for(int abi)
{
	uint64_t h = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: EXECUTE..MAKE_SYM */

	if (abi >= 2)
		h |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return h;
}

/*
 * Allows @rights (as far as @handled has them) beneath @path. A path that
 * does not exist is skipped (/lib64 on some systems, a file not made yet):
 * it grants nothing. 0 or -errno.
 */
static int allow(int ruleset, uint64_t handled, const char *path, uint64_t rights)
{
	struct landlock_path_beneath_attr pb = {0};
	struct stat st;
	int fd, ret = 0;

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto close_fd;
	}
	pb.parent_fd = fd;
	pb.allowed_access = rights & handled & (S_ISDIR(st.st_mode) ? ~0ULL : FS_FILE_RIGHTS);
	if (syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0))
		ret = -errno;
close_fd:
	close(fd);
	return ret;
}

/* The directory that holds @file (NULL: none), with @rights. */
static int allow_dir_of(int ruleset, uint64_t handled, const char *file, uint64_t rights)
{
	char buf[PATH_MAX];

	if (!file)
		return 0;
	if (snprintf(buf, sizeof(buf), "%s", file) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	return allow(ruleset, handled, dirname(buf), rights);
}

int fg_landlock_enter(const struct fg_config *cfg, const char *exe)
{
	/* Libraries (and NSS modules getaddrinfo loads), the resolver, OpenSSL, time zones. */
	static const char *const exec_paths[] = {"/usr/lib",	     "/lib", "/lib64", "/usr/lib64",
						 "/etc/ld.so.cache", NULL};
	static const char *const read_paths[] = {
	    "/etc/ssl",
	    "/usr/lib/ssl",
	    "/etc/hosts",
	    "/etc/resolv.conf",
	    "/etc/nsswitch.conf",
	    "/etc/gai.conf",
	    "/etc/host.conf",
	    "/etc/services",
	    "/etc/protocols",
	    "/etc/localtime",
	    "/usr/share/zoneinfo",
	    "/dev/urandom",
	    "/dev/random",
	    NULL,
	};
	uint64_t id_rights = cfg->ca ? FS_WRITE : FS_READ, handled;
	char real[PATH_MAX];
	struct landlock_ruleset_attr attr = {0};
	int abi, ruleset, ret = 0;

	abi = (int)syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		if (errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		fg_info("landlock: not supported by this kernel");
		return 0;
	}
	handled = handled_for(abi);
	attr.handled_access_fs = handled;
	ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return -errno;
	for (int i = 0; exec_paths[i] && !ret; i++)
		ret = allow(ruleset, handled, exec_paths[i], FS_EXEC);
	for (int i = 0; read_paths[i] && !ret; i++)
		ret = allow(ruleset, handled, read_paths[i], FS_READ);
	/*
	 * A rule holds an inode: a resolv.conf that links to a resolver's
	 * directory (systemd-resolved, NetworkManager) is replaced there by
	 * rename, so that directory is readable, not only today's file.
	 */
	if (!ret && realpath("/etc/resolv.conf", real) && strncmp(real, "/etc/", 5))
		ret = allow_dir_of(ruleset, handled, real, FS_READ);
	if (!ret)
		ret = allow(ruleset, handled, "/dev/null", FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE);
	if (!ret && exe)
		ret = allow(ruleset, handled, exe, FS_EXEC);
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer reads this process's /proc/PID/task at exit. */
	if (!ret)
		ret = allow(ruleset, handled, "/proc/self", FS_READ);
#endif
	/* A reload reads the config again, and what it names. */
	if (!ret)
		ret = allow(ruleset, handled, cfg->dir, FS_READ);
	if (!ret)
		ret = allow_dir_of(ruleset, handled, cfg->cert_file, id_rights);
	if (!ret)
		ret = allow_dir_of(ruleset, handled, cfg->key_file, id_rights);
	if (!ret)
		ret = allow_dir_of(ruleset, handled, cfg->trust_file, FS_READ);
	if (!ret && cfg->trust_cache) /* written atomically: a new file renamed over it */
		ret = allow_dir_of(ruleset, handled, cfg->trust_cache, FS_WRITE);
	if (!ret && cfg->ca) {
		ret = allow_dir_of(ruleset, handled, cfg->ca->ca.root, FS_READ);
		if (!ret)
			ret = allow_dir_of(ruleset, handled, cfg->ca->token_file, FS_WRITE);
	}
	for (size_t i = 0; i < cfg->n_federation && !ret; i++)
		ret = allow_dir_of(ruleset, handled, cfg->federation[i].root, FS_READ);
	/* A capture cgroup or the local redirect's is resolved again on reload. */
	if (!ret && (cfg->capture.cgroup || cfg->local_redirect)) {
		ret = allow(ruleset, handled, "/sys/fs/cgroup", FS_READ);
		if (!ret)
			ret = allow(ruleset, handled, "/proc/self/mountinfo", FS_READ);
	}
	if (ret)
		goto close_ruleset;
	/* Without CAP_SYS_ADMIN, restrict_self wants this; it is right anyway. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(__NR_landlock_restrict_self, ruleset, 0)) {
		ret = -errno;
		goto close_ruleset;
	}
	fg_info("landlock: on (ABI %d): files outside the config, identity and system paths are "
		"refused",
		abi);
close_ruleset:
	close(ruleset);
	return ret;
}
