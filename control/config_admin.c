// SPDX-License-Identifier: MIT
/*
 * $.admin: where the admin listener (control/admin.c: /metrics, /status)
 * listens, and the unix socket a new fedgate takes the listeners over from
 * (control/takeover.c). Absent: neither. The address is an IP literal and
 * port, as a tunnel's listen; loopback is what it is for (README), another
 * address is the operator's choice and logged as such at start. Pure.
 */
#include <string.h>

#include "control/config.h"
#include "control/config_walk.h"

int fg_conf_parse_admin(struct fg_conf_walk *w, struct fg_config *cfg, const cJSON *obj)
{
	static const char *const keys[] = {"listen", "socket", NULL};
	const cJSON *listen;
	int ret;

	if (!obj)
		return 0;
	if (!cJSON_IsObject(obj))
		return fg_conf_fail(w->err, w->file, "$.admin",
				    "expected an object {\"listen\": ..., \"socket\": ...}");
	ret = fg_conf_check_keys(w, obj, "$.admin", keys);
	if (!ret && cJSON_GetObjectItemCaseSensitive(obj, "socket"))
		ret = fg_conf_get_str(w, obj, "$.admin", "socket", 1, &cfg->admin_socket);
	if (!ret)
		ret = fg_conf_resolve_path(w, &cfg->admin_socket);
	if (!ret && cfg->admin_socket && strlen(cfg->admin_socket) >= FG_ADMIN_SOCKET_MAX)
		ret = fg_conf_fail(w->err, w->file, "$.admin.socket",
				   "longer than a unix socket's path may be (%d bytes)",
				   FG_ADMIN_SOCKET_MAX - 1);
	if (ret)
		return ret;
	listen = cJSON_GetObjectItemCaseSensitive(obj, "listen");
	if (!listen && cfg->admin_socket)
		return 0;
	if (!listen)
		return fg_conf_fail(w->err, w->file, "$.admin.listen", "missing required key");
	if (!cJSON_IsString(listen))
		return fg_conf_fail(w->err, w->file, "$.admin.listen",
				    "expected a string \"host:port\", e.g. \"127.0.0.1:9180\"");
	cfg->has_admin = 1;
	return fg_conf_defer_addr(w, "$.admin.listen", listen->valuestring, 1, &cfg->admin_listen);
}
