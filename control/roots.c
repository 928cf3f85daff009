// SPDX-License-Identifier: MIT
/*
 * Per-root name constraints: which identities each trust anchor may vouch
 * for. A federated bundle merges roots; without this, any root could issue a
 * certificate for any name and it would chain.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "control/allow.h"
#include "control/roots.h"
#include "fedgate/x509name.h"

static int any_match(char *const *pats, size_t n, const char *s, enum fg_pattern_kind kind)
{
	for (size_t i = 0; i < n; i++)
		if (fg_pattern_match(pats[i], s, kind))
			return 1;
	return 0;
}

static int cn_is_a_san(const struct fg_peer_id *peer)
{
	for (size_t i = 0; i < peer->n_dns; i++)
		if (!strcasecmp(peer->dns[i], peer->cn))
			return 1;
	for (size_t i = 0; i < peer->n_uri; i++)
		if (!strcmp(peer->uri[i], peer->cn))
			return 1;
	return 0;
}

int fg_roots_check(const struct fg_root_rule *rules, size_t n, X509 *root,
		   const struct fg_peer_id *peer, char *why, size_t why_len)
{
	const struct fg_root_rule *r = NULL;
	char cn[FG_PEER_NAME_MAX], fp[FG_X509_SHA256_HEX] = "", label[FG_PEER_NAME_MAX + 32];
	int cn_err;
	size_t i;

	if (!n)
		return 0;
	cn_err = fg_x509_cn(X509_get_subject_name(root), cn, sizeof(cn));
	if (fg_x509_sha256(root, fp)) {
		snprintf(why, why_len, "cannot fingerprint the root");
		return -EACCES;
	}
	/* A CN that cannot be read could be the one a rule names: deny, never skip the rule. */
	for (i = 0; i < n && cn_err == -EINVAL; i++)
		if (rules[i].cn) {
			snprintf(why, why_len,
				 "the root's CN cannot be read as UTF-8 (sha256 %s), so $.roots[] "
				 "rules that name roots by CN cannot be applied",
				 fp);
			return -EACCES;
		}
	for (i = 0; i < n && !r; i++)
		if ((!rules[i].cn || !strcmp(rules[i].cn, cn)) &&
		    (!rules[i].sha256 || !strcmp(rules[i].sha256, fp)))
			r = &rules[i];
	if (!r)
		return 0;
	snprintf(label, sizeof(label), "root '%s' (roots[%zu])", cn, (size_t)(r - rules));
	if (peer->dropped_sans) {
		snprintf(why, why_len, "%s: %zu SAN(s) could not be checked against its namespace",
			 label, peer->dropped_sans);
		return -EACCES;
	}
	if (peer->other_sans) {
		snprintf(why, why_len,
			 "%s: the certificate carries %zu SAN(s) of a type (IP, email, "
			 "otherName...) the rule cannot constrain",
			 label, peer->other_sans);
		return -EACCES;
	}
	if (!peer->n_dns && !peer->n_uri) {
		snprintf(why, why_len,
			 "%s vouches only for names, and the certificate has no DNS "
			 "or URI SAN",
			 label);
		return -EACCES;
	}
	for (i = 0; i < peer->n_dns; i++)
		if (!any_match(r->dns, r->n_dns, peer->dns[i], FG_PATTERN_DNS)) {
			snprintf(why, why_len,
				 "%s may not vouch for dns:%s (outside its namespace)", label,
				 peer->dns[i]);
			return -EACCES;
		}
	for (i = 0; i < peer->n_uri; i++)
		if (!any_match(r->uri, r->n_uri, peer->uri[i], FG_PATTERN_URI)) {
			snprintf(why, why_len,
				 "%s may not vouch for uri:%s (outside its namespace)", label,
				 peer->uri[i]);
			return -EACCES;
		}
	if (r->n_leaf_cn && !any_match(r->leaf_cn, r->n_leaf_cn, peer->cn, FG_PATTERN_CN)) {
		snprintf(why, why_len, "%s may not vouch for CN '%s' (outside its namespace)",
			 label, peer->cn);
		return -EACCES;
	}
	/*
	 * Without leaf_cn the CN is constrained through the SANs: it must be one
	 * of them (which were checked above), else allow rules on "cn" would
	 * admit any name this root cared to write there.
	 */
	if (!r->n_leaf_cn && peer->cn[0] && !cn_is_a_san(peer)) {
		snprintf(why, why_len,
			 "%s may not vouch for CN '%s': without \"leaf_cn\" the CN must be "
			 "one of the certificate's DNS or URI SANs",
			 label, peer->cn);
		return -EACCES;
	}
	return 0;
}

static int refers_by_cn(const struct fg_config *cfg)
{
	for (size_t i = 0; i < cfg->n_root_rules; i++)
		if (cfg->root_rules[i].cn)
			return 1;
	for (size_t t = 0; t < cfg->n_tunnels; t++)
		for (size_t i = 0; i < cfg->tunnels[t].n_allow; i++) {
			const char *root = cfg->tunnels[t].allow[i].root;

			if (root && strncmp(root, FG_ROOT_SHA256_PREFIX,
					    sizeof(FG_ROOT_SHA256_PREFIX) - 1))
				return 1;
		}
	return 0;
}

int fg_roots_unique_cns(const struct fg_config *cfg, STACK_OF(X509) * roots, char *why,
			size_t why_len)
{
	char cn_a[FG_PEER_NAME_MAX], cn_b[FG_PEER_NAME_MAX];
	char fp_a[FG_X509_SHA256_HEX], fp_b[FG_X509_SHA256_HEX];

	if (!refers_by_cn(cfg))
		return 0;
	for (int i = 0; i < sk_X509_num(roots); i++) {
		X509 *a = sk_X509_value(roots, i);
		int err = fg_x509_cn(X509_get_subject_name(a), cn_a, sizeof(cn_a));

		if (err == -EINVAL) {
			if (fg_x509_sha256(a, fp_a))
				snprintf(fp_a, sizeof(fp_a), "?");
			snprintf(why, why_len,
				 "a root's CN cannot be read as UTF-8 (sha256 %s): rules that name "
				 "roots by CN ($.roots[].cn, allow[].root) cannot be applied to it; "
				 "name roots by fingerprint or remove it",
				 fp_a);
			return -EINVAL;
		}
		if (err)
			continue;
		for (int k = i + 1; k < sk_X509_num(roots); k++) {
			X509 *b = sk_X509_value(roots, k);

			if (fg_x509_cn(X509_get_subject_name(b), cn_b, sizeof(cn_b)) ||
			    strcmp(cn_a, cn_b) || !X509_cmp(a, b))
				continue;
			if (fg_x509_sha256(a, fp_a))
				snprintf(fp_a, sizeof(fp_a), "?");
			if (fg_x509_sha256(b, fp_b))
				snprintf(fp_b, sizeof(fp_b), "?");
			snprintf(why, why_len,
				 "two different roots are named '%s' (sha256 %s and %s): rules "
				 "that name roots by CN ($.roots[].cn, allow[].root) cannot tell "
				 "them apart; name them by fingerprint (\"sha256\", "
				 "\"sha256:HEX\") or remove one",
				 cn_a, fp_a, fp_b);
			return -EEXIST;
		}
	}
	return 0;
}
