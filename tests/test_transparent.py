"""Transparent mode end to end, in network namespaces (tests/netns.py): applications dial gcp's
own addresses; gateway A (in aws) captures them (TPROXY for the routed client, REDIRECT for an
application on A itself), carries them over mTLS to gateway B (in gcp), which dials the
destination. Only TLS may cross `internet`; refusals reach the application as resets.

Needs root and network namespaces; anywhere else every test SKIPs, loudly.
"""

import hashlib
import ipaddress
import json
import os
import re
import socket
import threading
import time
import uuid

import pytest

from conftest import BIG, FEDGATE, Gateway, gateway_config, recv_all
from hello_backend import read_proxy_v2
from netns import (A_WAN4, A_WAN6, B_WAN4, CLIENT4, CLIENT6, NetNSError, Service, Sniffer,
                   Topology, probe)
from pki import issue_leaf

# $.capture: fedgate's own sockets carry MARK (REDIRECT skips it); the TPROXY rule sets
# TPROXY_MARK, which TABLE routes to lo. All three given explicitly, all different.
MARK, TPROXY_MARK, TABLE = 0x4647, 0x4648, 18247
ROUTER_PORT, LOCAL_PORT = 15001, 15002
B_PORT, B_PP_PORT = 8443, 8444
OP_TIMEOUT = 10  # every socket operation
SIZES = [0, 1, 64 << 10, 1 << 20]
CHUNK = 1 << 20

# B: the services, and what gateway A's peer may reach there.
ECHO4, ECHO_HTTP, ECHO6 = ("10.20.0.5", 5432), ("10.20.0.6", 80), ("fd20::7", 8080)
DIGEST = ("10.20.0.5", 5434)    # answers only after the client's EOF
DOWN = ("10.20.0.5", 5433)      # in reach, nothing listening
OUTSIDE = ("10.20.0.6", 22)     # listening, not in reach
PROXIED = ("10.20.0.8", 7000)   # reads B's PROXY v2 header, tells whom it saw
NO_ROUTE = ("10.99.0.1", 80)    # captured by the test's own nft table; A has no route for it
WRONG_PEER = ("10.20.0.9", 80)  # routed to B, but the route wants another peer's certificate
REACH = ["10.20.0.5:5432", "10.20.0.5:5433", "10.20.0.5:5434", "10.20.0.6:80",
         "[fd20::7]:8080"]
A_ACCEPT = (r"accepted gw-b\.gcp\.test \(issued by '[^']+', root 'Kubernetes Root CA'\) "
            r"on tunnel {}")
# Where a connection that did NOT cross the tunnel comes from, as the service sees it.
A_SIDE = {CLIENT4, CLIENT6, A_WAN4, A_WAN6}


def digest_after_eof(conn):
    h = hashlib.sha256()
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        h.update(data)
    conn.sendall(b"sha256=" + h.hexdigest().encode())
    conn.shutdown(socket.SHUT_WR)


def report_proxy_header(conn):
    _, info = read_proxy_v2(conn.makefile("rb"))
    conn.sendall(json.dumps(info).encode())
    conn.shutdown(socket.SHUT_WR)


def a_config(pki):
    allow_b = [{"dns": "gw-b.gcp.test", "root": "Kubernetes Root CA"}]
    cfg = gateway_config(pki, "gw_a", [
        # router mode runs on warm pooled connections (one pool per route); local mode dials
        {"name": "router", "mode": "originate", "capture": "tproxy",
         "listen": f"[::]:{ROUTER_PORT}", "pool": {"size": 2}},
        {"name": "local", "mode": "originate", "capture": "redirect",
         "listen": f"[::]:{LOCAL_PORT}"}])
    cfg["capture"] = {"mark": MARK, "tproxy_mark": TPROXY_MARK, "route_table": TABLE}
    cfg["routes"] = [
        {"to": ["10.20.0.0/16", "fd20::/64"], "ports": ["1-65535"],
         "peer": f"{B_WAN4}:{B_PORT}", "server_name": "gw-b.gcp.test", "allow": allow_b},
        # longer prefix: to B's tunnel that speaks PROXY v2 to its service
        {"to": ["10.20.0.8/32"], "ports": [str(PROXIED[1])],
         "peer": f"{B_WAN4}:{B_PP_PORT}", "server_name": "gw-b.gcp.test", "allow": allow_b},
        # each route has its own peer name and rules: B does not hold gw-c's
        {"to": ["10.20.0.9/32"], "peer": f"{B_WAN4}:{B_PORT}", "server_name": "gw-c.gcp.test",
         "allow": [{"dns": "gw-c.gcp.test"}]}]
    return cfg


