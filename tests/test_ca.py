"""fedgate's online CA: step-ca's HTTPS API, one-time tokens, enrollment, mTLS renewal and
federation, with real `fedgate ca` processes, curl, openssl and Python's ssl.

Two CAs, Cloud and Kubernetes, each list the other's root in "federatedRoots" (Cloud lists its
own root as well, to prove /federation deduplicates). Kubernetes issues two-minute leaves.
"""

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import FEDGATE, stop_process, wait_for

PASSWORD = "correct horse battery staple"


def fedgate(*args, timeout=30, **kw):
    return subprocess.run([FEDGATE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def ok(r):
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_certs(pem):
    """Every certificate of a PEM text (python3-cryptography 38 has no multi-cert loader)."""
    if isinstance(pem, bytes):
        pem = pem.decode()
    end = "-----END CERTIFICATE-----"
    blocks = [b + end for b in pem.split(end) if "-----BEGIN CERTIFICATE-----" in b]
    assert blocks, pem
    return [x509.load_pem_x509_certificate(b.encode()) for b in blocks]


def not_after(cert):
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def not_before(cert):
    return cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def thumbprint(jwk):
    canon = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"),
                       sort_keys=True)
    return b64u(hashlib.sha256(canon.encode()).digest())


def san_value(name):
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    return x509.UniformResourceIdentifier(name) if ":" in name else x509.DNSName(name)


def make_csr(cn, sans, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([san_value(s) for s in sans]),
                            critical=False)
    return key, b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


class CA:
    """One `fedgate ca init` directory and its `fedgate ca serve` process."""

    def __init__(self, tmp, name):
        self.name = name
        self.base = tmp / name.lower()
        self.base.mkdir()
        self.dir = self.base / "ca"
        self.pwfile = self.base / "password"
        self.pwfile.write_text(PASSWORD + "\n")
        ok(fedgate("ca", "init", "--name", name, "--dir", self.dir, "--password-file",
                   self.pwfile, "--address", "127.0.0.1:0", "--dns", "localhost",
                   "--dns", "127.0.0.1"))
        self.config = self.dir / "config" / "ca.json"
        self.root = self.dir / "certs" / "root_ca.crt"
        self.intermediate = self.dir / "certs" / "intermediate_ca.crt"
        self.root_cert = load_certs(self.root.read_bytes())[0]
        self.fingerprint = fingerprint(self.root_cert)
        self.proc = None
        self._prov_key = None

    def edit(self, fn):
        cfg = json.loads(self.config.read_text())
        fn(cfg)
        self.config.write_text(json.dumps(cfg, indent=2))

    @property
    def prov(self):
        return json.loads(self.config.read_text())["authority"]["provisioners"][0]

    def provisioner_key(self):
        # Decrypted once per CA: each decryption costs 600000 PBKDF2 rounds.
        if self._prov_key is None:
            self._prov_key = serialization.load_pem_private_key(
                (self.dir / "secrets" / "provisioner_key").read_bytes(), PASSWORD.encode())
        return self._prov_key

    def intermediate_key(self):
        return serialization.load_pem_private_key(
            (self.dir / "secrets" / "intermediate_ca_key").read_bytes(), PASSWORD.encode())

    def start(self):
        self.addr_file = self.base / "address"
        self.log_path = self.base / "log"
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [FEDGATE, "ca", "serve", str(self.config), "--password-file", str(self.pwfile),
             "--address-file", str(self.addr_file)],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)
        wait_for(lambda: self.addr_file.exists() or self.proc.poll() is not None, 10,
                 f"{self.name} CA to listen")
        assert self.proc.poll() is None, f"{self.name} CA exited:\n{self.log()}"
        self.port = int(self.addr_file.read_text().strip().rsplit(":", 1)[1])
        self.url = f"https://localhost:{self.port}"

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        self.logf.close()
        return stop_process(self.proc)

    # --- clients ------------------------------------------------------------------------------

    def ssl_context(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=str(self.root))
        if cert:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def request(self, method, path, body=None, cert=None, key=None, host="localhost",
                headers=None):
        """(status, parsed JSON or text) over HTTPS pinned to this CA's root."""
        conn = http.client.HTTPSConnection(host, self.port, timeout=10,
                                           context=self.ssl_context(cert, key))
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read().decode()
            assert resp.getheader("Content-Type", "").startswith(
                ("application/json", "application/x-pem-file")), resp.getheaders()
            try:
                return resp.status, json.loads(data)
            except ValueError:
                return resp.status, data
        finally:
            conn.close()

    def curl(self, *args):
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(self.root),
                            "-w", "\n%{http_code}", *map(str, args)],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        body, _, code = r.stdout.rpartition("\n")
        return int(code), json.loads(body) if body.startswith(("{", "[")) else body

    def cli_token(self, subject, *sans, **kw):
        args = ["ca", "token", subject, "--ca-url", self.url, "--root", self.root,
                "--ca-config", self.config, "--password-file", self.pwfile]
        for s in sans:
            args += ["--san", s]
        for k, v in kw.items():
            args += ["--" + k.replace("_", "-"), v]
        return ok(fedgate(*args)).stdout.strip()

    def token(self, sub, sans, **over):
        """A token minted here in Python (an independent ES256 implementation)."""
        now = int(time.time())
        claims = {"sub": sub, "sans": list(sans), "aud": f"{self.url}/1.0/sign", "iss": "admin",
                  "nbf": now, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
                  "sha": self.fingerprint}
        header = {"alg": "ES256", "kid": self.prov["key"]["kid"], "typ": "JWT"}
        key = over.pop("key", None) or self.provisioner_key()
        header.update(over.pop("header", {}))
        claims.update(over)
        claims = {k: v for k, v in claims.items() if v is not None}
        signing_input = (b64u(json.dumps(header).encode()) + "." +
                         b64u(json.dumps(claims).encode()))
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def sign(self, csr, ott, **extra):
        return self.request("POST", "/1.0/sign", {"csr": csr, "ott": ott, **extra})

    def enroll(self, tmp, name, sans, **token_kw):
        crt, key = tmp / f"{name}.crt", tmp / f"{name}.key"
        tok = self.cli_token(name, *sans, **token_kw)
        ok(fedgate("ca", "certificate", name, crt, key, "--token", tok, "--ca-url", self.url,
                   "--root", self.root))
        return crt, key


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cas")
    cloud, kube = CA(tmp, "Cloud"), CA(tmp, "Kubernetes")
    cloud.edit(lambda c: c.update(federatedRoots=[str(kube.root), str(cloud.root)],
                                  requestTimeout="2s"))

    def kube_cfg(c):
        c["federatedRoots"] = [str(cloud.root)]
        c["requestTimeout"] = "2s"
        c["authority"]["claims"] = {"defaultTLSCertDuration": "2m"}

    kube.edit(kube_cfg)
    started = []
    try:
        for ca in (cloud, kube):
            ca.start()
            started.append(ca)
        yield cloud, kube
    finally:
        codes = {ca.name: ca.stop() for ca in started}
    # A clean stop on SIGTERM (under ASan, leaks and errors would make this non-zero).
    assert all(rc == 0 for rc in codes.values()), (codes, [ca.log() for ca in started])


