"""The BPF sockmap programs (bpf/redirect.bpf.c) on the host kernel: they load, and a
plaintext-to-plaintext tunnel redirects through the sockmap byte-exact.

The fixture is build/.../tests/sockmap_check (bpf/experiments/sockmap_check.c). The host
kernel has no kTLS; the kTLS paths are in tests/vm/test_sockmap_ktls.py. BPF not being
permitted is a failure, never a skip: the data plane needs it at start.
"""

import os
import re
import subprocess

from conftest import BIG, UNIT_DIR

CHECK = os.path.join(UNIT_DIR, "sockmap_check")


def run(*args, timeout=300):
    assert os.access(CHECK, os.X_OK), f"{CHECK} missing: build it with make"
    r = subprocess.run([CHECK, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and out.rstrip().endswith("OK"), out
    return out


def counters(out):
    line = re.search(r"^counters: (.*)$", out, re.M).group(1)
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}


def test_sockmap_programs_load_and_attach():
    run("load")


def test_plaintext_redirect_moves_big_payload_byte_exact_both_ways_at_once():
    out = run("plain", BIG)
    assert f"up_bytes={BIG}\n" in out and f"down_bytes={BIG}\n" in out, out
    c = counters(out)
    # Every byte went through the verdict and was taken in by the other socket.
    assert c["up_bytes"] == c["up_sealed"] == BIG, c
    assert c["down_bytes"] == c["down_sent"] == BIG, c
    assert c["dropped"] == 0 and c["unarmed"] == 0 and c["passed"] == 0, c
    assert "map_entries_after=0" in out


def test_removing_a_tunnel_mid_transfer_and_closing_leaves_no_map_entry():
    out = run("plain-remove", BIG)
    m = re.search(r"removed_at_up_bytes=(\d+) map_entries_before=(\d+)", out)
    assert m and 0 < int(m.group(1)) < BIG and m.group(2) == "2", out
    # Once after remove + close, once after close alone.
    assert out.count("map_entries_after=0") == 2, out
