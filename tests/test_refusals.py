"""A terminate tunnel refuses every peer it cannot verify or authorize, and says why.

Each refusal: the client's connection closes, the upstream sees no connection,
and the gateway logs one line naming the peer, its root and the reason.
"""

import re
import resource
import socket
import ssl
import subprocess
import time

import pytest

from conftest import gateway_config


@pytest.fixture
def guarded(pki, gateways, upstream):
    up = upstream()
    gw = gateways("terminate", gateway_config(pki, "bar", [
        {"name": "guarded", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"},
                   {"uri": "spiffe://k8s.example/ns/default/*"}]}],
        ) | {"tls": {"handshake_timeout_ms": 1500}})
    return gw, up


def tls_client(pki, port, leaf):
    """Handshakes as @leaf (None: no cert), sends a line; returns what came back or the error."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(pki["federated"])
    if leaf:
        ctx.load_cert_chain(pki["leaves"][leaf]["crt"], pki["leaves"][leaf]["key"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s = ctx.wrap_socket(raw, server_hostname="bar.internal")
        s.sendall(b"ping\n")
        return s.recv(100)
    except (ssl.SSLError, OSError) as e:
        return e
    finally:
        raw.close()


def assert_refused(gw, up, result, log_pattern):
    assert not isinstance(result, bytes) or result == b"", f"got data back: {result!r}"
    gw.wait_log(log_pattern)
    time.sleep(0.2)
    assert up.accepted == 0, "the upstream saw a connection from a refused peer"
    assert not re.search(r" info: accepted ", gw.log())


def test_allowed_client_passes(pki, guarded):
    gw, up = guarded
    assert tls_client(pki, gw.port("guarded"), "foo") == b"ping\n"
    assert tls_client(pki, gw.port("guarded"), "kube_client") == b"ping\n"
    assert up.accepted == 2


def test_no_client_certificate_is_refused(pki, guarded):
    gw, up = guarded
    r = tls_client(pki, gw.port("guarded"), None)
    assert_refused(gw, up, r, r"refused 127\.0\.0\.1:\d+ on tunnel guarded: TLS handshake failed:"
                   r".*peer did not return a certificate")


def test_certificate_from_root_outside_bundle_is_refused(pki, guarded):
    gw, up = guarded
    r = tls_client(pki, gw.port("guarded"), "rogue")
    assert_refused(gw, up, r, r"refused foo\.internal \[dns:foo\.internal\] \(issued by "
                   r"'Rogue Intermediate CA', claimed root 'Rogue Root CA'\) from 127\.0\.0\.1:\d+ on tunnel guarded: certificate "
                   r"verification failed at depth 1: unable to get local issuer certificate")


def test_expired_certificate_is_refused(pki, guarded):
    gw, up = guarded
    r = tls_client(pki, gw.port("guarded"), "expired")
    assert_refused(gw, up, r, r"refused foo\.internal \[dns:foo\.internal\] .*on tunnel "
                   r"guarded: certificate verification failed at depth 0: certificate has "
                   r"expired")


def test_server_only_certificate_is_refused_as_client(pki, guarded):
    gw, up = guarded
    r = tls_client(pki, gw.port("guarded"), "server_only")
    assert_refused(gw, up, r, r"refused foo\.internal .*on tunnel guarded: certificate "
                   r"verification failed at depth 0: unsuitable certificate purpose")


def test_certificate_failing_allow_is_refused_with_the_rule(pki, guarded):
    gw, up = guarded
    r = tls_client(pki, gw.port("guarded"), "stranger")
    assert isinstance(r, ssl.SSLError) and "ACCESS_DENIED" in str(r).upper() or r == b"", r
    assert_refused(gw, up, r, r"refused stranger\.internal \[dns:stranger\.internal "
                   r"uri:spiffe://cloud\.example/other\] \(issued by 'Cloud Intermediate CA', "
                   r"root 'Cloud Root CA'\) from "
                   r"127\.0\.0\.1:\d+ on tunnel guarded: allow\[0\]: dns 'foo\.internal' "
                   r"matches no DNS SAN; allow\[1\]: uri 'spiffe://k8s\.example/ns/default/\*' "
                   r"matches no URI SAN")


def test_right_name_wrong_root_is_refused(pki, guarded):
    """cloud_client chains to the Cloud root but holds no foo.internal; a Kubernetes-rooted
    foo.internal would fail the root clause: both parts of a rule must hold."""
    gw, up = guarded
    r = tls_client(pki, gw.port("guarded"), "cloud_client")
    assert_refused(gw, up, r, r"refused cloud_client .*allow\[0\]: dns 'foo\.internal'")


def test_silent_client_times_out(pki, guarded):
    gw, up = guarded
    s = socket.create_connection(("127.0.0.1", gw.port("guarded")), timeout=10)
    t0 = time.monotonic()
    assert s.recv(10) == b""
    assert time.monotonic() - t0 < 8
    s.close()
    assert_refused(gw, up, b"", r"refused 127\.0\.0\.1:\d+ on tunnel guarded: handshake timed "
                   r"out after 1500 ms")


def test_plaintext_http_client_is_refused(pki, guarded):
    gw, up = guarded
    s = socket.create_connection(("127.0.0.1", gw.port("guarded")), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        s.recv(100)
    except ConnectionResetError:
        pass
    s.close()
    assert_refused(gw, up, b"", r"refused 127\.0\.0\.1:\d+ on tunnel guarded: TLS handshake "
                   r"failed")


def test_curl_without_client_cert_gets_an_error(pki, guarded):
    gw, up = guarded
    port = gw.port("guarded")
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", pki["federated"],
                        "--resolve", f"bar.internal:{port}:127.0.0.1",
                        f"https://bar.internal:{port}/"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0
    assert_refused(gw, up, b"", r"peer did not return a certificate")


def test_a_flood_of_bad_clients_gets_100_lines_a_second_and_a_count_of_the_rest(pki, guarded):
    """1,500 plaintext clients at once: each refusal is accounted for, as its own line (100 a
    second at most) or in a once-a-second count, so a flood cannot fill the disk."""
    gw, _ = guarded
    n = 1500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 256:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {n + 256}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 256), hard))
    socks = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", gw.port("guarded")), timeout=10)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            socks.append(s)
        line = re.compile(r"refused 127\.0\.0\.1:\d+ on tunnel guarded: ")
        count = re.compile(r"refused (\d+) more connection\(s\) without a line each \(over 100 "
                           r"refusals a second\)")

        def accounted():
            log = gw.log()
            return len(line.findall(log)) + sum(int(c) for c in count.findall(log))

        deadline = time.monotonic() + 60
        while accounted() < n and time.monotonic() < deadline:
            time.sleep(0.2)
        secs = time.monotonic() - t0
        log = gw.log()
        lines, counted = len(line.findall(log)), sum(int(c) for c in count.findall(log))
        assert lines + counted == n, (lines, counted, log[-3000:])
        # One window of 100 lines per second (and one more for the second it started in).
        assert lines <= 100 * (int(secs) + 2), (lines, secs)
        assert counted > 0, f"{n} refusals in {secs:.1f} s, every one with its line"
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