@pytest.fixture
def cloud(cas):
    return cas[0]


@pytest.fixture
def kube(cas):
    return cas[1]


def assert_error(got, status, *words):
    code, body = got
    assert code == status, got
    assert isinstance(body, dict) and body.get("status") == status, got
    for w in words:
        assert w in body["message"], got


# --- init and keys at rest -------------------------------------------------------------------


def test_init_writes_step_layout_with_keys_encrypted_at_rest(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    d = tmp_path / "third"
    ok(fedgate("ca", "init", "--name", "Third", "--dir", d, "--password-file", pw))
    cfg = json.loads((d / "config" / "ca.json").read_text())
    assert cfg["federatedRoots"] == []
    assert cfg["root"] == str(d / "certs" / "root_ca.crt")
    assert cfg["dnsNames"] == ["localhost", "127.0.0.1"]
    prov = cfg["authority"]["provisioners"][0]
    assert prov["type"] == "JWK" and prov["name"] == "admin"
    assert prov["key"]["kty"] == "EC" and prov["key"]["crv"] == "P-256"
    assert prov["key"]["kid"] == thumbprint(prov["key"])  # RFC 7638, as step
    root = load_certs((d / "certs" / "root_ca.crt").read_bytes())[0]
    inter = load_certs((d / "certs" / "intermediate_ca.crt").read_bytes())[0]
    assert root.subject.rfc4514_string() == "CN=Third Root CA"
    assert inter.subject.rfc4514_string() == "CN=Third Intermediate CA"
    assert inter.issuer == root.subject
    assert inter.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    r = subprocess.run(["openssl", "verify", "-CAfile", d / "certs" / "root_ca.crt",
                        d / "certs" / "intermediate_ca.crt"], capture_output=True, text=True)
    assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr
    assert os.stat(d / "secrets").st_mode & 0o777 == 0o700
    for name in ("root_ca_key", "intermediate_ca_key", "provisioner_key"):
        path = d / "secrets" / name
        text = path.read_bytes()
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), text[:40]
        with pytest.raises(TypeError):  # "Password was not given but private key is encrypted"
            serialization.load_pem_private_key(text, None)
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(text, b"wrong")
        key = serialization.load_pem_private_key(text, b"s3cret")
        assert isinstance(key.curve, ec.SECP256R1)
        r = subprocess.run(["openssl", "pkey", "-in", path, "-passin", "pass:wrong", "-noout"],
                           capture_output=True, text=True)
        assert r.returncode != 0
        # AES-256 under PBES2, not the weak legacy PEM encryption
        r = subprocess.run(["openssl", "asn1parse", "-in", path], capture_output=True, text=True)
        assert "PBES2" in r.stdout and "aes-256-cbc" in r.stdout, r.stdout


