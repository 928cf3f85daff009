"""Fixtures for fedgate's tests: real processes on loopback, a generated PKI.

Every process a test starts is stopped by its fixture; every wait is bounded.
"""

import json
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from pki import make_pki  # noqa: E402

FEDGATE = os.environ.get("FEDGATE", os.path.join(ROOT, "build", "fedgate"))
UNIT_DIR = os.environ.get("UNIT_DIR", os.path.join(ROOT, "build", "tests"))
CIPHERS = ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"]
# Which backend the gateways use: userspace (default), kernel, auto, or mixed
# (terminate gateways on kTLS, originate gateways on the userspace record layer).
OFFLOAD = os.environ.get("FEDGATE_OFFLOAD", "userspace")
IN_VM = os.environ.get("FEDGATE_IN_VM") == "1"
# How kTLS gateways move plaintext into the kernel: copy (send from a buffer) or splice.
KERNEL_TX = os.environ.get("FEDGATE_KERNEL_TX", "copy")
# tls.handshake_threads for every gateway whose config does not set it: unset, the
# gateway's default (one per CPU); "0" runs handshakes on the control loop's thread.
HANDSHAKE_THREADS = os.environ.get("FEDGATE_HANDSHAKE_THREADS")
# Under TCG the VM is 50 to 100 times slower: payloads shrink to a few MiB there.
BIG = (4 << 20) if IN_VM else (64 << 20)


def offload_for(mode):
    if OFFLOAD == "mixed":
        return "kernel" if mode == "terminate" else "userspace"
    if OFFLOAD == "mixed-reverse":
        return "userspace" if mode == "terminate" else "kernel"
    return OFFLOAD


def kernel_side(mode):
    """True when a gateway of @mode runs its tunnels on kTLS in this run."""
    return offload_for(mode) == "kernel" or (offload_for(mode) == "auto" and IN_VM)


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL after @timeout seconds; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Gateway:
    """One `fedgate run` process with its config, ports file and log."""

    def __init__(self, tmp, name, config, nofile=None):
        """@nofile: (soft, hard) RLIMIT_NOFILE to start it with, as `ulimit -n` would."""
        self.name = name
        self.dir = tmp / name
        self.dir.mkdir(exist_ok=True)
        self.config_path = self.dir / "fedgate.json"
        if HANDSHAKE_THREADS is not None and isinstance(config, dict):
            config = dict(config)
            config["tls"] = dict(config.get("tls") or {})
            config["tls"].setdefault("handshake_threads", int(HANDSHAKE_THREADS))
        self.config_path.write_text(json.dumps(config, indent=2))
        self.ports_path = self.dir / "ports"
        self.log_path = self.dir / "log"
        self.nofile = nofile
        self.proc = None

    def start(self):
        nofile = self.nofile
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [FEDGATE, "run", "-c", str(self.config_path), "--ports-file", str(self.ports_path)],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, nofile))
            if nofile else None)
        try:
            wait_for(lambda: self.ports_path.exists() or self.proc.poll() is not None,
                     10, f"{self.name} to listen")
        except AssertionError:
            self.stop()
            raise
        # The ports file comes once the listeners are bound; the threads and descriptors
        # made after them (handshake threads, job queues) are there by this line, so that a
        # test's count of the gateway's fds starts from all of them.
        try:
            wait_for(lambda: "handshakes on " in self.log() or self.proc.poll() is not None,
                     10, f"{self.name} to start its handshake threads")
        except AssertionError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
        self.ports = {}
        for line in self.ports_path.read_text().splitlines():
            tunnel, addr = line.split()
            self.ports[tunnel] = int(addr.rsplit(":", 1)[1])
        return self

    def port(self, tunnel):
        return self.ports[tunnel]

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_log(self, pattern, timeout=10.0, count=1):
        rx = re.compile(pattern)
        return wait_for(lambda: len(rx.findall(self.log())) >= count and rx.findall(self.log()),
                        timeout, f"{self.name} log /{pattern}/ x{count}:\n{self.log()}")

    def stop(self):
        if not self.proc:
            return None
        self.logf.close()
        return stop_process(self.proc)


REFUSALS_COUNTED = re.compile(r"refused (\d+) more connection\(s\) without a line each")


def count_refusals(log, line):
    """Refusals in @log: the lines matching @line, and those a flood had counted instead
    (over 100 a second the gateway counts the rest in one line a second)."""
    return len(re.findall(line, log, re.M)) + sum(int(n) for n in REFUSALS_COUNTED.findall(log))


def identity(pki, leaf):
    return {"cert": pki["leaves"][leaf]["crt"], "key": pki["leaves"][leaf]["key"],
            "trust": pki["federated"]}


