// SPDX-License-Identifier: MIT
/*
 * `fedgate ca COMMAND`: the CA and its client, with step's command shapes.
 * Exit status: 0 done, 1 failed (the CA refused, network, TLS), 2 usage or
 * configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "control/ca/ca.h"
#include "control/ca/client.h"
#include "control/ca/init.h"
#include "control/ca/jwe.h"
#include "control/ca/jwt.h"
#include "fedgate/log.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_SANS 64

struct ca_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

/* Everything the subcommands take; each one checks which it needs. */
struct args {
	const char *name, *dir, *password_file, *address, *provisioner, *address_file;
	const char *ca_url, *root, *token, *token_file, *key, *ca_config, *out;
	const char *not_before, *not_after, *lifetime;
	const char *sans[MAX_SANS], *dns[MAX_SANS];
	size_t n_sans, n_dns;
	char *pos[4];
	int n_pos;
};

enum {
	O_NAME = 256, O_DIR, O_PASSWORD_FILE, O_ADDRESS, O_PROVISIONER, O_ADDRESS_FILE, O_CA_URL,
	O_ROOT, O_TOKEN, O_TOKEN_FILE, O_KEY, O_CA_CONFIG, O_OUT, O_NOT_BEFORE, O_NOT_AFTER,
	O_LIFETIME, O_SAN, O_DNS,
};

static int usage(const char *cmd);

static int parse(int argc, char **argv, struct args *a, int max_pos)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },
		{ "dir", required_argument, NULL, O_DIR },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "provisioner-password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "address", required_argument, NULL, O_ADDRESS },
		{ "provisioner", required_argument, NULL, O_PROVISIONER },
		{ "address-file", required_argument, NULL, O_ADDRESS_FILE },
		{ "ca-url", required_argument, NULL, O_CA_URL },
		{ "root", required_argument, NULL, O_ROOT },
		{ "token", required_argument, NULL, O_TOKEN },
		{ "token-file", required_argument, NULL, O_TOKEN_FILE },
		{ "key", required_argument, NULL, O_KEY },
		{ "ca-config", required_argument, NULL, O_CA_CONFIG },
		{ "out", required_argument, NULL, O_OUT },
		{ "not-before", required_argument, NULL, O_NOT_BEFORE },
		{ "not-after", required_argument, NULL, O_NOT_AFTER },
		{ "lifetime", required_argument, NULL, O_LIFETIME },
		{ "san", required_argument, NULL, O_SAN },
		{ "dns", required_argument, NULL, O_DNS },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1 || optind < argc) {
		if (c == -1) { /* a positional argument: keep it and go on with the options */
			if (a->n_pos == max_pos || a->n_pos == 4) {
				fprintf(stderr, "fedgate ca %s: unexpected argument \"%s\"\n", argv[0],
					argv[optind]);
				return EXIT_USAGE;
			}
			a->pos[a->n_pos++] = argv[optind++];
			continue;
		}
		switch (c) {
		case O_NAME:
			a->name = optarg;
			break;
		case O_DIR:
			a->dir = optarg;
			break;
		case O_PASSWORD_FILE:
			a->password_file = optarg;
			break;
		case O_ADDRESS:
			a->address = optarg;
			break;
		case O_PROVISIONER:
			a->provisioner = optarg;
			break;
		case O_ADDRESS_FILE:
			a->address_file = optarg;
			break;
		case O_CA_URL:
			a->ca_url = optarg;
			break;
		case O_ROOT:
			a->root = optarg;
			break;
		case O_TOKEN:
			a->token = optarg;
			break;
		case O_TOKEN_FILE:
			a->token_file = optarg;
			break;
		case O_KEY:
			a->key = optarg;
			break;
		case O_CA_CONFIG:
			a->ca_config = optarg;
			break;
		case O_OUT:
			a->out = optarg;
			break;
		case O_NOT_BEFORE:
			a->not_before = optarg;
			break;
		case O_NOT_AFTER:
			a->not_after = optarg;
			break;
		case O_LIFETIME:
			a->lifetime = optarg;
			break;
		case O_SAN:
			if (a->n_sans == MAX_SANS)
				return usage(argv[0]);
			a->sans[a->n_sans++] = optarg;
			break;
		case O_DNS:
			if (a->n_dns == MAX_SANS)
				return usage(argv[0]);
			a->dns[a->n_dns++] = optarg;
			break;
		default:
			return usage(argv[0]);
		}
	}
	return 0;
}

