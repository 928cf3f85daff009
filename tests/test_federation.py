"""The gateway side of federation: identity from an online CA (enrollment, renewal), trust from
CAs' /federation endpoints (refresh), per-root name constraints, file reloads and SIGHUP, with
real `fedgate ca serve` and `fedgate run` processes, curl and openssl s_client.

Two CAs, Cloud and Kubernetes, list each other's root in "federatedRoots". Kubernetes issues
"1m" leaves, which are valid for two minutes (notBefore is backdated one minute), so gateways
enrolled there renew about every 20 s.
"""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest
from cryptography import x509

from conftest import (KERNEL_TX, closed_without_data, connect, offload_for, recv_all,
                      stop_process, wait_for)
from ca.helpers import CA, b64u, fedgate, load_certs, ok

HERE = os.path.dirname(os.path.abspath(__file__))
# leaf_cn: the curl client's CN "kube_client" is none of its SANs, so the root must list it
K8S_ROOT_RULE = {"cn": "Kubernetes Root CA", "dns": ["*.k8s.internal"],
                 "uri": ["spiffe://k8s.example/*"], "leaf_cn": ["*.k8s.internal", "kube_client"]}


def restart(ca):
    """Stops @ca and serves it again on the same port (ca.json's address pinned to it)."""
    port = ca.port
    ca.stop()
    ca.addr_file.unlink()
    ca.start()
    assert ca.port == port


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fedcas")
    cloud, kube = CA(tmp, "Cloud"), CA(tmp, "Kubernetes")
    cloud.edit(lambda c: c.update(federatedRoots=[str(kube.root)], requestTimeout="2s"))

    def kube_cfg(c):
        c["federatedRoots"] = [str(cloud.root)]
        c["requestTimeout"] = "2s"
        c["authority"]["claims"] = {"defaultTLSCertDuration": "1m"}

    kube.edit(kube_cfg)
    started = []
    try:
        for ca in (cloud, kube):
            ca.start()
            # restarts come back on the same port, which the gateways' configs name
            ca.edit(lambda c, p=ca.port: c.update(address=f"127.0.0.1:{p}"))
            started.append(ca)
        federated = tmp / "federated.pem"
        ok(fedgate("ca", "federation", "--ca-url", cloud.url, "--root", cloud.root, federated))
        yield cloud, kube, federated
    finally:
        codes = {ca.name: ca.stop() for ca in started}
    assert all(rc == 0 for rc in codes.values()), (codes, [ca.log() for ca in started])


@pytest.fixture
def hello(tmp_path):
    port_file = tmp_path / "hello.port"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "hello_backend.py"), "--listen",
                             "127.0.0.1:0", "--port-file", str(port_file), "--proxy-protocol"],
                            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: port_file.exists(), 10, "hello backend")
    yield f"127.0.0.1:{int(port_file.read_text())}"
    stop_process(proc)


def ca_identity(ca, d, subject, sans):
    """identity.ca for a gateway in directory @d, with a fresh one-time token."""
    d.mkdir(parents=True, exist_ok=True)
    token = d / "token"
    token.write_text(ca.cli_token(subject, *sans) + "\n")
    return {"cert": str(d / "gw.crt"), "key": str(d / "gw.key"),
            "ca": {"url": ca.url, "root": str(ca.root), "token_file": str(token),
                   "subject": subject, "sans": list(sans)}}


def federation(*cas_, refresh_s=2):
    return {"federation": [{"url": ca.url, "root": str(ca.root)} for ca in cas_],
            "refresh_s": refresh_s}


def gw_config(identity, trust, tunnels, roots=None):
    cfg = {"identity": dict(identity, trust=trust),
           "dataplane": {"offload": offload_for(tunnels[0]["mode"]), "kernel_tx": KERNEL_TX},
           "tunnels": tunnels}
    if roots is not None:
        cfg["roots"] = roots
    return cfg


def terminate(upstream, allow, proxy_v2=False):
    t = {"name": "from-aws", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": upstream,
         "allow": allow}
    if proxy_v2:
        t["proxy_protocol"] = "v2"
    return t


def originate(port, server_name, allow):
    return {"name": "to-gcp", "mode": "originate", "listen": "127.0.0.1:0",
            "peer": f"127.0.0.1:{port}", "server_name": server_name, "allow": allow}


B_ALLOW = [{"dns": "foo.internal", "root": "Cloud Root CA"},
           {"uri": "spiffe://k8s.example/*", "root": "Kubernetes Root CA"}]
A_ALLOW = [{"dns": "bar.k8s.internal", "root": "Kubernetes Root CA"}]
B_SANS = ["bar.k8s.internal", "spiffe://k8s.example/gw/bar"]
A_SANS = ["foo.internal", "spiffe://cloud.example/gw/foo"]


def start_pair(tmp, gateways, cloud, kube, upstream, b_allow=B_ALLOW, proxy_v2=False,
               b_roots=(K8S_ROOT_RULE,)):
    """B: terminate, enrolled at Kubernetes; A: originate to B, enrolled at Cloud."""
    b = gateways("b", gw_config(ca_identity(kube, tmp / "b", "bar.k8s.internal", B_SANS),
                                federation(kube), [terminate(upstream, b_allow, proxy_v2)],
                                list(b_roots)))
    a = gateways("a", gw_config(ca_identity(cloud, tmp / "a", "foo.internal", A_SANS),
                                federation(cloud),
                                [originate(b.port("from-aws"), "bar.k8s.internal", A_ALLOW)],
                                [K8S_ROOT_RULE]))
    return a, b


def client_cert(ca, tmp, name, sans):
    return ca.enroll(tmp, name, sans)


def curl_hello(port, federated, crt, key, name="bar.k8s.internal"):
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", str(federated), "--cert", str(crt),
         "--key", str(key), "--resolve", f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/"],
        capture_output=True, text=True, timeout=20)


