"""BPF sockmap with kernel TLS, inside Debian's kernel (tests/vm/run); see bpf/README.md.

tests/vm/suite runs it in its first pass. Alone:
  tests/vm/run -- /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/vm/test_sockmap_ktls.py

Debian 6.1.190 and later carry "tls: reject the combination of TLS and sockmap"
(CVE-2026-93824): a socket in a sockmap cannot get TLS_TX/TLS_RX and a socket with the TLS
ULP cannot join a sockmap. Where the kernel refuses, the kTLS paths are a loud SKIP that says
so, and test_ktls_and_sockmap_are_refused_consistently pins down how it refuses.
"""

import os
import platform
import re
import subprocess

import pytest

from conftest import IN_VM, UNIT_DIR

if not IN_VM:
    pytest.skip("needs kernel TLS: run inside Debian's kernel with tests/vm/run",
                allow_module_level=True)

CHECK = os.path.join(UNIT_DIR, "sockmap_check")
PAYLOAD = 4 << 20


def run(*args, ok=True, timeout=300):
    assert os.access(CHECK, os.X_OK), f"{CHECK} missing: build it with make"
    r = subprocess.run([CHECK, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    if ok:
        assert r.returncode == 0 and out.rstrip().endswith("OK"), out
    return out


def counters(out):
    line = re.search(r"^counters: (.*)$", out, re.M).group(1)
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}


@pytest.fixture(scope="module")
def order():
    out = run("ktls-order")
    m = re.search(r"^map_then_ulp: sockmap_add=(\S+) TCP_ULP=(\S+) TLS_TX=(.*) TLS_RX=(.*)$", out,
                  re.M)
    assert m, out
    return {"add": m.group(1), "tx": m.group(3), "rx": m.group(4), "out": out}


def needs_combination(order):
    if order["tx"] != "ok":
        pytest.skip(f"SKIP: kernel {platform.release()} refuses kTLS on a socket in a sockmap "
                    f"(TLS_TX: {order['tx']}; CVE-2026-93824): this path cannot exist here")


def test_ktls_and_sockmap_are_refused_consistently(order):
    out = order["out"]
    assert order["add"] == "ok", out
    if order["tx"] == "ok":
        assert order["rx"] == "ok", out
        return
    # Refused both ways round with EINVAL, which the data plane can tell from a bad key.
    assert order["tx"] == order["rx"] == "Invalid argument", out
    assert re.search(r"^ulp_then_map: TCP_ULP=ok TLS_TX=ok sockmap_add=Invalid argument$", out,
                     re.M), out
    assert re.search(r"^ulp_no_keys_then_map: TCP_ULP=ok sockmap_add=Invalid argument$", out,
                     re.M), out


def test_plaintext_redirect_works_on_this_kernel():
    out = run("plain", PAYLOAD)
    c = counters(out)
    assert c["up_bytes"] == c["up_sealed"] == PAYLOAD, c
    assert c["down_bytes"] == c["down_sent"] == PAYLOAD, c
    assert "map_entries_after=0" in out


def test_plaintext_tunnel_removed_mid_transfer_leaves_no_entry():
    out = run("plain-remove", 4 * PAYLOAD)
    assert out.count("map_entries_after=0") == 2, out


def tls_stat(name):
    with open("/proc/net/tls_stat") as f:
        return dict(line.split() for line in f)[name]


def test_a_plaintext_ingress_leaves_encrypted_through_ktls_egress(order):
    needs_combination(order)
    out = run("ktls-up", PAYLOAD)
    c = counters(out)
    assert c["up_bytes"] == PAYLOAD and c["up_sealed"] == PAYLOAD + 2, c
    # The peer opened every record itself with the key: the kernel sealed them.
    assert re.search(rf"plaintext_bytes={PAYLOAD} last_type=21 alert=1,0", out), out


def test_b_ktls_decrypted_records_reach_the_plaintext_socket_byte_exact(order):
    needs_combination(order)
    out = run("ktls-down", PAYLOAD)
    c = counters(out)
    assert c["down_bytes"] == c["down_sent"] == PAYLOAD, c
    assert c["passed"] == 1, c  # close_notify, to userspace
    assert f"down_bytes={PAYLOAD}\n" in out


def test_c_non_data_records_still_reach_userspace(order):
    needs_combination(order)
    out = run("ktls-alert")
    assert counters(out)["passed"] == 3, out
