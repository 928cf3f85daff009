"""$.tunnels[].pool: the originate side keeps handshaken TLS connections ready to its peer, so an
application's connection is paired with one at once; the terminate side takes them as idle, not
as slow handshakes, and dials its upstream only when the first record (the destination header)
comes.

A pair of gateways with pools on both sides and admin listeners: `GET /status` shows each
side's pool. Pooled connections carry data byte-exact; each carries one application connection
only; the upstream sees no connection before an application does; idle ones close at their
pool.idle_s on either side and are replaced; a SIGHUP that changes the rules and a trust
bundle change replace them; a terminate tunnel without a pool makes the originate dial as
before (renewal: test_federation.py).
"""

import hashlib
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import pair_configs, wait_for


def status(gw):
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.port('@admin')}/status",
                                timeout=10) as r:
        return json.load(r)


def pool_of(gw, tunnel):
    for t in status(gw)["tunnels"]:
        if t["name"] == tunnel:
            return t.get("pool")
    raise AssertionError(f"no tunnel {tunnel} in {status(gw)}")


def configs(pki, up, size=2, a_idle=30, b_pool=None, handshake_ms=None):
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    if b_pool is not False:
        b_cfg["tunnels"][0]["pool"] = b_pool or {}
    b_cfg["admin"] = {"listen": "127.0.0.1:0"}
    if handshake_ms:
        b_cfg.setdefault("tls", {})["handshake_timeout_ms"] = handshake_ms

    def a(port):
        cfg = a_cfg(port)
        cfg["tunnels"][0]["pool"] = {"size": size, "idle_s": a_idle}
        cfg["admin"] = {"listen": "127.0.0.1:0"}
        return cfg
    return b_cfg, a


def start(pki, gateways, up, **kw):
    b_cfg, a_cfg = configs(pki, up, **kw)
    b = gateways("terminate", b_cfg)
    a = gateways("originate", a_cfg(b.port("from-aws")))
    return a, b


def pool_metric(gw, tunnel, state):
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.port('@admin')}/metrics",
                                timeout=10) as r:
        text = r.read().decode()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "fedgate_pool_connections" and \
                    s.labels == {"tunnel": tunnel, "state": state}:
                return s.value
    raise AssertionError(f"no fedgate_pool_connections for {tunnel} {state}:\n{text}")


def ready(a, n):
    wait_for(lambda: pool_of(a, "to-gcp")["idle"] == n, 15, f"{n} idle pooled connection(s)")


def echo(port, data, timeout=20):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = bytearray()
        while len(got) < len(data):
            chunk = s.recv(1 << 20)
            assert chunk, f"closed after {len(got)} of {len(data)} bytes"
            got += chunk
        t.join()
        return bytes(got)


def test_pooled_connections_carry_data_byte_exact_and_the_upstream_sees_none_before_use(
        pki, gateways, upstream):
    up = upstream()
    a, b = start(pki, gateways, up, size=3)
    ready(a, 3)
    wait_for(lambda: pool_of(b, "from-aws")["waiting"] == 3, 10, "3 waiting on the terminate")
    # handshaken, authorized, idle: no connection upstream yet
    assert up.accepted == 0
    assert status(b)["handshakes_in_progress"] == 0
    assert pool_metric(a, "to-gcp", "idle") == 3 and pool_metric(b, "from-aws", "waiting") == 3
    assert pool_metric(a, "to-gcp", "filling") == 0
    for size in (0, 1, 70_000, 4 << 20):
        data = os.urandom(size)
        assert hashlib.sha256(echo(a.port("to-gcp"), data)).digest() == \
            hashlib.sha256(data).digest()
    # the "accepted" lines come once the data plane answered, maybe after the echo
    a.wait_log(r"on tunnel to-gcp \(pooled\)", count=4)
    b.wait_log(r"on tunnel from-aws \(pooled\)", count=4)
    assert a.log().count("accepted") == b.log().count("(pooled)") == 4, b.log()
    assert up.accepted == 4
    # refilled in the background
    ready(a, 3)


