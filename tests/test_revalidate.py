"""$.tunnels[].revalidate: a change of rules or trust closes the established tunnels whose peer
no longer passes, and only those.

A terminate gateway with two tunnels (one that revalidates, one with "revalidate": false)
carries tunnels from several client identities. A SIGHUP that drops an allow rule closes the
tunnel of the peer it admitted, with a fatal access_denied alert and a log line naming the
change and why; the other peer's tunnel and the tunnel that does not revalidate go on
echoing. A trust file that loses a root closes the tunnels of that root's peers. A
connection accepted before a change and handed over after it is checked once it runs.
"""

import json
import re
import signal
import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import client_ctx, gateway_config, pair_configs, wait_for

FOO = {"dns": "foo.internal", "root": "Cloud Root CA"}
CLIENT = {"dns": "client.cloud.internal", "root": "Cloud Root CA"}
KUBE = {"uri": "spiffe://k8s.example/*", "root": "Kubernetes Root CA"}


def config(pki, up, allow, trust=None):
    cfg = gateway_config(pki, "bar", [
        {"name": "check", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": allow},
        {"name": "keep", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": allow, "revalidate": False}])
    if trust:
        cfg["identity"]["trust"] = str(trust)
    return cfg


def open_tunnel(pki, gw, tunnel, leaf):
    raw = socket.create_connection(("127.0.0.1", gw.port(tunnel)), timeout=10)
    c = client_ctx(pki, leaf).wrap_socket(raw, server_hostname="bar.internal")
    assert echoes(c), f"{leaf} on {tunnel} does not echo"
    return c


def echoes(c, data=b"still here\n"):
    c.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = c.recv(len(data) - len(got))
        if not chunk:
            return False
        got += chunk
    return got == data


def closed_with_alert(c, alert):
    """The tunnel ends with our fatal @alert (the next read raises it)."""
    c.settimeout(10)
    with pytest.raises(ssl.SSLError) as e:
        while c.recv(100):
            pass
    assert alert in str(e.value).lower(), e.value


def reload_with(gw, cfg):
    n = gw.log().count("config reloaded")
    gw.config_path.write_text(json.dumps(cfg))
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log("config reloaded", count=n + 1)


def test_an_allow_rule_dropped_by_a_reload_closes_only_the_tunnels_it_admitted(
        pki, gateways, upstream):
    up = upstream()
    gw = gateways("terminate", config(pki, up, [FOO, CLIENT]))
    foo = open_tunnel(pki, gw, "check", "foo")
    other = open_tunnel(pki, gw, "check", "cloud_client")
    kept = open_tunnel(pki, gw, "keep", "foo")
    reload_with(gw, config(pki, up, [CLIENT]))
    closed_with_alert(foo, "access denied")
    line = gw.wait_log(r"tunnel check: foo\.internal closed: after a config reload it no "
                       r"longer passes: .*")[0]
    assert "cloud_client" not in line
    gw.wait_log(r"revalidation after a config reload: 1 tunnel\(s\) closed")
    # the peer the rules still admit, and the tunnel that does not revalidate, go on
    assert echoes(other) and echoes(kept)
    # and new handshakes follow the new rules
    with pytest.raises((ssl.SSLError, OSError)):
        c = open_tunnel(pki, gw, "check", "foo")
        c.recv(1)
    for c in (other, kept):
        c.close()


def test_a_root_taken_out_of_the_trust_file_closes_the_tunnels_it_vouched_for(
        pki, gateways, upstream, tmp_path):
    trust = tmp_path / "trust.pem"
    trust.write_bytes(open(pki["federated"], "rb").read())
    up = upstream()
    gw = gateways("terminate", config(pki, up, [FOO, KUBE], trust))
    cloud = open_tunnel(pki, gw, "check", "foo")
    kube = open_tunnel(pki, gw, "check", "kube_client")
    kept = open_tunnel(pki, gw, "keep", "foo")
    end = b"-----END CERTIFICATE-----"
    roots = [x509.load_pem_x509_certificate(block + end)
             for block in trust.read_bytes().split(end) if b"BEGIN" in block]
    k8s_only = [r for r in roots if "Kubernetes Root CA" in r.subject.rfc4514_string()]
    assert len(roots) == 2 and len(k8s_only) == 1
    tmp = tmp_path / "trust.pem.new"
    tmp.write_bytes(k8s_only[0].public_bytes(serialization.Encoding.PEM))
    tmp.rename(trust)
    gw.wait_log(r"trust bundle reloaded from .*trust\.pem: 1 root\(s\)")
    closed_with_alert(cloud, "certificate unknown")
    gw.wait_log(r"tunnel check: foo\.internal closed: after a trust bundle change it no "
                r"longer passes: .*: the trust bundle no longer verifies its chain")
    assert echoes(kube) and echoes(kept)
    assert len(re.findall(r"after a .* it no longer passes", gw.log())) == 1, gw.log()
    for c in (kube, kept):
        c.close()


def test_a_connection_accepted_before_a_reload_is_checked_once_it_runs(pki, gateways,
                                                                        upstream):
    up = upstream()
    gw = gateways("terminate", config(pki, up, [FOO, CLIENT]))
    raw = socket.create_connection(("127.0.0.1", gw.port("check")), timeout=10)
    time.sleep(0.3)  # accepted under the old rules
    reload_with(gw, config(pki, up, [CLIENT]))
    # Its handshake is judged by the rules it was accepted under (it passes), and the
    # tunnel is checked against the current ones once it runs.
    c = client_ctx(pki, "foo").wrap_socket(raw, server_hostname="bar.internal")
    c.settimeout(10)
    try:
        c.sendall(b"x")
    except (ssl.SSLError, OSError):
        pass
    closed_with_alert(c, "access denied")
    gw.wait_log(r"tunnel check: foo\.internal closed: after a change made while they were "
                r"being set up it no longer passes")


def test_an_originate_tunnel_passes_a_reload_and_closes_when_its_peer_root_goes(
        pki, gateways, upstream, tmp_path):
    """The originate side checks the peer gateway again too (its chain and the name it must
    hold): an unchanged reload keeps its tunnel, losing the peer's root closes it."""
    trust = tmp_path / "trust.pem"
    trust.write_bytes(open(pki["federated"], "rb").read())
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b = gateways("terminate", b_cfg)
    a_cfg = a_cfg(b.port("from-aws"))
    a_cfg["identity"]["trust"] = str(trust)
    a = gateways("originate", a_cfg)
    app = socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=10)
    assert echoes(app)
    reload_with(a, a_cfg)
    assert echoes(app), a.log()
    assert "no longer passes" not in a.log()
    end = b"-----END CERTIFICATE-----"
    cloud_only = [blk + end for blk in trust.read_bytes().split(end)
                  if b"BEGIN" in blk and b"Cloud Root CA" in
                  x509.load_pem_x509_certificate(blk + end).subject.rfc4514_string().encode()]
    assert len(cloud_only) == 1
    tmp = tmp_path / "trust.pem.new"
    tmp.write_bytes(cloud_only[0])
    tmp.rename(trust)
    a.wait_log(r"tunnel to-gcp: bar\.internal closed: after a trust bundle change it no "
               r"longer passes: .*the trust bundle no longer verifies its chain")
    # the application's side of an aborted tunnel is reset (or, at best, ended)
    app.settimeout(10)
    try:
        assert app.recv(100) == b""
    except ConnectionResetError:
        pass
    b.wait_log(r"tunnel from-aws: peer sent fatal alert certificate_unknown \(46\)")


def test_a_reload_that_changes_server_name_closes_the_tunnel_to_the_old_name(
        pki, gateways, upstream):
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b = gateways("terminate", b_cfg)
    a_cfg = a_cfg(b.port("from-aws"))
    a = gateways("originate", a_cfg)
    app = socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=10)
    assert echoes(app)
    moved = json.loads(json.dumps(a_cfg))
    moved["tunnels"][0]["server_name"] = "other.internal"
    reload_with(a, moved)
    a.wait_log(r"tunnel to-gcp: bar\.internal closed: after a config reload it no longer "
               r"passes: \$\.tunnels\[\]\.server_name is other\.internal now \(it was "
               r"bar\.internal\)")
    b.wait_log(r"tunnel from-aws: peer sent fatal alert access_denied \(49\)")
