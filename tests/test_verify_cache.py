"""tls.verify_cache: a peer chain verified before is not verified again in full, and a cached
verdict never lets through what a full verification would refuse.

The cache is per TLS context (control/verify_cache.h). These tests count its hits, misses and
stale entries on /metrics (fedgate_tls_verify_cache_total) and check that: a second
connection of the same client is a hit and still passes the allow rules; a certificate that
expires after its chain was cached is refused as expired (the entry is dropped as stale); a
trust bundle that loses the root refuses the cached chain; on the originate side a cached
server chain is still checked against each tunnel's server_name; and with the cache off
(verify_cache 0) nothing is cached.
"""

import datetime
import socket
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import gateway_config, ping_through
from pki import issue_leaf

FOO = {"dns": "foo.internal", "root": "Cloud Root CA"}


def counts(gw):
    """{"hit": n, "miss": n, "stale": n} of one GET /metrics."""
    url = f"http://127.0.0.1:{gw.port('@admin')}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("fedgate_tls_verify_cache_total{"):
            label, val = line.split("} ")
            out[label.split('"')[1]] = int(val)
    assert set(out) == {"hit", "miss", "stale"}, text
    return out


def terminate(pki, gateways, up, trust=None, tls=None, allow=(FOO,)):
    cfg = gateway_config(pki, "bar", [
        {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": list(allow)}])
    cfg["admin"] = {"listen": "127.0.0.1:0"}
    if trust:
        cfg["identity"]["trust"] = str(trust)
    if tls:
        cfg["tls"] = dict(cfg.get("tls", {}), **tls)
    return gateways("terminate", cfg)


def client(pki, leaf, port):
    """A tunnel of @leaf through @port: its first echo back, or the error that ended it."""
    return ping_through(pki, port, *(() if leaf == "foo" else (leaf["crt"], leaf["key"])))


def test_a_client_seen_before_is_a_hit_and_still_authorized(pki, gateways, upstream):
    up = upstream()
    gw = terminate(pki, gateways, up)
    assert counts(gw) == {"hit": 0, "miss": 0, "stale": 0}
    assert client(pki, "foo", gw.port("t")) == b"ping\n"
    assert counts(gw) == {"hit": 0, "miss": 1, "stale": 0}
    for _ in range(3):
        assert client(pki, "foo", gw.port("t")) == b"ping\n"
    assert counts(gw) == {"hit": 3, "miss": 1, "stale": 0}
    # Another client of the same root is another chain: verified in full, then refused by
    # the allow rules (which a cached verdict never skips).
    other = {"crt": pki["leaves"]["cloud_client"]["crt"],
             "key": pki["leaves"]["cloud_client"]["key"]}
    for _ in range(2):
        assert not isinstance(client(pki, other, gw.port("t")), bytes)
    gw.wait_log(r"refused cloud_client .* on tunnel t: allow\[0\]: dns 'foo\.internal' "
                r"matches no DNS SAN", count=2)
    assert counts(gw) == {"hit": 4, "miss": 2, "stale": 0}


def test_a_certificate_that_expired_after_it_was_cached_is_refused(pki, gateways, upstream,
                                                                  tmp_path):
    up = upstream()
    gw = terminate(pki, gateways, up)
    # Whole seconds: valid from a minute ago until 3 s from now.
    soon = issue_leaf(pki, "soon", "foo.internal",
                      dns=["foo.internal"], issuer="cloud",
                      not_before=datetime.timedelta(minutes=-1),
                      not_after=datetime.timedelta(seconds=3))
    until = x509.load_pem_x509_certificate(open(soon["leaf"], "rb").read())
    end = until.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert client(pki, soon, gw.port("t")) == b"ping\n"
    assert client(pki, soon, gw.port("t")) == b"ping\n"
    assert counts(gw) == {"hit": 1, "miss": 1, "stale": 0}
    time.sleep(max(0.0, end - time.time()) + 1.5)
    got = client(pki, soon, gw.port("t"))
    assert not isinstance(got, bytes), "an expired certificate passed"
    gw.wait_log(r"certificate verification failed at depth 0: certificate has expired")
    assert counts(gw) == {"hit": 1, "miss": 2, "stale": 1}


def test_a_bundle_without_the_root_refuses_a_cached_chain(pki, gateways, upstream, tmp_path):
    trust = tmp_path / "trust.pem"
    trust.write_bytes(open(pki["federated"], "rb").read())
    up = upstream()
    gw = terminate(pki, gateways, up, trust=trust)
    assert client(pki, "foo", gw.port("t")) == b"ping\n"
    assert client(pki, "foo", gw.port("t")) == b"ping\n"
    assert counts(gw)["hit"] == 1
    end = b"-----END CERTIFICATE-----"
    roots = [x509.load_pem_x509_certificate(block + end)
             for block in trust.read_bytes().split(end) if b"BEGIN" in block]
    k8s = [r for r in roots if "Kubernetes Root CA" in r.subject.rfc4514_string()]
    assert len(k8s) == 1
    tmp = tmp_path / "trust.pem.new"
    tmp.write_bytes(k8s[0].public_bytes(serialization.Encoding.PEM))
    tmp.rename(trust)
    gw.wait_log(r"trust bundle reloaded from .*trust\.pem: 1 root\(s\)")
    before = counts(gw)
    got = client(pki, "foo", gw.port("t"))
    assert not isinstance(got, bytes), "a chain whose root left the bundle passed"
    gw.wait_log(r"certificate verification failed at depth 1: unable to get local issuer")
    after = counts(gw)
    assert after["hit"] == before["hit"] and after["miss"] == before["miss"] + 1


def test_a_cached_server_chain_is_checked_against_each_server_name(pki, gateways, upstream):
    up = upstream()
    b = terminate(pki, gateways, up)
    port = b.port("t")
    cfg = gateway_config(pki, "foo", [
        {"name": name, "mode": "originate", "listen": "127.0.0.1:0",
         "peer": f"127.0.0.1:{port}", "server_name": sni,
         "allow": [{"dns": sni, "root": "Kubernetes Root CA"}]}
        for name, sni in (("good", "bar.internal"), ("wrong", "nope.internal"))])
    cfg["admin"] = {"listen": "127.0.0.1:0"}
    a = gateways("originate", cfg)

    def through(tunnel):
        s = socket.create_connection(("127.0.0.1", a.port(tunnel)), timeout=10)
        try:
            s.sendall(b"ping\n")
            return s.recv(5)
        except OSError:
            return b""
        finally:
            s.close()

    assert through("good") == b"ping\n"
    assert through("good") == b"ping\n"
    assert counts(a)["hit"] == 1
    # The same chain, another expected name: not the cached verdict's key.
    assert through("wrong") == b""
    a.wait_log(r"tunnel wrong: .*certificate verification failed at depth 0: hostname "
               r"mismatch")
    assert counts(a)["hit"] == 1
    assert through("good") == b"ping\n"
    assert counts(a)["hit"] == 2


def test_verify_cache_0_verifies_every_chain_in_full(pki, gateways, upstream):
    up = upstream()
    gw = terminate(pki, gateways, up, tls={"verify_cache": 0})
    for _ in range(3):
        assert client(pki, "foo", gw.port("t")) == b"ping\n"
    assert counts(gw) == {"hit": 0, "miss": 0, "stale": 0}
