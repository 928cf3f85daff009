#!/usr/bin/python3
"""Where a handshake's CPU goes: perf samples, each put in the first category of CATS
that one of its frames names (leaf to root), per process role.

  perf script -i X.perf.data -F comm,pid,ip,sym | cat.py HANDSHAKES [--ms]

HANDSHAKES: connections completed while perf recorded; with it each row also says
samples per handshake; --ms turns a row into core-ms per handshake (needs -F FREQ: pass
FREQ as the env var PERF_FREQ).
"""

import collections
import os
import sys

# (category, frames that mark it): the first category whose frame is on the stack wins,
# so the specific come before the general.
CATS = [
    ("tls: peer chain verification (X509_verify_cert): ECDSA math",
     {"ossl_ecdsa_simple_verify_sig@X509_verify_cert"}),
    ("tls: peer chain verification (X509_verify_cert): the rest", {"X509_verify_cert"}),
    ("tls: peer CertificateVerify (ECDSA verify)", {"tls_process_cert_verify"}),
    ("tls: own CertificateVerify (ECDSA sign)", {"tls_construct_cert_verify"}),
    ("tls: peer certs parse: public key decoders (OSSL_DECODER)",
     {"x509_pubkey_ex_d2i_ex@tls_process_client_certificate",
      "x509_pubkey_ex_d2i_ex@tls_process_server_certificate"}),
    ("tls: peer certs parse: the rest of d2i_X509",
     {"tls_process_client_certificate", "tls_process_server_certificate"}),
    ("tls: X25519 keygen", {"ecx_gen", "ssl_generate_pkey", "ssl_generate_pkey_group"}),
    ("tls: X25519 derive + handshake secret", {"ssl_derive"}),
    ("tls: key schedule, Finished (HKDF, HMAC)",
     {"tls13_change_cipher_state", "tls13_final_finish_mac", "tls13_generate_master_secret",
      "tls13_setup_key_block", "tls13_update_key"}),
    ("tls: keylog lines (nss_keylog_int)", {"nss_keylog_int"}),
    ("tls: SSL_new/SSL_free", {"SSL_new", "ossl_ssl_connection_new", "SSL_free",
                               "ossl_ssl_connection_free", "SSL_clear"}),
    ("tls: ClientHello/ServerHello/extensions/records (rest of the state machine)",
     {"state_machine", "SSL_do_handshake", "SSL_write", "SSL_read", "ssl3_write_bytes"}),
    ("fedgate: peer identity (fg_tls_peer, roots, allow)",
     {"fg_tls_peer", "fg_tls_peer_of", "fg_roots_check", "fg_allow_check", "authorize"}),
    ("fedgate: proof kept for revalidation", {"gw_proof_new", "gw_proof_free"}),
    ("fedgate: keys export", {"fg_keys_export", "fg_tls13_traffic_keys"}),
    ("fedgate: handoff to the data plane (sendmsg, dpctl)",
     {"gw_conn_handoff", "gw_dpctl_handoff", "fg_dpctl_send", "dpctl_send"}),
    ("fedgate: connection free (close, SSL_free)", {"gw_conn_free"}),
    ("fedgate: accept, dial, epoll, timers",
     {"accept_one", "gw_conn_accept", "dial_peer", "dial_upstream", "peer_dialed",
      "upstream_dialed", "fg_sock_dial_with", "gw_conn_watch", "await_hello"}),
    ("nginx: connection setup/teardown", {"ngx_event_accept", "ngx_close_connection",
                                           "ngx_ssl_free_buffer", "ngx_stream_proxy_connect",
                                           "ngx_stream_init_connection"}),
    ("nginx: proxying bytes", {"ngx_stream_proxy_process", "ngx_ssl_recv", "ngx_ssl_write",
                               "ngx_ssl_send_chain"}),
]


def classify(frames, cats):
    syms = [f[1] for f in frames]
    for name, marks in cats:
        for m in marks:
            if "@" in m:
                inner, outer = m.split("@")
                if inner in syms and outer in syms[syms.index(inner):]:
                    return name
            elif m in syms:
                return name
    return None


def role(comm):
    if comm.startswith("fedgate-dp"):
        return "data plane"
    return "control" if not comm.startswith("nginx") else "nginx"


def main():
    n = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    ms = "--ms" in sys.argv
    freq = float(os.environ.get("PERF_FREQ", "2999"))
    counts = collections.Counter()
    total = 0
    cur = None
    frames = []

    def flush():
        nonlocal total
        if cur is None:
            return
        total += 1
        r = role(cur)
        kernel = frames and frames[0][0].startswith("ffffffff")
        c = classify(frames, CATS)
        if r == "data plane":
            c = "data plane: " + ("kernel" if kernel else "user")
        elif c is None:
            top = next((f[1] for f in frames if not f[0].startswith("ffffffff")), "?")
            c = "other: " + ("kernel (syscalls, softirq)" if kernel else f"user ({top})")
        elif kernel:
            c += " [kernel]"
        counts[(r, c)] += 1

    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            cur, frames = None, []
        elif not line.startswith("\t") and not line.startswith(" " * 4):
            flush()
            cur, frames = line.split()[0], []
        else:
            parts = line.strip().split(None, 1)
            frames.append((parts[0], parts[1].split("+")[0] if len(parts) > 1 else "?"))
    flush()
    unit = "core-ms/hs" if ms else "samples/hs"
    print(f"| role | where | % | {unit} |\n|---|---|---|---|")
    others = collections.Counter()
    for (r, c), k in counts.most_common():
        if c.startswith("other: user (") and k / total < 0.005:
            others[r] += k
            continue
        v = k / n * (1000.0 / freq if ms else 1)
        print(f"| {r} | {c} | {100.0 * k / total:.1f} | {v:.3f} |")
    for r, k in others.items():
        v = k / n * (1000.0 / freq if ms else 1)
        print(f"| {r} | other: user (each < 0.5%) | {100.0 * k / total:.1f} | {v:.3f} |")
    print(f"| all | {total} samples | 100 | {total / n * (1000.0 / freq if ms else 1):.3f} |")


if __name__ == "__main__":
    main()
