// SPDX-License-Identifier: MIT
/* Runs an nft script through libnftables: the one place fedgate talks to nftables. */
#include <errno.h>
#include <string.h>
#include <nftables/libnftables.h>

#include "control/capture_nft.h"
#include "fedgate/err.h"

/* nft's error text is several lines (the message, the offending line, carets): keep the first. */
static void first_line(const char *text, char *out, size_t len)
{
	size_t n = strcspn(text, "\n");

	if (n >= len)
		n = len - 1;
	memcpy(out, text, n);
	out[n] = '\0';
}

int fg_nft_run(const char *script, struct fg_err *err)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	char why[512];
	int ret = 0;

	if (!nft)
		return fg_err_set(err, -ENOMEM, "nftables: cannot make a context");
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		ret = fg_err_set(err, -ENOMEM, "nftables: cannot buffer its output");
		goto free_ctx;
	}
	errno = 0;
	if (nft_run_cmd_from_buffer(nft, script)) {
		/*
		 * errno is the kernel's answer only where the kernel refused; nft
		 * leaves others there (EAGAIN after a syntax error). EPERM is the one
		 * a caller acts on; the text says the rest.
		 */
		ret = errno == EPERM || errno == EACCES ? -EPERM : -EINVAL;
		first_line(nft_ctx_get_error_buffer(nft), why, sizeof(why));
		fg_err_set(err, ret, "nftables: %s", why[0] ? why : strerror(-ret));
	}
free_ctx:
	nft_ctx_free(nft);
	return ret;
}
