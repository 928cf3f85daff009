"""Names of peers and upstreams are re-resolved every $.dns.refresh_s, off the control loop.

The terminate gateway runs in a private mount namespace whose /etc/hosts (and
nsswitch.conf, "hosts: files", so no DNS server is ever asked) are files of
the test, bind-mounted: glibc reads /etc/hosts again on every getaddrinfo(),
so rewriting that file (in place: the bind mount pins its inode) is a real
change of what the name resolves to, seen through the real resolver path.
Two upstreams listen on the same port of 127.0.0.2 and 127.0.0.3 and say
which they are; the name moves from one to the other.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import FEDGATE, Gateway, gateway_config, wait_for

NAME = "svc.fedgate-test"
# Same length as NAME: the hosts file is rewritten with one write of the same size.
GONE = "xxx.fedgate-test"


def namespaces_usable():
    if os.geteuid() != 0:
        return "needs root (a private mount namespace with a bind-mounted /etc/hosts)"
    if not shutil.which("unshare"):
        return "needs unshare(1)"
    r = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10)
    if r.returncode:
        return f"unshare -m fails here: {r.stderr.decode().strip()}"
    return None


class HostsGateway(Gateway):
    """A gateway whose /etc/hosts is @hosts (and nsswitch "hosts: files"), in its own mount ns."""

    def __init__(self, tmp, name, config, hosts, nsswitch):
        super().__init__(tmp, name, config)
        self.hosts = hosts
        self.nsswitch = nsswitch

    def start(self):
        script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf && '
                  'shift 2 && exec "$@"')
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", script, "sh", str(self.hosts), str(self.nsswitch),
             FEDGATE, "run", "-c", str(self.config_path), "--ports-file", str(self.ports_path)],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.ports_path.exists() or self.proc.poll() is not None,
                     10, f"{self.name} to listen")
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


HOSTS_SIZE = 256


def hosts_text(*lines):
    """An /etc/hosts of exactly HOSTS_SIZE bytes (a comment pads it)."""
    text = "127.0.0.1 localhost\n" + "".join(line + "\n" for line in lines)
    return text + "#" * (HOSTS_SIZE - len(text) - 1) + "\n"


def rewrite_in_place(path, *lines):
    """Same inode (the bind mount pins it), one write of the same size: no torn reads."""
    data = hosts_text(*lines).encode()
    with open(path, "r+b") as f:
        assert len(data) == len(f.read()) == HOSTS_SIZE
        os.pwrite(f.fileno(), data, 0)


class Tagged:
    """Listeners on 127.0.0.2:PORT and 127.0.0.3:PORT: each sends its name, then echoes."""

    def __init__(self):
        for _ in range(20):
            a = socket.socket()
            a.bind(("127.0.0.2", 0))
            port = a.getsockname()[1]
            b = socket.socket()
            try:
                b.bind(("127.0.0.3", port))
            except OSError:
                a.close()
                b.close()
                continue
            break
        else:
            raise AssertionError("no port free on both 127.0.0.2 and 127.0.0.3")
        self.port = port
        self.socks = {b"two": a, b"three": b}
        self.accepted = {b"two": 0, b"three": 0}
        self.lock = threading.Lock()
        for tag, s in self.socks.items():
            s.listen(64)
            threading.Thread(target=self.loop, args=(tag, s), daemon=True).start()

    def loop(self, tag, s):
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.accepted[tag] += 1
            threading.Thread(target=self.serve, args=(tag, conn), daemon=True).start()

    @staticmethod
    def serve(tag, conn):
        try:
            conn.settimeout(60)
            conn.sendall(tag + b"\n")
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        for s in self.socks.values():
            s.close()


def read_line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        buf += data
    return buf.strip()


def which(port):
    """The upstream a new connection through the tunnel reaches."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        return read_line(s)


