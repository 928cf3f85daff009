// SPDX-License-Identifier: MIT
/* The gateway's cgroup capture, loaded with `run` and gone with it: see capture_bpf.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "bpf/capture-api.h"
#include "bpf/cgroup.h"
#include "control/ca/https.h"
#include "control/capture_bpf.h"
#include "control/capture_cgroup.h"
#include "control/run.h"
#include "fedgate/err.h"
#include "fedgate/log.h"

static struct fg_bpfcap *loaded;

/*
 * The plan and the resolved cgroup for @cfg; 0 with plan->n_tunnels 0 when
 * there is no cgroup tunnel; FG_EXIT_CONFIG with the reason printed.
 */
static int prepare(const struct fg_config *cfg, struct fg_capcg_plan *plan, char *dir, size_t len)
{
	struct fg_err err = {0};
	int ret;

	if (fg_capcg_plan(cfg, plan, &err)) {
		fprintf(stderr, "fedgate: %s\n", err.msg);
		return FG_EXIT_CONFIG;
	}
	if (!plan->n_tunnels)
		return 0;
	/* Checked by fg_config_load already; again, since it may have gone since. */
	ret = fg_cgroup2_resolve(cfg->capture.cgroup, dir, len);
	if (ret) {
		fprintf(stderr, "fedgate: %s: $.capture.cgroup: cgroup \"%s\": %s\n", cfg->path,
			cfg->capture.cgroup, fg_cgroup2_strerror(ret));
		fg_capcg_plan_exit(plan);
		return FG_EXIT_CONFIG;
	}
	return 0;
}

/* Loads (and attaches to @dir, unless NULL) into *@out; FG_EXIT_CONFIG with the reason printed. */
static int load(const struct fg_config *cfg, const struct fg_capcg_plan *plan, const char *dir,
		struct fg_bpfcap **out)
{
	char why[320];

	if (fg_bpfcap_new(out, dir, &plan->conf, plan->routes, plan->n_routes, why, sizeof(why))) {
		fprintf(stderr, "fedgate: %s: \"capture\": \"cgroup\": %s\n", cfg->path, why);
		return FG_EXIT_CONFIG;
	}
	return 0;
}

int fg_capbpf_start(const struct fg_config *cfg)
{
	struct fg_capcg_plan plan;
	char dir[PATH_MAX], line[768];
	int ret;

	ret = prepare(cfg, &plan, dir, sizeof(dir));
	if (ret || !plan.n_tunnels)
		return ret;
	ret = load(cfg, &plan, dir, &loaded);
	if (!ret) {
		/* The CA and federation fetches from here on are fedgate's own dials too. */
		fg_ca_client_set_mark(cfg->capture.mark);
		fg_capcg_describe(&plan, dir, line, sizeof(line));
		fg_info("%s", line);
	}
	fg_capcg_plan_exit(&plan);
	return ret;
}

void fg_capbpf_stop(void)
{
	if (!loaded)
		return;
	fg_bpfcap_free(loaded);
	loaded = NULL;
	fg_info("cgroup capture: detached");
}

int fg_capbpf_original(int fd, struct sockaddr_storage *dst)
{
	return fg_bpfcap_original(loaded, fd, dst);
}

int fg_capbpf_print(const struct fg_config *cfg, FILE *out)
{
	struct fg_capcg_plan plan;
	struct fg_bpfcap *probe = NULL;
	char dir[PATH_MAX], line[768];
	int ret;

	ret = prepare(cfg, &plan, dir, sizeof(dir));
	if (ret || !plan.n_tunnels)
		return ret;
	fg_capcg_describe(&plan, dir, line, sizeof(line));
	fprintf(out, "%s\n", line);
	ret = load(cfg, &plan, NULL, &probe);
	if (!ret)
		fprintf(out, "cgroup capture: the BPF programs load on this kernel; `fedgate run` "
			     "attaches them (nftables plays no part)\n");
	fg_bpfcap_free(probe);
	fg_capcg_plan_exit(&plan);
	return ret;
}