def served_serial(port, name="bar.k8s.internal"):
    """The serial of the certificate a new handshake presents, as openssl s_client sees it."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        name], input="", capture_output=True, text=True, timeout=20)
    return load_certs(r.stdout)[0].serial_number


def file_serial(path):
    return load_certs(open(path, "rb").read())[0].serial_number


def echo_roundtrip(port, data=b"ping through the federation\n"):
    with connect(port) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)


# --- the two-cloud scenario ------------------------------------------------------------------


def test_two_clouds_enroll_fetch_federation_and_carry_traffic(cas, gateways, upstream, hello,
                                                              tmp_path):
    cloud, kube, federated = cas
    up = upstream()
    a, b = start_pair(tmp_path, gateways, cloud, kube, up.addr)
    # each enrolled at its own CA and fetched its /federation (both roots)
    b.wait_log(r"enrolled at " + kube.url + r": bar\.k8s\.internal, serial")
    a.wait_log(r"enrolled at " + cloud.url + r": foo\.internal, serial")
    for gw in (a, b):
        gw.wait_log(r"trust bundle from https://localhost:\d+: 2 root\(s\): "
                    r"'(Cloud|Kubernetes) Root CA', '(Cloud|Kubernetes) Root CA'")
    crt = load_certs((tmp_path / "b" / "gw.crt").read_bytes())
    assert crt[0].issuer.rfc4514_string() == "CN=Kubernetes Intermediate CA"
    assert os.stat(tmp_path / "b" / "gw.key").st_mode & 0o777 == 0o600
    # traffic A -> B -> upstream, both directions
    payload = os.urandom(1 << 20)
    assert echo_roundtrip(a.port("to-gcp"), payload) == payload
    b.wait_log(r"accepted foo\.internal \(issued by '[^']+', root 'Cloud Root CA'\) on tunnel "
               r"from-aws")
    a.wait_log(r"accepted bar\.k8s\.internal \(issued by '[^']+', root 'Kubernetes Root CA'\) "
               r"on tunnel to-gcp")

    # curl with the federated bundle and a Kubernetes client certificate, through a terminate
    # tunnel in front of the hello backend (PROXY v2)
    h = gateways("h", gw_config(ca_identity(kube, tmp_path / "h", "bar.k8s.internal", B_SANS),
                                federation(kube, cloud),
                                [terminate(hello, B_ALLOW, proxy_v2=True)], [K8S_ROOT_RULE]))
    kcrt, kkey = client_cert(kube, tmp_path, "kube_client", ["spiffe://k8s.example/ns/prod/kube"])
    r = curl_hello(h.port("from-aws"), federated, kcrt, kkey)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n"


def test_check_validates_a_ca_config_without_contacting_the_ca(cas, tmp_path):
    cloud, kube, _ = cas
    cfg = gw_config(ca_identity(kube, tmp_path / "c", "bar.k8s.internal", B_SANS),
                    federation(kube, cloud), [terminate("127.0.0.1:1", B_ALLOW)],
                    [K8S_ROOT_RULE])
    cfg["identity"]["ca"]["url"] = "https://localhost:1"  # nothing listens there
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    r = fedgate("check", "-c", path)
    assert r.returncode == 0 and "trust from 2 federation CA(s)" in r.stdout, r


def test_gateway_with_no_reachable_ca_and_no_certificate_exits_2_naming_the_ca(cas, tmp_path):
    cloud, kube, _ = cas
    cfg = gw_config(ca_identity(kube, tmp_path / "c", "bar.k8s.internal", B_SANS),
                    federation(kube), [terminate("127.0.0.1:1", B_ALLOW)])
    cfg["identity"]["ca"]["url"] = "https://localhost:1"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    r = fedgate("run", "-c", path)
    assert r.returncode == 2, r
    assert "$.identity.ca: enrollment at https://localhost:1 failed" in r.stderr, r.stderr


def test_third_ca_refused_until_federated_then_accepted_without_restarting_gateways(
        cas, gateways, hello, tmp_path):
    cloud, kube, federated = cas
    third = CA(tmp_path, "Partner")
    third.start()
    try:
        allow = B_ALLOW + [{"dns": "*.partner.internal", "root": "Partner Root CA"}]
        h = gateways("h", gw_config(
            ca_identity(kube, tmp_path / "h", "bar.k8s.internal", B_SANS), federation(kube),
            [terminate(hello, allow, proxy_v2=True)], [K8S_ROOT_RULE]))
        pcrt, pkey = client_cert(third, tmp_path, "partner_client", ["app.partner.internal"])
        r = curl_hello(h.port("from-aws"), federated, pcrt, pkey)
        assert r.returncode != 0 and "Hello" not in r.stdout, r
        h.wait_log(r"refused partner_client \[dns:app\.partner\.internal\] \(issued by '[^']+', "
                   r"claimed root 'Partner Root CA'\) .* certificate verification failed")

        before = kube.config.read_text()
        kube.edit(lambda c: c["federatedRoots"].append(str(third.root)))
        restart(kube)
        try:
            h.wait_log(r"trust bundle from " + kube.url + r": 3 root\(s\)", timeout=20)
            r = curl_hello(h.port("from-aws"), federated, pcrt, pkey)
            assert r.returncode == 0, (r.stderr, h.log())
            assert r.stdout == "Hello partner_client (cert issued by 'Partner Root CA')\n"
        finally:
            kube.config.write_text(before)
            restart(kube)
    finally:
        assert third.stop() == 0


# --- renewal and outages ---------------------------------------------------------------------


def test_renewals_under_a_continuous_stream_never_break_it_and_new_handshakes_see_new_certs(
        cas, gateways, upstream, tmp_path):
    cloud, kube, _ = cas
    up = upstream()
    a, b = start_pair(tmp_path, gateways, cloud, kube, up.addr)
    first = file_serial(tmp_path / "b" / "gw.crt")
    assert served_serial(b.port("from-aws")) == first
    stream = connect(a.port("to-gcp"))
    b.wait_log(r"accepted foo\.internal")
    renewed = re_count = 0
    deadline = time.monotonic() + 150
    i = 0
    while renewed < 3:
        assert time.monotonic() < deadline, f"only {renewed} renewal(s):\n{b.log()}"
        chunk = (b"%08d" % i) * 512
        stream.sendall(chunk)
        got = b""
        while len(got) < len(chunk):
            data = stream.recv(len(chunk) - len(got))
            assert data, f"the stream broke after {i} chunks:\n{b.log()}\n{a.log()}"
            got += data
        assert got == chunk
        i += 1
        re_count = b.log().count("renewed at " + kube.url)
        if re_count > renewed:
            renewed = re_count
            # a new handshake presents the renewed certificate, and A accepts it
            assert served_serial(b.port("from-aws")) == file_serial(tmp_path / "b" / "gw.crt")
            assert echo_roundtrip(a.port("to-gcp")) == b"ping through the federation\n"
        time.sleep(0.05)
    assert file_serial(tmp_path / "b" / "gw.crt") != first
    stream.shutdown(socket.SHUT_WR)
    assert recv_all(stream) == b""
    stream.close()
    b.wait_log(r"tunnel from-aws: foo\.internal closed: \d+ bytes to peer")
    assert not re.search(r"(renewal|enrollment|federation refresh) .*failed", b.log()), b.log()


def test_a_renewal_replaces_the_idle_pooled_connections_made_with_the_old_certificate(
        cas, gateways, upstream, tmp_path):
    """tests/test_pool.py has the pool itself; here A renews (Kubernetes' 1m leaves) while its
    pool holds idle connections authenticated with the old certificate."""
    _, kube, _ = cas
    up = upstream()
    b_tunnel = dict(terminate(up.addr, B_ALLOW), pool={})
    b = gateways("b", gw_config(ca_identity(kube, tmp_path / "b", "bar.k8s.internal", B_SANS),
                                federation(kube), [b_tunnel], [K8S_ROOT_RULE]))
    a_tunnel = dict(originate(b.port("from-aws"), "bar.k8s.internal", A_ALLOW),
                    pool={"size": 2})
    a = gateways("a", gw_config(ca_identity(kube, tmp_path / "a", "foo.k8s.internal",
                                            ["foo.k8s.internal", "spiffe://k8s.example/gw/foo"]),
                                federation(kube), [a_tunnel], [K8S_ROOT_RULE]))
    first = file_serial(tmp_path / "a" / "gw.crt")
    a.wait_log(r"renewed at " + re.escape(kube.url), timeout=90)
    a.wait_log(r"tunnel to-gcp: pool: [12] idle connection\(s\) to 127\.0\.0\.1:\d+ closed: "
               r"trust, rules or identity changed since their handshake", timeout=10)
    assert file_serial(tmp_path / "a" / "gw.crt") != first
    # the replacements carry traffic, presenting the renewed certificate
    time.sleep(1)
    n = b.log().count("(pooled)")
    assert echo_roundtrip(a.port("to-gcp")) == b"ping through the federation\n"
    b.wait_log(r"accepted foo\.k8s\.internal .* on tunnel from-aws \(pooled\)", count=n + 1)


def test_ca_down_gateways_keep_serving_and_recover_when_it_returns(cas, gateways, upstream,
                                                                    tmp_path):
    cloud, kube, _ = cas
    up = upstream()
    a, b = start_pair(tmp_path, gateways, cloud, kube, up.addr)
    assert echo_roundtrip(a.port("to-gcp")) == b"ping through the federation\n"
    kube.stop()
    kube.addr_file.unlink()
    try:
        b.wait_log(r"renewal at " + kube.url + r" failed \(attempt 1\): .*; still serving "
                   r"bar\.k8s\.internal, serial", timeout=40)
        b.wait_log(r"federation refresh from " + kube.url + r" failed .*keeping its last good "
                   r"bundle \(2 root\(s\)\)")
        # new handshakes still work on the current certificate and bundle
        assert echo_roundtrip(a.port("to-gcp")) == b"ping through the federation\n"
        served = served_serial(b.port("from-aws"))
        assert served == file_serial(tmp_path / "b" / "gw.crt")
    finally:
        kube.start()
    b.wait_log(r"renewed at " + kube.url, timeout=30)
    b.wait_log(r"federation refresh from " + kube.url + r": answering again after \d+ "
               r"failure\(s\); bundle unchanged", timeout=30)
    assert served_serial(b.port("from-aws")) != served
    assert echo_roundtrip(a.port("to-gcp")) == b"ping through the federation\n"


def test_a_restart_while_its_ca_is_down_starts_from_the_signed_trust_cache(
        cas, gateways, upstream, tmp_path):
    cloud, kube, federated = cas
    up = upstream()
    (tmp_path / "cache").mkdir()
    cache = tmp_path / "cache" / "trust-cache.json"
    b_trust = dict(federation(kube), cache=str(cache))
    b_cfg = gw_config(ca_identity(kube, tmp_path / "b", "bar.k8s.internal", B_SANS), b_trust,
                      [terminate(up.addr, B_ALLOW)], [K8S_ROOT_RULE])
    b_cfg["admin"] = {"listen": "127.0.0.1:0"}
    b = gateways("b", b_cfg)
    a = gateways("a", gw_config(ca_identity(cloud, tmp_path / "a", "foo.internal", A_SANS),
                                federation(cloud),
                                [originate(b.port("from-aws"), "bar.k8s.internal", A_ALLOW)],
                                [K8S_ROOT_RULE]))
    assert echo_roundtrip(a.port("to-gcp")) == b"ping through the federation\n"
    # saved after the first good answer: 0600, JSON then its HMAC line
    wait_for(lambda: cache.exists(), 5, "the trust cache")
    assert oct(cache.stat().st_mode & 0o777) == "0o600"
    body, mac = cache.read_bytes().rsplit(b"\nhmac-sha256 ", 1)
    assert re.fullmatch(rb"[0-9a-f]{64}\n", mac), mac
    saved = json.loads(body)
    assert [src["url"] for src in saved["sources"]] == [kube.url]
    assert saved["sources"][0]["pem"].count("BEGIN CERTIFICATE") == 2
    b.stop()
    kube.stop()
    kube.addr_file.unlink()
    try:
        # every CA of its federation down: it starts from the cache instead of exiting 2
        b.ports_path.unlink()
        b.start()
        b.wait_log(r"trust cache: " + re.escape(kube.url) + r" did not answer: trusting its "
                   r"bundle from .*trust-cache\.json, \d+ s old \(2 root\(s\)\) until it does")
        # and it verifies a Cloud client with the cached bundle (Cloud's root came from it)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(federated))
        ctx.load_cert_chain(str(tmp_path / "a" / "gw.crt"), str(tmp_path / "a" / "gw.key"))
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", b.port("from-aws")),
                                                      timeout=10),
                             server_hostname="bar.k8s.internal") as c:
            c.sendall(b"cached trust\n")
            assert c.recv(100) == b"cached trust\n"
        # `fedgate status` says where the bundle came from, and how old it is
        st = json.loads(fedgate("status", "--admin", f"127.0.0.1:{b.port('@admin')}",
                                "--json").stdout)
        src = st["trust"]["sources"][0]
        assert (src["url"], src["roots"], src["from_cache"]) == (kube.url, 2, True), src
        assert src["age_s"] >= 0, src
        assert b.stop() == 0
        # a cache changed by anyone but the gateway is refused: exit 2, naming why
        tampered = cache.read_bytes().replace(b'"version":1', b'"version":1 ', 1)
        assert tampered != cache.read_bytes()
        cache.write_bytes(tampered)
        r = fedgate("run", "-c", b.config_path)
        assert r.returncode == 2, r
        assert "no CA answered with a bundle: no root to trust; trust cache: its hmac does " \
               "not match" in r.stderr, r.stderr
    finally:
        kube.start()


# --- name constraints ------------------------------------------------------------------------


def test_a_cert_chaining_to_the_kubernetes_root_but_naming_outside_its_namespace_is_refused(
        cas, gateways, hello, tmp_path):
    cloud, kube, federated = cas
    # admits anything the Kubernetes root vouches for; the root rule (by fingerprint) limits it
    allow = [{"root": "Kubernetes Root CA"}]
    rule = {"sha256": kube.fingerprint, "dns": ["*.k8s.internal"],
            "uri": ["spiffe://k8s.example/*"]}
    h = gateways("h", gw_config(ca_identity(kube, tmp_path / "h", "bar.k8s.internal", B_SANS),
                                federation(kube), [terminate(hello, allow, proxy_v2=True)],
                                [rule]))
    evil_crt, evil_key = client_cert(kube, tmp_path, "evil", ["evil.internal"])
    r = curl_hello(h.port("from-aws"), federated, evil_crt, evil_key)
    assert "Hello" not in r.stdout, r
    h.wait_log(r"refused evil \[dns:evil\.internal\] \(issued by '[^']+', root 'Kubernetes "
               r"Root CA'\) .*"
               r"name constraints: root 'Kubernetes Root CA' \(roots\[0\]\) may not vouch for "
               r"dns:evil\.internal")
    mixed_crt, mixed_key = client_cert(kube, tmp_path, "mixed",
                                       ["ok.k8s.internal", "spiffe://cloud.example/x"])
    r = curl_hello(h.port("from-aws"), federated, mixed_crt, mixed_key)
    assert "Hello" not in r.stdout, r
    h.wait_log(r"may not vouch for uri:spiffe://cloud\.example/x")
    ok_crt, ok_key = client_cert(kube, tmp_path, "ok.k8s.internal", ["ok.k8s.internal"])
    r = curl_hello(h.port("from-aws"), federated, ok_crt, ok_key)
    assert r.returncode == 0 and r.stdout == "Hello ok.k8s.internal (cert issued by " \
        "'Kubernetes Root CA')\n", (r, h.log())


# --- files and SIGHUP ------------------------------------------------------------------------


def write_atomic(path, data):
    tmp = str(path) + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def test_file_identity_is_reloaded_when_it_changes_and_a_bad_pair_is_refused(
        cas, gateways, hello, tmp_path):
    cloud, kube, federated = cas
    d = tmp_path / "h"
    d.mkdir()
    c1, k1 = cloud.enroll(tmp_path, "svc1", ["svc.internal"])
    c2, k2 = cloud.enroll(tmp_path, "svc2", ["svc.internal"])
    crt, key = d / "gw.crt", d / "gw.key"
    crt.write_bytes(c1.read_bytes())
    key.write_bytes(k1.read_bytes())
    h = gateways("h", gw_config({"cert": str(crt), "key": str(key)}, str(federated),
                                [terminate(hello, B_ALLOW, proxy_v2=True)]))
    port = h.port("from-aws")
    assert served_serial(port, "svc.internal") == file_serial(c1)
    # a renewed pair, as cert-manager or `step ca renew --daemon` writes it
    write_atomic(key, k2.read_bytes())
    write_atomic(crt, c2.read_bytes())
    h.wait_log(r"identity reloaded from .*gw\.crt: svc2, serial")
    assert served_serial(port, "svc.internal") == file_serial(c2)
    # a certificate that does not match the key: refused, the current identity stays
    write_atomic(crt, c1.read_bytes())
    h.wait_log(r"identity files changed but are not usable: .*does not match.*; keeping the "
               r"current certificate")
    assert served_serial(port, "svc.internal") == file_serial(c2)
    # a half-written certificate: refused too
    write_atomic(crt, c2.read_bytes()[:200])
    h.wait_log(r"identity files changed but are not usable: .*is not a usable PEM", count=1)
    assert served_serial(port, "svc.internal") == file_serial(c2)
    # and the good pair again is taken
    write_atomic(crt, c2.read_bytes() + b"\n")
    h.wait_log(r"identity reloaded from", count=2)
    kcrt, kkey = client_cert(kube, tmp_path, "kube_client", ["spiffe://k8s.example/ns/prod/k"])
    r = curl_hello(port, federated, kcrt, kkey, "svc.internal")
    assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n", r


def test_trust_file_is_reloaded_when_it_changes_and_an_empty_one_is_refused(
        cas, gateways, hello, tmp_path):
    cloud, kube, federated = cas
    c1, k1 = cloud.enroll(tmp_path, "svc1", ["svc.internal"])
    trust = tmp_path / "trust.pem"
    trust.write_bytes(cloud.root.read_bytes())
    h = gateways("h", gw_config({"cert": str(c1), "key": str(k1)}, str(trust),
                                [terminate(hello, B_ALLOW, proxy_v2=True)]))
    port = h.port("from-aws")
    kcrt, kkey = client_cert(kube, tmp_path, "kube_client", ["spiffe://k8s.example/ns/prod/k"])
    r = curl_hello(port, federated, kcrt, kkey, "svc.internal")
    assert "Hello" not in r.stdout, r
    h.wait_log(r"refused kube_client .*\(issued by '[^']+', claimed root 'Kubernetes Root "
               r"CA'\).*certificate "
               r"verification failed")
    write_atomic(trust, federated.read_bytes())
    h.wait_log(r"trust bundle reloaded from .*trust\.pem: 2 root\(s\)")
    r = curl_hello(port, federated, kcrt, kkey, "svc.internal")
    assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n", (r, h.log())
    write_atomic(trust, b"")
    h.wait_log(r"trust bundle changed but is not usable: .*holds no certificate.*keeping the "
               r"current bundle")
    r = curl_hello(port, federated, kcrt, kkey, "svc.internal")
    assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n", (r, h.log())


def test_sighup_with_a_bad_config_keeps_the_running_one_and_a_good_one_applies_to_new_tunnels(
        cas, gateways, upstream, tmp_path):
    cloud, kube, _ = cas
    up = upstream()
    a, b = start_pair(tmp_path, gateways, cloud, kube, up.addr)
    stream = connect(a.port("to-gcp"))
    stream.sendall(b"before\n")
    assert stream.recv(100) == b"before\n"
    good = json.loads(b.config_path.read_text())

    bad = dict(good, bogus=1)
    b.config_path.write_text(json.dumps(bad))
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"config not reloaded: .*fedgate\.json: \$\.bogus: unknown key; the running "
               r"config stays")
    moved = json.loads(json.dumps(good))
    moved["tunnels"][0]["listen"] = "127.0.0.1:1"
    b.config_path.write_text(json.dumps(moved))
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"config not reloaded: .*\$\.tunnels\[0\]: name, mode or listen changed.*only on "
               r"restart")
    assert echo_roundtrip(a.port("to-gcp")) == b"ping through the federation\n"

    # a good config that no longer admits foo.internal: new tunnels refused; the old one flows
    # as the tunnel does not revalidate (tests/test_revalidate.py: by default it is closed)
    strict = json.loads(json.dumps(good))
    strict["tunnels"][0]["allow"] = [{"dns": "nobody.internal"}]
    strict["tunnels"][0]["revalidate"] = False
    b.config_path.write_text(json.dumps(strict))
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"config reloaded: 1 tunnel\(s\)")
    with connect(a.port("to-gcp")) as s:
        s.sendall(b"x")
        assert closed_without_data(s)
    b.wait_log(r"refused foo\.internal .*allow\[0\]: dns 'nobody\.internal'")
    stream.sendall(b"after\n")
    assert stream.recv(100) == b"after\n"
    stream.close()


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mutate,jpath,words", [
    (lambda c: c["identity"]["ca"].pop("subject"), "$.identity.ca.subject",
     "missing required key"),
    (lambda c: c["identity"]["ca"].update(url="http://x:1"), "$.identity.ca.url",
     "expected an https:// URL"),
    (lambda c: c["identity"]["ca"].update(sans=[]), "$.identity.ca.sans",
     "expected a non-empty array"),
    (lambda c: c["identity"]["ca"].update(extra=1), "$.identity.ca.extra", "unknown key"),
    (lambda c: c["identity"]["trust"].update(federation=[]), "$.identity.trust.federation",
     "expected a non-empty array"),
    (lambda c: c["identity"]["trust"].update(refresh_s=0), "$.identity.trust.refresh_s",
     "must be between 1 and 86400"),
    (lambda c: c["identity"]["trust"].update(cache_max_age_s=59),
     "$.identity.trust.cache_max_age_s", "must be between 60 and 31536000"),
    (lambda c: c["identity"]["trust"].update(cache=""), "$.identity.trust.cache",
     "must not be empty"),
    (lambda c: c["identity"]["trust"].update(cache="cache.json"), "$.identity.trust.cache",
     "must not be in the config file's directory"),
    (lambda c: c["identity"]["trust"]["federation"][0].update(root="/nonexistent.pem"),
     "$.identity.trust.federation[0].root", "cannot read /nonexistent.pem"),
    (lambda c: c.update(roots=[{"dns": ["*.x"]}]), "$.roots[0]", 'name the root with "cn"'),
    (lambda c: c.update(roots=[{"cn": "X"}]), "$.roots[0]", 'needs "dns" or "uri"'),
    (lambda c: c.update(roots=[{"sha256": "abc", "dns": ["x"]}]), "$.roots[0].sha256",
     "64 hex digits"),
    (lambda c: c.update(roots=[{"cn": "X", "dns": ["a"]}, {"cn": "X", "uri": ["b"]}]),
     "$.roots[1]", "one rule per root"),
])
def test_new_config_keys_are_checked_strictly(cas, tmp_path, mutate, jpath, words):
    cloud, kube, _ = cas
    cfg = gw_config(ca_identity(kube, tmp_path / "c", "bar.k8s.internal", B_SANS),
                    federation(kube), [terminate("127.0.0.1:1", B_ALLOW)])
    mutate(cfg)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    r = fedgate("check", "-c", path)
    assert r.returncode == 2, r
    assert r.stderr.startswith(f"fedgate: {path}: {jpath}: ") and words in r.stderr, r.stderr


# --- hardening: what a root may vouch for, what a CA may return, reloads off the loop -------


def _name(cn):
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])


def _leaf(issuer_cert, issuer_key, key, cn, sans, not_before, not_after):
    import datetime
    from cryptography.hazmat.primitives import hashes
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(seconds=not_before))
         .not_valid_after(now + datetime.timedelta(seconds=not_after))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def mint(ca, tmp, name, cn, sans):
    """A client certificate signed directly with @ca's intermediate key: any SAN types."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    ica = load_certs(ca.intermediate.read_bytes())[0]
    cert = _leaf(ica, ca.intermediate_key(), key, cn, sans, -60, 3600)
    crt, keyf = tmp / f"{name}.crt", tmp / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca.intermediate.read_bytes())
    keyf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return crt, keyf


