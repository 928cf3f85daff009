"""Idle tunnels cost the data plane little memory: buffers are held only while bytes move."""

import re
import subprocess

import pytest

from conftest import FEDGATE, connect

# ASan's redzones and its quarantine of freed memory make RSS say nothing about fedgate.
SANITIZED = "libasan" in subprocess.run(["ldd", FEDGATE], capture_output=True, text=True).stdout

N_IDLE = 300


def dataplane_rss_kib(gw):
    pid = int(re.search(r"data plane pid (\d+)", gw.log()).group(1))
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


@pytest.mark.skipif(SANITIZED, reason="RSS is meaningless under ASan (make test without "
                    "SANITIZE=1 measures it)")
@pytest.mark.parametrize("cipher", ["AES-128-GCM", "CHACHA20-POLY1305"])
def test_idle_tunnels_hold_no_buffers(tunnel_pair, cipher):
    a, b, up = tunnel_pair(cipher)
    # Warm up: the pool and the allocator reach their working size.
    for _ in range(4):
        with connect(a.port("to-gcp")) as s:
            s.sendall(b"warm")
            assert s.recv(16) == b"warm"
    base = {gw.name: dataplane_rss_kib(gw) for gw in (a, b)}
    socks = []
    try:
        for i in range(N_IDLE):
            s = connect(a.port("to-gcp"))
            socks.append(s)
            msg = b"%05d" % i
            s.sendall(msg)  # bytes moved both ways: each direction held a chunk once
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(16)
                assert chunk, f"tunnel {i} closed"
                got += chunk
            assert got == msg
        for gw in (a, b):
            per_tunnel = (dataplane_rss_kib(gw) - base[gw.name]) / N_IDLE
            print(f"{gw.name} {cipher}: {per_tunnel:.2f} KiB per idle tunnel")
            # A 66 KiB chunk or a ~1 KiB cipher context held per idle tunnel would show here.
            assert per_tunnel < 2, f"{gw.name}: {per_tunnel:.1f} KiB per idle tunnel"
    finally:
        for s in socks:
            s.close()
