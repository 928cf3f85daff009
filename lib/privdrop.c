// SPDX-License-Identifier: MIT
/* Dropping root for a configured user: both processes, once their root-only setup is done. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "fedgate/privdrop.h"

int fg_privdrop(uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg))
		return -errno;
	if (ru == uid && eu == uid && su == uid && rg == gid && eg == gid && sg == gid &&
	    getgroups(0, NULL) == 0)
		return 0;
	/* Groups first: once the uid is gone, so is the right to change them. */
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
		return -errno;
	if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg))
		return -errno;
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
		return -EPERM;
	/* A dropped root must stay dropped: if this works, something is very wrong. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -EPERM;
	return 0;
}

int fg_privdrop_resolve(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	long n = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t len = n > 0 ? (size_t)n : 16384;
	char *buf = malloc(len);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = getpwnam_r(user, &pw, buf, len, &res);
	if (ret)
		ret = -ret;
	else if (!res)
		ret = -ENOENT;
	else
		*uid = pw.pw_uid, *gid = pw.pw_gid;
	free(buf);
	return ret;
}
