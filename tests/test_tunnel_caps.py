"""$.limits.tunnels and $.tunnels[].max_tunnels: established tunnels are capped (issue 14).

Nothing capped how many tunnels one tunnel name (or the gateway) carried: every connection
that passed its handshake got one, until the data plane ran out of file descriptors. Now
the data plane reports every tunnel it frees (by handoff id), so the control process counts
tunnels per name; at a cap a new connection is closed with a reset right after accept,
before its ClientHello is read (terminate) or the peer is dialed (originate), counted and
logged once a second. Tunnels already running are never touched; a closed one makes room.
"""

import json
import os
import re
import signal
import socket
import ssl
import time

import pytest

from conftest import client_ctx, closed_without_data, gateway_config, pair_configs, wait_for
from test_config import assert_refused, base_config, write_config
from test_dataplane_orphan import alive, children

CAP_RX = r"tunnel {}: refused (\d+) new connection\(s\) since the last such line: " \
         r"\d+ tunnel\(s\) established, at its max_tunnels {}"
GLOBAL_RX = r"refused (\d+) new connection\(s\) since the last such line \(the last on " \
            r"tunnel [\w-]+\): \d+ tunnel\(s\) established, at limits\.tunnels {}"


def open_tunnel(pki, port):
    """An mTLS tunnel through @port that echoed one line; raises if it did not."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = client_ctx(pki).wrap_socket(raw, server_hostname="bar.internal")
    s.sendall(b"hello\n")
    assert s.recv(100) == b"hello\n"
    return s


def echoes(s, tag):
    s.sendall(tag)
    return s.recv(100) == tag


def refused_at_accept(port):
    """A connection that sends nothing is closed at once (FIN or RST), never served."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
    except ConnectionResetError:
        return True  # the reset came back before connect() returned: accepted, then reset
    try:
        return closed_without_data(s)
    except socket.timeout:
        return False  # held open: it waits for a ClientHello, so it was let in
    finally:
        s.close()


def try_tunnel(pki, port):
    """A tunnel that echoed, or None when the gateway refused it."""
    try:
        return open_tunnel(pki, port)
    except (OSError, ssl.SSLError, AssertionError):
        return None


def tunnel_gets_in(pki, port):
    s = try_tunnel(pki, port)
    if s:
        s.close()
    return bool(s)


def counted(gw, rx):
    return sum(int(n) for n in re.findall(rx, gw.log()))


