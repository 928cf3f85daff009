// SPDX-License-Identifier: MIT
/*
 * Fuzzes the pure config parser with arbitrary bytes as the file's text.
 * It must do no I/O: a resolver call aborts (getaddrinfo is defined here, and
 * wins over libc's), every refusal must be one located line, and no text
 * holding a NUL (a byte, or \u0000 in a string) is ever accepted.
 */
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/config_parse.c"

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	(void)node, (void)service, (void)hints, (void)res;
	abort(); /* the pure parser resolved a name */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prefix[] = "fuzz.json: $";
	struct fg_conf_checks checks = { 0 };
	struct fg_config cfg = { 0 };
	struct fg_err err = { 0 };
	int ret;

	ret = fg_config_parse((const char *)data, size, "fuzz.json", "/etc/fedgate", &cfg, &checks,
			      &err);
	if (ret && ret != -EINVAL && ret != -ENOMEM)
		abort();
	if (ret == -EINVAL && (strncmp(err.msg, prefix, sizeof(prefix) - 1) || strchr(err.msg, '\n')))
		abort();
	if (!ret && (!cfg.cert_file || !cfg.key_file || !cfg.n_tunnels || !cfg.n_ciphers))
		abort();
	/* A NUL (a byte or \u0000) would have cut a string short: never accepted. */
	if (!ret && fg_json_nul_find((const char *)data, size, NULL, 0, NULL))
		abort();
	for (size_t i = 0; i < checks.n; i++)
		if (!checks.v[i].arg || checks.v[i].jpath[0] != '$' ||
		    (checks.v[i].kind != FG_CONF_CHECK_READABLE && !checks.v[i].addr))
			abort();
	fg_conf_checks_free(&checks);
	fg_config_free(&cfg);
	return 0;
}