def test_init_refuses_a_directory_that_already_holds_a_ca(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    ok(fedgate("ca", "init", "--name", "X", "--dir", tmp_path / "x", "--password-file", pw))
    before = (tmp_path / "x" / "secrets" / "root_ca_key").read_bytes()
    r = fedgate("ca", "init", "--name", "X", "--dir", tmp_path / "x", "--password-file", pw)
    assert r.returncode == 1 and "already exists" in r.stderr, r.stderr
    assert (tmp_path / "x" / "secrets" / "root_ca_key").read_bytes() == before


def test_init_without_password_source_or_terminal_fails_clearly(tmp_path):
    r = fedgate("ca", "init", "--name", "X", "--dir", tmp_path / "x", start_new_session=True)
    assert r.returncode == 1 and "--password-file" in r.stderr, r.stderr
    assert not (tmp_path / "x" / "config" / "ca.json").exists()


def test_serve_with_a_wrong_password_exits_nonzero_with_a_clear_error(cloud, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    r = fedgate("ca", "serve", cloud.config, "--password-file", wrong, timeout=20)
    assert r.returncode == 2, r
    assert "wrong password" in r.stderr and "intermediate_ca_key" in r.stderr, r.stderr


def test_serve_refuses_a_bad_config_with_the_key_named(cloud, tmp_path):
    cfg = json.loads(cloud.config.read_text())
    cfg["authority"]["claims"] = {"defaultTLSCertDuration": "forever"}
    bad = tmp_path / "ca.json"
    bad.write_text(json.dumps(cfg))
    r = fedgate("ca", "serve", bad, "--password-file", cloud.pwfile, timeout=20)
    assert r.returncode == 2, r
    assert "$.authority.claims.defaultTLSCertDuration" in r.stderr, r.stderr


# --- endpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/1.0"])
def test_read_endpoints_with_curl(cloud, kube, prefix):
    assert cloud.curl(f"{cloud.url}{prefix}/health") == (200, {"status": "ok"})
    code, body = cloud.curl(f"{cloud.url}{prefix}/roots")
    assert code == 201 and [fingerprint(c) for c in load_certs("".join(body["crts"]))] == [
        cloud.fingerprint]
    code, body = cloud.curl(f"{cloud.url}{prefix}/root/{cloud.fingerprint}")
    assert code == 200 and fingerprint(load_certs(body["ca"])[0]) == cloud.fingerprint
    code, body = cloud.curl(f"{cloud.url}{prefix}/federation")
    assert code == 201
    # own root + Kubernetes root; the own root listed again in federatedRoots is deduplicated
    assert sorted(fingerprint(c) for c in load_certs("".join(body["crts"]))) == sorted(
        [cloud.fingerprint, kube.fingerprint])
    assert_error(cloud.curl(f"{cloud.url}{prefix}/root/{'0' * 64}"), 404, "no root")
    assert_error(cloud.curl(f"{cloud.url}{prefix}/nothing"), 404, "no such endpoint")
    assert_error(cloud.curl("-X", "POST", "-d", "", f"{cloud.url}{prefix}/roots"), 405)
    assert_error(cloud.curl(f"{cloud.url}{prefix}/sign"), 405)


def test_read_endpoints_with_python_over_tls13_by_name_and_by_ip(cloud, kube):
    for host in ("localhost", "127.0.0.1"):  # both are SANs of the CA's certificate
        assert cloud.request("GET", "/health", host=host) == (200, {"status": "ok"})
    code, body = cloud.request("GET", "/1.0/federation")
    assert code == 201 and len(body["crts"]) == 2
    code, body = kube.request("GET", "/federation")
    assert code == 201 and sorted(fingerprint(load_certs(p)[0]) for p in body["crts"]) == sorted(
        [cloud.fingerprint, kube.fingerprint])
    code, body = cloud.request("GET", "/version")
    assert code == 200 and body["requireClientAuthentication"] is False
    code, text = cloud.request("GET", "/roots.pem")
    assert code == 200 and fingerprint(load_certs(text)[0]) == cloud.fingerprint
    with socket.create_connection(("127.0.0.1", cloud.port), 5) as s:
        with cloud.ssl_context().wrap_socket(s, server_hostname="localhost") as t:
            assert t.version() == "TLSv1.3"
            chain = t.getpeercert()
            assert ("DNS", "localhost") in chain["subjectAltName"]
    ctx = cloud.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", cloud.port), 5) as s:
            ctx.wrap_socket(s, server_hostname="localhost")


def test_federation_cli_saves_both_roots_pinned_to_the_given_root(cloud, kube, tmp_path):
    for ca in (cloud, kube):
        out = tmp_path / f"{ca.name}-federated.pem"
        ok(fedgate("ca", "federation", "--ca-url", ca.url, "--root", ca.root, out))
        assert sorted(fingerprint(c) for c in load_certs(out.read_bytes())) == sorted(
            [cloud.fingerprint, kube.fingerprint])
    out = tmp_path / "roots.pem"
    ok(fedgate("ca", "roots", "--ca-url", kube.url, "--root", kube.root, out))
    assert [fingerprint(c) for c in load_certs(out.read_bytes())] == [kube.fingerprint]


def test_federation_cli_refuses_a_ca_outside_the_pinned_root(cloud, kube, tmp_path):
    out = tmp_path / "f.pem"
    r = fedgate("ca", "federation", "--ca-url", cloud.url, "--root", kube.root, out)
    assert r.returncode == 1 and "does not verify against the pinned root" in r.stderr, r.stderr
    assert not out.exists()
    # the name in the URL must be in the CA's certificate too
    r = fedgate("ca", "federation", "--ca-url", f"https://127.0.0.2:{cloud.port}", "--root",
                cloud.root, out)
    assert r.returncode == 1 and not out.exists(), r.stderr


# --- enrollment ------------------------------------------------------------------------------


def test_enroll_with_token_and_certificate_then_openssl_verify(cloud, tmp_path):
    sans = ["foo.internal", "spiffe://cloud.example/gw/foo", "10.1.2.3"]
    crt, key = cloud.enroll(tmp_path, "foo.internal", sans)
    assert os.stat(key).st_mode & 0o777 == 0o600
    chain = load_certs(crt.read_bytes())
    assert len(chain) == 2 and chain[1].subject.rfc4514_string() == "CN=Cloud Intermediate CA"
    leaf = chain[0]
    assert leaf.subject.rfc4514_string() == "CN=foo.internal"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["foo.internal"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cloud.example/gw/foo"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    life = not_after(leaf) - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=23, minutes=58) < life <= datetime.timedelta(hours=24)
    r = subprocess.run(["openssl", "verify", "-CAfile", cloud.root, "-untrusted",
                        cloud.intermediate, "-purpose", "sslclient", crt],
                       capture_output=True, text=True)
    assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr
    k = serialization.load_pem_private_key(key.read_bytes(), None)
    assert k.public_key().public_numbers() == leaf.public_key().public_numbers()


def test_kubernetes_ca_issues_its_configured_two_minute_leaves(kube, tmp_path):
    crt, _ = kube.enroll(tmp_path, "kube_client", ["kube-client.k8s.internal"])
    leaf = load_certs(crt.read_bytes())[0]
    life = not_after(leaf) - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(seconds=100) < life <= datetime.timedelta(minutes=2), life
    r = subprocess.run(["openssl", "verify", "-CAfile", kube.root, "-untrusted",
                        kube.intermediate, crt], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_fedgate_token_verifies_with_the_provisioner_jwk_in_python(cloud):
    tok = cloud.cli_token("bar.internal", "bar.internal", "spiffe://x.example/bar")
    h64, c64, s64 = tok.split(".")
    header, claims, sig = json.loads(unb64u(h64)), json.loads(unb64u(c64)), unb64u(s64)
    assert header == {"alg": "ES256", "kid": cloud.prov["key"]["kid"], "typ": "JWT"}
    assert len(sig) == 64
    jwk = cloud.prov["key"]
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64u(jwk["x"]), "big"),
                                        int.from_bytes(unb64u(jwk["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                    int.from_bytes(sig[32:], "big")),
               f"{h64}.{c64}".encode(), ec.ECDSA(hashes.SHA256()))
    assert claims["iss"] == "admin" and claims["sub"] == "bar.internal"
    assert claims["aud"] == f"{cloud.url}/1.0/sign"
    assert claims["sans"] == ["bar.internal", "spiffe://x.example/bar"]
    assert claims["sha"] == cloud.fingerprint
    assert claims["exp"] - claims["nbf"] == 300 and abs(claims["nbf"] - time.time()) < 30
    assert len(claims["jti"]) == 64


def test_token_from_a_key_file_is_accepted_and_a_wrong_password_is_named(cloud, tmp_path):
    r = ok(fedgate("ca", "token", "k.internal", "--ca-url", cloud.url, "--root", cloud.root,
                   "--key", cloud.dir / "secrets" / "provisioner_key", "--provisioner", "admin",
                   "--provisioner-password-file", cloud.pwfile))
    _, csr = make_csr("k.internal", ["k.internal"])
    assert cloud.sign(csr, r.stdout.strip())[0] == 201
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    r = fedgate("ca", "token", "k.internal", "--ca-url", cloud.url, "--root", cloud.root,
                "--ca-config", cloud.config, "--password-file", wrong)
    assert r.returncode == 1 and "wrong password" in r.stderr and r.stdout == "", r
    r = fedgate("ca", "token", "k.internal", "--ca-url", cloud.url, "--root", cloud.root)
    assert r.returncode == 2 and "--key FILE or --ca-config FILE" in r.stderr, r


def test_python_minted_token_and_csr_are_accepted_with_curl(cloud, tmp_path):
    sans = ["py.internal", "spiffe://cloud.example/ns/default/sa/py"]
    _, csr = make_csr("py.internal", sans)
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"csr": csr, "ott": cloud.token("py.internal", sans)}))
    # curl waits for the CA's "100 Continue" before it sends the body (or 5 s without it)
    t0 = time.monotonic()
    code, resp = cloud.curl("-H", "Content-Type: application/json", "-H", "Expect: 100-continue",
                            "--expect100-timeout", "5", "--data-binary", f"@{body}",
                            f"{cloud.url}/sign")
    assert time.monotonic() - t0 < 4, "no 100 Continue from the CA"
    assert code == 201, resp
    assert resp["certChain"][0] == resp["crt"] and resp["certChain"][1] == resp["ca"]
    assert load_certs(resp["crt"])[0].subject.rfc4514_string() == "CN=py.internal"


def test_sign_honours_requested_validity_within_the_limits(cloud):
    _, csr = make_csr("v.internal", ["v.internal"])
    code, resp = cloud.sign(csr, cloud.token("v.internal", ["v.internal"]), notAfter="10m")
    assert code == 201, resp
    leaf = load_certs(resp["crt"])[0]
    life = not_after(leaf) - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(minutes=9) < life <= datetime.timedelta(minutes=10), life
    nb = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + \
        datetime.timedelta(hours=1)
    na = nb + datetime.timedelta(hours=2)
    code, resp = cloud.sign(csr, cloud.token("v.internal", ["v.internal"]),
                            notBefore=nb.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            notAfter=na.isoformat())
    assert code == 201, resp
    leaf = load_certs(resp["crt"])[0]
    assert (not_before(leaf), not_after(leaf)) == (nb, na)
    assert_error(cloud.sign(csr, cloud.token("v.internal", ["v.internal"]), notAfter="48h"), 403,
                 "above the maximum")
    assert_error(cloud.sign(csr, cloud.token("v.internal", ["v.internal"]), notAfter="1m"), 403,
                 "below the minimum")
    assert_error(cloud.sign(csr, cloud.token("v.internal", ["v.internal"]), notAfter="soon"),
                 400, "notAfter")


# --- refusals --------------------------------------------------------------------------------


def test_replayed_token_is_refused_401(cloud):
    tok = cloud.token("r.internal", ["r.internal"])
    _, csr = make_csr("r.internal", ["r.internal"])
    assert cloud.sign(csr, tok)[0] == 201
    _, csr2 = make_csr("r.internal", ["r.internal"])
    assert_error(cloud.sign(csr2, tok), 401, "already used")


def test_token_for_another_audience_is_refused_401(cloud, kube):
    _, csr = make_csr("a.internal", ["a.internal"])
    for aud in (f"https://elsewhere.example:{cloud.port}/1.0/sign", f"{cloud.url}/1.0/renew",
                f"http://localhost:{cloud.port}/1.0/sign"):
        assert_error(cloud.sign(csr, cloud.token("a.internal", ["a.internal"], aud=aud)), 401,
                     "audience")
    # a token the Kubernetes CA's provisioner signed for the Kubernetes CA
    tok = kube.token("a.internal", ["a.internal"])
    assert_error(cloud.sign(csr, tok), 401)


def test_token_for_other_sans_is_refused_401(cloud):
    for csr_sans in (["a.internal", "b.internal"], ["b.internal"], []):
        _, csr = make_csr("a.internal", csr_sans)
        assert_error(cloud.sign(csr, cloud.token("a.internal", ["a.internal"])), 401,
                     "are not the token's SANs")
    _, csr = make_csr("other.internal", ["a.internal"])
    assert_error(cloud.sign(csr, cloud.token("a.internal", ["a.internal"])), 401, "CN")


def test_expired_or_not_yet_valid_token_is_refused_401(cloud):
    _, csr = make_csr("e.internal", ["e.internal"])
    now = int(time.time())
    assert_error(cloud.sign(csr, cloud.token("e.internal", ["e.internal"], nbf=now - 900,
                                             exp=now - 300)), 401, "expired")
    assert_error(cloud.sign(csr, cloud.token("e.internal", ["e.internal"], nbf=now + 600,
                                             exp=now + 900)), 401, "not valid yet")
    assert_error(cloud.sign(csr, cloud.token("e.internal", ["e.internal"], exp=None)), 401,
                 "exp")


def test_tampered_token_is_refused_401(cloud):
    _, csr = make_csr("t.internal", ["t.internal"])
    tok = cloud.token("t.internal", ["t.internal"])
    h, c, s = tok.split(".")
    claims = json.loads(unb64u(c))
    claims["sans"] = ["evil.internal"]
    forged = f"{h}.{b64u(json.dumps(claims).encode())}.{s}"
    _, evil_csr = make_csr("t.internal", ["evil.internal"])
    assert_error(cloud.sign(evil_csr, forged), 401, "signature")
    flipped = s[:10] + ("A" if s[10] != "A" else "B") + s[11:]
    assert_error(cloud.sign(csr, f"{h}.{c}.{flipped}"), 401, "signature")
    other_key = ec.generate_private_key(ec.SECP256R1())
    assert_error(cloud.sign(csr, cloud.token("t.internal", ["t.internal"], key=other_key)), 401,
                 "signature")
    none_alg = cloud.token("t.internal", ["t.internal"], header={"alg": "none"})
    assert_error(cloud.sign(csr, none_alg), 401, "ES256")
    assert_error(cloud.sign(csr, "not.a.jwt"), 401, "invalid token")
    assert_error(cloud.sign(csr, cloud.token("t.internal", ["t.internal"], iss="mallory")), 401,
                 "not a provisioner")
    assert_error(cloud.sign(csr, cloud.token("t.internal", ["t.internal"], sha="00" * 32)), 401,
                 "sha")
    assert_error(cloud.sign(csr, cloud.token("t.internal", ["t.internal"], jti=None)), 401, "jti")


def test_csr_whose_signature_does_not_match_its_key_is_refused_400(cloud):
    key_a, csr = make_csr("m.internal", ["m.internal"])
    key_b = ec.generate_private_key(ec.SECP256R1())
    der = x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER)
    pt = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    a_pt, b_pt = key_a.public_key().public_bytes(*pt), key_b.public_key().public_bytes(*pt)
    assert der.count(a_pt) == 1
    # The request now names key B but is still signed by key A.
    swapped = der.replace(a_pt, b_pt)
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(swapped).decode() + \
        "-----END CERTIFICATE REQUEST-----\n"
    assert_error(cloud.sign(pem, cloud.token("m.internal", ["m.internal"])), 400,
                 "invalid csr", "signature")
    assert_error(cloud.sign("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "x.y.z"), 400,
                 "invalid csr")


def test_bad_json_is_refused_400(cloud):
    for body in ("{not json", "[1,2]", '"csr"', "", json.dumps({"ott": "a.b.c"}),
                 json.dumps({"csr": 5, "ott": "a.b.c"})):
        assert_error(cloud.request("POST", "/1.0/sign", body), 400)
    _, csr = make_csr("j.internal", ["j.internal"])
    assert_error(cloud.sign(csr, None), 400, "ott")


def test_oversized_body_is_refused_413_without_reading_it(cloud):
    big = json.dumps({"csr": "A" * 200000, "ott": "x"})
    assert_error(cloud.request("POST", "/1.0/sign", big), 413, "too large")
    code, _ = cloud.curl("-H", "Content-Type: application/json", "--data-binary", big[:70000],
                         f"{cloud.url}/sign")
    assert code == 413
    assert cloud.request("GET", "/health") == (200, {"status": "ok"})


def test_malformed_http_gets_400_and_the_ca_keeps_serving(cloud):
    def raw(data):
        with socket.create_connection(("127.0.0.1", cloud.port), 5) as s:
            with cloud.ssl_context().wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(data)
                out = b""
                while True:
                    try:
                        chunk = t.recv(65536)
                    except (ssl.SSLError, ConnectionResetError):
                        break
                    if not chunk:
                        break
                    out += chunk
                return out

    assert raw(b"BLAH\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET /health HTTP/1.1\r\nContent-Length: x\r\n\r\n").startswith(
        b"HTTP/1.1 400 ")
    assert raw(b"POST /sign HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").startswith(
        b"HTTP/1.1 411 ")
    assert raw(b"GET /health HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 ")
    # plain HTTP and garbage on the TLS port
    for junk in (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(3000)):
        with socket.create_connection(("127.0.0.1", cloud.port), 5) as s:
            s.sendall(junk)
            try:
                s.recv(100)
            except ConnectionResetError:
                pass
    assert cloud.request("GET", "/health") == (200, {"status": "ok"})
    assert cloud.proc.poll() is None


def test_slow_clients_do_not_block_others_and_time_out(cloud):
    idle = socket.create_connection(("127.0.0.1", cloud.port), 5)  # never says a word
    half_hello = socket.create_connection(("127.0.0.1", cloud.port), 5)
    half_hello.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    s = socket.create_connection(("127.0.0.1", cloud.port), 5)
    half_request = cloud.ssl_context().wrap_socket(s, server_hostname="localhost")
    half_request.sendall(b"POST /1.0/sign HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"csr\"")
    try:
        t0 = time.monotonic()
        for _ in range(5):
            assert cloud.request("GET", "/health") == (200, {"status": "ok"})
        assert time.monotonic() - t0 < 1.5
        # requestTimeout is 2s: each slow one is cut off, the half request with a 408.
        half_request.settimeout(6)
        assert half_request.recv(4096).startswith(b"HTTP/1.1 408 ")
        for sock in (idle, half_hello):
            sock.settimeout(6)
            try:
                assert sock.recv(4096) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in (idle, half_hello, half_request):
            sock.close()


# --- renewal ---------------------------------------------------------------------------------


def test_renew_over_mtls_keeps_key_and_names_and_moves_validity(cloud, tmp_path):
    crt, key = cloud.enroll(tmp_path, "ren.internal", ["ren.internal", "spiffe://c/ren"])
    old = load_certs(crt.read_bytes())[0]
    time.sleep(1.1)
    ok(fedgate("ca", "renew", crt, key, "--ca-url", cloud.url, "--root", cloud.root))
    chain = load_certs(crt.read_bytes())
    new = chain[0]
    assert len(chain) == 2 and new.serial_number != old.serial_number
    assert new.subject == old.subject
    assert new.public_key().public_numbers() == old.public_key().public_numbers()
    assert (new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value ==
            old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    assert not_after(new) > not_after(old)
    r = subprocess.run(["openssl", "verify", "-CAfile", cloud.root, "-untrusted",
                        cloud.intermediate, crt], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # curl as the client, and Python with the certificate
    code, resp = cloud.curl("--cert", crt, "--key", key, "-X", "POST", f"{cloud.url}/renew")
    assert code == 201 and len(resp["certChain"]) == 2, resp
    code, resp = cloud.request("POST", "/1.0/renew", cert=crt, key=key)
    assert code == 201 and load_certs(resp["crt"])[0].subject == old.subject


def test_renew_reads_a_bmpstring_cn_as_text_and_keeps_it(cloud, tmp_path):
    # /renew copies the CN: once through UTF-8, never as the encoding's raw bytes
    from cryptography.x509.name import _ASN1Type
    ikey = cloud.intermediate_key()
    inter = load_certs(cloud.intermediate.read_bytes())[0]
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cn = "b\u00f6mp.internal"
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn,
                                                        _type=_ASN1Type.BMPString)]))
            .issuer_name(inter.subject).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("bmp.internal")]), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ikey, hashes.SHA256()))
    crt, kf = tmp_path / "bmp.crt", tmp_path / "bmp.key"
    crt.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) +
                    cloud.intermediate.read_bytes())
    kf.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    code, resp = cloud.request("POST", "/1.0/renew", cert=crt, key=kf)
    assert code == 201, resp
    new = load_certs(resp["crt"])[0]
    assert new.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn


