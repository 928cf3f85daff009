"""The sockmap + kernel TLS probe (tests/vm/ktls_sockmap_probe.c) on the host kernel.

What it records, the kernel's refusal of kTLS on sockmap sockets, needs kernel TLS and is
tests/vm/test_sockmap_ktls.py's (bpf/README.md). Here: the probe builds, its sockmap takes a
plain socket, and a kernel without kTLS gets the clear "no kTLS" answer, not a failure.
"""

import os
import re
import subprocess

import pytest

from conftest import UNIT_DIR

PROBE = os.path.join(UNIT_DIR, "ktls_sockmap_probe")


def test_probe_runs_on_this_kernel():
    assert os.access(PROBE, os.X_OK), f"{PROBE} missing: build it with make test"
    r = subprocess.run([PROBE], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    if r.returncode == 1 and "BPF not permitted" in out:
        pytest.skip(f"SKIP: BPF maps not permitted here: {out}")
    assert re.search(r"^plain_socket: sockmap_add=ok$", out, re.M), out
    if r.returncode == 3:
        assert re.search(r"^no kTLS: TCP_ULP tls: ", out, re.M), out
        return
    assert r.returncode == 0 and out.rstrip().endswith("OK"), out
    assert re.search(r"^ulp_no_keys_then_map: TCP_ULP=ok sockmap_add=", out, re.M), out