@pytest.fixture
def named_pair(pki, tmp_path):
    """(originate gw, terminate gw in its mount ns, upstreams, hosts path); all stopped after."""
    why = namespaces_usable()
    if why:
        pytest.skip(why)
    hosts = tmp_path / "hosts"
    hosts.write_text(hosts_text(f"127.0.0.2 {NAME}"))
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("hosts: files\n")
    up = Tagged()
    started = []
    try:
        b_cfg = gateway_config(pki, "bar", [
            {"name": "from-aws", "mode": "terminate", "listen": "127.0.0.1:0",
             "upstream": f"{NAME}:{up.port}",
             "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
        b_cfg["dns"] = {"refresh_s": 1}
        b = HostsGateway(tmp_path, "terminate", b_cfg, hosts, nsswitch)
        started.append(b)
        b.start()
        a = Gateway(tmp_path, "originate", gateway_config(pki, "foo", [
            {"name": "to-gcp", "mode": "originate", "listen": "127.0.0.1:0",
             "peer": f"127.0.0.1:{b.port('from-aws')}", "server_name": "bar.internal",
             "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]}]))
        started.append(a)
        a.start()
        yield a, b, up, hosts
    finally:
        for gw in started:
            rc = gw.stop()
            assert rc == 0, f"{gw.name} exited {rc}:\n{gw.log()}"
        up.close()


def test_upstream_name_moving_to_another_address_takes_new_connections_there(named_pair):
    a, b, up, hosts = named_pair
    port = a.port("to-gcp")
    assert which(port) == b"two"
    # A tunnel that stays up across the change.
    kept = socket.create_connection(("127.0.0.1", port), timeout=10)
    kept.settimeout(10)
    assert read_line(kept) == b"two"

    rewrite_in_place(hosts, f"127.0.0.3 {NAME}")
    b.wait_log(rf"tunnel from-aws: upstream {re.escape(NAME)}:{up.port} now resolves to "
               rf"127\.0\.0\.3:{up.port} \(was 127\.0\.0\.2:{up.port}\)", timeout=10)
    assert wait_for(lambda: which(port) == b"three", 5, "a new connection to reach .3")
    # The tunnel made before the change still runs to the old address.
    kept.sendall(b"still here\n")
    assert read_line(kept) == b"still here"
    kept.close()
    # One line per change, not one per round.
    time.sleep(2.5)
    assert len(re.findall(r"now resolves to", b.log())) == 1, b.log()
    assert which(port) == b"three"


def test_name_that_stops_resolving_keeps_the_last_good_address_and_logs_once(named_pair):
    a, b, up, hosts = named_pair
    port = a.port("to-gcp")
    assert which(port) == b"two"

    rewrite_in_place(hosts, f"127.0.0.2 {GONE}")
    b.wait_log(rf"tunnel from-aws: upstream {re.escape(NAME)}:{up.port} no longer resolves "
               rf"\(.*\); keeping 127\.0\.0\.2:{up.port}", timeout=10)
    assert which(port) == b"two", "the last good address stays in use"
    # Several failed rounds at refresh_s 1: still the one line of the streak.
    time.sleep(3.5)
    assert len(re.findall(r"no longer resolves", b.log())) == 1, b.log()
    assert which(port) == b"two"

    rewrite_in_place(hosts, f"127.0.0.3 {NAME}")
    b.wait_log(rf"upstream {re.escape(NAME)}:{up.port} now resolves to 127\.0\.0\.3:{up.port} "
               rf"\(was 127\.0\.0\.2:{up.port}\)", timeout=10)
    assert wait_for(lambda: which(port) == b"three", 5, "a new connection to reach .3")
    assert len(re.findall(r"no longer resolves", b.log())) == 1, b.log()


def test_address_in_use_stays_while_the_name_still_answers_with_it(named_pair):
    """Several answers: the address in use stays while among them (no flapping on round-robin)."""
    a, b, up, hosts = named_pair
    port = a.port("to-gcp")
    assert which(port) == b"two"
    # .3 comes first now, but .2 is still an answer.
    rewrite_in_place(hosts, f"127.0.0.3 {NAME}", f"127.0.0.2 {NAME}")
    time.sleep(3.5)
    assert "resolves" not in b.log()
    assert which(port) == b"two"
    # .2 is gone: the first answer takes over.
    rewrite_in_place(hosts, f"127.0.0.3 {NAME}")
    b.wait_log(rf"now resolves to 127\.0\.0\.3:{up.port} \(was 127\.0\.0\.2:{up.port}\)",
               timeout=10)
    assert wait_for(lambda: which(port) == b"three", 5, "a new connection to reach .3")


def dial_through(gw, tunnel):
    """One connection to an originate tunnel: it dials its peer on accept (the tagged
    listener is no gateway, so the handshake then fails: only the dial matters). The reset
    that follows may even beat connect() back to this thread (ECONNRESET there)."""
    try:
        with socket.create_connection(("127.0.0.1", gw.port(tunnel)), timeout=10) as s:
            s.settimeout(10)
            s.recv(1)
    except (ConnectionResetError, socket.timeout):
        pass


def originate_to_name(pki, tmp_path, refresh_s):
    why = namespaces_usable()
    if why:
        pytest.skip(why)
    hosts = tmp_path / "hosts"
    hosts.write_text(hosts_text(f"127.0.0.2 {NAME}"))
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("hosts: files\n")
    up = Tagged()
    cfg = gateway_config(pki, "foo", [
        {"name": "to-up", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": f"{NAME}:{up.port}", "server_name": "bar.internal",
         "allow": [{"dns": "bar.internal"}]}])
    cfg["dns"] = {"refresh_s": refresh_s}
    return HostsGateway(tmp_path, "originate", cfg, hosts, nsswitch), up, hosts


def test_originate_peer_name_is_re_resolved_too(pki, tmp_path):
    gw, up, hosts = originate_to_name(pki, tmp_path, 1)
    try:
        gw.start()
        dial_through(gw, "to-up")
        wait_for(lambda: up.accepted[b"two"] == 1, 10, "the dial to .2")
        rewrite_in_place(hosts, f"127.0.0.3 {NAME}")
        gw.wait_log(rf"tunnel to-up: peer {re.escape(NAME)}:{up.port} now resolves to "
                    rf"127\.0\.0\.3:{up.port} \(was 127\.0\.0\.2:{up.port}\)", timeout=10)
        dial_through(gw, "to-up")
        wait_for(lambda: up.accepted[b"three"] == 1, 10, "the dial to .3")
        assert up.accepted[b"two"] == 1
    finally:
        rc = gw.stop()
        up.close()
    assert rc == 0, gw.log()


def test_refresh_zero_never_re_resolves(pki, tmp_path):
    """$.dns.refresh_s 0: the address of the load stays, whatever the name does later."""
    gw, up, hosts = originate_to_name(pki, tmp_path, 0)
    try:
        gw.start()
        rewrite_in_place(hosts, f"127.0.0.3 {NAME}")
        time.sleep(2.5)
        dial_through(gw, "to-up")
        dial_through(gw, "to-up")
        wait_for(lambda: sum(up.accepted.values()) >= 2, 10, "the two dials")
        assert up.accepted == {b"two": 2, b"three": 0}, gw.log()
        assert "resolves" not in gw.log()
    finally:
        rc = gw.stop()
        up.close()
    assert rc == 0, gw.log()


@pytest.mark.parametrize("dns, problem", [
    ({"refresh_s": -1}, r"\$\.dns\.refresh_s: must be between 0 and 86400"),
    ({"refresh_s": "30"}, r"\$\.dns\.refresh_s: expected an integer"),
    ({"ttl": 30}, r"\$\.dns\.ttl"),
    ([30], r"\$\.dns: expected an object"),
])
def test_bad_dns_settings_are_refused_naming_the_key(pki, tmp_path, dns, problem):
    cfg = gateway_config(pki, "foo", [
        {"name": "o", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": "127.0.0.1:8443", "server_name": "bar.internal",
         "allow": [{"dns": "bar.internal"}]}])
    cfg["dns"] = dns
    path = tmp_path / "fedgate.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([FEDGATE, "check", "-c", str(path)], capture_output=True, timeout=30)
    assert r.returncode == 2, r
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and re.search(problem, lines[0]), lines