def terminate(name, up, **extra):
    t = {"name": name, "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}
    t.update(extra)
    return t


@pytest.fixture
def capped(pki, gateways, upstream):
    """capped(tunnels extras..., limits=None) -> a terminate gateway; 60 s handshakes."""
    def start(*extras, limits=None):
        up = upstream()
        cfg = gateway_config(pki, "bar", [terminate(f"t{i}", up, **e)
                                          for i, e in enumerate(extras)])
        cfg["tls"] = {"handshake_timeout_ms": 60000}
        if limits:
            cfg["limits"] = limits
        return gateways("terminate", cfg)
    return start


def test_fourth_connection_is_reset_before_its_handshake_and_a_closed_one_makes_room(
        pki, capped):
    gw = capped({"max_tunnels": 3})
    port = gw.port("t0")
    tunnels = [open_tunnel(pki, port) for _ in range(3)]
    try:
        # Closed at once, though it never sent a byte: before the ClientHello is read
        # (a 60 s handshake deadline would otherwise hold it).
        t0 = time.monotonic()
        assert refused_at_accept(port), "the 4th connection was let in past max_tunnels 3"
        assert time.monotonic() - t0 < 2
        assert not tunnel_gets_in(pki, port), "a 4th tunnel was established"
        gw.wait_log(CAP_RX.format("t0", 3))
        assert len(re.findall(r"accepted foo\.internal", gw.log())) == 3
        # The three running are untouched.
        for i, s in enumerate(tunnels):
            assert echoes(s, b"still %d\n" % i)
        # One closes: the data plane reports it, and a new one gets in (only one).
        tunnels.pop().close()
        tunnels.append(wait_for(lambda: try_tunnel(pki, port), 10,
                                "a new tunnel once one of the three closed"))
        assert refused_at_accept(port), "a closed tunnel made room for more than one"
    finally:
        for s in tunnels:
            s.close()


def test_global_limit_counts_tunnels_across_tunnel_names(pki, capped):
    gw = capped({}, {"max_tunnels": 10}, limits={"tunnels": 3})
    p0, p1 = gw.port("t0"), gw.port("t1")
    tunnels = [open_tunnel(pki, p0), open_tunnel(pki, p0), open_tunnel(pki, p1)]
    try:
        assert refused_at_accept(p0)
        assert refused_at_accept(p1), "t1's own max_tunnels 10 let it past limits.tunnels 3"
        gw.wait_log(GLOBAL_RX.format(3))
        tunnels.pop(0).close()
        tunnels.append(wait_for(lambda: try_tunnel(pki, p1), 10,
                                "a tunnel on t1 once one on t0 closed"))
        assert refused_at_accept(p0)
        for i, s in enumerate(tunnels):
            assert echoes(s, b"still %d\n" % i)
    finally:
        for s in tunnels:
            s.close()


def test_burst_of_refused_connections_is_logged_in_a_few_counted_lines(pki, capped):
    gw = capped({"max_tunnels": 1})
    port, pid = gw.port("t0"), gw.proc.pid
    tunnel = open_tunnel(pki, port)
    try:
        cpu0 = sum(int(x) for x in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1]
                   .split()[11:13])
        t0 = time.monotonic()
        for _ in range(50):
            assert refused_at_accept(port)
        wait_for(lambda: counted(gw, CAP_RX.format("t0", 1)) == 50, 5,
                 "the log to count 50 refused")
        lines = re.findall(CAP_RX.format("t0", 1), gw.log())
        assert len(lines) <= 2 + int(time.monotonic() - t0), lines
        assert not re.search(r"refused 127\.0\.0\.1:\d+ on tunnel t0", gw.log()), \
            "a refused connection got a line of its own"
        cpu = sum(int(x) for x in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1]
                  .split()[11:13])
        assert (cpu - cpu0) / os.sysconf("SC_CLK_TCK") < 1.0, "50 refusals cost > 1 s of CPU"
        assert echoes(tunnel, b"after the burst\n")
    finally:
        tunnel.close()


def test_originate_tunnel_at_its_cap_refuses_before_dialing_the_peer(pki, gateways, upstream):
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b = gateways("terminate", b_cfg)
    cfg = a_cfg(b.port("from-aws"))
    cfg["tunnels"][0]["max_tunnels"] = 2
    a = gateways("originate", cfg)
    port = a.port("to-gcp")
    apps = []
    try:
        for i in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"app %d\n" % i)
            assert s.recv(100) == b"app %d\n" % i
            apps.append(s)
        assert refused_at_accept(port)
        a.wait_log(CAP_RX.format("to-gcp", 2))
        time.sleep(0.3)
        # The peer saw two handshakes, not three: the third was never dialed.
        assert len(re.findall(r"accepted foo\.internal", b.log())) == 2, b.log()[-2000:]
        apps.pop().close()
        def third():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"third\n")
                if s.recv(100) == b"third\n":
                    apps.append(s)
                    return True
                s.close()
            except OSError:
                pass
            return None
        wait_for(third, 10, "a third app connection once one closed")
    finally:
        for s in apps:
            s.close()


