// SPDX-License-Identifier: MIT
/* `fedgate run` and `fedgate check`: a config, its identity, and the data plane backend. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control/capture_bpf.h"
#include "control/capture_cmd.h"
#include "control/config.h"
#include "control/control.h"
#include "control/dpctl.h"
#include "control/identity-t.h"
#include "control/identity.h"
#include "control/local_redirect.h"
#include "control/own_cert.h"
#include "control/nofile.h"
#include "control/privdrop.h"
#include "control/run.h"
#include "control/spawn.h"
#include "control/tls.h"
#include "control/version.h"
#include "fedgate/ktls.h"
#include "fedgate/log.h"

/* Parses -c FILE [--ports-file F]; returns 0 or prints usage and returns FG_EXIT_CONFIG. */
static int parse_run_args(int argc, char **argv, const char **config, const char **ports,
			  int *take_over)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"ports-file", required_argument, NULL, 'p'},
	    {"take-over", no_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*config = NULL;
	*ports = NULL;
	*take_over = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:p:", opts, NULL)) != -1) {
		if (c == 'c')
			*config = optarg;
		else if (c == 'p')
			*ports = optarg;
		else if (c == 't' && !strcmp(argv[0], "run"))
			*take_over = 1;
		else
			goto usage;
	}
	if (*config && optind == argc)
		return 0;
usage:
	fprintf(stderr, "usage: fedgate %s -c FILE%s\n", argv[0],
		strcmp(argv[0], "run") ? "" : " [--ports-file FILE] [--take-over]");
	return FG_EXIT_CONFIG;
}

/*
 * Loads config and TLS identity (with identity.ca / trust.federation, `run`
 * enrolls and fetches now; @offline, for `check`, contacts no CA); on
 * failure prints the one-line error.
 */
static int load(const char *path, struct fg_config *cfg, struct fg_ident **id, int offline)
{
	struct fg_err err = {0};

	if (fg_config_load(path, cfg, &err)) {
		fprintf(stderr, "fedgate: %s\n", err.msg);
		return FG_EXIT_CONFIG;
	}
	if (fg_ident_new(id, cfg, NULL, offline, &err)) {
		fprintf(stderr, "fedgate: %s\n", err.msg);
		fg_config_free(cfg);
		return FG_EXIT_CONFIG;
	}
	return 0;
}

/*
 * One loud line when the own certificate has expired, is not valid yet or is
 * due for renewal (own_cert.h): on stderr for `check`, in the log for `run`.
 * Not an error: a replaced file is taken within seconds (README "Identity").
 */
static void warn_own_cert(const struct fg_config *cfg, struct fg_ident *id, int to_stderr)
{
	X509 *leaf = id->id.leaf;
	char why[512];

	if (!leaf ||
	    fg_own_cert_state(leaf, (int64_t)time(NULL), why, sizeof(why)) == FG_OWN_CERT_OK)
		return;
	if (to_stderr)
		fprintf(stderr, "fedgate: warning: %s: $.identity.cert: the certificate in %s %s\n",
			cfg->path, cfg->cert_file, why);
	else
		fg_warn("%s: $.identity.cert: the certificate in %s %s", cfg->path, cfg->cert_file,
			why);
}

/*
 * Decides the data plane backend from the config and one kTLS probe, and logs
 * the choice and why. Returns 0, or FG_EXIT_CONFIG with the reason printed.
 */
static int choose_backend(const struct fg_config *cfg, enum fg_dp_backend *backend)
{
	const char *why;
	int ret = fg_ktls_probe(&why);

	switch (cfg->offload) {
	case FG_OFFLOAD_USERSPACE:
		fg_info("offload: userspace record layer (as configured)");
		*backend = FG_DP_USERSPACE;
		return 0;
	case FG_OFFLOAD_AUTO:
		*backend = ret ? FG_DP_USERSPACE : FG_DP_KERNEL;
		fg_info("offload auto: %s (kernel TLS probe: %s)",
			ret ? "userspace record layer" : "kernel TLS", why);
		return 0;
	case FG_OFFLOAD_KERNEL:
		if (ret) {
			fprintf(stderr,
				"fedgate: %s: $.dataplane.offload: \"kernel\" needs kernel TLS, "
				"and this kernel has none (%s); use \"auto\" or \"userspace\"\n",
				cfg->path, why);
			return FG_EXIT_CONFIG;
		}
		fg_info("offload: kernel TLS (as configured; probe: %s)", why);
		*backend = FG_DP_KERNEL_ONLY;
		return 0;
	}
	return FG_EXIT_CONFIG;
}

