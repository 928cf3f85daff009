// SPDX-License-Identifier: MIT
/* $.run_as, $.sandbox and $.dataplane.seccomp: how fedgate confines itself (README "Sandbox"). */
#include <string.h>

#include "control/config.h"
#include "control/config_walk.h"

/* A user name as useradd takes them: the database decides whether it exists (run.c). */
static int valid_user(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= FG_RUN_AS_MAX || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    s[i]))
			return 0;
	return 1;
}

int fg_conf_parse_sandbox(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *root)
{
	static const char *const keys[] = {"landlock", NULL};
	const cJSON *dp = cJSON_GetObjectItemCaseSensitive(root, "dataplane");
	const cJSON *sb = cJSON_GetObjectItemCaseSensitive(root, "sandbox");
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(root, "run_as");
	int ret = 0;

	cfg->seccomp = 1;
	cfg->landlock = 1;
	cfg->run_as[0] = '\0';
	if (dp)
		ret = fg_conf_get_bool(w, dp, "$.dataplane", "seccomp", &cfg->seccomp);
	if (!ret && sb) {
		ret = fg_conf_check_keys(w, sb, "$.sandbox", keys);
		if (!ret)
			ret = fg_conf_get_bool(w, sb, "$.sandbox", "landlock", &cfg->landlock);
	}
	if (ret || !ra)
		return ret;
	if (!cJSON_IsString(ra) || !valid_user(ra->valuestring))
		return fg_conf_fail(w->err, w->file, "$.run_as",
				    "expected a user name (letters, digits, '.', '_', '-'; at "
				    "most %d characters)",
				    FG_RUN_AS_MAX - 1);
	strcpy(cfg->run_as, ra->valuestring);
	return 0;
}
