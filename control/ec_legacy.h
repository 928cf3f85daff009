/* SPDX-License-Identifier: MIT */
#ifndef FEDGATE_EC_LEGACY_H
#define FEDGATE_EC_LEGACY_H

/*
 * tls.ec_legacy_decode: EC public keys of certificates decoded as OpenSSL
 * 1.1 did. OpenSSL 3.0 turns each certificate's public key into a key object
 * through its decoder framework (OSSL_DECODER_CTX_new_for_pkey() lists every
 * key manager and decoder of every provider, under locks, with allocations),
 * which is a quarter of a mutual handshake's CPU here: a peer sends two
 * certificates, each decoded again on every connection. Unless an ENGINE
 * claims the key type, when x509_pubkey_decode() takes the built-in EC
 * ASN.1 method instead (the same parse and on-curve check, no lookups).
 *
 * On, this registers a process-wide ENGINE that claims the EC key type and
 * hands back OpenSSL's own built-in EC key method (EVP_PKEY_meth_find()):
 * the keys decoded so (the peers' certificates and their CAs') verify
 * through OpenSSL's legacy EC code, ecdsa_verify over the same curve code
 * the provider uses. Keys made by providers (the gateway's own private key,
 * key exchange) are unaffected. Off unregisters it; keys decoded while it
 * was on keep working.
 *
 * Returns 0, or -ENOMEM (then nothing changed). Thread-safe.
 */
int fg_ec_legacy_set(int on);

/* Whether it is registered now: 1 or 0. */
int fg_ec_legacy_on(void);

#endif
