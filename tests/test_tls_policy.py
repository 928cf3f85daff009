"""The TLS policy a gateway enforces as a server, against real `openssl s_client` peers.

- tls.groups: only X25519, P-256 and P-384 by default; a client that offers only ffdhe2048
  (or P-521, unless configured) cannot handshake. ffdhe* and unknown names are refused (exit 2).
- tls.ciphers is the server's preference order: a client that prefers CHACHA20 gets the
  gateway's first cipher that it offers.
- tls.verify_depth (0..16, default 8) bounds the CA certificates between a peer's leaf and its
  root: a deeper chain is refused with a log line that says so.
- The accept and refusal log lines name the leaf's real issuer (an intermediate) and, apart,
  the root.
"""

import datetime
import json
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import FEDGATE, gateway_config

OPENSSL = "openssl"


def s_client(port, cert, key, chain=None, groups=None, ciphersuites=None, trust=None):
    """One TLS 1.3 handshake by openssl s_client; returns (rc, output)."""
    args = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "bar.internal",
            "-tls1_3", "-brief", "-cert", cert, "-key", key]
    if chain:
        args += ["-cert_chain", chain]
    if trust:
        args += ["-CAfile", trust]
    if groups:
        args += ["-groups", groups]
    if ciphersuites:
        args += ["-ciphersuites", ciphersuites]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=15)
    return r.returncode, r.stdout + r.stderr


def established(out):
    return "CONNECTION ESTABLISHED" in out


def as_foo(pki, port, **kw):
    return s_client(port, pki["leaves"]["foo"]["leaf"], pki["leaves"]["foo"]["key"],
                    chain=pki["intermediates"]["cloud"], trust=pki["federated"], **kw)


def terminate(pki, upstream_addr, tls=None, trust=None, allow_dns=("foo.internal",)):
    t = {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": upstream_addr,
         "allow": [{"dns": d} for d in allow_dns]}
    cfg = gateway_config(pki, "bar", [t])
    if trust:
        cfg["identity"]["trust"] = trust
    if tls:
        cfg.setdefault("tls", {}).update(tls)
    return cfg


# ---------------------------------------------------------------------------------------------
# groups


def test_ffdhe_only_client_cannot_handshake(pki, gateways, upstream):
    gw = gateways("gw", terminate(pki, upstream().addr))
    rc, out = as_foo(pki, gw.port("t"), groups="ffdhe2048")
    assert rc != 0 and not established(out), out
    assert "handshake failure" in out, out


@pytest.mark.parametrize("group,shown", [("X25519", "X25519,"), ("P-256", "ECDH, prime256v1,"),
                                         ("P-384", "ECDH, secp384r1,")])
def test_default_groups_handshake(pki, gateways, upstream, group, shown):
    gw = gateways("gw", terminate(pki, upstream().addr))
    rc, out = as_foo(pki, gw.port("t"), groups=group)
    assert rc == 0 and established(out), out
    assert f"Server Temp Key: {shown}" in out, out


def test_p521_only_when_configured(pki, gateways, upstream):
    up = upstream()
    gw = gateways("default", terminate(pki, up.addr))
    rc, out = as_foo(pki, gw.port("t"), groups="P-521")
    assert rc != 0 and not established(out), out
    gw = gateways("p521", terminate(pki, up.addr, tls={"groups": ["P-521", "X25519"]}))
    rc, out = as_foo(pki, gw.port("t"), groups="P-521")
    assert rc == 0 and established(out), out
    # and X25519 is still offered, P-256 no longer
    assert as_foo(pki, gw.port("t"), groups="X25519")[0] == 0
    assert as_foo(pki, gw.port("t"), groups="P-256")[0] != 0


# ---------------------------------------------------------------------------------------------
# cipher preference


def cipher_of(out):
    for line in out.splitlines():
        if line.startswith("Ciphersuite:"):
            return line.split(":", 1)[1].strip()
    return None


CHACHA_FIRST = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"


