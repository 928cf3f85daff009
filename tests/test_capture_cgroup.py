"""cgroup capture (SPEC16 1) end to end, in network namespaces (tests/netns.py) and a child
cgroup v2 the module makes under the cgroup2 mount and removes afterwards.

Gateway A (in aws) has a "cgroup" capture tunnel: its BPF programs, attached to that cgroup,
send every TCP connect from a process inside it to a routed address to A's listener; A carries
it over mTLS to gateway B (in gcp, transparent terminate), which dials the destination.
Unmodified clients (python sockets, in a process that joins the cgroup before it makes its
socket) see the address they dialed in getpeername(); a client outside the cgroup goes
straight, as without fedgate. B itself runs inside the cgroup: its own upstream dials, to
routed addresses, carry fedgate's mark and are left alone. The original-destination map is
empty once A accepted, and once a connection A never accepted closed. A second gateway on the
cgroup attaches beside the first, and once it exits, its routes are no longer rewritten.

Needs root, network namespaces, cgroup2 and BPF; anywhere else every test SKIPs, loudly.
"""

import json
import os
import signal
import subprocess
import uuid

import pytest

from conftest import FEDGATE, Gateway, gateway_config, wait_for
from netns import A_WAN4, A_WAN6, CLIENT4, CLIENT6, NetNSError, Service, Topology, probe
from pki import issue_leaf

PORT, PORT2, B_PORT = 15003, 15004, 8443
ECHO4, ECHO6, WHOAMI = ("10.20.0.5", 5432), ("fd20::7", 8080), ("10.20.0.6", 80)
# Where a connection that did NOT cross the tunnel comes from, as the service sees it.
A_SIDE = {CLIENT4, CLIENT6, A_WAN4, A_WAN6}
SIZES = [0, 1, 64 << 10, 1 << 20]
CGROUP2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")

# The application (started in the cgroup, or not, by join()): connects and, by mode: "echo" sends SIZE seeded random bytes and reads them back; "read" reads to
# EOF; "hold" says it is connected and waits for a line on stdin, then closes. One JSON line.
CLIENT = r"""
import json, os, random, socket, sys, threading
host, port, size, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(15)
out = {}
try:
    s.connect((host, port))
    out["peer"] = list(s.getpeername()[:2])
    if mode == "echo":
        data = random.Random(size).randbytes(size)
        got = bytearray()
        def reader():
            while True:
                b = s.recv(1 << 16)
                if not b:
                    return
                got.extend(b)
        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        t.join(60)
        out["match"] = bytes(got) == data
        out["got"] = len(got)
    elif mode == "read":
        b = bytearray()
        while True:
            c = s.recv(4096)
            if not c:
                break
            b.extend(c)
        out["text"] = b.decode()
    elif mode == "hold":
        print(json.dumps(out), flush=True)
        sys.stdin.readline()
except OSError as e:
    out["error"] = f"{type(e).__name__}: {e}"
s.close()
print(json.dumps(out), flush=True)
"""


def whoami(conn):
    conn.sendall(conn.getpeername()[0].encode())


