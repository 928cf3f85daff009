/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_CAPTURE_NFT_H
#define FEDGATE_CAPTURE_NFT_H

#include "fedgate/err-t.h"

/*
 * Runs nft @script (one transaction: all of it or none) in this network
 * namespace. Returns 0, or -EPERM (without CAP_NET_ADMIN) or -EINVAL (nft or
 * the kernel rejected the script; -ENOMEM for no context), with nft's first
 * error line in @err.
 */
int fg_nft_run(const char *script, struct fg_err *err);

#endif
