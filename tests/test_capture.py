"""`fedgate capture up|down -c FILE` (SPEC.md "Capture"), each test in network namespaces it
makes and deletes: `up` installs table inet fedgate and, for TPROXY, the ip rules and local
routes; twice, it installs them once; `down` removes all of it, twice is fine, and another
table is untouched by both; `fedgate check` prints a shell script that does the very same by
hand; without CAP_NET_ADMIN both fail with a clear message. The installed rules really capture:
a REDIRECT listener and an IP_TRANSPARENT listener (tiny Python ones, not fedgate) receive the
connections, and sockets with fedgate's mark go out uncaptured. A full gateway-to-gateway run
is tests/test_transparent.py's. Root only; skipped loudly otherwise."""

import copy
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import FEDGATE, identity
from test_config import write_config

MARK = 0x4647
TABLE = 18247
TPROXY_PORT, REDIRECT_PORT = 15001, 15002
_names = itertools.count()


def inns(ns, *cmd, check=True, **kw):
    r = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                       timeout=30, **kw)
    if check:
        assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r


def fedgate(ns, *args):
    return inns(ns, FEDGATE, *args, check=False)


@pytest.fixture
def netns():
    """make() -> the name of a fresh network namespace (lo up); all deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("SKIPPED: fedgate capture tests need root (ip netns add, nftables)")
    for tool in ("ip", "nft", "setpriv"):
        if not shutil.which(tool):
            pytest.skip(f"SKIPPED: {tool} is missing (scripts/deps test installs it)")
    made = []

    def make():
        name = f"fgcap{os.getpid()}-{next(_names)}"
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"SKIPPED: cannot make a network namespace: {r.stderr.strip()}")
        made.append(name)
        inns(name, "ip", "link", "set", "lo", "up")
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def confdir(pki):
    """A world-readable folder with the identity's files, so that an unprivileged user can
    load configs written there (pytest's own folders are root's alone)."""
    d = tempfile.mkdtemp(prefix="fgcap-")
    try:
        os.chmod(d, 0o755)
        src = identity(pki, "foo")
        ident = {}
        for key in ("cert", "key", "trust"):
            ident[key] = os.path.join(d, key + ".pem")
            shutil.copy(src[key], ident[key])
            os.chmod(ident[key], 0o644)
        yield d, ident
    finally:
        shutil.rmtree(d)


ROUTES = [{"to": ["10.20.0.0/16", "fd20::/64"], "ports": ["1-65535"],
           "peer": "203.0.113.2:8443", "server_name": "bar.internal",
           "allow": [{"dns": "bar.internal"}]},
          {"to": ["10.30.0.0/24"], "ports": ["443", "8000-8100"],
           "peer": "203.0.113.3:8443", "server_name": "baz.internal",
           "allow": [{"dns": "baz.internal"}]}]
TPROXY = {"name": "router", "mode": "originate", "capture": "tproxy",
          "listen": f"[::]:{TPROXY_PORT}"}
REDIRECT = {"name": "local", "mode": "originate", "capture": "redirect",
            "listen": f"[::]:{REDIRECT_PORT}"}
PLAIN = {"name": "o", "mode": "originate", "listen": "127.0.0.1:0", "peer": "127.0.0.1:8443",
         "server_name": "bar.internal", "allow": [{"dns": "bar.internal"}]}


def write(where, ident, tunnels, routes=ROUTES, name="fedgate.json"):
    cfg = {"identity": ident, "dataplane": {"workers": 1, "offload": "userspace"},
           "capture": {"mark": MARK, "route_table": TABLE},
           "routes": copy.deepcopy(routes), "tunnels": copy.deepcopy(tunnels)}
    path = write_config(where, cfg, name)
    os.chmod(path, 0o644)
    return str(path)


@pytest.fixture
def config(confdir):
    """write(tunnels, routes=ROUTES, name=...) -> the path of a config in confdir."""
    d, ident = confdir
    return lambda tunnels, routes=ROUTES, name="fedgate.json": write(pathlib.Path(d), ident,
                                                                     tunnels, routes, name)


# --- what is installed, read back from the kernel --------------------------------------


def ip_json(ns, family, *args):
    r = inns(ns, "ip", "-j", family, *args, check=False)
    if r.returncode:  # a table with no route left is no table at all
        assert "does not exist" in r.stderr, r.stderr
        return []
    return json.loads(r.stdout or "[]")


def ruleset(ns):
    return json.loads(inns(ns, "nft", "-j", "list", "ruleset").stdout)["nftables"]


def owned(ns):
    """Everything `capture up` may add in @ns, handles left out."""
    items = ruleset(ns)
    mine = [next(iter(i.values())) for i in items if "metainfo" not in i]
    mine = [o for o in mine if o["family"] == "inet" and o.get("table", o.get("name")) == "fedgate"]
    return {
        "tables": [i["table"]["name"] for i in items if "table" in i
                   and i["table"]["family"] == "inet" and i["table"]["name"] == "fedgate"],
        "chains": {c["name"]: (c["type"], c["hook"], c["prio"], c["policy"])
                   for c in mine if "hook" in c},
        "rules": {chain: [r["expr"] for r in mine if "expr" in r and r["chain"] == chain]
                  for chain in ("prerouting", "output")},
        "ip_rules": {fam: [r for r in ip_json(ns, fam, "rule") if "fwmark" in r]
                     for fam in ("-4", "-6")},
        "routes": {fam: ip_json(ns, fam, "route", "show", "table", str(TABLE))
                   for fam in ("-4", "-6")},
    }


NOTHING = {"tables": [], "chains": {}, "rules": {"prerouting": [], "output": []},
           "ip_rules": {"-4": [], "-6": []}, "routes": {"-4": [], "-6": []}}


def daddr(proto, net):
    addr, plen = net.split("/")
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "daddr"}},
                      "right": {"prefix": {"addr": addr, "len": int(plen)}}}}


def dport(ports):
    lo, _, hi = ports.partition("-")
    right = {"range": [int(lo), int(hi)]} if hi else int(lo)
    return {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                      "right": right}}


def every_prefix_and_port():
    for route in ROUTES:
        for net in route["to"]:
            for ports in route["ports"]:
                yield ("ip6" if ":" in net else "ip"), net, ports


# SPEC.md: ip daddr P tcp dport R meta mark set M tproxy ip to :PORT accept (and ip6)
TPROXY_RULES = [[daddr(proto, net), dport(ports),
                 {"mangle": {"key": {"meta": {"key": "mark"}}, "value": MARK}},
                 {"tproxy": {"family": proto, "port": TPROXY_PORT}}, {"accept": None}]
                for proto, net, ports in every_prefix_and_port()]
# SPEC.md: meta mark != M ip daddr P tcp dport R redirect to :PORT (and ip6)
REDIRECT_RULES = [[{"match": {"op": "!=", "left": {"meta": {"key": "mark"}}, "right": MARK}},
                   daddr(proto, net), dport(ports), {"redirect": {"port": REDIRECT_PORT}}]
                  for proto, net, ports in every_prefix_and_port()]
# fwmark M lookup T, and before it, for fedgate's own (marked, locally made) packets, main
IP_RULES = [{"priority": 32764, "src": "all", "fwmark": hex(MARK), "iif": "lo", "table": "main"},
            {"priority": 32765, "src": "all", "fwmark": hex(MARK), "table": str(TABLE)}]
LOCAL_ROUTE = {"type": "local", "dst": "default", "dev": "lo"}

BOTH = {"tables": ["fedgate"],
        "chains": {"prerouting": ("filter", "prerouting", -150, "accept"),
                   "output": ("nat", "output", -100, "accept")},
        "rules": {"prerouting": TPROXY_RULES, "output": REDIRECT_RULES},
        "ip_rules": {"-4": IP_RULES, "-6": IP_RULES}}


def assert_both(state):
    routes = state.pop("routes")
    assert state == BOTH
    for fam in ("-4", "-6"):
        assert len(routes[fam]) == 1, routes
        assert LOCAL_ROUTE.items() <= routes[fam][0].items(), routes


def other_table(ns):
    inns(ns, "nft", "add table ip other; add chain ip other c { type filter hook input "
         "priority 0; }; add rule ip other c tcp dport 22 meta mark set 0x4647 accept")
    return inns(ns, "nft", "-j", "list", "table", "ip", "other").stdout


# --- up, down, check ------------------------------------------------------------------


def test_up_installs_the_table_rules_and_routes_once_and_down_removes_them(netns, config):
    ns = netns()
    path = config([TPROXY, REDIRECT])
    other = other_table(ns)
    for _ in range(2):
        r = fedgate(ns, "capture", "up", "-c", path)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "capture up: table inet fedgate installed\n"
        assert_both(owned(ns))
    assert inns(ns, "nft", "-j", "list", "table", "ip", "other").stdout == other
    for _ in range(2):
        r = fedgate(ns, "capture", "down", "-c", path)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "capture down: table inet fedgate removed\n"
        assert owned(ns) == NOTHING
    assert inns(ns, "nft", "-j", "list", "table", "ip", "other").stdout == other
    # the namespace's own rules are all still there
    assert [r["priority"] for r in ip_json(ns, "-4", "rule")] == [0, 32766, 32767]


def test_down_with_nothing_installed_is_fine(netns, config):
    ns = netns()
    r = fedgate(ns, "capture", "down", "-c", config([REDIRECT]))
    assert r.returncode == 0, r.stderr
    assert owned(ns) == NOTHING


def test_redirect_only_needs_no_routing_and_up_drops_what_tproxy_left(netns, config):
    ns = netns()
    assert fedgate(ns, "capture", "up", "-c", config([TPROXY, REDIRECT])).returncode == 0
    r = fedgate(ns, "capture", "up", "-c", config([REDIRECT], name="redirect.json"))
    assert r.returncode == 0, r.stderr
    state = owned(ns)
    assert state["chains"] == {"output": ("nat", "output", -100, "accept")}
    assert state["rules"] == {"prerouting": [], "output": REDIRECT_RULES}
    assert state["ip_rules"] == NOTHING["ip_rules"]
    assert state["routes"] == NOTHING["routes"]


def test_ipv4_routes_get_ipv4_routing_only(netns, config):
    ns = netns()
    v4 = [dict(ROUTES[0], to=["10.20.0.0/16"])]
    assert fedgate(ns, "capture", "up", "-c", config([TPROXY], routes=v4)).returncode == 0
    state = owned(ns)
    assert state["ip_rules"] == {"-4": IP_RULES, "-6": []}
    assert len(state["routes"]["-4"]) == 1 and state["routes"]["-6"] == []


def check_script(path):
    """`fedgate check`'s capture part: (the "capture:" line, the script after it)."""
    r = subprocess.run([FEDGATE, "check", "-c", path], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines(keepends=True)
    assert lines[0].startswith(f"{path}: OK: 2 tunnel(s), "), r.stdout
    return lines[1], "".join(lines[2:])


def test_check_prints_a_script_that_does_what_up_does(netns, config):
    path = config([TPROXY, REDIRECT])
    head, script = check_script(path)
    assert head == ("capture: 1 tproxy and 1 redirect tunnel(s); `fedgate capture up` "
                    "installs what this shell script would:\n")
    assert "\t\tip daddr 10.20.0.0/16 tcp dport 1-65535 meta mark set 0x4647 tproxy ip to " \
           ":15001 accept\n" in script
    assert "\t\tmeta mark != 0x4647 ip6 daddr fd20::/64 tcp dport 1-65535 redirect to " \
           ":15002\n" in script
    assert f"ip rule add fwmark 0x4647 lookup {TABLE} priority 32765\n" in script
    assert f"ip -6 route add local ::/0 dev lo table {TABLE}\n" in script
    by_hand, by_fedgate = netns(), netns()
    inns(by_hand, "sh", "-ec", script)
    assert fedgate(by_fedgate, "capture", "up", "-c", path).returncode == 0
    assert_both(owned(by_hand))
    assert owned(by_hand) == owned(by_fedgate)
    # and `down` removes what was made by hand just as well
    assert fedgate(by_hand, "capture", "down", "-c", path).returncode == 0
    assert owned(by_hand) == NOTHING


def test_check_without_capture_tunnels_says_nothing_about_capture(config):
    r = subprocess.run([FEDGATE, "check", "-c", config([PLAIN])], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "capture" not in r.stdout, r.stdout


def test_unprivileged_up_and_down_fail_clearly(netns, config):
    ns = netns()
    path = config([TPROXY, REDIRECT])
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for verb in ("up", "down"):
        r = inns(ns, *nobody, FEDGATE, "capture", verb, "-c", path, check=False)
        assert r.returncode == 1, f"{verb}: exit {r.returncode}: {r.stderr}"
        assert r.stderr == f"fedgate: capture {verb} needs root (CAP_NET_ADMIN)\n", r.stderr
        assert owned(ns) == NOTHING
    # and an unprivileged down leaves root's capture in place
    assert fedgate(ns, "capture", "up", "-c", path).returncode == 0
    assert inns(ns, *nobody, FEDGATE, "capture", "down", "-c", path, check=False).returncode == 1
    assert_both(owned(ns))


def test_config_and_usage_errors_exit_2(netns, config):
    ns = netns()
    path = config([PLAIN], name="plain.json")
    r = fedgate(ns, "capture", "up", "-c", path)
    assert (r.returncode, r.stderr) == (
        2, f'fedgate: {path}: no tunnel has "capture": nothing to install\n')
    port0 = config([dict(TPROXY, listen="[::]:0")], name="port0.json")
    r = fedgate(ns, "capture", "up", "-c", port0)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"fedgate: {port0}: $.tunnels[0].listen: "), r.stderr
    assert "fixed port" in r.stderr
    # `run` takes a listener on port 0, so `check` says so and passes
    r = subprocess.run([FEDGATE, "check", "-c", port0], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "capture: `fedgate capture up` refuses this config: " in r.stdout, r.stdout
    r = fedgate(ns, "capture", "up", "-c", os.path.join(os.path.dirname(path), "none.json"))
    assert r.returncode == 2 and "cannot open" in r.stderr, r.stderr
    for args in ([], ["sideways", "-c", path], ["up"], ["up", "-c"], ["up", "-c", path, "x"],
                 ["up", "-x", path]):
        r = fedgate(ns, "capture", *args)
        assert r.returncode == 2, f"{args}: {r.returncode} {r.stderr}"
        assert r.stderr.endswith("usage: fedgate capture up|down -c FILE\n"), r.stderr
    assert owned(ns) == NOTHING


# --- the rules capture --------------------------------------------------------------------

# Accepts N connections on [::]:PORT (dual-stack; IP_TRANSPARENT when asked) and prints, for
# each, the address it was accepted on and, for REDIRECT, SO_ORIGINAL_DST.
LISTENER = r"""
import json, socket, struct, sys
port, n, transparent = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if transparent:
    s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
    s.setsockopt(socket.IPPROTO_IPV6, 75, 1)  # IPV6_TRANSPARENT
s.bind(("::", port))
s.listen(16)
s.settimeout(10)
print("ready", flush=True)

def original_dst(c):
    try:
        raw = c.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST
        return [socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack("!H", raw[2:4])[0]]
    except OSError:
        pass
    try:
        raw = c.getsockopt(socket.IPPROTO_IPV6, 80, 28)  # IP6T_SO_ORIGINAL_DST
        return [socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack("!H", raw[2:4])[0]]
    except OSError:
        return None

got = []
for _ in range(n):
    c, _peer = s.accept()
    got.append({"on": list(c.getsockname()[:2]), "orig": original_dst(c)})
    c.close()
print(json.dumps(got), flush=True)
"""

# Dials each [host, port] (with SO_MARK MARK when MARK is not 0); prints "ok" or the error.
DIALER = r"""
import json, socket, sys
mark, timeout = int(sys.argv[1]), float(sys.argv[2])
out = []
for host, port in json.loads(sys.argv[3]):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if mark:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    try:
        s.connect((host, port))
        out.append("ok")
    except OSError as e:
        out.append(f"{type(e).__name__}: {e}")
    s.close()
print(json.dumps(out))
"""


def listen(ns, port, n, transparent):
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER, str(port),
                          str(n), "1" if transparent else "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n", p.stderr.read()
    return p


def accepted(p):
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    return json.loads(out)


def dial(ns, targets, mark=0, timeout=5.0):
    r = inns(ns, sys.executable, "-c", DIALER, str(mark), str(timeout), json.dumps(targets))
    return json.loads(r.stdout)


def veth(ns_a, a, ns_b, b, addrs_a, addrs_b):
    """A veth pair @a in @ns_a, @b in @ns_b, up, with the given addresses (IPv6 without DAD)."""
    subprocess.run(["ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", b, "netns",
                    ns_b], check=True, capture_output=True)
    for ns, dev, addrs in ((ns_a, a, addrs_a), (ns_b, b, addrs_b)):
        for addr in addrs:
            inns(ns, "ip", "addr", "add", addr, "dev", dev, *(["nodad"] if ":" in addr else []))
        inns(ns, "ip", "link", "set", dev, "up")


def test_redirect_captures_local_connections_but_not_marked_ones(netns, config):
    ns, far = netns(), netns()
    # 10.20.0.0/16 and fd20::/64 lead out of a link where nothing answers
    veth(ns, "out0", far, "in0", ["10.9.0.1/24", "fd09::1/64"], [])
    inns(ns, "ip", "route", "add", "10.20.0.0/16", "dev", "out0")
    inns(ns, "ip", "-6", "route", "add", "fd20::/64", "dev", "out0")
    inns(ns, "ip", "route", "add", "10.30.0.0/24", "dev", "out0")
    assert fedgate(ns, "capture", "up", "-c", config([REDIRECT])).returncode == 0
    p = listen(ns, REDIRECT_PORT, 3, transparent=False)
    try:
        assert dial(ns, [["10.20.0.5", 5432], ["fd20::7", 8080], ["10.30.0.9", 443]]) \
            == ["ok"] * 3
        got = accepted(p)
    finally:
        p.kill()
        p.wait()
    assert [g["orig"] for g in got] == [["10.20.0.5", 5432], ["fd20::7", 8080],
                                       ["10.30.0.9", 443]]
    # a port outside the route's, and fedgate's own marked sockets, are not captured
    assert dial(ns, [["10.30.0.9", 22]], timeout=1)[0].startswith("TimeoutError"), "captured"
    assert dial(ns, [["10.20.0.5", 5432]], mark=MARK, timeout=1)[0].startswith("TimeoutError")


def test_tproxy_captures_routed_connections_and_lets_fedgate_dial_out(netns, config):
    """A client routes 10.20.0.0/16 and fd20::/64 through the gateway namespace; there, the
    IP_TRANSPARENT listener gets its connections, addressed to the original destination;
    and the gateway's own marked sockets still reach the client (they would be routed
    into lo by the capture rule alone: the 32764 "iif lo lookup main" rule is why not)."""
    client, gw = netns(), netns()
    veth(client, "c0", gw, "g0", ["10.1.0.2/24", "fd01::2/64"], ["10.1.0.1/24", "fd01::1/64"])
    inns(client, "ip", "route", "add", "10.20.0.0/16", "via", "10.1.0.1")
    inns(client, "ip", "-6", "route", "add", "fd20::/64", "via", "fd01::1")
    assert fedgate(gw, "capture", "up", "-c", config([TPROXY])).returncode == 0
    p = listen(gw, TPROXY_PORT, 2, transparent=True)
    try:
        assert dial(client, [["10.20.0.5", 5432], ["fd20::7", 8080]]) == ["ok", "ok"]
        got = accepted(p)
    finally:
        p.kill()
        p.wait()
    assert [g["on"] for g in got] == [["::ffff:10.20.0.5", 5432], ["fd20::7", 8080]]
    back = listen(client, 7000, 2, transparent=False)
    try:
        assert dial(gw, [["10.1.0.2", 7000], ["fd01::2", 7000]], mark=MARK) == ["ok", "ok"]
        accepted(back)
    finally:
        back.kill()
        back.wait()
