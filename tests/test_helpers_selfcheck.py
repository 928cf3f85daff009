"""Self-checks for the Python test helpers: tests/pki.py (checked with the
openssl CLI) and tests/hello_backend.py (PROXY v2 codec and the server).

Run: /usr/bin/python3 -m pytest -q tests/test_helpers_selfcheck.py
"""

import datetime
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import hello_backend as hb  # noqa: E402
from pki import issue_leaf, make_pki  # noqa: E402

OPENSSL = "openssl"
TIMEOUT = 10  # seconds, for every subprocess and socket wait

LEAF_NAMES = ("foo", "bar", "kube_client", "cloud_client", "rogue",
              "expired", "server_only", "stranger")
ISSUER_OF = {"foo": "cloud", "bar": "kubernetes", "kube_client": "kubernetes",
             "cloud_client": "cloud", "rogue": "rogue", "expired": "cloud",
             "server_only": "cloud", "stranger": "cloud"}


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True,
                          timeout=TIMEOUT, **kw)


@pytest.fixture(scope="module", params=["ec", "rsa"])
def pki(request, tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki-" + request.param),
                    key_type=request.param)


def verify(pki, name, *extra):
    d = pki["dir"]
    return run([OPENSSL, "verify", *extra, "-CAfile", pki["federated"],
                "-untrusted", pki["intermediates"][ISSUER_OF[name]],
                os.path.join(d, name + ".leaf.crt")])


# --------------------------------------------------------------------------
# pki.py


def test_files_and_modes(pki):
    d = pki["dir"]
    for name in LEAF_NAMES:
        for suffix in (".crt", ".leaf.crt", ".key"):
            assert os.path.isfile(os.path.join(d, name + suffix))
        assert stat.S_IMODE(os.stat(os.path.join(d, name + ".key"))
                            .st_mode) == 0o600
        with open(os.path.join(d, name + ".crt")) as f:
            assert f.read().count("BEGIN CERTIFICATE") == 2
        with open(os.path.join(d, name + ".key")) as f:
            assert f.read().startswith("-----BEGIN PRIVATE KEY-----")
    for short in ("cloud", "kubernetes", "rogue"):
        assert os.path.isfile(os.path.join(d, "roots", short + ".pem"))
        assert os.path.isfile(os.path.join(d, "intermediates", short + ".pem"))
        for k in ("root", "intermediate"):
            key = os.path.join(d, "ca", "%s-%s.key" % (short, k))
            assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    with open(pki["federated"]) as f:
        assert f.read().count("BEGIN CERTIFICATE") == 2
    assert all(os.path.isfile(p) for p in pki["files"])


def test_federated_bundle_subjects(pki):
    out = run([OPENSSL, "crl2pkcs7", "-nocrl", "-certfile", pki["federated"]])
    assert out.returncode == 0, out.stderr
    subj = run([OPENSSL, "pkcs7", "-print_certs", "-noout"], input=out.stdout)
    assert "CN = Cloud Root CA" in subj.stdout
    assert "CN = Kubernetes Root CA" in subj.stdout
    assert "Rogue" not in subj.stdout


@pytest.mark.parametrize("name", ["foo", "bar", "kube_client",
                                  "cloud_client", "stranger", "server_only"])
def test_valid_leaves_verify(pki, name):
    out = verify(pki, name)
    assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), \
        out.stdout + out.stderr


def test_rogue_fails(pki):
    out = verify(pki, "rogue")
    assert out.returncode != 0
    assert "unable to get local issuer certificate" in out.stdout + out.stderr


def test_expired_fails(pki):
    out = verify(pki, "expired")
    assert out.returncode != 0
    assert "certificate has expired" in out.stdout + out.stderr


def test_server_only_is_not_a_client(pki):
    assert verify(pki, "server_only", "-purpose", "sslserver").returncode == 0
    out = verify(pki, "server_only", "-purpose", "sslclient")
    assert out.returncode != 0
    assert "unsuitable certificate purpose" in out.stdout + out.stderr
    assert verify(pki, "kube_client", "-purpose", "sslclient").returncode == 0