def cgroup2_root():
    for d in CGROUP2_ROOTS:
        r = subprocess.run(["stat", "-f", "-c", "%T", d], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == "cgroup2fs":
            return d
    return None


def cgroup_remove(path):
    """Moves whatever is left in @path to its parent, then removes it; never raises."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = f.read().split()
        for pid in pids:
            try:
                with open(os.path.join(os.path.dirname(path), "cgroup.procs"), "w") as f:
                    f.write(pid)
            except OSError:
                pass
        os.rmdir(path)
    except OSError:
        pass


def a_config(pki, cgroup, port, routes, name="local"):
    allow_b = [{"dns": "gw-b.gcp.test", "root": "Kubernetes Root CA"}]
    cfg = gateway_config(pki, "gw_a", [
        {"name": name, "mode": "originate", "capture": "cgroup", "listen": f"[::]:{port}"}])
    cfg["capture"] = {"cgroup": cgroup}
    cfg["routes"] = [{"to": routes, "peer": f"203.0.113.2:{B_PORT}",
                      "server_name": "gw-b.gcp.test", "allow": allow_b}]
    return cfg


def b_config(pki):
    reach = [f"{ECHO4[0]}:{ECHO4[1]}", f"[{ECHO6[0]}]:{ECHO6[1]}", f"{WHOAMI[0]}:{WHOAMI[1]}"]
    return gateway_config(pki, "gw_b", [
        {"name": "from-aws", "mode": "terminate", "transparent": True,
         "listen": f"0.0.0.0:{B_PORT}",
         "allow": [{"dns": "gw-a.aws.test", "root": "Cloud Root CA", "reach": reach}]}])


def join(cg):
    """A preexec_fn: the child enters @cg before it execs (`ip netns exec` hides /sys)."""
    def enter():
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    return enter


class Net:
    def __init__(self, topo, cg, a, b, tmp, pki):
        self.topo, self.cg, self.a, self.b, self.tmp, self.pki = topo, cg, a, b, tmp, pki
        self.aws, self.gcp = topo.aws, topo.gcp

    def client(self, dst, size=0, mode="echo", inside=True, **kw):
        r = subprocess.run(["ip", "netns", "exec", self.aws.name, "python3", "-c", CLIENT,
                            dst[0], str(dst[1]), str(size), mode],
                           capture_output=True, text=True, timeout=120,
                           preexec_fn=join(self.cg) if inside else None, **kw)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout.splitlines()[-1])

    def progs(self):
        """The programs attached to the cgroup: [{"id", "attach_type", "name"...}]."""
        r = subprocess.run(["bpftool", "-j", "cgroup", "show", self.cg], capture_output=True,
                           text=True, check=True)
        return json.loads(r.stdout or "[]")

    def pending(self, gw):
        """Entries in @gw's original-destination map (found through its own programs)."""
        maps = set()
        for p in self.progs():
            info = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id",
                                              str(p["id"])], capture_output=True, text=True,
                                             check=True).stdout)
            maps.update(info.get("map_ids", []))
        for m in sorted(maps):
            info = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "id", str(m)],
                                             capture_output=True, text=True,
                                             check=True).stdout)
            if info.get("name") != "fg_cap_orig" or info.get("pids") and not any(
                    x["pid"] == gw.proc.pid for x in info["pids"]):
                continue
            dump = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(m)],
                                  capture_output=True, text=True, check=True).stdout
            return len(json.loads(dump or "[]"))
        raise AssertionError(f"no fg_cap_orig map of {gw.name} on {self.cg}")


@pytest.fixture(scope="module")
def net(pki, tmp_path_factory):
    why = probe()
    if why:
        pytest.skip(f"SKIP: cgroup capture tests need root and network namespaces: {why}")
    root = cgroup2_root()
    if not root:
        pytest.skip(f"SKIP: no cgroup2 mount at {' or '.join(CGROUP2_ROOTS)}")
    if subprocess.run(["which", "bpftool"], capture_output=True).returncode:
        pytest.skip("SKIP: bpftool is missing (it reads the programs' maps back)")
    issue_leaf(pki, "gw_a", cn="gw-a.aws.test", dns=["gw-a.aws.test"], issuer="cloud")
    issue_leaf(pki, "gw_b", cn="gw-b.gcp.test", dns=["gw-b.gcp.test"], issuer="kubernetes")
    rel = f"fgcg-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    cg = os.path.join(root, rel)
    try:
        os.mkdir(cg)
    except OSError as e:
        pytest.skip(f"SKIP: cannot make a child cgroup under {root}: {e}")
    try:
        topo = Topology().build()
    except NetNSError as e:
        cgroup_remove(cg)
        pytest.skip(f"SKIP: cannot build the network namespaces: {e}")
    tmp = tmp_path_factory.mktemp("cgcap")
    services, gws = [], []
    try:
        for addr in (ECHO4, ECHO6):
            services.append(Service(topo.gcp, *addr))
        services.append(Service(topo.gcp, *WHOAMI, handler=whoami))
        b = Gateway(tmp, "gcp-b", b_config(pki))
        # relative to the cgroup2 mount, as $.capture.cgroup allows
        a = Gateway(tmp, "aws-a", a_config(pki, rel, PORT, ["10.20.0.5/32", "fd20::/64"]))
        with topo.gcp.enter():
            gws.append(b.start())
        # B's own upstream dials (to routed addresses) are made inside the cgroup
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(b.proc.pid))
        with topo.aws.enter():
            gws.append(a)
            try:
                a.start()
            except AssertionError as e:
                if "BPF" in a.log() and ("not permitted" in a.log() or "refused" in a.log()):
                    pytest.skip(f"SKIP: this kernel or process cannot load the cgroup capture "
                                f"BPF programs:\n{a.log()}")
                raise
        yield Net(topo, cg, a, b, tmp, pki)
    finally:
        codes = {gw.name: gw.stop() for gw in gws}
        for s in services:
            s.close()
        topo.destroy()
        cgroup_remove(cg)
    assert not os.path.exists(cg)
    bad = {name: rc for name, rc in codes.items() if rc != 0}
    assert not bad, f"gateways exited non-zero: {bad}\n" + "\n".join(
        f"--- {gw.name}\n{gw.log()}" for gw in gws)