static int need(const char *cmd, const char *value, const char *what)
{
	if (value)
		return 0;
	fprintf(stderr, "fedgate ca %s: %s is required\n", cmd, what);
	usage(cmd);
	return EXIT_USAGE;
}

static int failed(const char *cmd, const struct fg_err *err)
{
	fprintf(stderr, "fedgate ca %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
	return EXIT_FAIL;
}

/* Writes PEM text to @path ("-": stdout). */
static int output(const char *path, const char *text, mode_t mode, struct fg_err *err)
{
	if (!strcmp(path, "-"))
		return fputs(text, stdout) < 0 ? -EIO : 0;
	return fg_pki_write_file(path, text, strlen(text), mode, err);
}

static int cmd_init(int argc, char **argv)
{
	struct fg_password pw = { .prompt = "Password to encrypt the CA keys", .confirm = 1 };
	struct fg_ca_init_opts o = { 0 };
	struct fg_err err = { 0 };
	static const char *const default_dns[] = { "localhost", "127.0.0.1" };
	struct args a;
	char path[4096];
	int ret;

	ret = parse(argc, argv, &a, 0);
	if (ret || (ret = need("init", a.name, "--name")) || (ret = need("init", a.dir, "--dir")))
		return ret;
	o.dir = a.dir;
	o.name = a.name;
	o.dns = a.n_dns ? a.dns : default_dns;
	o.n_dns = a.n_dns ? a.n_dns : 2;
	o.address = a.address ? a.address : "127.0.0.1:9000";
	o.provisioner = a.provisioner ? a.provisioner : "admin";
	pw.file = a.password_file;
	ret = fg_ca_init(&o, &pw, &err);
	fg_password_exit(&pw);
	if (ret)
		return failed("init", &err);
	snprintf(path, sizeof(path), "%s/config/ca.json", a.dir);
	printf("%s Root CA: %s/certs/root_ca.crt\n", a.name, a.dir);
	printf("%s Intermediate CA: %s/certs/intermediate_ca.crt\n", a.name, a.dir);
	printf("provisioner \"%s\" (JWK, ES256): key %s/secrets/provisioner_key\n", o.provisioner,
	       a.dir);
	printf("config: %s\n", path);
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct fg_password pw = { .prompt = "Password for the CA's intermediate key" };
	struct fg_err err = { 0 };
	struct fg_ca ca;
	struct args a;
	int ret;

	ret = parse(argc, argv, &a, 1);
	if (ret || (ret = need("serve", a.n_pos ? a.pos[0] : NULL, "CONFIG (ca.json)")))
		return ret;
	fg_log_init("fedgate[ca]", getenv("FEDGATE_DEBUG") ? FG_LOG_DEBUG : FG_LOG_INFO);
	pw.file = a.password_file;
	ret = fg_ca_load(&ca, a.pos[0], 1, &pw, &err);
	fg_password_exit(&pw);
	if (ret) {
		fprintf(stderr, "fedgate ca serve: %s\n", err.msg);
		return EXIT_USAGE;
	}
	fg_info("CA: %d root(s), %d certificate(s) in /federation, %zu provisioner(s)",
		sk_X509_num(ca.roots), sk_X509_num(ca.federation), ca.n_prov);
	ret = fg_ca_serve(&ca, a.address_file, &err);
	if (ret)
		fprintf(stderr, "fedgate ca serve: %s\n", err.msg);
	fg_ca_free(&ca);
	return ret ? EXIT_FAIL : 0;
}

static int read_token(struct args *a, char **token, struct fg_err *err)
{
	size_t n;
	int ret;

	if (a->token) {
		*token = strdup(a->token);
		return *token ? 0 : fg_err_set(err, -ENOMEM, "out of memory");
	}
	ret = fg_pki_read_file(a->token_file, 64 << 10, token, NULL, err);
	if (ret)
		return ret;
	n = strcspn(*token, "\r\n \t");
	(*token)[n] = '\0';
	return 0;
}

/*
 * The provisioner key for `ca token`: --key FILE (with --provisioner NAME), or
 * the "keyFile" (fedgate's) or "encryptedKey" (step's) of the provisioner in
 * --ca-config, or with neither the "encryptedKey" the CA serves. Either way it is checked
 * against nothing more than its own thumbprint here; the CA judges the token.
 */
static int token_key(struct args *a, struct fg_password *pw, EVP_PKEY **key, char **prov,
		     struct fg_err *err)
{
	struct fg_ca ca;
	struct fg_ca_provisioner *p = NULL;
	char kid[48];
	int ret;

	if (a->key) {
		*key = fg_pki_read_key(a->key, pw, err);
		if (!*key)
			return -EINVAL;
		*prov = strdup(a->provisioner ? a->provisioner : "admin");
		return *prov ? 0 : -ENOMEM;
	}
	if (!a->ca_config) {
		/* As `step ca token` without a ca.json: the encrypted key from the CA itself. */
		struct fg_ca_client c = { 0 };

		ret = fg_ca_client_init(&c, a->ca_url, a->root, err) ?:
		      fg_ca_provisioner_key(&c, a->provisioner, pw, key, prov, err);
		fg_ca_client_exit(&c);
		return ret;
	}
	ret = fg_ca_load(&ca, a->ca_config, 0, NULL, err);
	if (ret)
		return ret;
	for (size_t i = 0; i < ca.n_prov && !p; i++)
		if (!a->provisioner || !strcmp(ca.prov[i].name, a->provisioner))
			p = &ca.prov[i];
	if (!p || (!p->key_file && !p->encrypted_key)) {
		ret = fg_err_set(err, -ENOENT,
				 "%s: no JWK provisioner %s%s%swith a \"keyFile\" or an "
				 "\"encryptedKey\": use --key FILE",
				 a->ca_config, a->provisioner ? "\"" : "",
				 a->provisioner ? a->provisioner : "", a->provisioner ? "\" " : "");
		goto out;
	}
	/* fedgate's keyFile first; else step's encryptedKey, under the same password. */
	if (p->key_file)
		*key = fg_pki_read_key(p->key_file, pw, err);
	else if (!(ret = fg_password_get(pw, err)))
		*key = fg_jwe_private_jwk(p->encrypted_key, pw->buf, pw->len, err);
	if (!*key) {
		ret = ret ?: -EINVAL;
		goto out;
	}
	if (fg_jwk_thumbprint(*key, kid) || strcmp(kid, p->kid)) {
		ret = fg_err_set(err, -EINVAL, "%s is not the key of provisioner \"%s\" (kid %s)",
				 p->key_file ? p->key_file : "its \"encryptedKey\"", p->name,
				 p->kid);
		EVP_PKEY_free(*key);
		*key = NULL;
		goto out;
	}
	*prov = strdup(p->name);
	ret = *prov ? 0 : -ENOMEM;
out:
	fg_ca_free(&ca);
	return ret;
}

static int cmd_token(int argc, char **argv)
{
	struct fg_password pw = { .prompt = "Password for the provisioner key" };
	struct fg_ca_token_req r = { 0 };
	struct fg_err err = { 0 };
	EVP_PKEY *key = NULL;
	char *prov = NULL, *token = NULL;
	int64_t ms = 0;
	struct args a;
	int ret;

	ret = parse(argc, argv, &a, 1);
	if (ret || (ret = need("token", a.n_pos ? a.pos[0] : NULL, "SUBJECT")) ||
	    (ret = need("token", a.ca_url, "--ca-url")) || (ret = need("token", a.root, "--root")))
		return ret;
	/* The CA refuses tokens that expire more than FG_CA_TOKEN_MAX_LIFETIME_S ahead. */
	if (a.lifetime && (fg_duration_parse(a.lifetime, &ms) || ms < 1000 ||
			   ms > FG_CA_TOKEN_MAX_LIFETIME_S * 1000LL)) {
		fprintf(stderr, "fedgate ca token: --lifetime: expected a duration (1s..1h)\n");
		return EXIT_USAGE;
	}
	pw.file = a.password_file;
	ret = token_key(&a, &pw, &key, &prov, &err);
	fg_password_exit(&pw);
	if (ret)
		return failed("token", &err);
	r.subject = a.pos[0];
	r.sans = a.sans;
	r.n_sans = a.n_sans;
	r.ca_url = a.ca_url;
	r.root_file = a.root;
	r.provisioner = prov;
	r.key = key;
	r.lifetime_s = (int)(ms / 1000);
	ret = fg_ca_token(&r, &token, &err);
	EVP_PKEY_free(key);
	free(prov);
	if (ret)
		return failed("token", &err);
	printf("%s\n", token);
	free(token);
	return 0;
}

static int cmd_certificate(int argc, char **argv)
{
	struct fg_ca_client c = { 0 };
	struct fg_err err = { 0 };
	char *token = NULL, *key = NULL, *chain = NULL;
	struct args a;
	int ret;

	ret = parse(argc, argv, &a, 3);
	if (ret)
		return ret;
	if (a.n_pos != 3) {
		fprintf(stderr, "fedgate ca certificate: SUBJECT CRT KEY are required\n");
		return usage("certificate");
	}
	if ((ret = need("certificate", a.token ? a.token : a.token_file,
			"--token TOKEN or --token-file FILE")) ||
	    (ret = need("certificate", a.ca_url, "--ca-url")) ||
	    (ret = need("certificate", a.root, "--root")))
		return ret;
	if (read_token(&a, &token, &err) || fg_ca_client_init(&c, a.ca_url, a.root, &err))
		goto fail;
	ret = fg_ca_enroll(&c, a.pos[0], a.n_sans ? a.sans : NULL, a.n_sans, token, a.not_before,
			   a.not_after, &key, &chain, &err);
	if (ret)
		goto fail;
	/* The key first: a certificate without its key is of no use. */
	if (output(a.pos[2], key, 0600, &err) || output(a.pos[1], chain, 0644, &err))
		goto fail;
	fprintf(stderr, "Your certificate has been saved in %s.\nYour private key has been saved in "
			"%s.\n",
		a.pos[1], a.pos[2]);
	ret = 0;
	goto out;
fail:
	ret = failed("certificate", &err);
out:
	if (key)
		OPENSSL_cleanse(key, strlen(key));
	free(key);
	free(chain);
	free(token);
	fg_ca_client_exit(&c);
	return ret;
}

static int cmd_renew(int argc, char **argv)
{
	struct fg_password pw = { .prompt = "Password for the key" };
	struct fg_ca_client c = { 0 };
	struct fg_err err = { 0 };
	char *chain = NULL, *fresh = NULL;
	EVP_PKEY *key = NULL;
	struct args a;
	int ret;

	ret = parse(argc, argv, &a, 2);
	if (ret)
		return ret;
	if (a.n_pos != 2) {
		fprintf(stderr, "fedgate ca renew: CRT KEY are required\n");
		return usage("renew");
	}
	if ((ret = need("renew", a.ca_url, "--ca-url")) || (ret = need("renew", a.root, "--root")))
		return ret;
	pw.file = a.password_file;
	if (fg_pki_read_file(a.pos[0], 1 << 20, &chain, NULL, &err) ||
	    !(key = fg_pki_read_key(a.pos[1], &pw, &err)) ||
	    fg_ca_client_init(&c, a.ca_url, a.root, &err) ||
	    fg_ca_renew(&c, chain, key, &fresh, &err) ||
	    output(a.out ? a.out : a.pos[0], fresh, 0644, &err)) {
		ret = failed("renew", &err);
		goto out;
	}
	fprintf(stderr, "Your certificate has been saved in %s.\n", a.out ? a.out : a.pos[0]);
	ret = 0;
out:
	fg_password_exit(&pw);
	EVP_PKEY_free(key);
	free(chain);
	free(fresh);
	fg_ca_client_exit(&c);
	return ret;
}

static int bundle_cmd(int argc, char **argv, int federation)
{
	const char *cmd = federation ? "federation" : "roots";
	struct fg_ca_client c = { 0 };
	struct fg_err err = { 0 };
	char *bundle = NULL;
	struct args a;
	int ret;

	ret = parse(argc, argv, &a, 1);
	if (ret || (ret = need(cmd, a.ca_url, "--ca-url")) || (ret = need(cmd, a.root, "--root")))
		return ret;
	if (fg_ca_client_init(&c, a.ca_url, a.root, &err) ||
	    (federation ? fg_ca_federation(&c, &bundle, &err) : fg_ca_roots(&c, &bundle, &err)) ||
	    output(a.n_pos ? a.pos[0] : "-", bundle, 0644, &err)) {
		ret = failed(cmd, &err);
		goto out;
	}
	if (a.n_pos)
		fprintf(stderr, "The %s certificates have been saved in %s.\n",
			federation ? "federation" : "root", a.pos[0]);
out:
	free(bundle);
	fg_ca_client_exit(&c);
	return ret;
}

static int cmd_federation(int argc, char **argv)
{
	return bundle_cmd(argc, argv, 1);
}

static int cmd_roots(int argc, char **argv)
{
	return bundle_cmd(argc, argv, 0);
}

static int cmd_help(int argc, char **argv);

static const struct ca_cmd ca_cmds[] = {
	{ "init", cmd_init,
	  "init --name NAME --dir DIR [--password-file F] [--dns NAME]... [--address HOST:PORT]\n"
	  "                [--provisioner NAME]     make a root, an intermediate, a provisioner" },
	{ "serve", cmd_serve,
	  "serve CONFIG [--password-file F] [--address-file F]\n"
	  "                                         serve step-ca's HTTPS API" },
	{ "token", cmd_token,
	  "token SUBJECT [--san NAME]... --ca-url URL --root ROOT\n"
	  "                [--ca-config CONFIG | --key FILE] [--provisioner NAME]\n"
	  "                [--password-file F] [--lifetime DUR]\n"
	  "                                         print a one-time token" },
	{ "certificate", cmd_certificate,
	  "certificate SUBJECT CRT KEY (--token T | --token-file F) --ca-url URL --root ROOT\n"
	  "                [--san NAME]... [--not-before T] [--not-after T]\n"
	  "                                         enroll: new key, CSR, POST /sign" },
	{ "renew", cmd_renew,
	  "renew CRT KEY --ca-url URL --root ROOT [--out FILE] [--password-file F]\n"
	  "                                         POST /renew over mTLS" },
	{ "federation", cmd_federation,
	  "federation --ca-url URL --root ROOT [OUT.pem]\n"
	  "                                         save the federated roots" },
	{ "roots", cmd_roots,
	  "roots --ca-url URL --root ROOT [OUT.pem] save the CA's roots" },
	{ "help", cmd_help, "help" },
};

static int usage(const char *cmd)
{
	for (size_t i = 0; i < sizeof(ca_cmds) / sizeof(ca_cmds[0]); i++)
		if (!strcmp(cmd, ca_cmds[i].name))
			fprintf(stderr, "usage: fedgate ca %s\n", ca_cmds[i].usage);
	return EXIT_USAGE;
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("usage: fedgate ca COMMAND [ARGS]\n\n");
	for (size_t i = 0; i < sizeof(ca_cmds) / sizeof(ca_cmds[0]); i++)
		printf("  fedgate ca %s\n", ca_cmds[i].usage);
	return 0;
}

int fg_ca_main(int argc, char **argv)
{
	if (argc < 2) {
		cmd_help(argc, argv);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(ca_cmds) / sizeof(ca_cmds[0]); i++)
		if (!strcmp(argv[1], ca_cmds[i].name))
			return ca_cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "fedgate ca: unknown command \"%s\"; try \"fedgate ca help\"\n", argv[1]);
	return EXIT_USAGE;
}