def test_renew_refusals(cloud, kube, tmp_path):
    assert_error(cloud.request("POST", "/1.0/renew"), 400, "missing client certificate")
    # a certificate of the other (federated) CA is not this CA's to renew
    kcrt, kkey = kube.enroll(tmp_path, "k.internal", ["k.internal"])
    assert_error(cloud.request("POST", "/1.0/renew", cert=kcrt, key=kkey), 401,
                 "not issued by this CA")
    r = fedgate("ca", "renew", kcrt, kkey, "--ca-url", cloud.url, "--root", cloud.root)
    assert r.returncode == 1 and "401" in r.stderr, r.stderr
    # an expired certificate from this very CA
    ikey = cloud.intermediate_key()
    inter = load_certs(cloud.intermediate.read_bytes())[0]
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old.internal")]))
            .issuer_name(inter.subject).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=2))
            .not_valid_after(now - datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ikey, hashes.SHA256()))
    ecrt, ekey = tmp_path / "expired.crt", tmp_path / "expired.key"
    ecrt.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) +
                     cloud.intermediate.read_bytes())
    ekey.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    assert_error(cloud.request("POST", "/1.0/renew", cert=ecrt, key=ekey), 401, "expired")


# --- hardening: tokens and SANs ----------------------------------------------------------------