def b_config(pki):
    def allow(reach):
        return [{"dns": "gw-a.aws.test", "root": "Cloud Root CA", "reach": reach}]

    return gateway_config(pki, "gw_b", [
        {"name": "from-aws", "mode": "terminate", "transparent": True,
         "listen": f"0.0.0.0:{B_PORT}", "allow": allow(REACH), "pool": {}},
        {"name": "from-aws-pp", "mode": "terminate", "transparent": True,
         "listen": f"0.0.0.0:{B_PP_PORT}", "proxy_protocol": "v2",
         "allow": allow([f"{PROXIED[0]}:{PROXIED[1]}"]), "pool": {}}])


class Net:
    """The topology, gcp's services, both gateways; capture(): `fedgate capture` on A."""

    def __init__(self, topo, a, b, services):
        self.topo, self.a, self.b, self.services = topo, a, b, services
        self.client, self.aws, self.internet, self.gcp = topo.all

    def capture(self, verb, check=True):
        r = self.aws.run(FEDGATE, "capture", verb, "-c", self.a.config_path, check=False)
        if check:
            assert r.returncode == 0, (f"fedgate capture {verb} exited {r.returncode}:\n"
                                       f"{r.stdout}{r.stderr}")
        return r

    def nft(self, *args, check=True):
        return self.aws.run("nft", *args, check=check)


@pytest.fixture(scope="module")
def net(pki, tmp_path_factory):
    why = probe()
    if why:
        pytest.skip(f"SKIP: transparent-mode tests need root and network namespaces: {why}")
    issue_leaf(pki, "gw_a", cn="gw-a.aws.test", dns=["gw-a.aws.test"], issuer="cloud")
    issue_leaf(pki, "gw_b", cn="gw-b.gcp.test", dns=["gw-b.gcp.test"], issuer="kubernetes")
    try:
        topo = Topology().build()
    except NetNSError as e:
        pytest.skip(f"SKIP: cannot build the network namespaces: {e}")
    tmp = tmp_path_factory.mktemp("transparent")
    services, gws = {}, []
    try:
        g = topo.gcp
        for addr in (ECHO4, ECHO_HTTP, ECHO6, OUTSIDE):
            services[addr] = Service(g, *addr)
        services[DIGEST] = Service(g, *DIGEST, handler=digest_after_eof)
        services[PROXIED] = Service(g, *PROXIED, handler=report_proxy_header)
        b = Gateway(tmp, "gcp-b", b_config(pki))
        a = Gateway(tmp, "aws-a", a_config(pki))
        for gw, ns in ((b, topo.gcp), (a, topo.aws)):
            gws.append(gw)
            with ns.enter():
                gw.start()
        n = Net(topo, a, b, services)
        n.capture("up")
        yield n
        n.capture("down", check=False)
    finally:
        codes = {gw.name: gw.stop() for gw in gws}
        for s in services.values():
            s.close()
        topo.destroy()
    bad = {name: rc for name, rc in codes.items() if rc != 0}
    assert not bad, f"gateways exited non-zero: {bad}\n" + "\n".join(
        f"--- {gw.name}\n{gw.log()}" for gw in gws)


@pytest.fixture
def captured(net):
    """Every test starts with A's capture up (idempotent)."""
    net.capture("up")
    return net


@pytest.fixture
def sniffer(net):
    s = Sniffer(net.internet)
    yield s
    s.close()


def count(gw, pattern):
    return len(re.findall(pattern, gw.log()))


def roundtrip(sock, payload, deadline=180):
    """Sends @payload in chunks, half-closes, reads to EOF meanwhile; returns what came back."""
    got, err = [], []

    def reader():
        try:
            got.append(recv_all(sock))
        except OSError as e:
            err.append(e)

    sock.settimeout(OP_TIMEOUT)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    view = memoryview(payload)
    try:
        for off in range(0, len(payload), CHUNK):
            sock.sendall(view[off:off + CHUNK])
        sock.shutdown(socket.SHUT_WR)
    finally:
        t.join(deadline)
        sock.close()
    assert not t.is_alive(), f"no EOF within {deadline}s"
    if err:
        raise err[0]
    return got[0]


def assert_echoed(sock, payload, what):
    got = roundtrip(sock, payload)
    assert len(got) == len(payload), f"{what}: {len(got)} bytes back, sent {len(payload)}"
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest(), \
        f"{what}: bytes differ"