def test_a_constrained_root_cannot_vouch_for_a_cn_outside_its_sans_or_no_san_or_other_types(
        cas, gateways, hello, tmp_path):
    import ipaddress
    cloud, kube, federated = cas
    rule = {"sha256": kube.fingerprint, "dns": ["*.k8s.internal"]}
    allow = [{"cn": "foo.internal"}, {"cn": "*.k8s.internal"}]  # foo.internal: a Cloud name
    h = gateways("h", gw_config(ca_identity(kube, tmp_path / "h", "bar.k8s.internal", B_SANS),
                                federation(kube), [terminate(hello, allow, proxy_v2=True)],
                                [rule]))
    port = h.port("from-aws")
    crt, key = client_cert(kube, tmp_path, "foo.internal", ["x.k8s.internal"])
    r = curl_hello(port, federated, crt, key)
    assert "Hello" not in r.stdout, r
    h.wait_log(r"name constraints: root 'Kubernetes Root CA' \(roots\[0\]\) may not vouch for "
               r"CN 'foo\.internal': without \"leaf_cn\" the CN must be one of the "
               r"certificate's DNS or URI SANs")
    # no SAN at all
    crt, key = mint(kube, tmp_path, "nosan", "ok.k8s.internal", [])
    r = curl_hello(port, federated, crt, key)
    assert "Hello" not in r.stdout, r
    h.wait_log(r"roots\[0\]\) vouches only for names, and the certificate has no DNS or URI SAN")
    # an IP SAN and an email SAN next to a good DNS SAN: the rule cannot constrain them
    for i, extra in enumerate([x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                               x509.RFC822Name("a@evil.example")]):
        crt, key = mint(kube, tmp_path, f"other{i}", "ok.k8s.internal",
                        [x509.DNSName("ok.k8s.internal"), extra])
        r = curl_hello(port, federated, crt, key)
        assert "Hello" not in r.stdout, r
        h.wait_log(r"roots\[0\]\): the certificate carries 1 SAN\(s\) of a type \(IP, email, "
                   r"otherName\.\.\.\) the rule cannot constrain", count=i + 1)
    # the CN equal to one of its (constrained) SANs is fine
    crt, key = client_cert(kube, tmp_path, "ok.k8s.internal", ["ok.k8s.internal"])
    r = curl_hello(port, federated, crt, key)
    assert r.stdout == "Hello ok.k8s.internal (cert issued by 'Kubernetes Root CA')\n", r


