"""$.limits: unauthenticated connections are capped, the oldest shed, real clients get in.

Issue 14: nothing capped pending handshakes, so silent sockets from one address could hold
the gateway's room until their deadlines. Now terminate tunnels hold at most
limits.handshakes pending connections, at most limits.handshakes_per_source from one
address; at a cap the oldest silent one (then the oldest handshaking one) is closed with a
reset for the newcomer, logged once a second with a count. Tunnels already established
live in the data plane and are never touched.
"""

import json
import os
import re
import signal
import socket
import ssl
import time

import pytest

from conftest import client_ctx, gateway_config, wait_for
from test_config import assert_refused, base_config, write_config

SHED_RX = r"shed (\d+) unauthenticated connection\(s\), oldest first, since the last such " \
          r"line: {}"


def real_client(pki, port, src="127.0.0.1"):
    """An mTLS handshake from @src and one echoed line; what came back, or the error."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    try:
        s = client_ctx(pki).wrap_socket(raw, server_hostname="bar.internal")
        s.sendall(b"ping\n")
        return s.recv(100)
    except (ssl.SSLError, OSError) as e:
        return e
    finally:
        raw.close()


def silent(port, n, src="127.0.0.1", first=b""):
    """@n connections from @src that send @first (nothing by default) and then nothing."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
        if first:
            s.sendall(first)
        socks.append(s)
    return socks


def closed_by_peer(s):
    """The gateway closed @s (an alert it sent before that is read and dropped)."""
    s.setblocking(False)
    try:
        while s.recv(4096):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def n_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def shed_total(gw, what):
    return sum(int(n) for n in re.findall(SHED_RX.format(what), gw.log()))


def close_all(socks):
    for s in socks:
        s.close()


