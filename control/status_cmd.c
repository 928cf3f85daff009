// SPDX-License-Identifier: MIT
/*
 * `fedgate status`: asks a running gateway's admin listener for GET /status
 * (control/status.c) and prints it, as it came (--json) or as lines.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "control/config.h"
#include "control/run.h"
#include "control/status_cmd.h"
#include "fedgate/addr.h"
#include "fedgate/clock.h"
#include "fedgate/evloop.h"
#include "fedgate/err-t.h"

#define STATUS_TIMEOUT_MS 5000
#define STATUS_MAX (16u << 20) /* an answer larger than this is not a status */

static int usage(void)
{
	fprintf(stderr, "usage: fedgate status (-c FILE | --admin HOST:PORT) [--json]\n");
	return FG_EXIT_CONFIG;
}

/*
 * GET /status at @at: *@body (malloc'd) of *@len bytes, the answer's body
 * after a 200. 0, or -errno with @why (@wlen bytes) saying what failed.
 */
static int fetch(const struct fg_addr *at, char **body, size_t *len, char *why, size_t wlen)
{
	static const char req[] = "GET /status HTTP/1.1\r\nHost: fedgate\r\n"
				  "Connection: close\r\n\r\n";
	int64_t deadline = fg_mono_ms() + STATUS_TIMEOUT_MS;
	size_t got = 0, cap = 65536;
	char *buf = malloc(cap), *head_end, *nb;
	int fd, ret, code = 0, err = 0;
	socklen_t el = sizeof(err);
	ssize_t n;

	*body = NULL;
	if (!buf)
		return -ENOMEM;
	fd = socket(at->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto free_buf;
	}
	if (connect(fd, (const struct sockaddr *)&at->sa, at->len) && errno != EINPROGRESS) {
		ret = -errno;
		goto close_fd;
	}
	ret = fg_wait_fd(fd, POLLOUT, deadline);
	if (!ret && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el))
		ret = -errno;
	if (!ret && err)
		ret = -err;
	if (!ret && send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
		ret = -EIO;
	if (ret)
		goto close_fd;
	for (;;) {
		ret = fg_wait_fd(fd, POLLIN, deadline);
		if (ret)
			goto close_fd;
		if (got + 1 >= cap) {
			if (cap >= STATUS_MAX) {
				ret = -EFBIG;
				goto close_fd;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				goto close_fd;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + got, cap - got - 1, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			ret = -errno;
			goto close_fd;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	head_end = strstr(buf, "\r\n\r\n");
	if (!head_end || sscanf(buf, "HTTP/1.%*1[01] %3d", &code) != 1) {
		snprintf(why, wlen, "not an HTTP answer");
		ret = -EPROTO;
		goto close_fd;
	}
	if (code != 200) {
		snprintf(why, wlen, "HTTP %d: %.200s", code, head_end + 4);
		ret = -EPROTO;
		goto close_fd;
	}
	*len = got - (size_t)(head_end + 4 - buf);
	memmove(buf, head_end + 4, *len + 1);
	*body = buf;
	buf = NULL;
close_fd:
	close(fd);
free_buf:
	free(buf);
	if (ret && !why[0])
		snprintf(why, wlen, "%s",
			 ret == -ETIMEDOUT ? "no answer within 5 s" : strerror(-ret));
	return ret;
}

static const char *str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));

	return s ? s : "?";
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *n = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(n) ? n->valuedouble : -1;
}

/* Unix time @t as "YYYY-MM-DD HH:MM:SS UTC" into @out. */
static const char *utc(double t, char *out, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&s, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, len, "none");
	return out;
}

static void print_tunnel(const cJSON *t)
{
	const cJSON *p, *peers = cJSON_GetObjectItem(t, "peers");

	printf("tunnel %s (%s): %s -> %s%s%s\n", str(t, "name"), str(t, "mode"), str(t, "listen"),
	       str(t, "target"), cJSON_GetObjectItem(t, "server_name") ? " as " : "",
	       cJSON_GetObjectItem(t, "server_name") ? str(t, "server_name") : "");
	printf("  %.0f open, %.0f accepted, %.0f refused; %.0f bytes to peer, %.0f from peer; "
	       "offload %s\n",
	       num(t, "open"), num(t, "accepted"), num(t, "refused"), num(t, "bytes_to_peer"),
	       num(t, "bytes_from_peer"), str(t, "offload"));
	cJSON_ArrayForEach(p, peers)
	{
		printf("  peer %s: %.0f open", str(p, "identity"), num(p, "open"));
		if (num(p, "being_handed") > 0)
			printf(", %.0f being handed", num(p, "being_handed"));
		printf("\n");
	}
	if (num(t, "tunnels_of_other_peers") > 0)
		printf("  and %.0f tunnel(s) of other peers\n", num(t, "tunnels_of_other_peers"));
}

