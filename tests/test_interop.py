"""Real TLS 1.3 peers on the other side of a fedgate tunnel: openssl s_client/s_server, curl."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import CIPHERS, HERE, closed_without_data, connect, gateway_config, wait_for

HELLO_KUBE = "Hello kube_client (cert issued by 'Kubernetes Root CA')"


@pytest.fixture
def hello_backend(tmp_path):
    port_file = tmp_path / "hello.port"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "hello_backend.py"),
                             "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                             "--proxy-protocol"], stderr=open(tmp_path / "hello.log", "w"))
    # 30 s: under QEMU TCG (tests/vm) on a busy host, Python alone can take 10 s to start
    wait_for(port_file.exists, 30, "hello backend")
    yield f"127.0.0.1:{port_file.read_text().strip()}"
    proc.terminate()
    proc.wait(10)


def terminate_gateway(pki, gateways, upstream_addr, cipher=None):
    return gateways("terminate", gateway_config(pki, "bar", [
        {"name": "from-k8s", "mode": "terminate", "listen": "127.0.0.1:0",
         "upstream": upstream_addr, "proxy_protocol": "v2",
         "allow": [{"uri": "spiffe://k8s.example/*", "root": "Kubernetes Root CA"},
                   {"dns": "foo.internal", "root": "Cloud Root CA"}]}], cipher=cipher))


def curl(pki, port, leaf="kube_client", extra=()):
    cmd = ["curl", "-sS", "--max-time", "20", "--tlsv1.3", "--cacert", pki["federated"],
           "--resolve", f"bar.internal:{port}:127.0.0.1", *extra]
    if leaf:
        cmd += ["--cert", pki["leaves"][leaf]["crt"], "--key", pki["leaves"][leaf]["key"]]
    return subprocess.run(cmd + [f"https://bar.internal:{port}/"], capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("cipher", CIPHERS)
def test_curl_through_terminate_gets_hello_with_identity(pki, gateways, hello_backend, cipher):
    b = terminate_gateway(pki, gateways, hello_backend, cipher)
    names = {"AES-128-GCM": "TLS_AES_128_GCM_SHA256", "AES-256-GCM": "TLS_AES_256_GCM_SHA384",
             "CHACHA20-POLY1305": "TLS_CHACHA20_POLY1305_SHA256"}
    for _ in range(3):
        r = curl(pki, b.port("from-k8s"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == HELLO_KUBE
    b.wait_log(r"accepted kube_client \(issued by 'Kubernetes Intermediate CA', root "
               r"'Kubernetes Root CA'\) on tunnel from-k8s: "
               r"peer 127\.0\.0\.1:\d+, " + names[cipher], count=3)


def test_curl_keepalive_many_requests_on_one_tunnel(pki, gateways, hello_backend):
    b = terminate_gateway(pki, gateways, hello_backend)
    port = b.port("from-k8s")
    urls = [f"https://bar.internal:{port}/"] * 20
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert", pki["federated"],
                        "--resolve", f"bar.internal:{port}:127.0.0.1",
                        "--cert", pki["leaves"]["kube_client"]["crt"],
                        "--key", pki["leaves"]["kube_client"]["key"], *urls],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(HELLO_KUBE) == 20
    assert len(re.findall(r"accepted kube_client", b.log())) == 1


def test_curl_posts_1mib_through_terminate(pki, gateways, hello_backend, tmp_path):
    b = terminate_gateway(pki, gateways, hello_backend)
    body = tmp_path / "body"
    body.write_bytes(os.urandom(1 << 20))
    out = tmp_path / "out"
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert", pki["federated"],
                        "--resolve", f"bar.internal:{b.port('from-k8s')}:127.0.0.1",
                        "--cert", pki["leaves"]["kube_client"]["crt"],
                        "--key", pki["leaves"]["kube_client"]["key"],
                        "--data-binary", f"@{body}", "-o", str(out),
                        f"https://bar.internal:{b.port('from-k8s')}/echo"],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == body.read_bytes()


def test_s_client_through_terminate(pki, gateways, hello_backend):
    b = terminate_gateway(pki, gateways, hello_backend)
    leaf = pki["leaves"]["kube_client"]
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{b.port('from-k8s')}",
                        "-servername", "bar.internal", "-verify_hostname", "bar.internal",
                        "-CAfile", pki["federated"], "-verify_return_error",
                        "-cert", leaf["crt"], "-cert_chain", leaf["crt"], "-key", leaf["key"],
                        "-tls1_3", "-quiet"],
                       input=b"GET / HTTP/1.0\r\nHost: bar.internal\r\n\r\n",
                       capture_output=True, timeout=30)
    assert HELLO_KUBE.encode() in r.stdout, r.stderr.decode()


def s_server(pki, leaf, procs, extra=()):
    """Starts `openssl s_server -Verify 1 -rev` on a kernel-chosen port; returns (proc, port)."""
    cert = pki["leaves"][leaf]
    proc = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0",
                             "-cert", cert["crt"], "-cert_chain", cert["crt"],
                             "-key", cert["key"], "-CAfile", pki["federated"],
                             "-Verify", "1", "-verify_return_error", "-tls1_3",
                             "-rev", *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    procs.append(proc)
    for _ in range(10):
        m = re.match(rb"ACCEPT 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        if m:
            return proc, int(m.group(1))
    raise AssertionError("openssl s_server did not start")


@pytest.fixture
def servers():
    procs = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("cipher", CIPHERS)
def test_originate_against_s_server_with_tickets(pki, gateways, servers, cipher):
    """s_server sends two NewSessionTickets after the handshake: the data plane consumes them."""
    proc, port = s_server(pki, "bar", servers)
    a = gateways("originate", gateway_config(pki, "foo", [
        {"name": "to-sserver", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": f"127.0.0.1:{port}", "server_name": "bar.internal",
         "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]}], cipher=cipher))
    s = connect(a.port("to-sserver"))
    lines = [b"hello fedgate\n", b"x" * 5000 + b"y\n"]
    got = b""
    for line in lines:
        s.sendall(line)
        want = line[:-1][::-1] + b"\n"
        deadline = time.monotonic() + 10
        while len(got) < len(want) and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        assert got == want
        got = b""
    s.close()
    a.wait_log(r"accepted bar\.internal \(issued by 'Kubernetes Intermediate CA', root "
               r"'Kubernetes Root CA'\) on tunnel to-sserver")


def test_originate_refuses_s_server_outside_the_bundle(pki, gateways, servers):
    proc, port = s_server(pki, "rogue", servers)
    a = gateways("originate", gateway_config(pki, "foo", [
        {"name": "to-rogue", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": f"127.0.0.1:{port}", "server_name": "foo.internal",
         "allow": [{"dns": "foo.internal"}]}]))
    s = connect(a.port("to-rogue"))
    s.sendall(b"secret\n")
    assert closed_without_data(s)
    s.close()
    a.wait_log(r"refused foo\.internal \[dns:foo\.internal\] \(issued by 'Rogue Intermediate "
               r"CA', claimed root 'Rogue Root CA'\) "
               r"from 127\.0\.0\.1:\d+ on tunnel to-rogue: certificate verification failed "
               r"at depth \d: unable to get local issuer certificate")


def test_originate_refuses_server_with_wrong_name(pki, gateways, servers):
    proc, port = s_server(pki, "bar", servers)
    a = gateways("originate", gateway_config(pki, "foo", [
        {"name": "to-wrong", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": f"127.0.0.1:{port}", "server_name": "baz.internal",
         "allow": [{"root": "Kubernetes Root CA"}]}]))
    s = connect(a.port("to-wrong"))
    assert closed_without_data(s)
    s.close()
    a.wait_log(r"refused .*on tunnel to-wrong: certificate verification failed at depth 0: "
               r"hostname mismatch")


if not shutil.which("curl"):
    pytestmark = pytest.mark.skip("curl missing: make test installs it")
