"""$.tunnels[].idle_timeout_s: the data plane closes a tunnel that moved no byte for that long.

The close is clean both ways: the TLS peer gets a close_notify then a FIN (its gateway
half-closes toward its application), the plaintext side a FIN; the gateway logs one line.
A tunnel that keeps moving bytes, however few, is never closed; without the setting, none is.
"""

import json
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import connect, gateway_config, pair_configs, wait_for
from test_config import assert_refused as assert_config_refused


def idle_pair(pki, gateways, upstream, term_idle=None, orig_idle=None, handler=None):
    up = upstream(handler)
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    if term_idle is not None:
        b_cfg["tunnels"][0]["idle_timeout_s"] = term_idle
    b = gateways("terminate", b_cfg)
    a_cfg = a_cfg(b.port("from-aws"))
    if orig_idle is not None:
        a_cfg["tunnels"][0]["idle_timeout_s"] = orig_idle
    a = gateways("originate", a_cfg)
    return a, b, up


def hello(s, msg=b"hello"):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(100)
        assert chunk, "tunnel closed early"
        got += chunk
    assert got == msg


def eof_after(s, timeout):
    """Seconds until @s reads EOF (a FIN, not a reset), reading nothing else."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    data = s.recv(100)
    assert data == b"", f"got {data!r} instead of EOF"
    return time.monotonic() - t0


def test_idle_tunnel_is_closed_with_close_notify_and_fin_both_ways(pki, gateways, upstream):
    """idle_timeout_s 2 on the terminate side: the app sees a FIN from its own gateway once
    the other one got the close_notify; the service sees a FIN; one log line each."""
    served = []

    def echo_then_note_eof(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        served.append(time.monotonic())

    a, b, up = idle_pair(pki, gateways, upstream, term_idle=2, handler=echo_then_note_eof)
    s = connect(a.port("to-gcp"))
    hello(s)
    t0 = time.monotonic()
    took = eof_after(s, 10)
    # Idle for 2 s means closed after 2 s at least and one tick (1 s) more at most; the rest
    # is the margin of a loaded 2-core test host.
    assert 2.0 <= took + 0.05 and took < 5.0, f"closed after {took:.2f} s"
    b.wait_log(r"tunnel from-aws: foo\.internal closed: idle for 2 s; 5 bytes to peer, "
               r"5 bytes from peer")
    wait_for(lambda: served, 5, "the service to see EOF")
    assert served[0] - t0 < 5.0
    # The originate side saw the close_notify, not a bare FIN; its tunnel ends once the app
    # closes its half too.
    s.close()
    a.wait_log(r"tunnel to-gcp: bar\.internal closed: 5 bytes to peer, 5 bytes from peer")
    assert "without close_notify" not in a.log(), a.log()


def test_idle_timeout_on_the_originate_side_closes_too(pki, gateways, upstream):
    a, b, up = idle_pair(pki, gateways, upstream, orig_idle=1)
    s = connect(a.port("to-gcp"))
    hello(s)
    took = eof_after(s, 10)
    assert 1.0 <= took + 0.05 and took < 4.0, f"closed after {took:.2f} s"
    a.wait_log(r"tunnel to-gcp: bar\.internal closed: idle for 1 s; 5 bytes to peer")
    b.wait_log(r"tunnel from-aws: foo\.internal closed: 5 bytes to peer, 5 bytes from peer")
    s.close()


def test_a_tunnel_trickling_a_byte_every_half_second_is_not_closed(pki, gateways, upstream):
    """idle_timeout_s 1 and a byte each way every 0.5 s for 4 s: never idle for 1 s, never
    closed; once the trickle stops it is closed."""
    a, b, up = idle_pair(pki, gateways, upstream, term_idle=1)
    s = connect(a.port("to-gcp"))
    for i in range(8):
        hello(s, b"%d" % i)
        time.sleep(0.5)
    assert "idle for" not in b.log(), b.log()
    took = eof_after(s, 10)
    assert took < 4.0
    b.wait_log(r"closed: idle for 1 s; 8 bytes to peer, 8 bytes from peer")
    s.close()


def test_one_way_traffic_keeps_a_tunnel_open(pki, gateways, upstream):
    """Bytes only toward the service (it never answers): still activity, never reaped."""
    got = []

    def sink(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                break
            got.append(data)

    a, b, up = idle_pair(pki, gateways, upstream, term_idle=1, handler=sink)
    s = connect(a.port("to-gcp"))
    for i in range(6):
        s.sendall(b"x")
        time.sleep(0.5)
    assert "idle for" not in b.log(), b.log()
    wait_for(lambda: len(b"".join(got)) == 6, 5, "the service to get 6 bytes")
    s.settimeout(10)
    assert s.recv(10) == b""
    b.wait_log(r"closed: idle for 1 s; 0 bytes to peer, 6 bytes from peer")
    s.close()


def test_without_idle_timeout_an_idle_tunnel_stays_open(pki, gateways, upstream):
    a, b, up = idle_pair(pki, gateways, upstream)
    s = connect(a.port("to-gcp"))
    hello(s)
    s.settimeout(3.5)
    with pytest.raises(socket.timeout):
        s.recv(100)
    hello(s, b"still here")
    assert "idle for" not in a.log() + b.log()
    s.close()


def test_idle_timeout_applies_per_tunnel_to_many_at_once(pki, gateways, upstream):
    """40 idle tunnels on one gateway all close within the bound; a busy one beside them
    stays open."""
    a, b, up = idle_pair(pki, gateways, upstream, term_idle=1)
    socks = [connect(a.port("to-gcp")) for _ in range(40)]
    for s in socks:
        hello(s)
    busy = connect(a.port("to-gcp"))
    stop = threading.Event()

    def keep_busy():
        i = 0
        while not stop.is_set():
            hello(busy, b"%d" % (i % 10))
            i += 1
            time.sleep(0.25)

    th = threading.Thread(target=keep_busy)
    th.start()
    try:
        for s in socks:
            assert eof_after(s, 10) < 6
        b.wait_log(r"closed: idle for 1 s", count=40)
        assert th.is_alive(), "the busy tunnel failed"
    finally:
        stop.set()
        th.join(5)
    hello(busy, b"alive")
    busy.close()
    for s in socks:
        s.close()


@pytest.mark.parametrize("value,words", [
    (-1, "must be between 0 and 2592000"),
    (2592001, "must be between 0 and 2592000"),
    (1.5, "expected an integer"),
    ("60", "expected an integer"),
])
def test_bad_idle_timeout_is_refused_naming_the_key(pki, tmp_path, value, words):
    cfg = gateway_config(pki, "bar", [
        {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
         "idle_timeout_s": value, "allow": [{"dns": "foo.internal"}]}])
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    assert_config_refused(p, "$.tunnels[0].idle_timeout_s", words)


def test_a_reader_that_stalls_counts_as_idle_and_its_tunnel_is_closed(pki, gateways, upstream):
    """The service sends while the app never reads: once every buffer on the way is full
    nothing moves, and the terminate side (idle_timeout_s 1) closes the tunnel. Its record
    toward the peer is stuck in flight, so it says FIN only; the app sees the stream end
    (a reset: the peer's gateway got a record cut short)."""
    blob = b"z" * (64 << 20)

    def flood(conn):
        conn.sendall(blob)

    a, b, up = idle_pair(pki, gateways, upstream, term_idle=1, handler=flood)
    s = connect(a.port("to-gcp"))
    s.sendall(b"go")
    b.wait_log(r"tunnel from-aws: foo\.internal closed: idle for 1 s \(a record was in flight: "
               r"FIN only\)", timeout=20)
    got = 0
    s.settimeout(10)
    try:
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            got += len(data)
    except ConnectionResetError:
        pass
    assert 0 < got < len(blob), got
    s.close()


def keepalive_timers(sport=None, dport=None):
    """Seconds left on each keepalive timer of the established sockets with that local or
    remote port (ss -o: "timer:(keepalive,59sec,0)"), and ss's output."""
    flt = f"sport = :{sport}" if sport else f"dport = :{dport}"
    r = subprocess.run(["ss", "-tnoH", "state", "established", flt], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r
    unit = {"ms": 0.001, "sec": 1, "min": 60}
    left = [float(v) * unit[u] for v, u in
            re.findall(r"timer:\(keepalive,(?:\d+min)?([\d.]+)(ms|sec|min)", r.stdout)]
    return left, r.stdout


def test_every_tunnel_socket_has_tcp_keepalive(pki, gateways, upstream):
    """Both sockets of a tunnel on both gateways: the TLS ones between the gateways and the
    plaintext ones (app -> originate, terminate -> service) run a keepalive timer, so a peer
    host that vanished is found though idle_timeout_s is off."""
    if not shutil.which("ss"):
        pytest.skip("needs ss (iproute2) to read the sockets' timers")
    a, b, up = idle_pair(pki, gateways, upstream)
    s = connect(a.port("to-gcp"))
    hello(s)
    for what, kw, n in (("app -> originate", dict(sport=a.port("to-gcp")), 1),
                        ("originate <-> terminate", dict(sport=b.port("from-aws")), 1),
                        ("originate <-> terminate", dict(dport=b.port("from-aws")), 1),
                        ("terminate -> service", dict(dport=up.port), 1)):
        # Until the peer's delayed ACK comes, ss shows the retransmit timer ("on") instead.
        deadline = time.monotonic() + 3
        left, out = keepalive_timers(**kw)
        while len(left) != n and time.monotonic() < deadline:
            time.sleep(0.05)
            left, out = keepalive_timers(**kw)
        assert len(left) == n, f"{what}: no keepalive timer\n{out}"
        # fedgate's first probe after 60 s of silence, not the kernel's default 2 hours
        assert all(x <= 60 for x in left), f"{what}: {left}\n{out}"
    s.close()