/* The status as lines. 0, or 1 when @body is not the JSON /status gives. */
static int print_lines(const char *body)
{
	cJSON *o = cJSON_Parse(body);
	const cJSON *dp, *id, *tr, *e;
	char when[64];

	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		fprintf(stderr, "fedgate status: the answer is not a status document\n");
		return 1;
	}
	dp = cJSON_GetObjectItem(o, "dataplane");
	id = cJSON_GetObjectItem(o, "identity");
	tr = cJSON_GetObjectItem(o, "trust");
	printf("fedgate %s, pid %.0f, up %.0f s%s, config %s\n", str(o, "version"), num(o, "pid"),
	       num(o, "uptime_s"),
	       cJSON_IsTrue(cJSON_GetObjectItem(o, "draining")) ? ", draining" : "",
	       str(o, "config"));
	printf("data plane: pid %.0f, offload %s, local redirect %s, %.0f restart(s); "
	       "%.0f handshake(s) in progress\n",
	       num(dp, "pid"), str(dp, "offload"), str(dp, "local_redirect"), num(dp, "restarts"),
	       num(o, "handshakes_in_progress"));
	printf("identity: %s (from %s), expires in %.0f s\n", str(id, "certificate"),
	       str(id, "source"), num(id, "expires_in_s"));
	printf("trust: %.0f root(s), the first expires %s\n", num(tr, "roots"),
	       utc(num(tr, "first_root_expiry"), when, sizeof(when)));
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(tr, "sources"))
	{
		if (num(e, "age_s") >= 0)
			printf("  %s %s: %.0f root(s), %.0f s old%s\n", str(e, "kind"),
			       cJSON_GetObjectItem(e, "url") ? str(e, "url") : str(e, "path"),
			       num(e, "roots"), num(e, "age_s"),
			       cJSON_IsTrue(cJSON_GetObjectItem(e, "from_cache"))
				   ? " (from the trust cache: it has not answered since the start)"
				   : "");
		else
			printf("  %s %s: no bundle yet\n", str(e, "kind"),
			       cJSON_GetObjectItem(e, "url") ? str(e, "url") : str(e, "path"));
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, "tunnels")) print_tunnel(e);
	cJSON_Delete(o);
	return 0;
}

int fg_status_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"admin", required_argument, NULL, 'a'},
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	struct fg_config cfg = {0};
	struct fg_addr parsed = {0};
	const struct fg_addr *at = &parsed;
	struct fg_err err = {0};
	const char *path = NULL, *admin = NULL, *bad = NULL;
	char why[256] = "", *body = NULL;
	size_t len = 0;
	int json = 0, c, ret = FG_EXIT_CONFIG;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (c == 'c')
			path = optarg;
		else if (c == 'a')
			admin = optarg;
		else if (c == 'j')
			json = 1;
		else
			return usage();
	}
	if (optind != argc || !path == !admin)
		return usage();
	if (path && fg_config_load(path, &cfg, &err)) {
		fprintf(stderr, "fedgate status: %s\n", err.msg);
		return FG_EXIT_CONFIG;
	}
	if (path && !cfg.has_admin) {
		fprintf(stderr,
			"fedgate status: %s has no admin.listen: the gateway serves no status\n",
			path);
		goto free_config;
	}
	if (path && !fg_addr_host(&cfg.admin_listen.sa, why, sizeof(why))) {
		fprintf(stderr,
			"fedgate status: %s: admin.listen %s has port 0: give --admin the address "
			"it bound (its ports file's @admin line)\n",
			path, cfg.admin_listen.text);
		goto free_config;
	}
	why[0] = '\0';
	if (path) {
		at = &cfg.admin_listen;
	} else if (fg_addr_parse(admin, 0, &parsed, &bad)) {
		fprintf(stderr, "fedgate status: --admin %s: %s\n", admin, bad ? bad : "no memory");
		goto free_config;
	}
	ret = fetch(at, &body, &len, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "fedgate status: %s: %s\n", at->text, why);
		ret = 1;
	} else if (json) {
		fwrite(body, 1, len, stdout);
		printf("\n");
	} else {
		ret = print_lines(body);
	}
	free(body);
	fg_addr_exit(&parsed);
free_config:
	fg_config_free(&cfg);
	return ret;
}