@pytest.fixture
def capped(pki, gateways, upstream):
    """capped(limits) -> a terminate gateway with those $.limits and a 60 s deadline."""
    def start(limits):
        up = upstream()
        cfg = gateway_config(pki, "bar", [
            {"name": "capped", "mode": "terminate", "listen": "127.0.0.1:0",
             "upstream": up.addr, "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
        cfg["tls"] = {"handshake_timeout_ms": 60000}
        cfg["limits"] = limits
        return gateways("terminate", cfg)
    return start


def test_global_cap_sheds_the_oldest_silent_sockets_with_one_counted_line(pki, capped):
    gw = capped({"handshakes": 40, "handshakes_per_source": 40})
    port, pid = gw.port("capped"), gw.proc.pid
    assert real_client(pki, port) == b"ping\n"
    base = n_fds(pid)
    # From three addresses: the oldest go first, whoever sent them.
    old = silent(port, 20, src="127.0.0.2") + silent(port, 20, src="127.0.0.3")
    new = []
    try:
        wait_for(lambda: n_fds(pid) >= base + 40, 10, "the gateway to hold 40")
        t0 = time.monotonic()
        new = silent(port, 30, src="127.0.0.4")
        wait_for(lambda: all(closed_by_peer(s) for s in old[:30]), 10,
                 "the 30 oldest to be shed")
        assert not any(closed_by_peer(s) for s in old[30:] + new), \
            "a newer connection was shed before an older one"
        assert n_fds(pid) <= base + 40, f"{n_fds(pid) - base} pending held past the cap of 40"
        # Counted, not one line each: the first at once, the rest on the next tick.
        wait_for(lambda: shed_total(gw, r"limits\.handshakes \(40\) reached") == 30, 5,
                 "the log to count 30 shed")
        lines = re.findall(SHED_RX.format(""), gw.log())
        assert len(lines) <= 2 + int(time.monotonic() - t0), gw.log()[-2000:]
        assert not re.search(r"refused 127\.0\.0\.\d:\d+ on tunnel capped", gw.log()), \
            "a shed connection got a refusal line of its own"
        # The cap is held by silent sockets; a real client still gets in, shedding one.
        assert real_client(pki, port) == b"ping\n"
        assert closed_by_peer(old[30])
        assert not any(closed_by_peer(s) for s in old[31:] + new)
    finally:
        close_all(old + new)


def test_per_source_cap_sheds_only_that_sources_oldest(pki, capped):
    gw = capped({"handshakes": 500, "handshakes_per_source": 20})
    port, pid = gw.port("capped"), gw.proc.pid
    base = n_fds(pid)
    other = silent(port, 15, src="127.0.0.3")
    flood = []
    try:
        flood = silent(port, 45, src="127.0.0.2")
        wait_for(lambda: all(closed_by_peer(s) for s in flood[:25]), 10,
                 "the oldest 25 from 127.0.0.2 to be shed")
        assert not any(closed_by_peer(s) for s in flood[25:]), "held past its order"
        assert not any(closed_by_peer(s) for s in other), \
            "a flood from 127.0.0.2 shed a connection from 127.0.0.3"
        assert n_fds(pid) == base + 35
        # The flooding address itself still gets a real client through.
        assert real_client(pki, port, src="127.0.0.2") == b"ping\n"
        assert closed_by_peer(flood[25])
        wait_for(lambda: shed_total(gw, r"limits\.handshakes_per_source \(20\) reached "
                                        r"\(last from 127\.0\.0\.2\)") == 26, 5,
                 "the log to count 26 shed from 127.0.0.2")
    finally:
        close_all(other + flood)


def test_established_tunnels_are_never_shed(pki, capped):
    gw = capped({"handshakes": 10, "handshakes_per_source": 10})
    port = gw.port("capped")
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    tunnel = client_ctx(pki).wrap_socket(raw, server_hostname="bar.internal")
    flood = []
    try:
        tunnel.sendall(b"before\n")
        assert tunnel.recv(100) == b"before\n"
        gw.wait_log(r"accepted foo\.internal")
        flood = silent(port, 100)
        wait_for(lambda: shed_total(gw, "") >= 90, 5,
                 "the flood to be shed")
        for i in range(5):
            tunnel.sendall(b"during %d\n" % i)
            assert tunnel.recv(100) == b"during %d\n" % i
        assert not re.search(r"capped: .* closed", gw.log()), gw.log()[-2000:]
    finally:
        close_all(flood)
        tunnel.close()


def test_garbage_flood_is_refused_and_a_real_client_gets_in(pki, capped):
    gw = capped({"handshakes": 50})
    port, pid = gw.port("capped"), gw.proc.pid
    assert real_client(pki, port) == b"ping\n"
    base = n_fds(pid)
    cpu0 = sum(int(x) for x in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
    socks = []
    try:
        # Not TLS at all; a handshake record longer than TLS allows; a record that never ends.
        socks += silent(port, 100, first=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        socks += silent(port, 100, first=b"\x16\x03\x01\xff\xff" + b"\x01" * 32)
        socks += silent(port, 100, first=b"\x16\x03\x01\x02\x00" + b"\x01" * 32)
        wait_for(lambda: all(closed_by_peer(s) for s in socks[:200]), 10,
                 "the garbage to be refused")
        # The 100 unfinished records are held, up to the default per-source cap (half of
        # limits.handshakes): the 75 oldest are shed.
        wait_for(lambda: sum(closed_by_peer(s) for s in socks[200:]) == 75, 10,
                 "the 75 oldest unfinished records to be shed")
        assert not any(closed_by_peer(s) for s in socks[275:])
        # A real client from the same address gets in, shedding the oldest of them.
        assert real_client(pki, port) == b"ping\n"
        assert closed_by_peer(socks[275])
        assert not any(closed_by_peer(s) for s in socks[276:])
        assert gw.proc.poll() is None
    finally:
        close_all(socks)
    wait_for(lambda: n_fds(pid) <= base, 10, "the gateway to close every one")
    cpu = sum(int(x) for x in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
    assert (cpu - cpu0) / os.sysconf("SC_CLK_TCK") < 3.0, "300 garbage connections cost > 3 s"


def test_reload_lowers_the_cap_for_the_next_connection(pki, capped):
    gw = capped({"handshakes": 100, "handshakes_per_source": 100})
    port, pid = gw.port("capped"), gw.proc.pid
    base = n_fds(pid)
    held = silent(port, 60)
    try:
        wait_for(lambda: n_fds(pid) >= base + 60, 10, "the gateway to hold 60")
        cfg = json.loads(gw.config_path.read_text())
        cfg["limits"] = {"handshakes": 20, "handshakes_per_source": 20}
        gw.config_path.write_text(json.dumps(cfg))
        gw.proc.send_signal(signal.SIGHUP)
        gw.wait_log(r"config reloaded")
        # What is held stays until a newcomer needs the room: then the oldest 41 go.
        assert not any(closed_by_peer(s) for s in held)
        held += silent(port, 1)
        wait_for(lambda: sum(closed_by_peer(s) for s in held) == 41, 10, "41 shed")
        assert all(closed_by_peer(s) for s in held[:41])
        assert not any(closed_by_peer(s) for s in held[41:])
    finally:
        close_all(held)


@pytest.mark.parametrize("limits,jpath,problem", [
    ({"handshakes": 0}, "$.limits.handshakes", "between 1 and 1000000"),
    ({"handshakes": 1000001}, "$.limits.handshakes", "between 1 and 1000000"),
    ({"handshakes": "many"}, "$.limits.handshakes", "expected an integer"),
    ({"handshakes": 100, "handshakes_per_source": 101}, "$.limits.handshakes_per_source",
     "between 1 and 100"),
    ({"handshakes_per_source": 0}, "$.limits.handshakes_per_source", "between 1 and 4096"),
    ({"connections": 5}, "$.limits.connections", "unknown key"),
    ("none", "$.limits", "object"),
])
def test_limits_config_errors_exit_2_naming_the_key(pki, tmp_path, limits, jpath, problem):
    cfg = base_config(pki)
    cfg["limits"] = limits
    assert_refused(write_config(tmp_path, cfg), jpath, problem)
