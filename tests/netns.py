"""Network namespaces for the transparent-mode tests: four of them, wired as two clouds.

    client --veth-- aws ==veth== [internet: bridge br0, sniffer] ==veth== gcp (dummy: services)

- client  10.1.0.2/24 fd01::2/64, default routes via aws (10.1.0.1, fd01::1)
- aws     gateway A; forwards v4 and v6; 203.0.113.1/24 2001:db8:1::1/64 towards internet;
          10.20.0.0/16 and fd20::/64 via gcp, so that without capture the client's traffic
          goes straight to gcp's services in plaintext (the "direct routing")
- internet a bridge between aws and gcp; Sniffer records the TCP bytes that cross it
- gcp     gateway B 203.0.113.2/24 2001:db8:1::2/64; 10.20.0.5 10.20.0.6 10.20.0.8 fd20::7 on a
          dummy interface (on lo where the kernel has no dummy driver); routes back to
          10.1.0.0/24 and fd01::/64 via aws

Namespaces are entered per thread with setns(2) (NetNS.enter): a socket made inside keeps its
namespace, and a process started inside is born there. Names are unique per run and every
namespace is deleted by Topology.destroy, which the fixture calls even when a test fails.
"""

import contextlib
import ctypes
import errno
import os
import socket
import struct
import subprocess
import threading
import time
import uuid

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
# The namespace this process started in (the main thread's, before any setns).
_HOME_NS = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

# Where each side lives: (namespace role, address) pairs the tests use.
CLIENT4, CLIENT6 = "10.1.0.2", "fd01::2"
AWS4, AWS6 = "10.1.0.1", "fd01::1"
A_WAN4, A_WAN6 = "203.0.113.1", "2001:db8:1::1"
B_WAN4, B_WAN6 = "203.0.113.2", "2001:db8:1::2"
SERVICE_ADDRS = ("10.20.0.5", "10.20.0.6", "10.20.0.8", "fd20::7")


class NetNSError(Exception):
    """The topology cannot be built here (no netns, no veth...): the tests skip, loudly."""


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def sh(*argv, check=True, timeout=20):
    """Runs @argv; returns its CompletedProcess. A failure raises with its stderr."""
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, r.args, r.stdout, r.stderr)
    return r


class NetNS:
    """One named network namespace (/run/netns/NAME)."""

    def __init__(self, role, name):
        self.role = role
        self.name = name

    def ip(self, *args, check=True):
        return sh("ip", "-n", self.name, *args, check=check)

    def run(self, *argv, check=True, timeout=20):
        """@argv inside this namespace (ip netns exec)."""
        return sh("ip", "netns", "exec", self.name, *argv, check=check, timeout=timeout)

    def sysctl(self, key, value):
        self.run("sysctl", "-qw", f"{key}={value}")

    @contextlib.contextmanager
    def enter(self):
        """The calling thread lives in this namespace until the block ends."""
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
            try:
                yield self
            finally:
                _setns(_HOME_NS)
        finally:
            os.close(fd)

    def connect(self, host, port, timeout=10):
        """A TCP connection made from inside this namespace."""
        with self.enter():
            return socket.create_connection((host, port), timeout=timeout)

    def __repr__(self):
        return f"NetNS({self.role}={self.name})"