def long_dns_name(ch):
    """A ~1020-character DNS name of valid 63-character labels."""
    return ".".join([ch * 63] * 17)[:1012] + ".example"


def test_sign_compares_sans_entry_by_entry_so_long_names_cannot_hide_extra_ones(cloud):
    a, b = long_dns_name("a"), long_dns_name("b")
    assert len(a) == len(b) == 1020
    tok = cloud.token("svc", [a, b])
    # The authorized names plus two the token never named: their text would be cut off.
    _, csr = make_csr("svc", [a, b, "victim.example.com", "spiffe://other/admin"])
    assert_error(cloud.sign(csr, tok), 401, "are not the token's SANs")
    _, csr = make_csr("svc", [a, b])
    code, resp = cloud.sign(csr, tok)
    assert code == 201, resp
    san = load_certs(resp["crt"])[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == [a, b]


def test_token_with_crit_header_is_refused_401(cloud):
    _, csr = make_csr("crit.internal", ["crit.internal"])
    tok = cloud.token("crit.internal", ["crit.internal"], header={"crit": ["exp2"], "exp2": 1})
    assert_error(cloud.sign(csr, tok), 401, "crit")


def test_token_expiring_more_than_an_hour_ahead_is_refused_401(cloud):
    _, csr = make_csr("far.internal", ["far.internal"])
    now = int(time.time())
    for exp in (now + 7200, 95617584000):  # two hours; the year 5000
        assert_error(cloud.sign(csr, cloud.token("far.internal", ["far.internal"], exp=exp)),
                     401, "at most 3600 s ahead")
    code, resp = cloud.sign(csr, cloud.token("far.internal", ["far.internal"], exp=now + 3000))
    assert code == 201, resp
    r = fedgate("ca", "token", "far.internal", "--ca-url", cloud.url, "--root", cloud.root,
                "--ca-config", cloud.config, "--password-file", cloud.pwfile, "--lifetime", "2h")
    assert r.returncode == 2 and "1h" in r.stderr, r


def test_used_token_stays_used_after_the_ca_restarts(tmp_path):
    ca = CA(tmp_path, "Restart")
    ca.start()
    try:
        tok = ca.token("rp.internal", ["rp.internal"])
        _, csr = make_csr("rp.internal", ["rp.internal"])
        assert ca.sign(csr, tok)[0] == 201
        assert ca.stop() == 0
        ca.addr_file.unlink()
        ca.start()
        assert_error(ca.sign(csr, tok), 401, "already used")
        # a fresh token still works; the file (private) holds both, by hash only
        assert ca.sign(csr, ca.token("rp.internal", ["rp.internal"]))[0] == 201
        used = ca.dir / "config" / "used_tokens"
        assert os.stat(used).st_mode & 0o777 == 0o600
        lines = used.read_text().splitlines()
        assert len(lines) == 2 and json.loads(unb64u(tok.split(".")[1]))["jti"] not in lines[0]
    finally:
        assert ca.stop() == 0, ca.log()


# --- hardening: issuance -------------------------------------------------------------------------


def test_spiffe_subject_longer_than_64_characters_enrolls_with_the_uri_san_and_no_cn(cloud,
                                                                                    tmp_path):
    sub = "spiffe://k8s.example/ns/production/sa/payments-reconciliation-worker"
    assert len(sub) == 68
    crt, key = tmp_path / "w.crt", tmp_path / "w.key"
    ok(fedgate("ca", "certificate", sub, crt, key, "--token", cloud.cli_token(sub), "--ca-url",
               cloud.url, "--root", cloud.root))
    leaf = load_certs(crt.read_bytes())[0]
    assert len(leaf.subject) == 0
    ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert ext.critical  # RFC 5280: an empty subject needs a critical SAN
    assert ext.value.get_values_for_type(x509.UniformResourceIdentifier) == [sub]
    r = subprocess.run(["openssl", "verify", "-CAfile", cloud.root, "-untrusted",
                        cloud.intermediate, crt], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    ok(fedgate("ca", "renew", crt, key, "--ca-url", cloud.url, "--root", cloud.root))
    new = load_certs(crt.read_bytes())[0]
    assert new.serial_number != leaf.serial_number and len(new.subject) == 0
    assert new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == ext.value
    # a CSR without a CN, as a SPIFFE workload sends it, straight to /sign
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(sub)]),
                          critical=False)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    code, resp = cloud.sign(csr, cloud.token(sub, [sub]))
    assert code == 201, resp