def test_leaf_cn_lets_a_constrained_root_vouch_for_listed_cns_only(cas, gateways, hello,
                                                                   tmp_path):
    cloud, kube, federated = cas
    rule = {"sha256": kube.fingerprint, "dns": ["*.k8s.internal"], "leaf_cn": ["kube_*"]}
    allow = [{"root": "Kubernetes Root CA"}]
    h = gateways("h", gw_config(ca_identity(kube, tmp_path / "h", "bar.k8s.internal", B_SANS),
                                federation(kube), [terminate(hello, allow, proxy_v2=True)],
                                [rule]))
    port = h.port("from-aws")
    crt, key = client_cert(kube, tmp_path, "kube_app", ["app.k8s.internal"])
    r = curl_hello(port, federated, crt, key)
    assert r.stdout == "Hello kube_app (cert issued by 'Kubernetes Root CA')\n", r
    crt, key = client_cert(kube, tmp_path, "app.k8s.internal", ["app.k8s.internal"])
    r = curl_hello(port, federated, crt, key)
    assert "Hello" not in r.stdout, r
    h.wait_log(r"may not vouch for CN 'app\.k8s\.internal' \(outside its namespace\)")


def test_a_second_root_with_the_same_cn_is_refused_at_start_on_reload_and_by_fingerprint(
        cas, gateways, hello, tmp_path):
    cloud, kube, federated = cas
    imp = CA(tmp_path, "Kubernetes")  # a different root, same CN "Kubernetes Root CA"
    imp.start()
    try:
        trust = tmp_path / "trust.pem"
        trust.write_bytes(federated.read_bytes() + imp.root.read_bytes())
        c1, k1 = cloud.enroll(tmp_path, "svc1", ["svc.internal"])
        rule = {"sha256": kube.fingerprint, "dns": ["*.k8s.internal"]}
        by_cn = [{"root": "Kubernetes Root CA"}]
        cfg = gw_config({"cert": str(c1), "key": str(k1)}, str(trust),
                        [terminate(hello, by_cn, proxy_v2=True)], [rule])
        path = tmp_path / "dup.json"
        path.write_text(json.dumps(cfg))
        r = fedgate("run", "-c", path)
        assert r.returncode == 2, r
        assert re.search(r"\$\.identity\.trust: two different roots are named 'Kubernetes Root "
                         r"CA' \(sha256 [0-9a-f]{64} and [0-9a-f]{64}\)", r.stderr), r.stderr
        assert kube.fingerprint.lower() in r.stderr and imp.fingerprint.lower() in r.stderr

        # a running gateway refuses the bundle update and keeps the last good one
        trust.write_bytes(federated.read_bytes())
        h = gateways("h", cfg)
        port = h.port("from-aws")
        write_atomic(trust, federated.read_bytes() + imp.root.read_bytes())
        h.wait_log(r"trust bundle changed but is not usable: .*two different roots are named "
                   r"'Kubernetes Root CA'.*keeping the current bundle", timeout=15)
        crt, key = client_cert(imp, tmp_path, "evil", ["evil.internal"])
        r = curl_hello(port, federated, crt, key, "svc.internal")
        assert "Hello" not in r.stdout, r
        kcrt, kkey = client_cert(kube, tmp_path, "a.k8s.internal", ["a.k8s.internal"])
        r = curl_hello(port, federated, kcrt, kkey, "svc.internal")
        assert r.stdout == "Hello a.k8s.internal (cert issued by 'Kubernetes Root CA')\n", r

        # naming roots only by fingerprint: both may be trusted, and each is told apart
        by_fp = [{"root": "sha256:" + kube.fingerprint.upper()}]
        cfg2 = gw_config({"cert": str(c1), "key": str(k1)}, str(trust),
                         [terminate(hello, by_fp, proxy_v2=True)], [rule])
        h2 = gateways("h2", cfg2)
        port2 = h2.port("from-aws")
        r = curl_hello(port2, federated, crt, key, "svc.internal")
        assert "Hello" not in r.stdout, r
        h2.wait_log(r"refused evil .*allow\[0\]: root 'sha256:[0-9a-f]{64}' is not the trust "
                    r"anchor")
        r = curl_hello(port2, federated, kcrt, kkey, "svc.internal")
        assert r.stdout == "Hello a.k8s.internal (cert issued by 'Kubernetes Root CA')\n", r
    finally:
        imp.stop()