def x509_text(path):
    out = run([OPENSSL, "x509", "-noout", "-text", "-in", path])
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_leaf_extensions(pki):
    text = x509_text(os.path.join(pki["dir"], "bar.leaf.crt"))
    assert "Issuer: O = fedgate-test, CN = Kubernetes Intermediate CA" in text
    assert "Subject: O = fedgate-test, CN = bar.internal" in text
    assert re.search(r"Key Usage: critical\s+Digital Signature\n", text)
    assert ("TLS Web Server Authentication, TLS Web Client Authentication"
            in text)
    assert ("DNS:bar.internal, DNS:localhost, IP Address:127.0.0.1, "
            "URI:spiffe://k8s.example/ns/default/sa/bar") in text
    if pki["key_type"] == "ec":
        assert "NIST CURVE: P-256" in text
    else:
        assert "Public-Key: (2048 bit)" in text
    text = x509_text(os.path.join(pki["dir"], "server_only.leaf.crt"))
    assert "TLS Web Server Authentication\n" in text
    assert "Client Authentication" not in text


def test_ca_extensions(pki):
    for short, cn in (("cloud", "Cloud"), ("kubernetes", "Kubernetes"),
                      ("rogue", "Rogue")):
        root = x509_text(pki["roots"][short])
        assert "Subject: O = fedgate-test, CN = %s Root CA" % cn in root
        assert "Issuer: O = fedgate-test, CN = %s Root CA" % cn in root
        assert re.search(r"Basic Constraints: critical\s+CA:TRUE\n", root)
        assert re.search(r"Key Usage: critical\s+Certificate Sign, CRL Sign",
                         root)
        ica = x509_text(pki["intermediates"][short])
        assert "Subject: O = fedgate-test, CN = %s Intermediate CA" % cn in ica
        assert re.search(r"Basic Constraints: critical\s+CA:TRUE, pathlen:0",
                         ica)