def test_client_preferring_chacha_gets_the_servers_first_cipher(pki, gateways, upstream):
    up = upstream()
    gw = gateways("default", terminate(pki, up.addr))
    rc, out = as_foo(pki, gw.port("t"), ciphersuites=CHACHA_FIRST)
    assert rc == 0 and cipher_of(out) == "TLS_AES_128_GCM_SHA256", out
    gw = gateways("aes256", terminate(pki, up.addr, tls={
        "ciphers": ["AES-256-GCM", "CHACHA20-POLY1305", "AES-128-GCM"]}))
    rc, out = as_foo(pki, gw.port("t"), ciphersuites=CHACHA_FIRST)
    assert rc == 0 and cipher_of(out) == "TLS_AES_256_GCM_SHA384", out
    # a cipher the server does not list is never chosen, whatever the client prefers
    gw = gateways("chacha-only", terminate(pki, up.addr, tls={"ciphers": ["CHACHA20-POLY1305"]}))
    rc, out = as_foo(pki, gw.port("t"), ciphersuites="TLS_AES_128_GCM_SHA256")
    assert rc != 0 and not established(out), out


# ---------------------------------------------------------------------------------------------
# chain depth and the names in the log


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn, key, issuer_cert, issuer_key, now):
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(issuer_cert.subject if issuer_cert else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                      False), critical=True))
    return b.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def deep(pki, tmp_path_factory):
    """Deep Root CA -> Deep Intermediate 1 -> Deep Intermediate 2 -> deep.internal: two CA
    certificates between leaf and root. Returns paths and a trust file with it and the
    federated roots."""
    d = tmp_path_factory.mktemp("deep")
    now = datetime.datetime.now(datetime.timezone.utc)
    rk, k1, k2, lk = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    root = _ca("Deep Root CA", rk, None, None, now)
    i1 = _ca("Deep Intermediate 1", k1, root, rk, now)
    i2 = _ca("Deep Intermediate 2", k2, i1, k1, now)
    leaf = (x509.CertificateBuilder().subject_name(_name("deep.internal"))
            .issuer_name(i2.subject).public_key(lk.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("deep.internal")]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(k2, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    paths = {"leaf": d / "deep.leaf.crt", "chain": d / "deep.chain.crt", "key": d / "deep.key",
             "trust": d / "trust.pem"}
    paths["leaf"].write_bytes(pem(leaf))
    paths["chain"].write_bytes(pem(i2) + pem(i1))
    paths["key"].write_bytes(lk.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    os.chmod(paths["key"], 0o600)
    with open(pki["federated"], "rb") as f:
        paths["trust"].write_bytes(f.read() + pem(root))
    return {k: str(v) for k, v in paths.items()}


def as_deep(deep, port):
    return s_client(port, deep["leaf"], deep["key"], chain=deep["chain"], trust=deep["trust"])


def test_accept_log_names_the_leafs_issuer_and_the_root(pki, gateways, upstream, deep):
    gw = gateways("gw", terminate(pki, upstream().addr, trust=deep["trust"],
                                  allow_dns=("foo.internal", "deep.internal")))
    assert as_foo(pki, gw.port("t"))[0] == 0
    gw.wait_log(r"accepted foo\.internal \(issued by 'Cloud Intermediate CA', root 'Cloud Root "
                r"CA'\) on tunnel t")
    # default depth 8: two intermediates pass
    assert as_deep(deep, gw.port("t"))[0] == 0
    gw.wait_log(r"accepted deep\.internal \(issued by 'Deep Intermediate 2', root 'Deep Root "
                r"CA'\) on tunnel t")


def test_chain_deeper_than_verify_depth_is_refused(pki, gateways, upstream, deep):
    up = upstream()
    gw = gateways("depth1", terminate(pki, up.addr, trust=deep["trust"], tls={"verify_depth": 1},
                                      allow_dns=("foo.internal", "deep.internal")))
    as_deep(deep, gw.port("t"))
    gw.wait_log(r"refused deep\.internal \[dns:deep\.internal\] \(issued by 'Deep Intermediate "
                r"2', claimed root '[^']+'\) from .* certificate verification failed at depth "
                r"\d: certificate chain too long")
    assert "accepted deep.internal" not in gw.log()
    # one intermediate is within depth 1
    assert as_foo(pki, gw.port("t"))[0] == 0
    gw.wait_log(r"accepted foo\.internal")
    gw0 = gateways("depth0", terminate(pki, up.addr, tls={"verify_depth": 0}))
    as_foo(pki, gw0.port("t"))
    gw0.wait_log(r"refused foo\.internal .*\(issued by 'Cloud Intermediate CA', claimed root "
                 r"'[^']+'\) .*certificate chain too long")
    assert up.accepted == 1  # only depth1's foo reached the upstream


def test_unknown_issuer_refusal_names_the_issuer_not_a_root(pki, gateways, upstream):
    gw = gateways("gw", terminate(pki, upstream().addr))
    # the rogue leaf alone: its intermediate is not sent, so no root can be named
    s_client(gw.port("t"), pki["leaves"]["rogue"]["leaf"], pki["leaves"]["rogue"]["key"])
    gw.wait_log(r"refused foo\.internal \[dns:foo\.internal\] \(issued by 'Rogue Intermediate "
                r"CA', claimed root 'unknown'\) .*unable to get local issuer certificate")


# ---------------------------------------------------------------------------------------------
# config refusals


@pytest.mark.parametrize("tls,jpath,words", [
    ({"groups": ["ffdhe2048"]}, "$.tls.groups[0]", "finite-field groups are not offered"),
    ({"groups": ["X25519", "FFDHE8192"]}, "$.tls.groups[1]", "finite-field"),
    ({"groups": ["brainpoolP256r1"]}, "$.tls.groups[0]", "unknown group"),
    ({"groups": ["X25519", "x25519"]}, "$.tls.groups[1]", "listed twice"),
    ({"groups": []}, "$.tls.groups", "non-empty array"),
    ({"groups": "X25519"}, "$.tls.groups", "non-empty array"),
    ({"groups": [25519]}, "$.tls.groups[0]", "expected a string"),
    ({"verify_depth": 17}, "$.tls.verify_depth", "must be between 0 and 16"),
    ({"verify_depth": -1}, "$.tls.verify_depth", "must be between 0 and 16"),
    ({"verify_depth": "8"}, "$.tls.verify_depth", "expected an integer"),
    ({"verify_cache": 4097}, "$.tls.verify_cache", "must be between 0 and 4096"),
    ({"verify_cache": -1}, "$.tls.verify_cache", "must be between 0 and 4096"),
    ({"verify_cache": True}, "$.tls.verify_cache", "expected an integer"),
    ({"ec_legacy_decode": 1}, "$.tls.ec_legacy_decode", "expected true or false"),
], ids=["ffdhe2048", "ffdhe8192-upper", "unknown", "twice", "empty", "not-array",
        "not-string", "depth-17", "depth-negative", "depth-string", "cache-4097",
        "cache-negative", "cache-bool", "ec-decode-int"])
def test_bad_tls_policy_is_refused(pki, tmp_path, tls, jpath, words):
    cfg = terminate(pki, "127.0.0.1:9", tls=tls)
    path = tmp_path / "fedgate.json"
    path.write_text(json.dumps(cfg))
    for cmd in ("check", "run"):
        r = subprocess.run([FEDGATE, cmd, "-c", str(path)], capture_output=True, text=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        assert r.returncode == 2, (cmd, r)
        assert r.stderr.startswith(f"fedgate: {path}: {jpath}: ") and words in r.stderr \
            and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("tls", [{"groups": ["X448", "P-521", "P-384", "P-256", "X25519"]},
                                 {"groups": ["p-256"]}, {"verify_depth": 0},
                                 {"verify_depth": 16}, {"verify_cache": 0},
                                 {"verify_cache": 4096}])
def test_good_tls_policy_is_accepted(pki, tmp_path, tls):
    path = tmp_path / "fedgate.json"
    path.write_text(json.dumps(terminate(pki, "127.0.0.1:9", tls=tls)))
    r = subprocess.run([FEDGATE, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stderr == "", r