int fg_run_main(int argc, char **argv)
{
	struct fg_config cfg = {0};
	struct fg_ident *id = NULL;
	struct fg_dp_opts dp = {0};
	struct gw_dp *plane = NULL;
	const char *path, *ports;
	int ret, take_over;

	/*
	 * One malloc arena for the whole process, before any thread (the
	 * config's file polls are the first): a thread's own arena never gives
	 * its top back (glibc trims only the main one's), so a burst of
	 * handshakes on the handshake threads would keep its peak RSS for good
	 * (tests/test_pending_memory.py). Their mallocs share the main arena's
	 * lock instead, beside each thread's tcache.
	 */
	mallopt(M_ARENA_MAX, 1);
	ret = parse_run_args(argc, argv, &path, &ports, &take_over);
	if (ret)
		return ret;
	fg_log_init("fedgate[control]", getenv("FEDGATE_DEBUG") ? FG_LOG_DEBUG : FG_LOG_INFO);
	ret = load(path, &cfg, &id, 0);
	if (ret)
		return ret;
	warn_own_cert(&cfg, id, 0);
	ret = choose_backend(&cfg, &dp.backend);
	if (ret)
		goto free_tls;
	ret = fg_sandbox_prepare(&cfg);
	if (!ret)
		ret = fg_nofile_apply(&cfg); /* before the data plane, which inherits it */
	if (ret)
		goto free_tls;
	ret = fg_capbpf_start(&cfg);
	if (ret)
		goto free_tls;
	dp.workers = cfg.workers;
	dp.splice_tx = cfg.kernel_tx_splice;
	/* Before the data plane: it inherits the slot array, and "on" that fails stops here. */
	ret = gw_lr_start(&cfg, &dp.legs_fd);
	if (ret)
		goto stop_capture;
	signal(SIGPIPE, SIG_IGN);
	ret = gw_dp_new(&plane, &dp, (uint32_t)cfg.drain_timeout_s * 1000u);
	if (ret) {
		fg_error("cannot start the data plane: %s", strerror(-ret));
		ret = 1;
		goto stop_lr;
	}
	fg_info("fedgate %s: %zu tunnel(s), %d root(s) in the trust bundle, data plane pid %d",
		FEDGATE_VERSION, cfg.n_tunnels, fg_ident_tls(id)->n_roots, (int)gw_dp_pid(plane));
	ret = fg_control_run(&cfg, id, plane, ports, take_over) ? 1 : 0;
	id = NULL; /* freed by fg_control_run */
	/* After a drain it has exited; after SIGINT it is stopped here, tunnels and all. */
	gw_dp_free(plane);
	fg_info("stopped");
stop_lr:
	gw_lr_stop();
stop_capture:
	fg_capbpf_stop();
free_tls:
	fg_ident_free(id);
	fg_config_free(&cfg);
	return ret;
}

int fg_check_main(int argc, char **argv)
{
	struct fg_config cfg = {0};
	struct fg_ident *id = NULL;
	enum fg_dp_backend backend;
	const char *path, *ports;
	int ret, take_over;

	ret = parse_run_args(argc, argv, &path, &ports, &take_over);
	if (ret)
		return ret;
	ret = load(path, &cfg, &id, 1);
	if (ret)
		return ret;
	warn_own_cert(&cfg, id, 1);
	/* The same verdict as `run` on this machine, offload included. */
	fg_log_init("fedgate[check]", FG_LOG_WARN);
	ret = choose_backend(&cfg, &backend);
	if (ret)
		goto out;
	if (cfg.trust_file)
		printf("%s: OK: %zu tunnel(s), %d root(s) in the trust bundle, %s\n", path,
		       cfg.n_tunnels, fg_ident_tls(id)->n_roots,
		       backend == FG_DP_USERSPACE ? "userspace record layer" : "kernel TLS");
	else
		printf("%s: OK: %zu tunnel(s), trust from %zu federation CA(s) (not contacted), "
		       "%s\n",
		       path, cfg.n_tunnels, cfg.n_federation,
		       backend == FG_DP_USERSPACE ? "userspace record layer" : "kernel TLS");
	ret = gw_lr_check(&cfg, stdout);
	if (!ret)
		ret = fg_capture_print(&cfg, stdout);
	if (!ret)
		ret = fg_capbpf_print(&cfg, stdout);
out:
	fg_ident_free(id);
	fg_config_free(&cfg);
	return ret;
}
