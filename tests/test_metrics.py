"""/metrics on the admin listener ($.admin.listen), read by Prometheus's own parser.

Counters move with what happens: a tunnel accepted and its close, a refusal, a reload that
works and one that fails, a data plane restart. The listener answers one request per
connection and refuses what is not GET /metrics; a client that sends nothing is closed at
its deadline while scrapes go on.
"""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import FEDGATE, client_ctx, gateway_config, kernel_side, wait_for

parser = pytest.importorskip("prometheus_client.parser",
                             reason="SKIP: python3-prometheus-client is not installed "
                                    "(scripts/deps test)")


def scrape(gw):
    """The families of one GET /metrics, by name; each sample as {(name, labels): value}."""
    url = f"http://127.0.0.1:{gw.port('@admin')}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metered(pki, gateways, upstream):
    up = upstream()
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
        "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    cfg["admin"] = {"listen": "127.0.0.1:0"}
    return gateways("terminate", cfg)


def tunnel(pki, gw, leaf="foo"):
    raw = socket.create_connection(("127.0.0.1", gw.port("t")), timeout=10)
    return client_ctx(pki, leaf).wrap_socket(raw, server_hostname="bar.internal")


def test_counters_follow_tunnels_refusals_reloads_and_restarts(pki, metered):
    gw = metered
    s = scrape(gw)
    infos = [(dict(k[1]), v) for k, v in s.items() if k[0] == "fedgate_info"]
    assert len(infos) == 1 and infos[0][1] == 1, infos
    assert infos[0][0]["version"] == "0.1.0"
    assert infos[0][0]["local_redirect"] == "off"
    assert infos[0][0]["offload"] in ("userspace", "kernel TLS",
                                      "kernel TLS, userspace where a socket takes no key")
    assert value(s, "fedgate_connections_accepted_total", tunnel="t") == 0
    assert value(s, "fedgate_connections_refused_total", tunnel="t") == 0
    assert value(s, "fedgate_tunnels_open", tunnel="t") == 0
    assert value(s, "fedgate_trust_bundle_roots") == 2
    # the own certificate's notAfter: within the test PKI's lifetime, in the future
    assert time.time() < value(s, "fedgate_certificate_expiry_timestamp_seconds") \
        < time.time() + 10 * 365 * 86400

    with tunnel(pki, gw) as c:
        c.sendall(b"ping\n")
        assert c.recv(5) == b"ping\n"
        s = scrape(gw)
        assert value(s, "fedgate_connections_accepted_total", tunnel="t") == 1
        assert value(s, "fedgate_tunnels_open", tunnel="t") == 1
        if kernel_side("terminate"):
            # kTLS (tests/vm): the kernel's own counters, this tunnel's sockets among them
            assert value(s, "fedgate_kernel_tls_stat", counter="TlsCurrTxSw") >= 1, s
            assert value(s, "fedgate_kernel_tls_stat", counter="TlsCurrRxSw") >= 1, s
    wait_for(lambda: value(scrape(gw), "fedgate_tunnels_open", tunnel="t") == 0, 5,
             "the tunnel's close to be counted")
    # its bytes, each way, from the close report
    s = scrape(gw)
    assert value(s, "fedgate_tunnel_bytes_total", tunnel="t", direction="to_peer") == 5
    assert value(s, "fedgate_tunnel_bytes_total", tunnel="t", direction="from_peer") == 5
    assert time.time() < value(s, "fedgate_trust_bundle_expiry_timestamp_seconds") \
        < time.time() + 30 * 365 * 86400
    # a gateway with files for its identity neither enrolls nor renews
    assert value(s, "fedgate_renewals_total", kind="renew", result="ok") == 0
    assert value(s, "fedgate_renewals_total", kind="enroll", result="failed") == 0

    # a refusal: a client whose certificate the allow rules do not admit
    with pytest.raises((ssl.SSLError, OSError)):
        with tunnel(pki, gw, "cloud_client") as c:
            c.sendall(b"x")
            c.recv(1)
    wait_for(lambda: value(scrape(gw), "fedgate_connections_refused_total", tunnel="t") == 1,
             5, "the refusal to be counted")
    assert value(scrape(gw), "fedgate_connections_refused_by_reason_total", tunnel="t",
                 reason="no allow rule admits the peer") == 1
    # a plaintext client: its reason is the handshake's, not an address
    with socket.create_connection(("127.0.0.1", gw.port("t")), timeout=10) as p:
        p.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            p.recv(100)
        except ConnectionResetError:
            pass
    wait_for(lambda: value(scrape(gw), "fedgate_connections_refused_by_reason_total",
                           tunnel="t", reason="TLS handshake failed") == 1, 5,
             "the plaintext client's refusal")

    # a reload that works, one that fails
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log("config reloaded")
    good = gw.config_path.read_text()
    gw.config_path.write_text("{")
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log("config not reloaded")
    gw.config_path.write_text(good)
    s = scrape(gw)
    assert value(s, "fedgate_reloads_total", result="ok") == 1
    assert value(s, "fedgate_reloads_total", result="failed") == 1

    # the data plane dies and comes back
    dp = int(re.search(r"data plane pid (\d+)", gw.log()).group(1))
    os.kill(dp, signal.SIGKILL)
    gw.wait_log(r"data plane restarted")
    assert value(scrape(gw), "fedgate_dataplane_restarts_total") == 1