def test_killed_data_plane_releases_the_count_of_its_tunnels(pki, capped):
    gw = capped({"max_tunnels": 2})
    port = gw.port("t0")
    tunnels = [open_tunnel(pki, port) for _ in range(2)]
    try:
        assert refused_at_accept(port)
        dp = [p for p in children(gw.proc.pid) if alive(p)]
        assert len(dp) == 1, dp
        os.kill(dp[0], signal.SIGKILL)
        gw.wait_log(r"2 tunnel\(s\) lost")
        # Its tunnels are gone, and so are their counts: two new ones fit.
        tunnels.append(wait_for(lambda: try_tunnel(pki, port), 10, "a tunnel after the restart"))
        tunnels.append(open_tunnel(pki, port))
        assert refused_at_accept(port)
    finally:
        for s in tunnels:
            s.close()


def test_reload_raises_the_cap_for_the_next_connection(pki, capped):
    gw = capped({"max_tunnels": 1})
    port = gw.port("t0")
    tunnels = [open_tunnel(pki, port)]
    try:
        assert refused_at_accept(port)
        cfg = json.loads(gw.config_path.read_text())
        cfg["tunnels"][0]["max_tunnels"] = 2
        gw.config_path.write_text(json.dumps(cfg))
        gw.proc.send_signal(signal.SIGHUP)
        gw.wait_log(r"config reloaded")
        tunnels.append(open_tunnel(pki, port))
        assert refused_at_accept(port)
        # Lowered below what runs: the running ones stay, new ones wait for room.
        cfg["tunnels"][0]["max_tunnels"] = 1
        gw.config_path.write_text(json.dumps(cfg))
        gw.proc.send_signal(signal.SIGHUP)
        gw.wait_log(r"config reloaded", count=2)
        for i, s in enumerate(tunnels):
            assert echoes(s, b"kept %d\n" % i)
        assert refused_at_accept(port)
    finally:
        for s in tunnels:
            s.close()


@pytest.mark.parametrize("where,value,jpath,problem", [
    ("limits", {"tunnels": -1}, "$.limits.tunnels", "between 0 and 10000000"),
    ("limits", {"tunnels": 10000001}, "$.limits.tunnels", "between 0 and 10000000"),
    ("limits", {"tunnels": "lots"}, "$.limits.tunnels", "expected an integer"),
    ("tunnel", -1, "$.tunnels[0].max_tunnels", "between 0 and 10000000"),
    ("tunnel", 2.5, "$.tunnels[0].max_tunnels", "expected an integer"),
    ("tunnel", "3", "$.tunnels[0].max_tunnels", "expected an integer"),
])
def test_tunnel_cap_config_errors_exit_2_naming_the_key(pki, tmp_path, where, value, jpath,
                                                        problem):
    cfg = base_config(pki)
    if where == "limits":
        cfg["limits"] = value
    else:
        cfg["tunnels"][0]["max_tunnels"] = value
    assert_refused(write_config(tmp_path, cfg), jpath, problem)


def test_close_reports_that_found_the_socket_full_still_arrive(pki, capped):
    """While the control process is stopped its data plane keeps freeing tunnels and its
    close reports pile up in (and past) the handoff socket. Once it runs again every one
    must arrive: n new tunnels fit, none is refused at the cap."""
    n = 300
    gw = capped({"max_tunnels": n})
    port = gw.port("t0")
    tunnels = [open_tunnel(pki, port) for _ in range(n)]
    os.kill(gw.proc.pid, signal.SIGSTOP)
    try:
        for s in tunnels:
            s.close()  # one at a time: each is freed in its own batch, reported on its own
            time.sleep(0.001)
        time.sleep(1)
    finally:
        os.kill(gw.proc.pid, signal.SIGCONT)
    # Every close is reported: n new tunnels fit again, none refused at the cap.
    again = []
    try:
        deadline = time.monotonic() + 240
        while len(again) < n and time.monotonic() < deadline:
            s = try_tunnel(pki, port)
            assert s, (f"refused after {len(again)} of {n} tunnels: close reports were "
                       f"lost\n{gw.log()[-2000:]}")
            again.append(s)
        assert len(again) == n, f"only {len(again)} of {n} tunnels in 240 s"
        assert not re.search(CAP_RX.format("t0", n), gw.log()), gw.log()[-2000:]
    finally:
        for s in again:
            s.close()