def test_allow_root_by_fingerprint_is_checked_strictly(cas, tmp_path):
    cloud, kube, _ = cas
    cfg = gw_config(ca_identity(kube, tmp_path / "c", "bar.k8s.internal", B_SANS),
                    federation(kube), [terminate("127.0.0.1:1", [{"root": "sha256:abc"}])])
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    r = fedgate("check", "-c", path)
    assert r.returncode == 2, r
    assert "$.tunnels[0].allow[0].root: expected \"sha256:\" and a SHA-256 fingerprint" \
        in r.stderr, r.stderr


class FakeCA:
    """A step-ca look-alike that answers /sign and /renew with what @mode says: "good",
    "expired", "other-sans", "foreign" (a chain to another root). Its TLS chains to self.root,
    which the gateway pins as identity.ca.root."""

    def __init__(self, tmp):
        import datetime
        import http.server
        import ssl
        import threading
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        self.mode = {"/sign": "good", "/renew": "good"}
        self.lifetime = 3600
        self.not_before = -60
        pem = serialization.Encoding.PEM

        def root(cn):
            k = ec.generate_private_key(ec.SECP256R1())
            now = datetime.datetime.now(datetime.timezone.utc)
            c = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                 .public_key(k.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now - datetime.timedelta(hours=1))
                 .not_valid_after(now + datetime.timedelta(days=1))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                 .sign(k, hashes.SHA256()))
            return c, k

        self.root_cert, self.root_key = root("Fake Root CA")
        self.other_cert, self.other_key = root("Other Root CA")
        self.root = tmp / "fake_root.crt"
        self.root.write_bytes(self.root_cert.public_bytes(pem))
        import ipaddress
        tkey = ec.generate_private_key(ec.SECP256R1())
        tls = _leaf(self.root_cert, self.root_key, tkey, "localhost",
                    [x509.DNSName("localhost"),
                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], -60, 3600)
        (tmp / "fake_tls.crt").write_bytes(tls.public_bytes(pem))
        (tmp / "fake_tls.key").write_bytes(tkey.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tmp / "fake_tls.crt"), str(tmp / "fake_tls.key"))
        ctx.load_verify_locations(str(self.root))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        fake = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0))
                                  or b"{}")
                path = self.path.replace("/1.0", "")
                fake.requests.append(path)
                if path == "/sign":
                    csr = x509.load_pem_x509_csr(body["csr"].encode())
                    pub, cn = csr.public_key(), csr.subject
                    try:
                        sans = list(csr.extensions.get_extension_for_class(
                            x509.SubjectAlternativeName).value)
                    except x509.ExtensionNotFound:
                        sans = []
                else:
                    peer = x509.load_der_x509_certificate(self.connection.getpeercert(True))
                    pub, cn = peer.public_key(), peer.subject
                    sans = list(peer.extensions.get_extension_for_class(
                        x509.SubjectAlternativeName).value)
                mode = fake.mode[path]
                cn = cn.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
                issuer = (fake.other_cert, fake.other_key) if mode == "foreign" else \
                    (fake.root_cert, fake.root_key)
                if mode == "other-sans":
                    sans = [x509.DNSName("evil.internal")]
                nb, na = (-7200, -3600) if mode == "expired" else \
                    (fake.not_before, fake.lifetime)

                class K:  # the CSR's public key, for the builder
                    def public_key(self_inner):
                        return pub
                leaf = _leaf(issuer[0], issuer[1], K(), cn, sans, nb, na)
                out = json.dumps({"crt": leaf.public_bytes(pem).decode(),
                                  "ca": issuer[0].public_bytes(pem).decode(),
                                  "certChain": [leaf.public_bytes(pem).decode()]}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_ca(tmp_path):
    ca = FakeCA(tmp_path)
    yield ca
    ca.stop()


def fake_identity(fake, d, subject="gw.fake.internal", sans=("gw.fake.internal",)):
    d.mkdir(parents=True, exist_ok=True)
    # a JWT for @subject and @sans (the gateway checks that before spending it), with a
    # signature the fake CA does not check
    parts = [{"alg": "ES256"}, {"sub": subject, "sans": list(sans)}]
    (d / "token").write_text(".".join(b64u(json.dumps(p).encode()) for p in parts) + ".c2ln\n")
    return {"cert": str(d / "gw.crt"), "key": str(d / "gw.key"),
            "ca": {"url": fake.url, "root": str(fake.root), "token_file": str(d / "token"),
                   "subject": subject, "sans": list(sans)}}


@pytest.mark.parametrize("mode,words", [
    ("expired", "it is not valid now"),
    ("other-sans", "its SANs are not the ones asked for"),
    ("foreign", "it does not chain to the pinned root"),
])
def test_enrollment_refuses_a_certificate_the_ca_got_wrong_and_writes_nothing(
        cas, fake_ca, tmp_path, mode, words):
    cloud, kube, federated = cas
    fake_ca.mode["/sign"] = mode
    cfg = gw_config(fake_identity(fake_ca, tmp_path / "g"), str(federated),
                    [terminate("127.0.0.1:1", B_ALLOW)])
    path = tmp_path / "g.json"
    path.write_text(json.dumps(cfg))
    r = fedgate("run", "-c", path)
    assert fake_ca.requests == ["/sign"], fake_ca.requests
    assert r.returncode == 2, r
    assert f"$.identity.ca: refused the certificate {fake_ca.url} returned: {words}" \
        in r.stderr, r.stderr
    assert not (tmp_path / "g" / "gw.crt").exists() and not (tmp_path / "g" / "gw.key").exists()


def test_renewal_refuses_a_certificate_for_other_sans_and_keeps_serving_the_current_one(
        cas, fake_ca, gateways, hello, tmp_path):
    cloud, kube, federated = cas
    fake_ca.not_before, fake_ca.lifetime = -200, 100  # two thirds of the lifetime are over
    fake_ca.mode["/renew"] = "other-sans"
    cfg = gw_config(fake_identity(fake_ca, tmp_path / "h"), str(federated),
                    [terminate(hello, B_ALLOW, proxy_v2=True)])
    cfg["admin"] = {"listen": "127.0.0.1:0"}
    h = gateways("h", cfg)
    h.wait_log(r"enrolled at " + re.escape(fake_ca.url) + r": gw\.fake\.internal")
    before = (tmp_path / "h" / "gw.crt").read_bytes()
    # Renewal is due now, give or take its jitter (5% of the 300 s life: up to 15 s later).
    h.wait_log(r"renewal at " + re.escape(fake_ca.url) + r" failed \(attempt 1\): .*refused the "
               r"certificate .* its SANs are not the ones asked for; still serving "
               r"gw\.fake\.internal", timeout=25)
    assert (tmp_path / "h" / "gw.crt").read_bytes() == before
    assert served_serial(h.port("from-aws"), "gw.fake.internal") == file_serial(
        tmp_path / "h" / "gw.crt")
    # and a good answer is taken
    fake_ca.mode["/renew"] = "good"
    fake_ca.not_before, fake_ca.lifetime = -60, 3600
    h.wait_log(r"renewed at " + re.escape(fake_ca.url), timeout=20)
    assert (tmp_path / "h" / "gw.crt").read_bytes() != before
    # /metrics counts each: the enrollment, the refused renewal(s), the good one
    renewals = admin_renewals(h)
    assert renewals[("enroll", "ok")] == 1 and renewals[("enroll", "failed")] == 0, renewals
    assert renewals[("renew", "ok")] == 1 and renewals[("renew", "failed")] >= 1, renewals
    assert renewals[("renew", "failed")] == h.log().count("renewal at " + fake_ca.url +
                                                          " failed"), renewals


def admin_renewals(gw):
    """fedgate_renewals_total of @gw's /metrics, by (kind, result)."""
    from prometheus_client.parser import text_string_to_metric_families
    url = f"http://127.0.0.1:{gw.port('@admin')}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return {(s.labels["kind"], s.labels["result"]): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == "fedgate_renewals_total"}


def test_an_enrollment_whose_certificate_cannot_be_written_keeps_the_previous_key(
        cas, tmp_path):
    cloud, kube, federated = cas
    ident = ca_identity(kube, tmp_path / "g", "bar.k8s.internal", B_SANS)
    key = tmp_path / "g" / "gw.key"
    key.write_text("the previous key\n")
    os.mkdir(ident["cert"])  # renaming the new certificate into place fails (EISDIR)
    cfg = gw_config(ident, federation(kube), [terminate("127.0.0.1:1", B_ALLOW)])
    path = tmp_path / "g.json"
    path.write_text(json.dumps(cfg))
    r = fedgate("run", "-c", path)
    assert r.returncode == 2, r
    assert "cannot rename" in r.stderr and "gw.crt" in r.stderr, r.stderr
    assert key.read_text() == "the previous key\n"
    assert sorted(os.listdir(tmp_path / "g")) == ["gw.crt", "gw.key", "token"]


def trickle_ca():
    """A 'CA' that accepts TLS connections and answers one byte every 3 s, forever."""
    import threading
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def serve():
        while True:
            try:
                s, _ = ls.accept()
            except OSError:
                return

            def one(s=s):
                try:
                    s.recv(4096)
                    s.sendall(b"\x16\x03\x03\x40\x00")
                    while True:
                        time.sleep(3)
                        s.sendall(b"\x02")
                except OSError:
                    pass
            threading.Thread(target=one, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return ls, ls.getsockname()[1]


def test_sighup_applies_roots_and_federation_changes_without_waiting_on_a_slow_ca(
        cas, gateways, hello, tmp_path):
    cloud, kube, federated = cas
    ls, port = trickle_ca()
    try:
        c1, k1 = cloud.enroll(tmp_path, "svc1", ["svc.internal"])
        cfg = gw_config({"cert": str(c1), "key": str(k1)}, federation(kube),
                        [terminate(hello, B_ALLOW, proxy_v2=True)])
        h = gateways("h", cfg)
        port_h = h.port("from-aws")
        kcrt, kkey = client_cert(kube, tmp_path, "kube_client", ["spiffe://k8s.example/ns/p/k"])
        r = curl_hello(port_h, federated, kcrt, kkey, "svc.internal")
        assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n", r

        # a new federation source that trickles, and a root rule that excludes kube_client
        cfg2 = json.loads(h.config_path.read_text())
        # The new CA's root sits beside the gateway's cert: Landlock (README "Sandbox") lets a
        # reload read only under the directories the gateway named at start.
        root_copy = tmp_path / "trickle_root.pem"
        root_copy.write_bytes(open(cloud.root, "rb").read())
        cfg2["identity"]["trust"]["federation"].append({"url": f"https://127.0.0.1:{port}",
                                                        "root": str(root_copy)})
        cfg2["roots"] = [{"cn": "Kubernetes Root CA", "uri": ["spiffe://k8s.example/ok/*"]}]
        h.config_path.write_text(json.dumps(cfg2))
        h.proc.send_signal(signal.SIGHUP)
        h.wait_log(r"config reloaded: 1 tunnel\(s\), 2 root\(s\) in the trust bundle, "
                   r"1 root rule\(s\)", timeout=5)
        t0 = time.monotonic()
        r = curl_hello(port_h, federated, kcrt, kkey, "svc.internal")
        assert time.monotonic() - t0 < 5, "a handshake waited on the slow CA"
        assert "Hello" not in r.stdout, r
        h.wait_log(r"refused kube_client .*may not vouch for uri:spiffe://k8s\.example/ns/p/k")
        ok_id = "spiffe://k8s.example/ok/a"
        ok_crt, ok_key = mint(kube, tmp_path, "ok", ok_id, [x509.UniformResourceIdentifier(ok_id)])
        r = curl_hello(port_h, federated, ok_crt, ok_key, "svc.internal")
        assert r.stdout == f"Hello {ok_id} (cert issued by 'Kubernetes Root CA')\n", r
        assert time.monotonic() - t0 < 10

        # replacing the sources: the previous bundle serves until the new one answers
        cfg3 = json.loads(h.config_path.read_text())
        cfg3["identity"]["trust"] = federation(cloud)
        cfg3["identity"]["trust"]["federation"][0]["root"] = str(root_copy)
        cfg3.pop("roots")
        h.config_path.write_text(json.dumps(cfg3))
        h.proc.send_signal(signal.SIGHUP)
        h.wait_log(r"config reloaded", count=2, timeout=5)
        h.wait_log(r"trust bundle from " + cloud.url + r": 2 root\(s\)")
        r = curl_hello(port_h, federated, kcrt, kkey, "svc.internal")
        assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n", r
        # stopping does not wait for the trickling request
        t0 = time.monotonic()
        h.proc.send_signal(signal.SIGTERM)
        assert h.proc.wait(10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        ls.close()


# --- one conversion to UTF-8 for every CN compared -------------------------------------------
# A root's CN may be encoded as UTF8String, BMPString (UTF-16), UniversalString (UTF-32) or
# T61String. Rules name roots by their text, so every encoding must meet the same rules: a
# constrained root written in another encoding once escaped roots[] but still matched
# allow[].root.

def _encoded_root(tmp, label, cn, encoding):
    """A self-signed root whose subject CN @cn is written as @encoding, and a leaf factory:
    leaf(name, dns) -> (cert path, key path). T61String comes from `openssl req` (Latin-1,
    as X.690 readers take it); the others from python3-cryptography."""
    if encoding == "T61String":
        return _t61_root(tmp, label, cn)
    import datetime
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn,
                                         _type=getattr(_ASN1Type, encoding))])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    pem = root.public_bytes(serialization.Encoding.PEM)

    def leaf(name_, dns):
        lkey = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
                .issuer_name(name).public_key(lkey.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    ski), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
                                                      x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(key, hashes.SHA256()))
        crt, keyf = tmp / f"{label}.{name_}.crt", tmp / f"{label}.{name_}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyf.write_bytes(lkey.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        return crt, keyf

    return pem, leaf