def test_issue_leaf_short_lived(pki, tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    paths = issue_leaf(pki, "short", "short.internal",
                       dns=["short.internal"], uris=["spiffe://k8s.example/x"],
                       issuer="k8s", not_after=datetime.timedelta(seconds=90))
    assert pki["leaves"]["short"] == paths
    out = run([OPENSSL, "verify", "-CAfile", pki["federated"], "-untrusted",
               pki["intermediates"]["kubernetes"], paths["leaf"]])
    assert out.returncode == 0, out.stdout + out.stderr
    end = run([OPENSSL, "x509", "-noout", "-enddate", "-in", paths["leaf"]])
    not_after = datetime.datetime.strptime(
        end.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"
    ).replace(tzinfo=datetime.timezone.utc)
    assert 0 < (not_after - now).total_seconds() <= 91
    # From the outdir alone (a fresh process would do this).
    again = issue_leaf(pki["dir"], "short2", "short2", issuer="cloud")
    assert os.path.isfile(again["crt"])


def test_cli_prints_files(tmp_path):
    out = run([sys.executable, os.path.join(HERE, "pki.py"),
               str(tmp_path / "cli")])
    assert out.returncode == 0, out.stderr
    listed = out.stdout.split()
    assert str(tmp_path / "cli" / "foo.crt") in listed
    assert str(tmp_path / "cli" / "federated.pem") in listed
    assert all(os.path.isfile(p) for p in listed)


# --- TLS 1.3 mutual handshakes through openssl s_server / s_client ---

def handshake(pki, server, client, server_name="foo.internal",
              client_args=()):
    """Run one s_server (-Verify 1, -www) / s_client exchange over TLS 1.3
    on 127.0.0.1 with a kernel-chosen port. Returns (client output,
    server output, whether the server finished the handshake)."""
    d = pki["dir"]

    def pem(n, ext):
        return os.path.join(d, n + ext)

    srv = subprocess.Popen(
        [OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
         "-www", "-tls1_3", "-cert", pem(server, ".crt"),
         "-cert_chain", pem(server, ".crt"), "-key", pem(server, ".key"),
         "-CAfile", pki["federated"], "-Verify", "1", "-verify_return_error"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    # Bound every read below: a hung s_server is killed, so reads see EOF.
    watchdog = threading.Timer(2 * TIMEOUT, srv.kill)
    watchdog.start()
    try:
        # s_server prints "ACCEPT 127.0.0.1:PORT" once it is listening.
        port, head = None, ""
        deadline = time.monotonic() + TIMEOUT
        while port is None and time.monotonic() < deadline:
            line = srv.stdout.readline()
            if not line:
                break
            head += line
            m = re.match(r"ACCEPT 127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        assert port, "s_server did not start: " + head
        cli = run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                   "-tls1_3", "-brief", "-servername", server_name,
                   "-verify_hostname", server_name, "-verify_return_error",
                   "-CAfile", pki["federated"],
                   "-cert", pem(client, ".crt"),
                   "-cert_chain", pem(client, ".crt"),
                   "-key", pem(client, ".key"), *client_args],
                  input="GET / HTTP/1.0\r\n\r\n")
        rest, _ = srv.communicate(timeout=TIMEOUT)
    finally:
        watchdog.cancel()
        if srv.poll() is None:
            srv.kill()
        srv.wait()
    server_out = head + rest
    finished = re.search(r"^\s*1 server accepts that finished", server_out,
                         re.M) is not None
    return cli.stdout + cli.stderr, server_out, finished


def test_mutual_tls13_handshake(pki):
    cli, srv, finished = handshake(pki, "foo", "kube_client")
    assert "Protocol version: TLSv1.3" in cli
    assert "Verification: OK" in cli
    assert "Verified peername: foo.internal" in cli
    assert finished, srv
    # s_server logs the client chain it verified.
    assert "CN = kube_client" in srv and "CN = Kubernetes Root CA" in srv


def test_mutual_tls13_bar_by_ip(pki):
    cli, srv, finished = handshake(pki, "bar", "cloud_client",
                                   server_name="localhost",
                                   client_args=("-verify_ip", "127.0.0.1"))
    assert "Verification: OK" in cli and finished, cli + srv


@pytest.mark.parametrize("client,why", [
    ("rogue", "unable to get local issuer certificate"),
    ("expired", "certificate has expired"),
    ("server_only", "unsuitable certificate purpose"),
])
def test_bad_client_rejected(pki, client, why):
    cli, srv, finished = handshake(pki, "foo", client)
    assert not finished, srv
    assert why in srv


# --------------------------------------------------------------------------
# PROXY v2 codec

KUBE_TLVS = [
    (hb.PP2_TYPE_AUTHORITY, "foo.internal"),
    (hb.PP2_TYPE_SSL, hb.build_ssl_tlv_value(
        cn="kube_client", version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384")),
    (hb.PP2_TYPE_FG_DNS_SAN, "kube-client.k8s.internal"),
    (hb.PP2_TYPE_FG_URI_SAN, "spiffe://k8s.example/ns/default/sa/kube-client"),
    (hb.PP2_TYPE_FG_URI_SAN, "spiffe://k8s.example/second"),
    (hb.PP2_TYPE_FG_ROOT_CN, "Kubernetes Root CA"),
    (hb.PP2_TYPE_FG_TUNNEL, "k8s-in"),
]


def kube_header(**kw):
    return hb.build_proxy_v2(("10.1.2.3", 40000), ("10.9.8.7", 8443),
                             KUBE_TLVS, **kw)


@pytest.mark.parametrize("crc", [False, True])
def test_proxy_v2_round_trip_ipv4(crc):
    hdr = kube_header(crc=crc)
    assert hdr[12] == 0x21 and hdr[13] == 0x11
    n, info = hb.parse_proxy_v2(hdr + b"GET / HTTP/1.1\r\n")
    assert n == len(hdr)
    assert info["command"] == "PROXY" and info["family"] == "TCP4"
    assert (info["src_addr"], info["src_port"]) == ("10.1.2.3", 40000)
    assert (info["dst_addr"], info["dst_port"]) == ("10.9.8.7", 8443)
    assert info["authority"] == "foo.internal"
    assert info["ssl"]["cn"] == "kube_client"
    assert info["ssl"]["version"] == "TLSv1.3"
    assert info["ssl"]["cipher"] == "TLS_AES_256_GCM_SHA384"
    assert info["ssl"]["verify"] == 0 and info["ssl"]["verified"]
    assert info["ssl"]["client_ssl"] and info["ssl"]["client_cert_conn"]
    assert info["dns_sans"] == ["kube-client.k8s.internal"]
    assert info["uri_sans"] == ["spiffe://k8s.example/ns/default/sa/kube-client",
                                "spiffe://k8s.example/second"]
    assert info["root_cn"] == "Kubernetes Root CA"
    assert info["tunnel"] == "k8s-in"
    assert info["unknown_tlvs"] == []
    assert (info["crc32c"] is not None) == crc


def test_proxy_v2_round_trip_ipv6_unknown_tlv():
    hdr = hb.build_proxy_v2(("2001:db8::1", 1), ("::1", 2),
                            [(0xEE, b"\x00\xff"), (hb.PP2_TYPE_SSL,
                              hb.build_ssl_tlv_value(verify=20))])
    assert hdr[13] == 0x21
    n, info = hb.parse_proxy_v2(hdr)
    assert n == len(hdr) and info["family"] == "TCP6"
    assert info["src_addr"] == "2001:db8::1" and info["dst_addr"] == "::1"
    assert info["unknown_tlvs"] == [{"type": 0xEE, "value_hex": "00ff"}]
    assert info["ssl"]["verify"] == 20 and not info["ssl"]["verified"]
    assert info["ssl"]["cn"] is None


def test_proxy_v2_local():
    hdr = hb.build_proxy_v2(("127.0.0.1", 1), ("127.0.0.1", 2), [],
                            command="LOCAL")
    n, info = hb.parse_proxy_v2(hdr)
    assert n == len(hdr) and info["command"] == "LOCAL"
    assert info["src_addr"] is None


def test_crc32c_known_value():
    # The standard check value of CRC-32C.
    assert hb.crc32c(b"123456789") == 0xE3069283


def _with_length(hdr, delta):
    """hdr with its length field changed by delta (contents unchanged)."""
    n = int.from_bytes(hdr[14:16], "big") + delta
    return hdr[:14] + n.to_bytes(2, "big") + hdr[16:]


def _set(hdr, off, byte):
    return hdr[:off] + bytes([byte]) + hdr[off + 1:]


@pytest.mark.parametrize("data,reason", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "signature"),
    (b"\r\n\r\n\x00\r\nQUIT", "truncated"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "signature"),
    (_set(kube_header(), 12, 0x11), "version"),      # version 1
    (_set(kube_header(), 12, 0x22), "command"),      # command 2
    (_set(kube_header(), 13, 0x12), "family"),       # UDP over IPv4
    (_with_length(kube_header(), +1), "length overrun"),
    (kube_header()[:-1], "length overrun"),
    # Length too small for the IPv4 address block.
    (hb.PP2_SIGNATURE + b"\x21\x11\x00\x08" + bytes(8), "address block"),
    # Length cut inside the last TLV: the header itself is consistent.
    (_with_length(kube_header(), -2)[:-2], "TLV overrun"),
    # A dangling byte after the TLVs: too short for a TLV header.
    (_with_length(kube_header() + b"\xe0", +1), "TLV overrun"),
    (hb.build_proxy_v2(("1.1.1.1", 1), ("2.2.2.2", 2),
                       [(hb.PP2_TYPE_SSL, b"\x07\x00\x00")]), "too short"),
    (hb.build_proxy_v2(("1.1.1.1", 1), ("2.2.2.2", 2),
                       [(hb.PP2_TYPE_SSL, b"\x07\x00\x00\x00\x00\x22\x00\x09ab")]),
     "sub-TLV overrun"),
    (hb.build_proxy_v2(("1.1.1.1", 1), ("2.2.2.2", 2),
                       [(hb.PP2_TYPE_FG_ROOT_CN, b"\xff\xfe")]), "UTF-8"),
    (hb.build_proxy_v2(("1.1.1.1", 1), ("2.2.2.2", 2),
                       [(hb.PP2_TYPE_FG_ROOT_CN, "a"),
                        (hb.PP2_TYPE_FG_ROOT_CN, "b")]), "duplicate"),
    (_set(kube_header(crc=True), 20, 0x99), "CRC32C mismatch"),
])
def test_proxy_v2_malformed(data, reason):
    with pytest.raises(ValueError, match=reason):
        hb.parse_proxy_v2(data)


# --------------------------------------------------------------------------
# hello_backend.py as a server


@pytest.fixture
def backend(tmp_path):
    """Start hello_backend.py --proxy-protocol on 127.0.0.1 port 0; yield
    (port, stderr path, process); always stopped afterwards."""
    port_file = tmp_path / "port"
    err_path = tmp_path / "backend.err"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "hello_backend.py"),
             "--listen", "127.0.0.1:0", "--port-file", str(port_file),
             "--proxy-protocol"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not port_file.exists():
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.02)
        yield int(port_file.read_text()), err_path, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)


