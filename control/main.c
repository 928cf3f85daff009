// SPDX-License-Identifier: MIT
/* fedgate: one binary, a table of subcommands (as wireguard-tools' wg has). */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#include "control/ca/ca.h"
#include "control/capture_cmd.h"
#include "control/run.h"
#include "control/status_cmd.h"
#include "control/version.h"
#include "dataplane/dataplane.h"

static int version_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("fedgate %s (%s)\n", FEDGATE_VERSION, OpenSSL_version(OPENSSL_VERSION));
	return 0;
}

static int help_main(int argc, char **argv);

/* Each gets its own argv: argv[0] is the subcommand's name. */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args; /* after the name in `fedgate help`; NULL: none */
	const char *help; /* one line; NULL: not listed */
} subcommands[] = {
	{ "run", fg_run_main, "-c FILE [--ports-file FILE]", "run the gateway" },
	{ "check", fg_check_main, "-c FILE", "validate a config and its PKI" },
	{ "status", fg_status_main, "-c FILE | --admin ADDR [--json]", "a running gateway's state" },
	{ "capture", fg_capture_main, "up|down -c FILE", "install/remove transparent capture" },
	{ "ca", fg_ca_main, "COMMAND ...", "online CA and client (ca help)" },
	{ "version", version_main, NULL, "print versions" },
	{ "help", help_main, NULL, "this list" },
	{ "dataplane", fg_dataplane_main, NULL, NULL }, /* internal: started by run */
};

static int help_main(int argc, char **argv)
{
	char usage[64];

	(void)argc;
	(void)argv;
	printf("usage: fedgate COMMAND [ARGS]\n\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (!subcommands[i].help)
			continue;
		snprintf(usage, sizeof(usage), "%s%s%s", subcommands[i].name,
			 subcommands[i].args ? " " : "",
			 subcommands[i].args ? subcommands[i].args : "");
		printf("  fedgate %-30s  %s\n", usage, subcommands[i].help);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		help_main(argc, argv);
		return FG_EXIT_CONFIG;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "fedgate: unknown command \"%s\"; try \"fedgate help\"\n", argv[1]);
	return FG_EXIT_CONFIG;
}
