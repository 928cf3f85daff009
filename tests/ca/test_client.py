"""The CA client (`fedgate ca federation|roots`) against canned and slow servers:
framing, TLS errors and one deadline per request."""

import json
import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import FEDGATE
from ca.helpers import fedgate, fingerprint, load_certs, ok


class CannedHTTPS:
    """A one-shot HTTPS server (the certificate from @ca) that answers @answer raw bytes."""

    def __init__(self, ca, tmp, answer, after=b""):
        import threading
        crt, key = ca.enroll(tmp, "localhost", ["localhost"])
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(crt), str(key))
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.answer, self.after = answer, after
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.lsock.accept()
        with self.ctx.wrap_socket(conn, server_side=True) as t:
            got = b""
            while b"\r\n\r\n" not in got:
                d = t.recv(4096)
                if not d:
                    return
                got += d
            t.sendall(self.answer)
            if self.after:  # raw bytes under TLS: a record that cannot be decrypted
                os.write(t.fileno(), self.after)
            time.sleep(0.2)

    def close(self):
        self.thread.join(5)
        self.lsock.close()


def chunk(data, size):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += b"%x%s\r\n%s\r\n" % (len(part), b";ext=1" if i == 0 else b"", part)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


def test_client_reads_chunked_answers_as_step_ca_sends_them(cloud, kube, tmp_path):
    pems = [cloud.root.read_text(), kube.root.read_text()] * 2
    body = (json.dumps({"crts": pems}) + "\n").encode()
    assert len(body) > 2048
    srv = CannedHTTPS(cloud, tmp_path, b"HTTP/1.1 201 Created\r\nContent-Type: application/json"
                      b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(body, 1000))
    out = tmp_path / "bundle.pem"
    try:
        ok(fedgate("ca", "federation", "--ca-url", f"https://localhost:{srv.port}", "--root",
                   cloud.root, out))
    finally:
        srv.close()
    assert [fingerprint(c) for c in load_certs(out.read_bytes())] == [
        cloud.fingerprint, kube.fingerprint] * 2


@pytest.mark.parametrize("head,body,after,words", [
    (b"Content-Length: -5", b"{BODY}", b"", "Content-Length"),
    (b"Content-Length: 5x", b"{BODY}", b"", "Content-Length"),
    (b"Transfer-Encoding: chunked", b"1g\r\n{BODY}\r\n0\r\n\r\n", b"", "chunk size"),
    (b"Transfer-Encoding: chunked", b"f" * 40 + b"\r\n{BODY}", b"", "chunk"),
    (b"Transfer-Encoding: chunked", b"5\r\n{BODY}\r\n0\r\n\r\n", b"", "chunk"),
    (b"Transfer-Encoding: gzip", b"{BODY}", b"", "Transfer-Encoding"),
    # a complete-looking body, then a corrupt TLS record: an error, not the end of the answer
    (b"X-Framing: none", b"{BODY}", b"\x17\x03\x03\x00\x20" + b"\x00" * 32,
     "TLS read failed"),
], ids=["cl-negative", "cl-garbage", "chunk-not-hex", "chunk-size-huge", "chunk-short",
        "te-gzip", "tls-error-after-body"])
def test_client_refuses_bad_framing_and_tls_errors(cloud, tmp_path, head, body, after, words):
    # The body is a valid answer: only the framing (or the TLS error) makes it a bad one.
    good = json.dumps({"crts": [cloud.root.read_text()]}).encode()
    answer = b"HTTP/1.1 201 Created\r\n" + head + b"\r\n\r\n" + body.replace(b"{BODY}", good)
    srv = CannedHTTPS(cloud, tmp_path, answer, after)
    out = tmp_path / "bundle.pem"
    try:
        r = fedgate("ca", "federation", "--ca-url", f"https://localhost:{srv.port}", "--root",
                    cloud.root, out)
    finally:
        srv.close()
    assert r.returncode == 1 and words in r.stderr, r.stderr
    assert not out.exists()


# --- client: one deadline per request -------------------------------------------------------

CLIENT_TIMEOUT_S = 15  # fg_ca_client_init()'s default: what `fedgate ca ...` waits in all