def test_renew_keeps_the_lifetime_of_the_old_certificate_within_the_maximum(cloud, tmp_path):
    key, csr = make_csr("short.internal", ["short.internal"])
    code, resp = cloud.sign(csr, cloud.token("short.internal", ["short.internal"]),
                            notAfter="5m")
    assert code == 201, resp
    old = load_certs(resp["crt"])[0]
    crt, kf = tmp_path / "s.crt", tmp_path / "s.key"
    crt.write_text(resp["crt"] + resp["ca"])
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    for _ in range(2):
        code, resp = cloud.request("POST", "/1.0/renew", cert=crt, key=kf)
        assert code == 201, resp
        new = load_certs(resp["crt"])[0]
        assert new.not_valid_after - new.not_valid_before == \
            old.not_valid_after - old.not_valid_before
        life = not_after(new) - datetime.datetime.now(datetime.timezone.utc)
        assert datetime.timedelta(minutes=4) < life <= datetime.timedelta(minutes=5), life
        crt.write_text(resp["crt"] + resp["ca"])
    # a 48-hour leaf (more than the CA allows) comes back at most at the 24-hour maximum
    ikey = cloud.intermediate_key()
    inter = load_certs(cloud.intermediate.read_bytes())[0]
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "long.internal")]))
            .issuer_name(inter.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=47))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ikey, hashes.SHA256()))
    crt.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) +
                    cloud.intermediate.read_bytes())
    code, resp = cloud.request("POST", "/1.0/renew", cert=crt, key=kf)
    assert code == 201, resp
    life = not_after(load_certs(resp["crt"])[0]) - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=23, minutes=58) < life <= datetime.timedelta(hours=24), life