def expect_reset(ns, dest, what):
    """A connection from @ns to @dest must end in a reset (ECONNRESET), not a clean EOF and not
    a timeout. The reset may beat connect()'s own check of the handshake: that counts too."""
    try:
        sock = ns.connect(*dest, timeout=OP_TIMEOUT)
    except ConnectionResetError:
        return
    extra = b""
    try:
        sock.sendall(b"hello from the client\n")
        data = sock.recv(65536)
        while data:
            extra += data
            data = sock.recv(65536)
    except ConnectionResetError:
        return
    except socket.timeout:
        pytest.fail(f"{what}: neither reset nor closed within {OP_TIMEOUT}s")
    finally:
        sock.close()
    pytest.fail(f"{what}: clean EOF (after {extra!r}) where a reset was due")


def marked_payload(marker, size):
    unit = marker + os.urandom(200)
    return (unit * (size // len(unit) + 1))[:size]


def tls_bytes(sniffer, src_host, dst_host, dport):
    """Payload bytes @src_host sent to @dst_host:@dport (or from it, swapped), all flows."""
    out = b""
    for flow in sniffer.flows():
        if flow[0] == src_host and flow[2] == dst_host and dport in (flow[1], flow[3]):
            out += sniffer.stream(flow)
    return out


def wait_count(gw, pattern, n, timeout=10):
    deadline = time.monotonic() + timeout
    while count(gw, pattern) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return count(gw, pattern)


# --- router mode (TPROXY): the client in its own namespace --------------------------------------

def test_router_mode_carries_exact_bytes_to_v4_and_v6_services(captured):
    net = captured
    pattern = A_ACCEPT.format("router")
    before = count(net.a, pattern)
    n = 0
    for dest in (ECHO4, ECHO_HTTP, ECHO6):
        for size in SIZES + ([BIG] if dest == ECHO4 else []):
            payload = os.urandom(size)
            t0 = time.monotonic()
            assert_echoed(net.client.connect(*dest, timeout=OP_TIMEOUT), payload,
                          f"{dest} {size} B")
            n += 1
            assert time.monotonic() - t0 < 180, f"{dest} {size} B took too long"
    assert wait_count(net.a, pattern, before + n) == before + n, net.a.log()
    for dest in (ECHO4, ECHO_HTTP, ECHO6):
        peers = net.services[dest].peers
        assert peers and not A_SIDE & {p[0] for p in peers}, \
            f"{dest} was reached directly, not through B: {peers}"


def test_router_mode_takes_pooled_connections_and_local_mode_dials(captured):
    net = captured
    pooled = r"on tunnel router \(pooled\)"
    b_pooled = r"on tunnel from-aws \(pooled\)"
    before, b_before = count(net.a, pooled), count(net.b, b_pooled)
    for size in (0, 1, 64 << 10):
        assert_echoed(net.client.connect(*ECHO4, timeout=OP_TIMEOUT), os.urandom(size),
                      f"pooled {size} B")
        time.sleep(0.5)  # the pool refills between connections
    assert wait_count(net.a, pooled, before + 3) == before + 3, net.a.log()
    assert wait_count(net.b, b_pooled, b_before + 3) == b_before + 3, net.b.log()
    # local mode has no pool: its connections are dialed as they come
    assert count(net.a, r"on tunnel local \(pooled\)") == 0


def test_router_mode_half_close_client_still_reads_the_reply(captured):
    net = captured
    payload = os.urandom(300000)
    s = net.client.connect(*DIGEST, timeout=OP_TIMEOUT)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    reply = recv_all(s)
    s.close()
    assert reply == b"sha256=" + hashlib.sha256(payload).hexdigest().encode()
    assert not A_SIDE & {p[0] for p in net.services[DIGEST].peers}


# --- local mode (REDIRECT): an application on gateway A itself ----------------------------------

def test_local_mode_app_on_gateway_a_reaches_services_through_the_tunnel(captured):
    net = captured
    pattern = A_ACCEPT.format("local")
    before = count(net.a, pattern)
    cases = [(ECHO4, 0), (ECHO4, 1), (ECHO4, 1 << 20), (ECHO6, 64 << 10), (ECHO6, 1)]
    for dest, size in cases:
        peers_before = len(net.services[dest].peers)
        assert_echoed(net.aws.connect(*dest, timeout=OP_TIMEOUT), os.urandom(size),
                      f"local {dest} {size} B")
        new = net.services[dest].peers[peers_before:]
        assert new and not A_SIDE & {p[0] for p in new}, \
            f"{dest} was reached directly from A, not through B: {new}"
    assert wait_count(net.a, pattern, before + len(cases)) == before + len(cases), net.a.log()


# --- what crosses the internet ------------------------------------------------------------------

def test_only_tls_crosses_the_internet_while_capture_is_up(captured, sniffer):
    net = captured
    marker = b"FGMARKER-" + uuid.uuid4().hex.encode()
    payload = marked_payload(marker, 1 << 20)
    assert_echoed(net.client.connect(*ECHO4, timeout=OP_TIMEOUT), payload, "router v4")
    assert_echoed(net.client.connect(*ECHO6, timeout=OP_TIMEOUT), payload[:65536], "router v6")
    assert_echoed(net.aws.connect(*ECHO4, timeout=OP_TIMEOUT), payload[:65536], "local v4")
    sniffer.settle()
    assert sniffer.drops() == 0, "the sniffer dropped frames: its verdict would mean nothing"
    assert not sniffer.saw(marker), "the marker crossed the internet in plaintext"
    to_b = tls_bytes(sniffer, A_WAN4, B_WAN4, B_PORT)
    from_b = tls_bytes(sniffer, B_WAN4, A_WAN4, B_PORT)
    assert b"\x17\x03\x03" in to_b and b"\x17\x03\x03" in from_b, "no TLS records seen"
    assert len(to_b) >= len(payload) and len(from_b) >= len(payload), \
        f"the sniffer saw {len(to_b)} B to B and {len(from_b)} B from B, sent {len(payload)}"

    # the control: with capture down the same bytes go direct, and the sniffer does see them
    net.capture("down")
    try:
        assert_echoed(net.client.connect(*ECHO4, timeout=OP_TIMEOUT), payload[:65536], "direct")
        sniffer.settle()
        assert sniffer.saw(marker), "control: the sniffer missed a plaintext marker"
    finally:
        net.capture("up")


# --- refusals: the application sees a reset ------------------------------------------------------

def test_destination_outside_reach_is_refused_on_b_and_reset_at_the_client(captured):
    net = captured
    expect_reset(net.client, OUTSIDE, "outside reach")
    net.b.wait_log(r"refused gw-a\.aws\.test .*on tunnel from-aws( \([^)]*\))?: destination "
                   r"10\.20\.0\.6:22 not in reach")
    time.sleep(0.2)
    assert net.services[OUTSIDE].peers == [], "B dialed a destination outside reach"


def test_each_route_checks_its_own_peer_name_and_rules(captured):
    """One process, many routes: the /32 route to 10.20.0.9 names gw-c.gcp.test, and B (who
    answers there) holds only gw-b's name, so A refuses B and resets the client, while the
    /16 route to the same B keeps working."""
    net = captured
    expect_reset(net.client, WRONG_PEER, "route whose peer name B does not hold")
    net.a.wait_log(r"refused .*on tunnel router \(10\.1\.0\.2:\d+ -> 10\.20\.0\.9:80\): ")
    assert count(net.b, r"10\.20\.0\.9") == 0, "B saw a destination A should never send"
    with net.client.connect(*ECHO4, timeout=OP_TIMEOUT) as s:
        assert_echoed(s, b"the other route still works", "route to gw-b")


def test_destination_without_route_is_reset_by_a_and_other_nft_tables_survive(captured):
    net = captured
    port = NO_ROUTE[1]
    ruleset = ("table ip fgtest {\n chain pre {\n"
               "  type filter hook prerouting priority mangle; policy accept;\n"
               f"  ip daddr 10.99.0.0/24 tcp dport {port} meta mark set {TPROXY_MARK:#x} "
               f"tproxy to :{ROUTER_PORT} accept\n }}\n}}\n")
    path = net.a.dir / "fgtest.nft"
    path.write_text(ruleset)
    net.nft("-f", path)
    try:
        expect_reset(net.client, NO_ROUTE, "no route")
        net.a.wait_log(r"refused (10\.1\.0\.2|\[::ffff:10\.1\.0\.2\]):\d+ on tunnel router"
                       r"( \([^)]*\))?: no route to (10\.99\.0\.1|\[::ffff:10\.99\.0\.1\]):80")
        mine = net.nft("list", "table", "ip", "fgtest").stdout
        for verb in ("down", "up", "up", "down", "up"):
            net.capture(verb)
            assert net.nft("list", "table", "ip", "fgtest").stdout == mine, \
                f"capture {verb} touched the table ip fgtest"
    finally:
        net.nft("delete", "table", "ip", "fgtest", check=False)


def test_service_down_gives_the_client_a_reset(captured):
    net = captured
    expect_reset(net.client, DOWN, "service down")
    net.b.wait_log(r"10\.20\.0\.5:5433")


# --- capture up and down -------------------------------------------------------------------------

def test_capture_down_restores_direct_routing(captured, sniffer):
    net = captured
    marker = b"FGDIRECT-" + uuid.uuid4().hex.encode()
    payload = marked_payload(marker, 4096)
    net.capture("down")
    try:
        r = net.nft("list", "table", "inet", "fedgate", check=False)
        assert r.returncode != 0, f"capture down left the table:\n{r.stdout}"
        lines = len(net.a.log().splitlines())
        for dest in (ECHO4, ECHO6):
            assert_echoed(net.client.connect(*dest, timeout=OP_TIMEOUT), payload,
                          f"direct {dest}")
            assert net.services[dest].peers[-1][0] in (CLIENT4, CLIENT6), \
                f"{dest}: not direct, came from {net.services[dest].peers[-1]}"
        time.sleep(0.5)
        new = net.a.log().splitlines()[lines:]
        assert not [ln for ln in new if "tunnel router" in ln or "tunnel local" in ln], \
            "A saw connections while capture was down:\n" + "\n".join(new)
        sniffer.settle()
        assert sniffer.saw(marker), "the direct connection's plaintext was not seen"
    finally:
        net.capture("up")
    # and up again captures again
    before = count(net.a, A_ACCEPT.format("router"))
    assert_echoed(net.client.connect(*ECHO4, timeout=OP_TIMEOUT), payload, "captured again")
    assert wait_count(net.a, A_ACCEPT.format("router"), before + 1) == before + 1


def nft_rules(net):
    """{chain: [rule expression as canonical JSON]} of table inet fedgate."""
    out = json.loads(net.nft("-j", "list", "table", "inet", "fedgate").stdout)
    rules = {}
    for obj in out["nftables"]:
        if "chain" in obj:
            rules.setdefault(obj["chain"]["name"], [])
        if "rule" in obj:
            rules.setdefault(obj["rule"]["chain"], []).append(
                json.dumps(obj["rule"]["expr"], sort_keys=True))
    return rules


def daddrs(expr_json):
    """The destination prefixes an nft rule matches, as ip_network."""
    nets = []
    for e in json.loads(expr_json):
        m = e.get("match")
        if not m or m.get("left", {}).get("payload", {}).get("field") != "daddr":
            continue
        right = m["right"]
        items = right["set"] if isinstance(right, dict) and "set" in right else [right]
        for item in items:
            if isinstance(item, dict) and "prefix" in item:
                item = f"{item['prefix']['addr']}/{item['prefix']['len']}"
            nets.append(ipaddress.ip_network(item))
    return nets


def test_capture_up_twice_installs_the_rules_once(captured):
    net = captured
    first = nft_rules(net)
    net.capture("up")
    second = nft_rules(net)
    assert second == first, f"a second capture up changed the rules:\n{first}\n{second}"
    tables = net.nft("list", "tables").stdout.splitlines()
    assert tables.count("table inet fedgate") == 1, tables
    want = {ipaddress.ip_network(p)
            for p in ("10.20.0.0/16", "fd20::/64", "10.20.0.8/32", "10.20.0.9/32")}
    for chain in ("prerouting", "output"):
        rules = second.get(chain, [])
        assert len(rules) == len(set(rules)), f"{chain}: duplicate rules {rules}"
        got = [n for r in rules for n in daddrs(r)]
        assert sorted(got, key=str) == sorted(want, key=str), f"{chain}: {got}"
    for fam in ("-4", "-6"):
        rules = net.aws.run("ip", fam, "rule", "list").stdout
        assert len(re.findall(rf"fwmark {TPROXY_MARK:#x} lookup {TABLE}\b", rules)) == 1, rules
        # fedgate's own (MARK) traffic is routed as the host routes it: no rule catches it
        assert f"fwmark {MARK:#x}" not in rules, rules
        routes = net.aws.run("ip", fam, "route", "show", "table", str(TABLE)).stdout
        assert len(re.findall(r"^local default dev lo", routes, re.M)) == 1, routes


# --- PROXY v2 from B to the service ---------------------------------------------------------------

def test_proxy_v2_service_sees_the_client_address(captured):
    net = captured
    s = net.client.connect(*PROXIED, timeout=OP_TIMEOUT)
    local_port = s.getsockname()[1]
    s.shutdown(socket.SHUT_WR)
    info = json.loads(recv_all(s))
    s.close()
    assert info["command"] == "PROXY" and info["family"] == "TCP4", info
    assert (info["src_addr"], info["src_port"]) == (CLIENT4, local_port), info
    assert (info["dst_addr"], info["dst_port"]) == PROXIED, info
    assert not A_SIDE & {p[0] for p in net.services[PROXIED].peers}
