// SPDX-License-Identifier: MIT
/*
 * $.limits: how many unauthenticated connections terminate tunnels hold at
 * once, in all and from one source, and how many tunnels are established at
 * once (what control/admit.c enforces), and the open files limit to run
 * with (control/nofile.c). Pure.
 */
#include "control/config.h"
#include "control/config_walk.h"

int fg_conf_parse_limits(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj)
{
	static const char *const keys[] = {"handshakes", "handshakes_per_source", "tunnels",
					   "open_files", NULL};
	int hs = FG_LIMIT_HANDSHAKES_DEFAULT, per = 0, tunnels = 0, files = 0, ret = 0;

	if (obj)
		ret = fg_conf_check_keys(w, obj, "$.limits", keys);
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.limits", "handshakes", 1, FG_LIMIT_HANDSHAKES_MAX,
				      &hs);
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.limits", "handshakes_per_source", 1, hs, &per);
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.limits", "tunnels", 0, FG_LIMIT_TUNNELS_MAX,
				      &tunnels);
	if (!ret && obj)
		ret = fg_conf_get_int(w, obj, "$.limits", "open_files", FG_OPEN_FILES_MIN,
				      FG_OPEN_FILES_MAX, &files);
	if (ret)
		return ret;
	cfg->limits.tunnels = tunnels;
	cfg->limits.open_files = files;
	/* One source never holds more than half the room unless the file says so. */
	cfg->limits.handshakes = hs;
	cfg->limits.handshakes_per_source = per ? per : (hs > 1 ? hs / 2 : 1);
	return 0;
}