def test_sign_and_renew_answers_carry_step_ca_tls_options(cloud, tmp_path):
    _, csr = make_csr("tls.internal", ["tls.internal"])
    code, resp = cloud.sign(csr, cloud.token("tls.internal", ["tls.internal"]))
    assert code == 201, resp
    opts = resp["tlsOptions"]
    # ca init writes "tls": {"minVersion": 1.3, "maxVersion": 1.3}; the suites are step's defaults
    assert opts == {"cipherSuites": ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                                     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
                    "minVersion": 1.3, "maxVersion": 1.3, "renegotiation": False}, opts
    crt, key = cloud.enroll(tmp_path, "tls2.internal", ["tls2.internal"])
    code, resp = cloud.request("POST", "/1.0/renew", cert=crt, key=key)
    assert code == 201 and resp["tlsOptions"] == opts, resp


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.BrainpoolP256R1(), ec.SECP224R1()],
                         ids=lambda c: c.name)
def test_csr_with_a_curve_other_than_p256_p384_p521_is_refused_400(cloud, curve):
    _, csr = make_csr("curve.internal", ["curve.internal"], key=ec.generate_private_key(curve))
    assert_error(cloud.sign(csr, cloud.token("curve.internal", ["curve.internal"])), 400,
                 "invalid csr", "P-256, P-384 or P-521")