def test_start_up_log_says_what_is_attached_where(net):
    log = net.a.log()
    assert f"cgroup capture: TCP connects from processes in cgroup {net.cg} to 2 prefix(es)" \
        in log, log
    assert f"IPv4 to tunnel local at 127.0.0.1:{PORT}" in log, log
    assert f"IPv6 to tunnel local at [::1]:{PORT}" in log, log
    types = sorted(p["attach_type"] for p in net.progs())
    assert len(types) == 6, types


@pytest.mark.parametrize("size", SIZES)
def test_ipv4_client_is_captured_byte_exact(net, size):
    out = net.client(ECHO4, size)
    assert out.get("match") is True, out
    assert out["peer"] == list(ECHO4), out  # the address it dialed, not A's listener
    assert net.pending(net.a) == 0


@pytest.mark.parametrize("size", [1, 1 << 20])
def test_ipv6_client_is_captured_byte_exact(net, size):
    out = net.client(ECHO6, size)
    assert out.get("match") is True, out
    assert out["peer"] == list(ECHO6), out
    assert net.pending(net.a) == 0


def test_ipv4_mapped_dual_stack_client_is_captured(net):
    mapped = ("::ffff:" + ECHO4[0], ECHO4[1])
    out = net.client(mapped, 64 << 10)
    assert out.get("match") is True, out
    assert out["peer"] == list(mapped), out
    assert net.pending(net.a) == 0


def test_service_sees_the_tunnel_and_a_client_outside_goes_straight(net):
    # WHOAMI is routed by the second gateway only (test below); here, A routes it nowhere:
    # inside or outside the cgroup, it goes straight, as without fedgate
    direct = net.client(WHOAMI, mode="read", inside=False)
    assert direct.get("text") in A_SIDE, direct
    captured = net.client(ECHO4, 1, inside=False)
    assert captured.get("match") is True, captured  # straight: aws routes it to gcp
    # inside, ECHO4 crosses the tunnel: A logs the flow it carried
    before = net.a.log().count(f"-> {ECHO4[0]}:{ECHO4[1]}")
    assert net.client(ECHO4, 1).get("match") is True
    wait_for(lambda: net.a.log().count(f"-> {ECHO4[0]}:{ECHO4[1]}") > before, 10,
             f"A to log the flow:\n{net.a.log()}")


def test_fedgates_own_upstream_dials_are_not_captured(net):
    # B lives in the cgroup, and its upstream dial goes to a routed address: captured, it
    # would meet nothing on 127.0.0.1:15003 in gcp and the client a reset instead of its echo
    with open(f"/proc/{net.b.proc.pid}/cgroup") as f:
        assert any(line.rstrip().endswith("/" + os.path.basename(net.cg)) for line in f)
    assert net.client(ECHO4, 1000).get("match") is True