def raw_request(gw, data, read=True):
    with socket.create_connection(("127.0.0.1", gw.port("@admin")), timeout=10) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
    (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b"405"),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", b"400"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64 + b"\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
], ids=["404", "405", "body", "tls", "431"])
def test_what_is_not_get_metrics_gets_its_status_and_a_close(metered, request_bytes, status):
    out = raw_request(metered, request_bytes)
    assert out.startswith(b"HTTP/1.1 " + status + b" "), out[:200]
    # and the listener still serves
    assert scrape(metered)


def test_a_silent_admin_client_is_closed_at_its_deadline_while_scrapes_go_on(metered):
    silent = socket.create_connection(("127.0.0.1", metered.port("@admin")), timeout=10)
    t0 = time.monotonic()
    for _ in range(3):
        assert scrape(metered)
    silent.settimeout(10)
    assert silent.recv(1) == b""
    took = time.monotonic() - t0
    assert 4.0 <= took <= 7.5, f"closed after {took:.1f} s"


def test_admin_listen_must_be_an_address(pki, tmp_path):
    for bad, why in [("nope", "$.admin.listen"), (9180, "$.admin.listen"), ([], "$.admin")]:
        cfg = gateway_config(pki, "bar", [{
            "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
            "allow": [{"dns": "foo.internal"}]}])
        cfg["admin"] = {"listen": bad} if why == "$.admin.listen" else bad
        path = tmp_path / "c.json"
        path.write_text(json.dumps(cfg))
        r = subprocess.run([FEDGATE, "check", "-c", str(path)], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 2, (bad, r.stderr)
        assert why in r.stderr, (bad, r.stderr)


def test_a_tunnel_refused_at_max_tunnels_counts_as_a_limit_hit(pki, gateways, upstream):
    up = upstream()
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
        "max_tunnels": 1, "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    cfg["admin"] = {"listen": "127.0.0.1:0"}
    gw = gateways("terminate", cfg)
    assert not [k for k in scrape(gw) if k[0] == "fedgate_limit_hits_total"]
    with tunnel(pki, gw) as first:
        first.sendall(b"ping\n")
        assert first.recv(5) == b"ping\n"
        with pytest.raises((ssl.SSLError, OSError)):
            with tunnel(pki, gw) as second:
                second.sendall(b"x")
                assert second.recv(1) == b""
        wait_for(lambda: ("fedgate_limit_hits_total", (("limit", "max_tunnels"),))
                 in scrape(gw), 5, "the refusal at max_tunnels to be counted")
        assert value(scrape(gw), "fedgate_limit_hits_total", limit="max_tunnels") == 1