class SlowHTTPS:
    """A CA that is too slow. "trickle": completes the TLS handshake (the certificate from
    @ca), reads the request, then sends a valid answer one byte every @gap seconds; "stall":
    accepts TCP and never says a word, so the TLS handshake never ends. Any number of
    clients, each on a thread of its own."""

    def __init__(self, ca, tmp, mode, gap=2.0):
        import threading
        self.threading = threading
        self.mode, self.gap = mode, gap
        if mode == "trickle":
            crt, key = ca.enroll(tmp, "localhost", ["localhost"])
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(str(crt), str(key))
        body = json.dumps({"crts": [ca.root.read_text()]}).encode()
        self.answer = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.stop = threading.Event()
        self.sent = []  # bytes of the answer sent, one entry per client
        self.conns = []
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.url = f"https://localhost:{self.port}"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.mode == "trickle":
                self.threading.Thread(target=self.trickle, args=(conn,), daemon=True).start()

    def trickle(self, conn):
        self.sent.append(0)
        i = len(self.sent) - 1
        try:
            conn.settimeout(10)
            t = self.ctx.wrap_socket(conn, server_side=True)
            got = b""
            while b"\r\n\r\n" not in got:
                d = t.recv(4096)
                if not d:
                    return
                got += d
            for b in self.answer:
                if self.stop.is_set():
                    return
                t.sendall(bytes([b]))  # a TLS record of its own: the client sees each byte
                self.sent[i] += 1
                self.stop.wait(self.gap)
        except OSError:  # the client gave up and closed: what the test wants
            return

    def close(self):
        self.stop.set()
        self.lsock.close()
        for c in self.conns:
            c.close()


def run_ca_clients_against(srv, root, tmp):
    """`fedgate ca federation` and `fedgate ca roots` at once against @srv: [(r, seconds)]."""
    procs = []
    for cmd in ("federation", "roots"):
        t0 = time.monotonic()
        p = subprocess.Popen([FEDGATE, "ca", cmd, "--ca-url", srv.url, "--root", str(root),
                              str(tmp / f"{cmd}.pem")], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append((p, t0))
    out = []
    try:
        for p, t0 in procs:
            # Well past the deadline: a client that hangs fails here instead of hanging pytest.
            stdout, stderr = p.communicate(timeout=CLIENT_TIMEOUT_S + 30)
            out.append((subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr),
                        time.monotonic() - t0))
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


def test_client_gives_up_on_a_ca_trickling_its_answer_within_the_request_timeout(cloud,
                                                                                  tmp_path):
    srv = SlowHTTPS(cloud, tmp_path, "trickle", gap=2.0)
    # Sent whole, the answer would take minutes: every gap is far below the timeout.
    assert len(srv.answer) * srv.gap > 10 * CLIENT_TIMEOUT_S
    try:
        results = run_ca_clients_against(srv, cloud.root, tmp_path)
    finally:
        srv.close()
    for r, took in results:
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert f"CA {srv.url}: reading the answer timed out" in r.stderr, r.stderr
        assert CLIENT_TIMEOUT_S - 1 <= took <= CLIENT_TIMEOUT_S + 3, (took, r.stderr)
    assert not list(tmp_path.glob("*.pem"))
    # Both clients got bytes all along (a per-read timeout would never have fired).
    assert len(srv.sent) == 2 and all(n >= CLIENT_TIMEOUT_S / srv.gap - 1 for n in srv.sent), \
        srv.sent


def test_client_gives_up_on_a_ca_that_never_completes_the_tls_handshake(cloud, tmp_path):
    srv = SlowHTTPS(cloud, tmp_path, "stall")
    try:
        results = run_ca_clients_against(srv, cloud.root, tmp_path)
    finally:
        srv.close()
    for r, took in results:
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert f"CA {srv.url}: the TLS handshake timed out" in r.stderr, r.stderr
        assert CLIENT_TIMEOUT_S - 1 <= took <= CLIENT_TIMEOUT_S + 3, (took, r.stderr)
    assert len(srv.conns) == 2, srv.conns
    assert not list(tmp_path.glob("*.pem"))
