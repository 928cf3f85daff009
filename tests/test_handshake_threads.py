"""Handshakes on threads (tls.handshake_threads, control/hs_thread.c).

Many handshakes at once on two handshake threads, good ones and failing ones mixed (a
certificate from a root outside the bundle, no certificate, a client that stalls until the
deadline, a client that closes or resets mid-handshake): every one gets its own outcome,
the right refusal line, and afterwards the gateway holds what it held before (its fds, no
handshake in progress, no tunnel). Admission sheds connections a thread owns; SIGTERM with
handshakes on the threads stops cleanly; an originate/terminate pair carries bytes exactly.
Bounded: about 200 connections, each wait at most a few seconds.
"""

import concurrent.futures
import os
import re
import signal
import socket
import ssl
import struct
import time
import urllib.request

import pytest

from conftest import (client_ctx, count_refusals, gateway_config, pair_configs, recv_all,
                      wait_for)

THREADS = 2
TIMEOUT_MS = 1500
N_GOOD, N_ROGUE, N_NOCERT, N_STALL, N_CLOSE, N_RESET = 60, 20, 15, 10, 15, 10


def metrics(gw):
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.port('@admin')}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(fedgate_\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def open_fds(gw):
    return len(os.listdir(f"/proc/{gw.proc.pid}/fd"))


def settled(gw, base_fds):
    """Nothing in progress, no tunnel open, the control process back to @base_fds fds."""
    m = metrics(gw)
    return (m.get("fedgate_handshakes_in_progress") == 0 and
            sum(v for k, v in m.items() if k.startswith("fedgate_tunnels_open")) == 0 and
            open_fds(gw) == base_fds)


@pytest.fixture
def threaded(pki, gateways, upstream):
    """make(**tls) -> (gw, up): a terminate tunnel "t" on THREADS handshake threads."""
    def make(limits=None, **tls):
        up = upstream()
        cfg = gateway_config(pki, "bar", [
            {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
             "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
        cfg["tls"] = {"handshake_threads": THREADS, "handshake_timeout_ms": TIMEOUT_MS} | tls
        cfg["admin"] = {"listen": "127.0.0.1:0"}
        if limits:
            cfg["limits"] = limits
        gw = gateways("threaded", cfg)
        gw.wait_log(rf"handshakes on {tls.get('handshake_threads', THREADS)} thread\(s\)")
        return gw, up
    return make


def nocert_ctx(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(pki["federated"])
    return ctx


def exchange(ctx, port, payload):
    """A whole handshake then @payload echoed: the bytes back, or the error's class name."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
            with ctx.wrap_socket(raw, server_hostname="bar.internal") as s:
                s.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    data = s.recv(65536)
                    if not data:
                        break
                    got += data
                return got
    except (ssl.SSLError, OSError) as e:
        return type(e).__name__


def client_hello(pki):
    """A real ClientHello (foo's context) as bytes, from a client that will never go on."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(pki).wrap_bio(inc, out, server_hostname="bar.internal")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def half_handshake(pki, port):
    """A socket whose ClientHello the gateway answered: its handshake now waits on us."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(client_hello(pki))
    assert s.recv(5)[:1] == b"\x16", "no ServerHello"
    return s


def test_many_concurrent_handshakes_each_get_their_outcome_and_nothing_leaks(pki, threaded):
    gw, up = threaded()
    port = gw.port("t")
    assert exchange(client_ctx(pki), port, b"warm") == b"warm"
    wait_for(lambda: settled(gw, open_fds(gw)), 10, "the warm-up connection's end")
    base_fds = open_fds(gw)
    good_ctx, rogue_ctx, no_ctx = client_ctx(pki), client_ctx(pki, "rogue"), nocert_ctx(pki)
    payloads = [os.urandom(1000 + 37 * i) for i in range(N_GOOD)]

    def stall():
        s = half_handshake(pki, port)
        try:
            # Refused at its deadline: the gateway closes it, nothing else comes.
            s.settimeout(TIMEOUT_MS / 1000 + 10)
            t0 = time.monotonic()
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            return time.monotonic() - t0
        finally:
            s.close()

    def close_mid(reset):
        s = half_handshake(pki, port)
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return "closed"

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as ex:
        stalls = [ex.submit(stall) for _ in range(N_STALL)]
        goods = [ex.submit(exchange, good_ctx, port, p) for p in payloads]
        rogues = [ex.submit(exchange, rogue_ctx, port, b"x" * 64) for _ in range(N_ROGUE)]
        nocerts = [ex.submit(exchange, no_ctx, port, b"y" * 64) for _ in range(N_NOCERT)]
        closes = [ex.submit(close_mid, i % 2 == 1) for i in range(N_CLOSE + N_RESET)]
        for f, p in zip(goods, payloads):
            assert f.result(timeout=60) == p, "a good client's bytes did not come back exactly"
        for f in rogues + nocerts:
            # TLS 1.3: the client may finish before the gateway's verdict: then the alert or
            # the close comes on the first read; never an echo.
            r = f.result(timeout=60)
            assert r != b"x" * 64 and r != b"y" * 64, f"a refused client got an echo: {r!r}"
        for f in closes:
            assert f.result(timeout=60) == "closed"
        for f in stalls:
            waited = f.result(timeout=60)
            assert waited < TIMEOUT_MS / 1000 + 5, f"a stalled client waited {waited:.1f} s"

    def count(rx):
        return len(re.findall(rx, gw.log(), re.M))
    rogue_rx = r"refused foo\.internal .*claimed root 'Rogue Root CA'.* on tunnel t: certificate " \
               r"verification failed at depth 1"
    nocert_rx = r"on tunnel t: TLS handshake failed: .*peer did not return a certificate"
    stall_rx = rf"on tunnel t: handshake timed out after {TIMEOUT_MS} ms"
    close_rx = r"on tunnel t: (connection closed during the TLS handshake|TLS handshake " \
               r"failed: .*unexpected eof)"
    wait_for(lambda: count(stall_rx) == N_STALL, 10, f"{N_STALL} timeouts:\n{gw.log()}")
    wait_for(lambda: count(close_rx) == N_CLOSE + N_RESET, 10, f"the closes:\n{gw.log()}")
    # No refusal went without its line (under 100 a second), each exactly its count.
    assert count_refusals(gw.log(), r"^.*refused ") == \
        N_ROGUE + N_NOCERT + N_STALL + N_CLOSE + N_RESET, gw.log()
    assert count(rogue_rx) == N_ROGUE, gw.log()
    assert count(nocert_rx) == N_NOCERT, gw.log()
    assert up.accepted == N_GOOD + 1, "a refused client reached the upstream"
    wait_for(lambda: settled(gw, base_fds), 15,
             f"the gateway back to {base_fds} fds, nothing in progress: {open_fds(gw)} fds, "
             f"{metrics(gw).get('fedgate_handshakes_in_progress')} in progress")


def test_admission_sheds_handshakes_a_thread_owns(pki, threaded):
    cap = 8
    gw, _ = threaded(limits={"handshakes": cap, "handshakes_per_source": cap},
                     handshake_timeout_ms=30000)
    port = gw.port("t")
    assert exchange(client_ctx(pki), port, b"warm") == b"warm"
    wait_for(lambda: settled(gw, open_fds(gw)), 10, "the warm-up connection's end")
    base_fds = open_fds(gw)
    held = []
    try:
        for _ in range(3 * cap):
            held.append(half_handshake(pki, port))
        # The oldest are shed (reset) for each newcomer over the cap; the newest stay.
        wait_for(lambda: metrics(gw).get("fedgate_handshakes_in_progress") == cap, 10,
                 f"{cap} handshakes left in progress")
        for s in held[:2 * cap]:
            s.settimeout(5)
            try:
                rest = recv_all(s)
            except ConnectionResetError:
                rest = b""
            assert not rest.endswith(b"ping"), "a shed connection went on"
        for s in held[2 * cap:]:
            # Still open, still waiting on us: the rest of its flight, then nothing, no EOF.
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                while True:
                    assert s.recv(65536) != b"", "a connection under the cap was closed"
        assert metrics(gw).get('fedgate_limit_hits_total{limit="handshakes_per_source"}',
                               0) + metrics(gw).get(
                                   'fedgate_limit_hits_total{limit="handshakes"}', 0) \
            == 2 * cap
        # A real client is admitted all the same (shedding one more of the stalled ones).
        assert exchange(client_ctx(pki), port, b"ping") == b"ping"
    finally:
        for s in held:
            s.close()
    wait_for(lambda: settled(gw, base_fds), 15,
             f"back to {base_fds} fds and nothing in progress, now {open_fds(gw)}")


def test_sigterm_with_handshakes_on_the_threads_stops_cleanly(pki, threaded):
    gw, _ = threaded(handshake_timeout_ms=30000)
    held = [half_handshake(pki, gw.port("t")) for _ in range(12)]
    try:
        wait_for(lambda: metrics(gw).get("fedgate_handshakes_in_progress") == 12, 10,
                 "12 handshakes in progress")
        gw.proc.send_signal(signal.SIGTERM)
        gw.proc.wait(timeout=15)
        assert gw.proc.returncode == 0, gw.log()
        assert "SIGTERM: listeners closed, 12 handshake(s) in progress dropped" in gw.log()
    finally:
        for s in held:
            s.close()


def test_a_pair_on_threads_carries_bytes_exactly(pki, gateways, upstream):
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b_cfg["tls"] = {"handshake_threads": THREADS}
    b = gateways("terminate", b_cfg)
    a_cfg = a_cfg(b.port("from-aws"))
    a_cfg["tls"] = {"handshake_threads": THREADS}
    a = gateways("originate", a_cfg)
    for g in (a, b):
        g.wait_log(rf"handshakes on {THREADS} thread\(s\)")
    payloads = [os.urandom(5000 + 101 * i) for i in range(40)]

    def one(p):
        with socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=15) as s:
            s.sendall(p)
            s.shutdown(socket.SHUT_WR)
            return recv_all(s)

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
        for got, p in zip(ex.map(one, payloads), payloads):
            assert got == p


@pytest.mark.parametrize("value,line", [
    (0, r"handshakes on the control loop's thread \(tls.handshake_threads 0\)"),
    (1, r"handshakes on 1 thread\(s\)"),
    (None, rf"handshakes on {len(os.sched_getaffinity(0))} thread\(s\)"),
])
def test_the_thread_count_is_what_the_config_says(pki, gateways, upstream, value, line):
    up = upstream()
    cfg = gateway_config(pki, "bar", [
        {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    if value is not None:
        cfg["tls"] = {"handshake_threads": value}
    gw = gateways("count", cfg)
    if value is None and os.environ.get("FEDGATE_HANDSHAKE_THREADS") is not None:
        line = rf"handshakes on {os.environ['FEDGATE_HANDSHAKE_THREADS']} thread\(s\)"
        if os.environ["FEDGATE_HANDSHAKE_THREADS"] == "0":
            line = r"handshakes on the control loop's thread"
    gw.wait_log(line)
    assert exchange(client_ctx(pki), gw.port("t"), b"hello") == b"hello"
    if value:
        task = f"/proc/{gw.proc.pid}/task"
        names = [open(f"{task}/{t}/comm").read().strip() for t in os.listdir(task)]
        assert names.count("fg-handshake") == value, names