def test_csr_keys_p384_p521_and_rsa_are_issued_rsa_with_key_encipherment(cloud):
    from cryptography.hazmat.primitives.asymmetric import rsa
    for key in (ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP521R1()),
                rsa.generate_private_key(65537, 2048)):
        _, csr = make_csr("k.internal", ["k.internal"], key=key)
        code, resp = cloud.sign(csr, cloud.token("k.internal", ["k.internal"]))
        assert code == 201, resp
        ku = load_certs(resp["crt"])[0].extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature
        assert ku.key_encipherment == isinstance(key, rsa.RSAPrivateKey), key


# --- hardening: files ----------------------------------------------------------------------------


def test_keys_at_rest_use_600000_pbkdf2_hmac_sha256_iterations(cloud):
    r = subprocess.run(["openssl", "asn1parse", "-in", cloud.dir / "secrets" / "provisioner_key"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith(":PBKDF2"))
    # PBKDF2-params: salt OCTET STRING, iterationCount INTEGER, prf AlgorithmIdentifier
    salt, count = lines[at + 2], lines[at + 3]
    assert "OCTET STRING" in salt and "l=  16" in salt, salt
    assert "INTEGER" in count and int(count.rsplit(":", 1)[1], 16) == 600000, count
    assert lines[at + 5].endswith(":hmacWithSHA256") and "aes-256-cbc" in r.stdout, r.stdout


def test_init_keeps_an_existing_directory_mode_and_refuses_an_open_secrets_dir(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    d = tmp_path / "private"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    ok(fedgate("ca", "init", "--name", "P", "--dir", d, "--password-file", pw))
    assert os.stat(d).st_mode & 0o777 == 0o700  # not opened up to 0755
    d = tmp_path / "open"
    (d / "secrets").mkdir(parents=True)
    os.chmod(d / "secrets", 0o755)
    r = fedgate("ca", "init", "--name", "O", "--dir", d, "--password-file", pw)
    assert r.returncode == 1 and "secrets" in r.stderr and "0755" in r.stderr, r.stderr
    assert os.stat(d / "secrets").st_mode & 0o777 == 0o755
    assert list((d / "secrets").iterdir()) == [] and not (d / "config").exists()


def test_files_are_written_without_following_a_symlink_planted_at_a_temp_name(cloud, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    # The old temporary name was FILE.tmp.PID: plant links for the next few hundred PIDs.
    last = int(open("/proc/sys/kernel/ns_last_pid").read())
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    tok = cloud.cli_token("tmp.internal")
    planted = set()
    pid = last
    for _ in range(400):
        # The kernel wraps past pid_max to 300 (RESERVED_PIDS), never to 0 or 1.
        pid = pid + 1 if pid + 1 < pid_max else 300
        for name in ("w.crt", "w.key"):
            link = out / f"{name}.tmp.{pid}"
            link.symlink_to(victim)
            planted.add(link.name)
    ok(fedgate("ca", "certificate", "tmp.internal", out / "w.crt", out / "w.key", "--token", tok,
               "--ca-url", cloud.url, "--root", cloud.root))
    assert victim.read_text() == "untouched\n"
    for name, mode in (("w.crt", 0o644), ("w.key", 0o600)):
        st = os.lstat(out / name)
        assert not os.path.islink(out / name) and st.st_mode & 0o777 == mode, (name, st)
    assert {p.name for p in out.iterdir()} == planted | {"w.crt", "w.key"}  # no temp left


# --- hardening: HTTP ------------------------------------------------------------------------------


def raw_https(ca, data, wait=5):
    """Sends @data over TLS to @ca and returns everything it answers."""
    with socket.create_connection(("127.0.0.1", ca.port), 5) as s:
        with ca.ssl_context().wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(data)
            t.settimeout(wait)
            out = b""
            while True:
                try:
                    chunk = t.recv(65536)
                except (ssl.SSLError, ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                out += chunk
            return out


def test_content_length_with_trailing_whitespace_is_accepted(cloud):
    out = raw_https(cloud, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0 \t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b'{"status":"ok"}'), out


def test_whitespace_between_header_name_and_colon_is_refused_400(cloud):
    for head in (b"Content-Length : 0", b"Transfer-Encoding\t: chunked"):
        out = raw_https(cloud, b"GET /health HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400 ") and b"colon" in out, out


def test_idle_connections_from_one_client_do_not_lock_others_out(cloud):
    # More than the whole connection table, from one address, never saying a word.
    t0 = time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", cloud.port), 5) for _ in range(300)]
    try:
        time.sleep(0.2)
        code, body = cloud.curl(f"{cloud.url}/health")
        assert (code, body) == (200, {"status": "ok"})
        assert cloud.request("GET", "/health") == (200, {"status": "ok"})
        # Handshakes get less time than requests (requestTimeout is 2 s here).
        last = idle[-1]
        last.settimeout(5)
        try:
            assert last.recv(100) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 1.9
    finally:
        for s in idle:
            s.close()


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
