"""tls.ec_legacy_decode (default true): the EC public keys of peers' certificates are decoded by
OpenSSL's built-in EC method instead of its 3.0 decoder framework (control/ec_legacy.h).

The verdicts must be the same either way: for both settings, a tunnel of a good peer works end
to end (a mutual handshake whose both sides verify EC chains and CertificateVerify
signatures), a leaf whose signature was altered is refused as a signature failure, a chain to
a root outside the bundle is refused, and an RSA peer (a key type the setting does not touch)
still works; and a reload that switches it keeps the open tunnels and verifies new ones.
"""

import json
import signal
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import client_ctx, gateway_config, pair_configs, ping_through
from pki import issue_leaf


def terminate(pki, gateways, up, on, name="terminate"):
    cfg = gateway_config(pki, "bar", [
        {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    cfg.setdefault("tls", {})["ec_legacy_decode"] = on
    return gateways(name, cfg)


def echo_through(pki, port, crt, key):
    """b"ping\\n" back through a tunnel of the client @crt/@key, or the error that ended it."""
    return ping_through(pki, port, crt, key)


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_a_pair_of_gateways_works_both_ways(pki, gateways, upstream, on):
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b_cfg.setdefault("tls", {})["ec_legacy_decode"] = on
    b = gateways("terminate", b_cfg)
    a_cfg = a_cfg(b.port("from-aws"))
    a_cfg.setdefault("tls", {})["ec_legacy_decode"] = on
    a = gateways("originate", a_cfg)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=10)
        s.sendall(b"both ways\n")
        got = b""
        while len(got) < 10:
            chunk = s.recv(10 - len(got))
            assert chunk, "tunnel closed"
            got += chunk
        s.close()
        assert got == b"both ways\n"


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_a_leaf_with_an_altered_signature_is_refused(pki, gateways, upstream, tmp_path, on):
    up = upstream()
    gw = terminate(pki, gateways, up, on)
    chain = open(pki["leaves"]["foo"]["crt"], "rb").read()
    end = b"-----END CERTIFICATE-----"
    certs = [x509.load_pem_x509_certificate(block + end)
             for block in chain.split(end) if b"BEGIN" in block]
    der = bytearray(certs[0].public_bytes(serialization.Encoding.DER))
    # The signature's BIT STRING ends the certificate: its last byte is part of s.
    der[-1] ^= 0x01
    bad = x509.load_der_x509_certificate(bytes(der))
    path = tmp_path / "altered.crt"
    path.write_bytes(bad.public_bytes(serialization.Encoding.PEM)
                     + certs[1].public_bytes(serialization.Encoding.PEM))
    got = echo_through(pki, gw.port("t"), str(path), pki["leaves"]["foo"]["key"])
    assert not isinstance(got, bytes), "a leaf with an altered signature passed"
    gw.wait_log(r"certificate verification failed at depth 0: certificate signature failure")
    # and the genuine leaf still passes on the same gateway
    assert echo_through(pki, gw.port("t"), pki["leaves"]["foo"]["crt"],
                        pki["leaves"]["foo"]["key"]) == b"ping\n"


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_a_root_outside_the_bundle_is_refused(pki, gateways, upstream, on):
    up = upstream()
    gw = terminate(pki, gateways, up, on)
    rogue = pki["leaves"]["rogue"]
    got = echo_through(pki, gw.port("t"), rogue["crt"], rogue["key"])
    assert not isinstance(got, bytes), "a rogue chain passed"
    gw.wait_log(r"certificate verification failed at depth 1: unable to get local issuer "
                r"certificate")


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_an_rsa_peer_still_works(pki, gateways, upstream, on):
    up = upstream()
    gw = terminate(pki, gateways, up, on)
    rsa = issue_leaf(pki, "foo_rsa", "foo.internal", dns=["foo.internal"], issuer="cloud",
                     key_type="rsa")
    assert echo_through(pki, gw.port("t"), rsa["crt"], rsa["key"]) == b"ping\n"


@pytest.mark.parametrize("first", [True, False], ids=["on-then-off", "off-then-on"])
def test_a_reload_that_switches_it_keeps_the_tunnels_and_verifies_new_ones(
        pki, gateways, upstream, first):
    """Keys decoded under one setting (the tunnels' peer chains, the bundle's roots) are
    verified again under the other: revalidation after the reload passes foo's open tunnel
    and closes only cloud_client's (whose allow rule the reload drops), and new handshakes
    work."""
    up = upstream()
    cfg = gateway_config(pki, "bar", [
        {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"},
                   {"dns": "client.cloud.internal", "root": "Cloud Root CA"}]}])
    cfg.setdefault("tls", {})["ec_legacy_decode"] = first
    gw = gateways("terminate", cfg)

    def open_tunnel(leaf):
        ctx = client_ctx(pki, leaf)
        raw = socket.create_connection(("127.0.0.1", gw.port("t")), timeout=10)
        c = ctx.wrap_socket(raw, server_hostname="bar.internal")
        c.sendall(b"ping\n")
        assert c.recv(5) == b"ping\n"
        return c

    foo, other = open_tunnel("foo"), open_tunnel("cloud_client")
    cfg["tls"]["ec_legacy_decode"] = not first
    cfg["tunnels"][0]["allow"] = cfg["tunnels"][0]["allow"][:1]
    n = gw.log().count("config reloaded")
    gw.config_path.write_text(json.dumps(cfg))
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log("config reloaded", count=n + 1)
    gw.wait_log(r"tunnel t: cloud_client closed: after a config reload it no longer passes")
    gw.wait_log(r"revalidation after a config reload: 1 tunnel\(s\) closed")
    foo.sendall(b"pong\n")
    assert foo.recv(5) == b"pong\n"
    for c in (foo, other):
        c.close()
    leaf = pki["leaves"]["foo"]
    assert echo_through(pki, gw.port("t"), leaf["crt"], leaf["key"]) == b"ping\n"
    rogue = pki["leaves"]["rogue"]
    assert not isinstance(echo_through(pki, gw.port("t"), rogue["crt"], rogue["key"]), bytes)