def _t61_root(tmp, label, cn):
    """As _encoded_root, by the openssl CLI: string_mask "default" writes a Latin-1 CN as
    T61String, and `openssl x509 -req` copies the issuer name byte for byte into leaves."""
    def run(*args):
        r = subprocess.run(["openssl", *map(str, args)], capture_output=True, timeout=30)
        assert r.returncode == 0, r
    cnf, ext = tmp / f"{label}.cnf", tmp / f"{label}.ext"
    cnf.write_text("[req]\ndistinguished_name=dn\nstring_mask=default\nprompt=no\n[dn]\n"
                   "[v3]\nbasicConstraints=critical,CA:true\n"
                   "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n")
    rkey, rcrt = tmp / f"{label}.root.key", tmp / f"{label}.root.pem"
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", rkey)
    # bytes, not text: the CN goes in as Latin-1, one byte per character
    subj = b"/CN=" + cn.encode("latin-1")
    r = subprocess.run([b"openssl", b"req", b"-new", b"-x509", b"-key", bytes(rkey), b"-config",
                        bytes(cnf), b"-extensions", b"v3", b"-days", b"1", b"-subj", subj,
                        b"-out", bytes(rcrt)], capture_output=True, timeout=30)
    assert r.returncode == 0, r
    der = subprocess.run(["openssl", "x509", "-in", rcrt, "-outform", "DER"],
                         capture_output=True, timeout=30).stdout
    assert b"\x14" + bytes([len(cn)]) + cn.encode("latin-1") in der, "no T61String CN"

    def leaf(name_, dns):
        crt, keyf, csr = (tmp / f"{label}.{name_}.{x}" for x in ("crt", "key", "csr"))
        ext.write_text(f"basicConstraints=critical,CA:false\nsubjectAltName=DNS:{dns}\n"
                       "extendedKeyUsage=clientAuth,serverAuth\n"
                       "authorityKeyIdentifier=keyid\n")
        run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN={dns}", "-keyout", keyf, "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", rcrt, "-CAkey", rkey, "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")), "-days", "1", "-extfile", ext,
            "-out", crt)
        return crt, keyf

    return rcrt.read_bytes(), leaf