def gateway_config(pki, leaf, tunnels, cipher=None, offload=None, workers=1):
    offload = offload or offload_for(tunnels[0]["mode"])
    cfg = {"identity": identity(pki, leaf),
           "dataplane": {"workers": workers, "offload": offload, "kernel_tx": KERNEL_TX},
           "tunnels": tunnels}
    if cipher:
        cfg["tls"] = {"ciphers": [cipher]}
    if IN_VM:
        # Under TCG a handshake costs 50 to 100 times more CPU: 200 at once on a busy host
        # take longer than the 10 s default deadline. Tests of the deadline set their own.
        cfg.setdefault("tls", {})["handshake_timeout_ms"] = 60000
    return cfg


@pytest.fixture
def gateways(tmp_path):
    """Factory: gateways(name, config) starts one; all are stopped at teardown."""
    started = []

    def start(name, config, nofile=None):
        gw = Gateway(tmp_path, name, config, nofile)
        started.append(gw)
        return gw.start()

    yield start
    for gw in started:
        rc = gw.stop()
        # A gateway must stop cleanly on SIGTERM (ASan reports would make it non-zero).
        assert rc == 0, f"{gw.name} exited {rc}:\n{gw.log()}"
        # ThreadSanitizer (make test-tsan): a report in either process fails the test.
        assert "WARNING: ThreadSanitizer" not in gw.log(), f"{gw.name}:\n{gw.log()}"


class Upstream:
    """A TCP service behind the terminate gateway: echo, or a custom handler."""

    def __init__(self, handler=None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.handler = handler or self.echo
        self.accepted = 0
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @staticmethod
    def echo(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)

    def loop(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            conn.settimeout(60)
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.closing = True
        self.sock.close()


@pytest.fixture
def upstream():
    made = []

    def make(handler=None):
        u = Upstream(handler)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


def pair_configs(pki, upstream_addr, cipher=None, proxy_v2=False, workers=1, offload=None):
    """Terminate (bar, Kubernetes root) in front of @upstream_addr; originate (foo, Cloud)."""
    term = {"name": "from-aws", "mode": "terminate", "listen": "127.0.0.1:0",
            "upstream": upstream_addr,
            "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"},
                      {"uri": "spiffe://k8s.example/*", "root": "Kubernetes Root CA"}]}
    if proxy_v2:
        term["proxy_protocol"] = "v2"
    b = gateway_config(pki, "bar", [term], cipher=cipher, workers=workers, offload=offload)
    return b, lambda b_port: gateway_config(pki, "foo", [
        {"name": "to-gcp", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": f"127.0.0.1:{b_port}", "server_name": "bar.internal",
         "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]}],
        cipher=cipher, workers=workers, offload=offload)


@pytest.fixture
def tunnel_pair(pki, gateways, upstream):
    """Factory: (cipher, handler) -> (originate gw, terminate gw, upstream)."""

    def make(cipher=None, handler=None, proxy_v2=False, workers=1, offload=None):
        up = upstream(handler)
        b_cfg, a_cfg = pair_configs(pki, up.addr, cipher, proxy_v2, workers, offload)
        b = gateways("terminate", b_cfg)
        a = gateways("originate", a_cfg(b.port("from-aws")))
        return a, b, up

    return make


@pytest.fixture
def term(pki, gateways, upstream):
    """make(handler, cipher) -> (gw, up): a terminate tunnel "wire" for hand-driven peers
    (tls13_peer.RawTLSClient), as test_wire.py and test_alerts.py drive it."""
    def make(handler=None, cipher=None):
        up = upstream(handler)
        gw = gateways("terminate", gateway_config(pki, "bar", [
            {"name": "wire", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
             "allow": [{"root": "Kubernetes Root CA"}]}], cipher=cipher))
        return gw, up
    return make


def client_ctx(pki, leaf="foo"):
    """A TLS 1.3 client context with @leaf's certificate, trusting the federated bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(pki["federated"])
    ctx.load_cert_chain(pki["leaves"][leaf]["crt"], pki["leaves"][leaf]["key"])
    return ctx


def ping_through(pki, port, crt=None, key=None):
    """b"ping\\n" echoed back through a terminate tunnel at @port by a client with the foo leaf
    (or @crt/@key), or the error that ended the tunnel."""
    ctx = client_ctx(pki)
    if crt:
        ctx.load_cert_chain(crt, key)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        c = ctx.wrap_socket(raw, server_hostname="bar.internal")
        c.sendall(b"ping\n")
        got = c.recv(5)
        c.close()
        return got
    except (ssl.SSLError, OSError) as e:
        raw.close()
        return e


def connect(port, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def recv_all(sock):
    chunks = []
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def closed_without_data(sock):
    """True when the peer closes (FIN or RST) without sending a byte."""
    try:
        return recv_all(sock) == b""
    except ConnectionResetError:
        return True
