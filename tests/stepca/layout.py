"""What `step ca init` (the step CLI, which Debian cannot build) writes, written here instead so
that the real step-ca can run: certs/root_ca.crt and certs/intermediate_ca.crt (P-256,
pathlen 1 and 0, ten years), secrets/root_ca_key and secrets/intermediate_ca_key (SEC1 PEM
encrypted as Go's x509.EncryptPEMBlock does: AES-256-CBC, Proc-Type/DEK-Info), config/ca.json
with a badgerv2 db and one JWK provisioner whose private key is inside it as "encryptedKey" (a
JWE: PBES2-HS256+A128KW, 100000 rounds, A256GCM, cty jwk+json, as go.step.sm/crypto's
jose.EncryptJWK), and config/defaults.json. The shapes are those of smallstep/certificates
0.19.0's pki/pki.go and go.step.sm/crypto (pemutil, jose)."""

import base64
import datetime
import hashlib
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from cryptography.x509.oid import NameOID

PBES2 = "PBES2-HS256+A128KW"
P2C = 100000  # go.step.sm/crypto/jose.PBKDF2Iterations


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(key, private=False):
    """go-jose's JSON of an EC P-256 key: use, kty, kid (RFC 7638 thumbprint), crv, alg, x, y."""
    n = key.public_key().public_numbers()
    x, y = b64u(n.x.to_bytes(32, "big")), b64u(n.y.to_bytes(32, "big"))
    canon = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"),
                       sort_keys=True)
    jwk = {"use": "sig", "kty": "EC", "kid": b64u(hashlib.sha256(canon.encode()).digest()),
           "crv": "P-256", "alg": "ES256", "x": x, "y": y}
    if private:
        jwk["d"] = b64u(key.private_numbers().private_value.to_bytes(32, "big"))
    return jwk


def encrypt_jwk(jwk, password, p2c=P2C):
    """The compact JWE jose.EncryptJWK makes of @jwk under @password."""
    p2s = os.urandom(16)
    header = {"alg": PBES2, "cty": "jwk+json", "enc": "A256GCM", "p2c": p2c, "p2s": b64u(p2s)}
    protected = b64u(json.dumps(header, separators=(",", ":")).encode())
    # RFC 7518 4.8.1.1: the salt is the alg name, a zero byte, then p2s
    kek = PBKDF2HMAC(hashes.SHA256(), 16, PBES2.encode() + b"\0" + p2s, p2c).derive(
        password.encode())
    cek, iv = os.urandom(32), os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, json.dumps(jwk).encode(), protected.encode())
    return ".".join([protected, b64u(aes_key_wrap(kek, cek)), b64u(iv), b64u(sealed[:-16]),
                     b64u(sealed[-16:])])


def _ca_cert(cn, key, issuer_cert, issuer_key, pathlen):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(issuer_cert.subject if issuer_cert else
                      x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                      False), critical=True)
         .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False))
    if issuer_cert:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, data, mode=0o644):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)


class StepCADir:
    """A `step ca init --name NAME` directory under @base: .config, .root, .password_file,
    .provisioner_key (the private key, for checks), .fingerprint (root SHA-256, hex)."""

    def __init__(self, base, name, password, address, dns=("localhost", "127.0.0.1"),
                 provisioner="admin", claims=None):
        self.name, self.dir, self.password = name, base, password
        for sub in ("certs", "config", "db"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        os.makedirs(os.path.join(base, "secrets"), mode=0o700, exist_ok=True)
        self.password_file = os.path.join(base, "password")
        _write(self.password_file, password.encode() + b"\n", 0o600)
        root_key, int_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
            ec.SECP256R1())
        self.provisioner_key = ec.generate_private_key(ec.SECP256R1())
        self.root_cert = _ca_cert(f"{name} Root CA", root_key, None, root_key, 1)
        int_cert = _ca_cert(f"{name} Intermediate CA", int_key, self.root_cert, root_key, 0)
        self.root = os.path.join(base, "certs", "root_ca.crt")
        self.intermediate = os.path.join(base, "certs", "intermediate_ca.crt")
        pem = serialization.Encoding.PEM
        _write(self.root, self.root_cert.public_bytes(pem))
        _write(self.intermediate, int_cert.public_bytes(pem))
        enc = serialization.BestAvailableEncryption(password.encode())
        for key, fname in ((root_key, "root_ca_key"), (int_key, "intermediate_ca_key")):
            _write(os.path.join(base, "secrets", fname), key.private_bytes(
                pem, serialization.PrivateFormat.TraditionalOpenSSL, enc), 0o600)
        self.fingerprint = self.root_cert.fingerprint(hashes.SHA256()).hex()
        self.config = os.path.join(base, "config", "ca.json")
        self.cfg = {
            "root": self.root, "federatedRoots": None, "crt": self.intermediate,
            "key": os.path.join(base, "secrets", "intermediate_ca_key"), "address": address,
            "insecureAddress": "", "dnsNames": list(dns), "logger": {"format": "text"},
            "db": {"type": "badgerv2", "dataSource": os.path.join(base, "db"),
                   "badgerFileLoadingMode": ""},
            "authority": {"provisioners": [{
                "type": "JWK", "name": provisioner, "key": jwk_of(self.provisioner_key),
                "encryptedKey": encrypt_jwk(jwk_of(self.provisioner_key, True), password)}]},
            "tls": {"cipherSuites": ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                                     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
                    "minVersion": 1.2, "maxVersion": 1.3, "renegotiation": False}}
        if claims:
            self.cfg["authority"]["claims"] = claims
        self.save()
        _write(os.path.join(base, "config", "defaults.json"), json.dumps({
            "ca-url": f"https://{dns[0]}{address[address.rindex(':'):]}",
            "ca-config": self.config, "fingerprint": self.fingerprint,
            "root": self.root}, indent=4).encode())

    def save(self):
        _write(self.config, json.dumps(self.cfg, indent=4).encode())