class Topology:
    """client, aws, internet, gcp: see the module's docstring."""

    def __init__(self):
        tag = f"fgt{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.tag = tag
        self.client, self.aws, self.internet, self.gcp = (
            NetNS(r, f"{tag}-{r}") for r in ("client", "aws", "internet", "gcp"))
        self.made = []
        self.dummy = True  # False: the services' addresses sit on gcp's lo

    @property
    def all(self):
        return (self.client, self.aws, self.internet, self.gcp)

    def build(self):
        """Makes everything; on any failure, removes what it made and raises NetNSError."""
        try:
            self._build()
        except (subprocess.CalledProcessError, OSError, NetNSError) as e:
            err = getattr(e, "stderr", "") or ""
            self.destroy()
            raise NetNSError(f"{e} {err.strip()}") from e
        return self

    def _build(self):
        for ns in self.all:
            sh("ip", "netns", "add", ns.name)
            self.made.append(ns)
            ns.ip("link", "set", "lo", "up")
        c, a, i, g = self.all
        # internet: a plain bridge, no addresses, no IPv6 chatter of its own
        i.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
        i.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
        i.ip("link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
        i.ip("link", "set", "br0", "up")
        c.ip("link", "add", "eth0", "type", "veth", "peer", "name", "client", "netns", a.name)
        a.ip("link", "add", "wan", "type", "veth", "peer", "name", "p-aws", "netns", i.name)
        g.ip("link", "add", "wan", "type", "veth", "peer", "name", "p-gcp", "netns", i.name)
        for port in ("p-aws", "p-gcp"):
            i.ip("link", "set", port, "master", "br0")
            i.ip("link", "set", port, "up")

        c.ip("addr", "add", "10.1.0.2/24", "dev", "eth0")
        c.ip("addr", "add", "fd01::2/64", "dev", "eth0", "nodad")
        c.ip("link", "set", "eth0", "up")
        c.ip("route", "add", "default", "via", AWS4)
        c.ip("-6", "route", "add", "default", "via", AWS6)

        a.sysctl("net.ipv4.ip_forward", 1)
        a.sysctl("net.ipv6.conf.all.forwarding", 1)
        a.ip("addr", "add", "10.1.0.1/24", "dev", "client")
        a.ip("addr", "add", "fd01::1/64", "dev", "client", "nodad")
        a.ip("addr", "add", "203.0.113.1/24", "dev", "wan")
        a.ip("addr", "add", "2001:db8:1::1/64", "dev", "wan", "nodad")
        a.ip("link", "set", "client", "up")
        a.ip("link", "set", "wan", "up")
        a.ip("route", "add", "10.20.0.0/16", "via", B_WAN4)
        a.ip("-6", "route", "add", "fd20::/64", "via", B_WAN6)

        g.ip("addr", "add", "203.0.113.2/24", "dev", "wan")
        g.ip("addr", "add", "2001:db8:1::2/64", "dev", "wan", "nodad")
        g.ip("link", "set", "wan", "up")
        svc = "svc"
        if g.ip("link", "add", "svc", "type", "dummy", check=False).returncode != 0:
            self.dummy = False  # a kernel without the dummy driver: lo holds them as well
            svc = "lo"
        else:
            g.ip("link", "set", "svc", "up")
        for addr in SERVICE_ADDRS:
            plen = "128" if ":" in addr else "32"
            extra = ("nodad",) if ":" in addr else ()
            g.ip("addr", "add", f"{addr}/{plen}", "dev", svc, *extra)
        g.ip("route", "add", "10.1.0.0/24", "via", A_WAN4)
        g.ip("-6", "route", "add", "fd01::/64", "via", A_WAN6)
        self._wait_reachable()

    def _wait_reachable(self):
        """Every hop carries TCP, v4 and v6: client to aws, aws to gcp, client to a service."""
        probes = ((self.aws, AWS4, self.client), (self.aws, AWS6, self.client),
                  (self.gcp, B_WAN4, self.aws), (self.gcp, B_WAN6, self.aws),
                  (self.gcp, SERVICE_ADDRS[0], self.client),
                  (self.gcp, SERVICE_ADDRS[-1], self.client))
        for where, host, frm in probes:
            svc = Service(where, host, 9, handler=lambda conn: None)
            try:
                deadline = time.monotonic() + 10
                while True:
                    try:
                        frm.connect(host, 9, timeout=1).close()
                        break
                    except OSError as e:
                        if time.monotonic() > deadline:
                            raise NetNSError(f"{frm.role} cannot reach {where.role} at "
                                             f"{host}: {e}") from e
                        time.sleep(0.1)
            finally:
                svc.close()

    def destroy(self):
        """Deletes every namespace made (their links go with them); never raises."""
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns.name, check=False)
        self.made = []