def recv_all(sock):
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_backend_hello_with_proxy_header(backend):
    port, err, _ = backend
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(kube_header()
                  + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                  + b"POST /echo HTTP/1.1\r\nContent-Length: 6\r\n\r\nab\x00cd\n"
                  + b"GET /whoami HTTP/1.1\r\nConnection: close\r\n\r\n")
        resp = recv_all(s)
    hello = b"Hello kube_client (cert issued by 'Kubernetes Root CA')\n"
    assert resp.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain" in resp
    assert b"\r\n\r\n" + hello + b"HTTP/1.1 200" in resp  # keep-alive
    assert b"\r\n\r\nab\x00cd\nHTTP/1.1 200" in resp  # echo
    assert b'"root_cn": "Kubernetes Root CA"' in resp  # whoami JSON
    assert b'"tunnel": "k8s-in"' in resp
    assert resp.count(b"HTTP/1.1 200 OK") == 3
    log = err.read_text()
    assert log.count('"GET / HTTP/1.1" 200') == 1
    assert "cn=kube_client" in log


def test_backend_rejects_connection_without_header(backend):
    port, err, proc = backend
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_all(s) == b""  # closed without a response
    deadline = time.monotonic() + TIMEOUT
    while "rejecting connection" not in err.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert "bad PROXY v2 signature" in err.read_text()
    # The server survives it.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(kube_header() + b"GET / HTTP/1.0\r\n\r\n")
        assert b"Hello kube_client" in recv_all(s)


def test_backend_rejects_bad_tlvs(backend):
    port, err, _ = backend
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(_set(kube_header(crc=True), 20, 0x99)
                  + b"GET / HTTP/1.0\r\n\r\n")
        assert recv_all(s) == b""
    deadline = time.monotonic() + TIMEOUT
    while "CRC32C mismatch" not in err.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_backend_exits_cleanly_on_sigterm(backend):
    _, err, proc = backend
    proc.terminate()
    assert proc.wait(timeout=TIMEOUT) == 0
    assert "stopped" in err.read_text()


def test_backend_without_proxy_protocol(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "hello_backend.py"),
         "--listen", "127.0.0.1:0", "--port-file", str(port_file)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        port = int(port_file.read_text())
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=TIMEOUT) as s:
            s.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            resp = recv_all(s)
        assert resp.endswith(b"\r\n\r\nHello anonymous (no PROXY header)\n")
        proc.send_signal(2)  # SIGINT
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