def test_a_pooled_connection_carries_one_application_connection_only(pki, gateways, upstream):
    up = upstream()
    a, b = start(pki, gateways, up, size=2)
    ready(a, 2)
    socks = [socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=20)
             for _ in range(6)]
    for i, s in enumerate(socks):
        s.sendall(b"conn %d\n" % i)
    for i, s in enumerate(socks):
        want = b"conn %d\n" % i
        got = b""
        while len(got) < len(want):
            chunk = s.recv(100)
            assert chunk, f"connection {i} closed"
            got += chunk
        assert got == want
    # six tunnels on the terminate side, each its own TLS connection (peer port)
    wait_for(lambda: len(status(b)["tunnels"][0]["peers"]) >= 1, 10, "peers")
    assert status(b)["tunnels"][0]["open"] == 6
    assert up.accepted == 6
    # the first two took the pool's connections; the rest were dialed (or took refills)
    b.wait_log(r"accepted foo\.internal", count=6)
    ports = re.findall(r"accepted foo\.internal .* on tunnel from-aws( \(pooled\))?: "
                       r"peer 127\.0\.0\.1:(\d+),", b.log())
    assert len(ports) == 6 and len({p for _, p in ports}) == 6, b.log()
    assert sum(1 for pooled, _ in ports if pooled) >= 2, b.log()
    for s in socks:
        s.close()


def test_the_terminate_side_holds_a_pooled_connection_past_the_handshake_deadline(
        pki, gateways, upstream):
    up = upstream()
    a, b = start(pki, gateways, up, size=1, handshake_ms=300)
    ready(a, 1)
    time.sleep(1.5)  # five handshake deadlines
    assert "handshake timed out" not in b.log()
    assert echo(a.port("to-gcp"), b"late but welcome\n") == b"late but welcome\n"
    b.wait_log(r"on tunnel from-aws \(pooled\)")


def test_idle_pooled_connections_close_at_their_idle_deadline_on_either_side_and_are_replaced(
        pki, gateways, upstream):
    up = upstream()
    # the originate's own deadline: 1 s
    a, b = start(pki, gateways, up, size=1, a_idle=1)
    ready(a, 1)
    first = status(b)["tunnels"][0]["accepted"]
    time.sleep(3.5)
    ready(a, 1)
    # each replacement is a new handshake at the terminate, not counted as a tunnel, and no
    # refusal there: closed unused is normal for a pool
    assert "warn: refused" not in b.log(), b.log()
    assert up.accepted == 0
    assert echo(a.port("to-gcp"), b"x") == b"x"
    assert status(b)["tunnels"][0]["accepted"] == first + 1


def test_the_terminate_side_closes_a_pooled_connection_unused_for_its_pool_idle_s(
        pki, gateways, upstream):
    up = upstream()
    a, b = start(pki, gateways, up, size=1, a_idle=30, b_pool={"idle_s": 1})
    b.wait_log(r"tunnel from-aws: pooled connection from 127\.0\.0\.1:\d+ carried nothing for "
               r"1 s \(pool\.idle_s\): closed", timeout=10)
    # the originate saw it go and dials another, which works
    ready(a, 1)
    assert echo(a.port("to-gcp"), b"after a replacement\n") == b"after a replacement\n"


def test_pool_max_bounds_what_waits_on_the_terminate_side(pki, gateways, upstream):
    up = upstream()
    a, b = start(pki, gateways, up, size=4, b_pool={"max": 2})
    b.wait_log(r"pool\.max: 2 pooled connections wait already", timeout=10)
    assert pool_of(b, "from-aws")["waiting"] == 2
    # the originate backs off rather than redialing in a loop
    time.sleep(2)
    assert b.log().count("pool.max: 2 pooled connections wait already") <= 6, b.log()
    assert echo(a.port("to-gcp"), b"still works\n") == b"still works\n"


def test_a_peer_without_a_pool_gets_connections_dialed_as_they_come(pki, gateways, upstream):
    up = upstream()
    a, b = start(pki, gateways, up, size=2, b_pool=False)
    a.wait_log(r"tunnel to-gcp: pool: peer gateway 127\.0\.0\.1:\d+ does not take pooled "
               r"connections", timeout=10)
    assert pool_of(a, "to-gcp")["idle"] == 0
    assert echo(a.port("to-gcp"), b"dialed\n") == b"dialed\n"
    assert "(pooled)" not in a.log()


def test_a_reload_that_changes_the_rules_replaces_the_idle_pooled_connections(
        pki, gateways, upstream):
    up = upstream()
    a, b = start(pki, gateways, up, size=2)
    ready(a, 2)
    cfg = json.loads(a.config_path.read_text())
    # the same peer still passes, under a rule written differently
    cfg["tunnels"][0]["allow"] = [{"dns": "bar.internal"}]
    n = a.log().count("config reloaded")
    a.config_path.write_text(json.dumps(cfg))
    a.proc.send_signal(signal.SIGHUP)
    a.wait_log("config reloaded", count=n + 1)
    a.wait_log(r"pool: 2 idle connection\(s\) closed: the config was reloaded", timeout=10)
    ready(a, 2)
    assert echo(a.port("to-gcp"), b"new rules\n") == b"new rules\n"