# Not ASCII, so that every encoding's bytes differ from the UTF-8 text the config holds.
CLOUD = "Cl\u00f6ud Root CA"
CLOUD_RULE = {"cn": CLOUD, "dns": ["*.cloud.internal"]}


@pytest.mark.parametrize("encoding", ["UTF8String", "BMPString", "UniversalString",
                                      "T61String"])
def test_a_constrained_roots_cn_in_any_string_encoding_meets_its_roots_rule(
        gateways, hello, tmp_path, encoding):
    # the gateway's own identity comes from a second, plain root; the client's from the
    # "Clöud Root CA" written as @encoding, which allow[].root and roots[].cn both name
    gw_pem, gw_leaf = _encoded_root(tmp_path, "gw", "Gateway Root CA", "UTF8String")
    pem, leaf = _encoded_root(tmp_path, "cloud", CLOUD, encoding)
    trust = tmp_path / "trust.pem"
    trust.write_bytes(gw_pem + pem)
    crt, key = gw_leaf("gw", "svc.internal")
    h = gateways("h", gw_config({"cert": str(crt), "key": str(key)}, str(trust),
                                [terminate(hello, [{"root": CLOUD}], proxy_v2=True)],
                                [CLOUD_RULE]))
    port = h.port("from-aws")
    # outside the namespace: refused by the rule written for this CN, whatever its encoding
    ecrt, ekey = leaf("evil", "evil.other")
    r = curl_hello(port, trust, ecrt, ekey, "svc.internal")
    assert "Hello" not in r.stdout, r
    h.wait_log(r"name constraints: root 'Cl\u00f6ud Root CA' \(roots\[0\]\) may not vouch for "
               r"dns:evil\.other \(outside its namespace\)")
    # inside it: admitted, and the root's name reaches the service as UTF-8 text
    gcrt, gkey = leaf("good", "app.cloud.internal")
    r = curl_hello(port, trust, gcrt, gkey, "svc.internal")
    assert r.stdout == f"Hello app.cloud.internal (cert issued by '{CLOUD}')\n", r


@pytest.mark.parametrize("encoding", ["BMPString", "UniversalString", "T61String"])
def test_two_roots_with_one_cn_in_two_encodings_are_refused_at_load(tmp_path, encoding):
    gw_pem, gw_leaf = _encoded_root(tmp_path, "gw", CLOUD, "UTF8String")
    twin_pem, _ = _encoded_root(tmp_path, "twin", CLOUD, encoding)
    trust = tmp_path / "trust.pem"
    trust.write_bytes(gw_pem + twin_pem)
    crt, key = gw_leaf("gw", "svc.internal")
    cfg = gw_config({"cert": str(crt), "key": str(key)}, str(trust),
                    [terminate("127.0.0.1:1", [{"root": CLOUD}])], [CLOUD_RULE])
    path = tmp_path / "twins.json"
    path.write_text(json.dumps(cfg))
    for cmd in ("check", "run"):
        r = fedgate(cmd, "-c", path)
        assert r.returncode == 2, r
        assert re.search(r"\$\.identity\.trust: two different roots are named 'Cl\u00f6ud Root CA' "
                         r"\(sha256 [0-9a-f]{64} and [0-9a-f]{64}\)", r.stderr), r.stderr
