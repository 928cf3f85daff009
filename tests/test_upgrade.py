"""`fedgate run --take-over`: a new gateway takes the running one's listening sockets over
$.admin.socket and the old one drains, with no connection refused.

Clients open a new mTLS tunnel every few milliseconds and check its echo, from before the new
process starts until after the old one has exited; every one of them must succeed, some on
each side. A tunnel opened before the upgrade runs on through the old process's drain. A
successor that cannot reach the socket, or one of another user, gets nothing.
"""

import json
import os
import socket
import ssl
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import FEDGATE, Gateway, client_ctx, gateway_config, stop_process, wait_for


def echo_once(pki, port, payload):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client_ctx(pki, "foo").wrap_socket(raw, server_hostname="bar.internal") as c:
        c.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        return got == payload


class Load(threading.Thread):
    """New tunnels one after the other until stopped; counts successes and failures."""

    def __init__(self, pki, port):
        super().__init__(daemon=True)
        self.pki, self.port = pki, port
        self.ok, self.failed, self.errors = 0, 0, []
        self.stopping = False

    def run(self):
        i = 0
        while not self.stopping:
            try:
                if echo_once(self.pki, self.port, b"%08d\n" % i):
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(f"#{i}: short echo")
            except (OSError, ssl.SSLError) as e:
                self.failed += 1
                self.errors.append(f"#{i}: {e!r}")
            i += 1
            time.sleep(0.005)


def config(pki, up, sock, admin_port):
    cfg = gateway_config(pki, "bar", [
        {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    cfg["admin"] = {"socket": str(sock), "listen": f"127.0.0.1:{admin_port}"}
    cfg["dataplane"]["drain_timeout_s"] = 3
    return cfg


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_upgrade_under_load_refuses_no_connection_and_the_old_one_drains(
        pki, gateways, upstream, tmp_path):
    up = upstream()
    sock = tmp_path / "admin.sock"
    admin_port = free_port()
    old = gateways("old", config(pki, up, sock, admin_port))
    port = old.port("t")
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    long_lived = client_ctx(pki, "foo").wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="bar.internal")
    long_lived.sendall(b"before\n")
    assert long_lived.recv(100) == b"before\n"
    load = Load(pki, port)
    load.start()
    wait_for(lambda: load.ok >= 20, 20, "load through the old gateway")

    new = Gateway(tmp_path, "new", json.loads(old.config_path.read_text()))
    new.config_path.write_text(old.config_path.read_text())
    new.proc = subprocess.Popen(
        [FEDGATE, "run", "-c", str(new.config_path), "--ports-file", str(new.ports_path),
         "--take-over"], stdin=subprocess.DEVNULL, stdout=open(new.log_path, "w"),
        stderr=subprocess.STDOUT)
    new.logf = open(os.devnull, "w")
    try:
        wait_for(lambda: new.ports_path.exists() or new.proc.poll() is not None, 15,
                 "the new gateway to listen")
        assert new.proc.poll() is None, new.log()
        new_port = int(new.ports_path.read_text().split()[1].rsplit(":", 1)[1])
        assert new_port == port  # the same socket, not a new bind
        new.wait_log(r"takeover: 2 listening socket\(s\) from ")
        old.wait_log(r"admin: handed 2 listening socket\(s\) to pid %d" % new.proc.pid)
        # the tunnel opened before runs on through the old one's drain
        long_lived.sendall(b"during\n")
        assert long_lived.recv(100) == b"during\n"
        assert old.proc.wait(timeout=15) == 0, old.log()
        old.wait_log(r"takeover: handshakes in progress done; draining the data plane")
        served_before = load.ok
        wait_for(lambda: load.ok >= served_before + 20, 20, "load through the new gateway")
        load.stopping = True
        load.join(timeout=20)
        assert load.failed == 0, (load.errors[:10], old.log()[-3000:], new.log()[-3000:])
        assert "accepted foo.internal" in new.log()
        # the admin port moved with it: /status is the new process's
        with socket.create_connection(("127.0.0.1", admin_port), timeout=5) as c:
            c.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
        status = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert status["pid"] == new.proc.pid, status
        new.wait_log(r"admin: takeover socket .*admin\.sock")
    finally:
        load.stopping = True
        stop_process(new.proc)


def test_a_take_over_with_nobody_to_take_from_exits_naming_the_socket(pki, upstream, tmp_path):
    sock = tmp_path / "none.sock"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(pki, upstream(), sock, free_port())))
    r = subprocess.run([FEDGATE, "run", "-c", str(path), "--take-over"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r
    assert f"takeover: cannot take the listeners from {sock}: No such file or directory" \
        in r.stdout + r.stderr, r


def test_a_successor_of_another_user_gets_no_socket(pki, gateways, upstream, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("SKIP: needs root to connect as another user")
    # a directory another user can reach (pytest's are 0700)
    reach = tempfile.mkdtemp(prefix="fg-takeover-", dir="/tmp")
    os.chmod(reach, 0o755)
    sock = os.path.join(reach, "admin.sock")
    old = gateways("old", config(pki, upstream(), sock, free_port()))
    os.chmod(sock, 0o666)  # even where the mode lets it connect, the uid check refuses it
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
            f"s.connect({str(sock)!r})\n"
            "try:\n"
            "    s.sendall(b'fedgate-takeover 1\\n')\n"
            "    m,a,f,_=s.recvmsg(4096,4096)\n"
            "except (BrokenPipeError, ConnectionResetError):\n"
            "    m,a=b'',[]  # refused before or after our request: nothing came\n"
            "sys.exit(0 if not m and not a else 3)\n")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "/usr/bin/python3", "-c", code], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r
    old.wait_log(r"admin: takeover refused to pid \d+ \(uid 65534\): not this gateway's user")
    assert echo_once(pki, old.port("t"), b"still serving\n")
    assert old.stop() == 0
    shutil.rmtree(reach)
