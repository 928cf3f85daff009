// SPDX-License-Identifier: MIT
/* `fedgate capture up|down -c FILE`, and what `fedgate check` says about capture. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "control/capture.h"
#include "control/capture_cmd.h"
#include "control/capture_nft.h"
#include "control/config.h"
#include "control/rtnl.h"
#include "control/run.h"

/* Reads "up|down -c FILE" into *@up and *@path; returns 0 or prints usage, FG_EXIT_CONFIG. */
static int parse_args(int argc, char **argv, int *up, const char **path)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*path = NULL;
	if (argc < 2 || (strcmp(argv[1], "up") && strcmp(argv[1], "down")))
		goto usage;
	*up = !strcmp(argv[1], "up");
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "c:", opts, NULL)) != -1) {
		if (c != 'c')
			goto usage;
		*path = optarg;
	}
	if (*path && optind == argc - 1)
		return 0;
usage:
	fprintf(stderr, "usage: fedgate capture up|down -c FILE\n");
	return FG_EXIT_CONFIG;
}

/*
 * 1 unless this process surely lacks CAP_NET_ADMIN (in its effective set).
 * Asked first because libnftables, unprivileged, writes to stderr itself;
 * where the capability is there but not over this namespace, the kernel's
 * EPERM says so later.
 */
static int may_net_admin(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return 1;
	return !!(data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32)));
}

/*
 * up: the routing entries first, then the table, so that no packet TPROXY
 * marks meets a missing rule; down: the other way round. A failed nft
 * transaction leaves the table as it was.
 */
static int apply(const struct fg_capture_plan *plan, int up, struct fg_err *err)
{
	int ret;

	if (up) {
		ret = fg_rtnl_apply(plan->rt, plan->n_rt, err);
		return ret ? ret : fg_nft_run(plan->nft, err);
	}
	ret = fg_nft_run(plan->nft, err);
	return ret ? ret : fg_rtnl_apply(plan->rt, plan->n_rt, err);
}

int fg_capture_main(int argc, char **argv)
{
	struct fg_capture_plan plan = { 0 };
	struct fg_config cfg = { 0 };
	struct fg_err err = { 0 };
	const char *path, *verb;
	int up, ret;

	ret = parse_args(argc, argv, &up, &path);
	if (ret)
		return ret;
	verb = up ? "up" : "down";
	if (fg_config_load(path, &cfg, &err)) {
		fprintf(stderr, "fedgate: %s\n", err.msg);
		return FG_EXIT_CONFIG;
	}
	ret = up ? fg_capture_plan_up(&cfg, &plan, &err) : fg_capture_plan_down(&cfg, &plan, &err);
	if (ret) {
		fprintf(stderr, "fedgate: %s\n", err.msg);
		ret = ret == -EINVAL ? FG_EXIT_CONFIG : 1;
		goto free_cfg;
	}
	if (up && !plan.n_tproxy && !plan.n_redirect && plan.n_cgroup) {
		printf("capture up: nothing to install: \"cgroup\" capture needs no nftables "
		       "rules; `fedgate run` attaches its BPF programs to $.capture.cgroup and "
		       "detaches them when it stops\n");
		ret = 0;
		goto free_plan;
	}
	if (up && !plan.n_tproxy && !plan.n_redirect) {
		fprintf(stderr, "fedgate: %s: no tunnel has \"capture\": nothing to install\n",
			path);
		ret = FG_EXIT_CONFIG;
		goto free_plan;
	}
	if (!may_net_admin()) {
		fprintf(stderr, "fedgate: capture %s needs root (CAP_NET_ADMIN)\n", verb);
		ret = 1;
		goto free_plan;
	}
	ret = apply(&plan, up, &err);
	if (ret == -EPERM)
		fprintf(stderr, "fedgate: capture %s needs root (CAP_NET_ADMIN): %s\n", verb,
			err.msg);
	else if (ret)
		fprintf(stderr, "fedgate: capture %s: %s\n", verb, err.msg);
	else
		printf("capture %s: table " FG_CAPTURE_NFT_TABLE " %s\n", verb,
		       up ? "installed" : "removed");
	ret = ret ? 1 : 0;
free_plan:
	fg_capture_plan_exit(&plan);
free_cfg:
	fg_config_free(&cfg);
	return ret;
}

int fg_capture_print(const struct fg_config *cfg, FILE *out)
{
	struct fg_capture_plan plan = { 0 };
	struct fg_err err = { 0 };
	char line[160];
	int ret;

	ret = fg_capture_plan_up(cfg, &plan, &err);
	if (ret == -EINVAL) {
		/* `run` takes it (a listener on port 0, say); only `capture up` cannot. */
		fprintf(out, "capture: `fedgate capture up` refuses this config: %s\n", err.msg);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "fedgate: %s\n", err.msg);
		return 1;
	}
	if (plan.n_tproxy || plan.n_redirect) {
		fprintf(out,
			"capture: %zu tproxy and %zu redirect tunnel(s); `fedgate capture up` "
			"installs what this shell script would:\n",
			plan.n_tproxy, plan.n_redirect);
		for (size_t i = 0; i < plan.n_rt; i++) {
			if (!plan.rt[i].present)
				continue;
			fg_rt_entry_text(&plan.rt[i], 1, line, sizeof(line));
			fprintf(out, "%s\n", line);
		}
		fprintf(out, "nft -f - <<'EOF'\n%sEOF\n", plan.nft);
	}
	fg_capture_plan_exit(&plan);
	return 0;
}