def test_map_entry_goes_when_a_connection_is_never_accepted(net):
    net.a.proc.send_signal(signal.SIGSTOP)  # the kernel still completes handshakes
    try:
        p = subprocess.Popen(["ip", "netns", "exec", net.aws.name, "python3", "-c", CLIENT,
                              ECHO4[0], str(ECHO4[1]), "0", "hold"], preexec_fn=join(net.cg),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            first = json.loads(p.stdout.readline())
            assert first.get("peer") == list(ECHO4), first
            assert net.pending(net.a) == 1
            p.stdin.write("\n")
            p.stdin.flush()
            p.wait(20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        wait_for(lambda: net.pending(net.a) == 0, 10, "the entry to go at TCP_CLOSE")
    finally:
        net.a.proc.send_signal(signal.SIGCONT)
    # A accepts the closed connection at last and finds no destination: refused
    net.a.wait_log(r"no original destination \(No such file or directory\)")
    assert net.client(ECHO4, 1).get("match") is True


def test_map_entry_goes_when_a_never_accepted_connection_lingers_in_fin_wait2(net):
    # Over 60 s, an orphan whose FIN was ACKed waits in FIN_WAIT2 as a full socket, on the
    # FIN_WAIT2 timer, not in TIME_WAIT: TCP_CLOSE comes only when that fires. (At 60 s, the
    # same happens when the ACK meets the socket still locked by close(): a race.) The entry
    # goes when the application closes the socket, not a minute later.
    def fin_timeout(v=None):
        """Sets net.ipv4.tcp_fin_timeout in aws to @v, or returns it."""
        arg = [f"net.ipv4.tcp_fin_timeout={v}"] if v else ["-n", "net.ipv4.tcp_fin_timeout"]
        return subprocess.run(["ip", "netns", "exec", net.aws.name, "sysctl", "-q", *arg],
                              capture_output=True, text=True, check=True).stdout.strip()

    def lingering():
        r = subprocess.run(["ip", "netns", "exec", net.aws.name, "ss", "-tnoH", "state",
                            "fin-wait-2", "dst", f"127.0.0.1:{PORT}"], capture_output=True,
                           text=True, check=True)
        return "timer:(keepalive" in r.stdout

    refused = net.a.log().count("no original destination")
    was = fin_timeout()
    fin_timeout(120)
    net.a.proc.send_signal(signal.SIGSTOP)
    try:
        p = subprocess.Popen(["ip", "netns", "exec", net.aws.name, "python3", "-c", CLIENT,
                              ECHO4[0], str(ECHO4[1]), "0", "hold"], preexec_fn=join(net.cg),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert json.loads(p.stdout.readline()).get("peer") == list(ECHO4)
            assert net.pending(net.a) == 1
            p.stdin.write("\n")
            p.stdin.flush()
            p.wait(20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        wait_for(lingering, 10, "the closed client to linger in FIN_WAIT2")
        wait_for(lambda: net.pending(net.a) == 0, 10, "the entry to go at close")
        assert lingering()  # gone while TCP_CLOSE is still to come
    finally:
        net.a.proc.send_signal(signal.SIGCONT)
        fin_timeout(was)
    net.a.wait_log(r"no original destination \(No such file or directory\)", count=refused + 1)
    assert net.client(ECHO4, 1).get("match") is True


def test_check_and_capture_up_say_what_cgroup_capture_does(net):
    def fedgate(*args):
        # setns, not `ip netns exec`: that mounts a sysfs of its own, without the cgroup2 mount
        with net.aws.enter():
            return subprocess.run([FEDGATE, *args], capture_output=True, text=True, timeout=30)

    r = fedgate("check", "-c", str(net.a.config_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"cgroup capture: TCP connects from processes in cgroup {net.cg}" in r.stdout
    assert "the BPF programs load on this kernel" in r.stdout, r.stdout
    assert "nft -f" not in r.stdout, r.stdout
    r = fedgate("capture", "up", "-c", str(net.a.config_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to install" in r.stdout and "fedgate run" in r.stdout, r.stdout
    assert len(net.progs()) == 6  # check probed and attached nothing


@pytest.mark.parametrize("cgroup,why", [
    (None, "$.capture.cgroup: missing"),
    ("no-such-cgroup-here", "no such cgroup"),
    ("/tmp", "not on a cgroup v2 filesystem"),
    ("/etc/hostname", "not a directory"),
])
def test_bad_cgroup_is_a_config_error(net, cgroup, why):
    cfg = a_config(net.pki, cgroup, PORT2, ["10.20.0.6/32"])
    if cgroup is None:
        del cfg["capture"]
    path = net.tmp / f"bad-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([FEDGATE, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert why in r.stderr and "$.capture.cgroup" in r.stderr, r.stderr


def test_second_gateway_attaches_beside_and_detaches_at_exit(net):
    cfg = a_config(net.pki, net.cg, PORT2, [f"{WHOAMI[0]}/32"], name="second")
    a2 = Gateway(net.tmp, "aws-a2", cfg)
    with net.aws.enter():
        a2.start()
    try:
        assert len(net.progs()) == 12
        out = net.client(WHOAMI, mode="read")  # the second one's route: through B
        assert out.get("peer") == list(WHOAMI), out
        assert out.get("text") and out["text"] not in A_SIDE, out
        assert net.client(ECHO4, 1000).get("match") is True  # the first still works
        assert net.pending(a2) == 0
    finally:
        rc = a2.stop()
    assert rc == 0, a2.log()
    assert "cgroup capture: detached" in a2.log()
    assert len(net.progs()) == 6
    # after its exit, its route is no longer rewritten: straight to the service
    out = net.client(WHOAMI, mode="read")
    assert out.get("text") in A_SIDE, out
    assert net.client(ECHO4, 1).get("match") is True
