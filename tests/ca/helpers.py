"""What the tests of fedgate's online CA share: the `fedgate` runner, certificate and
token helpers, and CA, one `fedgate ca init` directory and its `fedgate ca serve` process."""

import base64
import contextlib
import datetime
import hashlib
import http.client
import ipaddress
import json
import ssl
import subprocess
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

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


@contextlib.contextmanager
def serving(*cas):
    """Starts @cas (CA, or anything with start/stop/log/name) in order and yields them. At
    the end stops every one that started, and each must have stopped cleanly on SIGTERM
    (exit 0: under ASan a leak or an error would make it non-zero)."""
    started = []
    try:
        for ca in cas:
            ca.start()
            started.append(ca)
        yield cas
    finally:
        codes = {ca.name: ca.stop() for ca in started}
    assert all(rc == 0 for rc in codes.values()), (codes, [ca.log() for ca in started])


def assert_error(got, status, *words):
    code, body = got
    assert code == status, got
    assert isinstance(body, dict) and body.get("status") == status, got
    for w in words:
        assert w in body["message"], got
