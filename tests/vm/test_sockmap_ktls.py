"""BPF sockmap with kernel TLS, inside Debian's kernel (tests/vm/run); see bpf/README.md.

tests/vm/suite runs it in its first pass. Alone:
  tests/vm/run -- /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/vm/test_sockmap_ktls.py

Debian 6.1.190 and later carry "tls: reject the combination of TLS and sockmap"
(CVE-2026-93824): a socket in a sockmap cannot get TLS_TX/TLS_RX and a socket with the TLS
ULP cannot join a sockmap. This pins down how the kernel refuses, with the probe
tests/vm/ktls_sockmap_probe.c (build/tests/ktls_sockmap_probe); a kernel that allows the
combination again is a loud SKIP that says so (bpf/README.md then needs a new record).
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

PROBE = os.path.join(UNIT_DIR, "ktls_sockmap_probe")


def test_ktls_and_sockmap_are_refused_both_ways_round():
    assert os.access(PROBE, os.X_OK), f"{PROBE} missing: build it with make test"
    r = subprocess.run([PROBE], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and out.rstrip().endswith("OK"), out
    # The map itself takes a socket: what follows is about TLS, not a broken map.
    assert re.search(r"^plain_socket: sockmap_add=ok$", out, re.M), out
    m = re.search(r"^map_then_ulp: sockmap_add=(\S+) TCP_ULP=(\S+) TLS_TX=(.*) TLS_RX=(.*)$", out,
                  re.M)
    assert m and m.group(1) == "ok" and m.group(2) == "ok", out
    if m.group(3) == "ok":
        pytest.skip(f"SKIP: kernel {platform.release()} allows kTLS on a socket in a sockmap "
                    f"again: bpf/README.md's refusal no longer holds here:\n{out}")
    # EINVAL both ways round, which the data plane can tell from a bad key.
    assert m.group(3) == m.group(4) == "Invalid argument", out
    # Out of a program-less map the socket gets its keys (6.1.0-57; the experiments' map, with
    # programs, had left ENOPROTOOPT: bpf/README.md).
    m = re.search(r"^map_then_ulp: after removal from the map: TLS_TX=(.*)$", out, re.M)
    assert m and m.group(1) == "ok", out
    assert re.search(r"^ulp_then_map: TCP_ULP=ok TLS_TX=ok sockmap_add=Invalid argument$", out,
                     re.M), out
    assert re.search(r"^ulp_no_keys_then_map: TCP_ULP=ok sockmap_add=Invalid argument$", out,
                     re.M), out