def probe():
    """None when this machine can build a Topology, else why not (for a loud skip)."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "nft", "sysctl"):
        if sh("which", tool, check=False).returncode != 0:
            return f"{tool} missing"
    return None


# --- the sniffer on the bridge -----------------------------------------------------------------

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33


class Sniffer:
    """AF_PACKET, ETH_P_ALL in the internet namespace: every frame a bridge port receives.

    Each frame crosses the bridge once in (on one port) and once out (on the other): only
    frames received by the ports are kept, so each is seen once. TCP payloads are put back in
    sequence order per flow, so a marker split across segments is still found.
    """

    def __init__(self, ns, ports=("p-aws", "p-gcp")):
        self.ns = ns
        self.ports = set(ports)
        self.frames = []
        self.segments = {}  # (src, sport, dst, dport) -> {seq: payload}
        self.isn = {}       # flow -> sequence number of its first payload byte (from SYN)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        with ns.enter():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                frame, where = self.sock.recvfrom(1 << 18)
            except socket.timeout:
                continue
            except OSError:
                return
            if where[0] not in self.ports or where[2] == PACKET_OUTGOING:
                continue
            with self.lock:
                self.frames.append(frame)
                self._tcp(frame)

    def _tcp(self, frame):
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        off = 14
        if ethertype == 0x0800:
            ihl = (frame[off] & 0x0F) * 4
            total, proto = struct.unpack_from("!H", frame, off + 2)[0], frame[off + 9]
            src = socket.inet_ntop(socket.AF_INET, frame[off + 12:off + 16])
            dst = socket.inet_ntop(socket.AF_INET, frame[off + 16:off + 20])
            end = off + total if total else len(frame)
            off += ihl
        elif ethertype == 0x86DD:
            plen, proto = struct.unpack_from("!HB", frame, off + 4)
            src = socket.inet_ntop(socket.AF_INET6, frame[off + 8:off + 24])
            dst = socket.inet_ntop(socket.AF_INET6, frame[off + 24:off + 40])
            end = off + 40 + plen if plen else len(frame)
            off += 40
        else:
            return
        if proto != 6:
            return
        sport, dport, seq = struct.unpack_from("!HHI", frame, off)
        flags = frame[off + 13]
        doff = (frame[off + 12] >> 4) * 4
        flow = (src, sport, dst, dport)
        if flags & 0x02:  # SYN
            self.isn[flow] = (seq + 1) & 0xFFFFFFFF
        payload = bytes(frame[off + doff:min(end, len(frame))])
        if payload:
            self.segments.setdefault(flow, {})[seq] = payload

    def stream(self, flow):
        """The payload bytes of @flow in sequence order (holes, if any, as zeros)."""
        with self.lock:
            segs = dict(self.segments.get(flow, {}))
            base = self.isn.get(flow)
        if not segs:
            return b""
        if base is None:
            base = min(segs)
        out = bytearray()
        for seq, data in sorted(segs.items(), key=lambda kv: (kv[0] - base) & 0xFFFFFFFF):
            rel = (seq - base) & 0xFFFFFFFF
            if rel > len(out):
                out.extend(bytes(rel - len(out)))
            out[rel:rel + len(data)] = data
        return bytes(out)

    def flows(self):
        with self.lock:
            return list(self.segments)

    def saw(self, needle):
        """True when @needle crossed the bridge in any frame or any reassembled TCP stream."""
        with self.lock:
            frames = list(self.frames)
        return any(needle in f for f in frames) or any(needle in self.stream(f)
                                                       for f in self.flows())

    def drops(self):
        packets, drops = struct.unpack(
            "II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return drops

    def settle(self, seconds=0.5):
        """Gives frames in flight time to arrive."""
        time.sleep(seconds)

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


# --- services in gcp ---------------------------------------------------------------------------

def echo(conn):
    """Echoes until EOF, then half-closes."""
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


class Service:
    """A TCP service bound to @host:@port inside @ns; @handler(conn) serves each connection
    in a thread of its own. @peers lists who connected (host, port)."""

    def __init__(self, ns, host, port, handler=echo):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        with ns.enter():
            self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.host, self.port = host, port
        self.handler = handler
        self.peers = []
        self.errors = []
        self.closing = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.closing:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[:2])
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(60)
            self.handler(conn)
        except OSError as e:
            self.errors.append(e)
        finally:
            conn.close()

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                raise
        self.sock.close()
        self.thread.join(5)
