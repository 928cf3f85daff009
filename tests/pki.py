#!/usr/bin/python3
"""Throwaway two-root *federated* PKI for fedgate's tests and demo.

Needs only the standard library and python3-cryptography (>= 38).

Layout written by make_pki(outdir) (every path is also in the returned dict):

    roots/{cloud,kubernetes,rogue}.pem           root CA certificates
    intermediates/{cloud,kubernetes,rogue}.pem   intermediate CA certificates
    ca/{cloud,kubernetes,rogue}-root.key         CA keys (0600; ca/ is 0700)
    ca/{cloud,kubernetes,rogue}-intermediate.key
    federated.pem          Cloud root + Kubernetes root (the trust bundle;
                           the Rogue root is deliberately left out)
    NAME.crt               leaf + its intermediate (what a peer presents)
    NAME.leaf.crt          the leaf alone
    NAME.key               the leaf's key, unencrypted PKCS#8 PEM (0600)
    pki.json               manifest: key type and the paths above, so that
                           issue_leaf(outdir, ...) works from a fresh process

Leaves (all valid now-1h .. now+1 day unless noted):

    name          issuer      subject CN / SANs
    foo           cloud       foo.internal; DNS foo.internal,
                              URI spiffe://cloud.example/gw/foo
    bar           kubernetes  bar.internal; DNS bar.internal, DNS localhost,
                              IP 127.0.0.1,
                              URI spiffe://k8s.example/ns/default/sa/bar
    kube_client   kubernetes  kube_client; DNS kube-client.k8s.internal,
                              URI spiffe://k8s.example/ns/default/sa/kube-client
    cloud_client  cloud       cloud_client; DNS client.cloud.internal
    rogue         rogue       foo.internal; DNS foo.internal
                              (chains to a root outside federated.pem)
    expired       cloud       foo.internal; DNS foo.internal;
                              valid now-10 days .. now-1 day
    server_only   cloud       foo.internal; DNS foo.internal;
                              EKU serverAuth only (fails as a TLS client)
    stranger      cloud       stranger.internal; DNS stranger.internal,
                              URI spiffe://cloud.example/other
                              (valid; for allow-rule denials)

Every leaf has KeyUsage digitalSignature (critical), BasicConstraints CA:false
(critical), SubjectAltName, ExtendedKeyUsage (serverAuth+clientAuth unless
noted), SKI and AKI. Leaf and CA keys are ECDSA P-256, or RSA 2048 with
key_type="rsa". Signatures use SHA-256.

CLI:  /usr/bin/python3 tests/pki.py OUTDIR [--key-type ec|rsa]
      writes the PKI and prints each file it wrote, one path per line.
"""

import argparse
import datetime
import ipaddress
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORG = "fedgate-test"

# issuer short name -> (root CN, intermediate CN). "k8s" is accepted as an
# alias for "kubernetes" by issue_leaf().
CAS = {
    "cloud": ("Cloud Root CA", "Cloud Intermediate CA"),
    "kubernetes": ("Kubernetes Root CA", "Kubernetes Intermediate CA"),
    "rogue": ("Rogue Root CA", "Rogue Intermediate CA"),
}
ISSUER_ALIASES = {"k8s": "kubernetes"}

# The roots that federated.pem trusts, in file order.
FEDERATED = ("cloud", "kubernetes")

# The standard leaves: name -> keyword arguments for issue_leaf().
# Validity offsets are relative to the time make_pki() runs.
LEAVES = {
    "foo": dict(cn="foo.internal", dns=["foo.internal"],
                uris=["spiffe://cloud.example/gw/foo"], issuer="cloud"),
    "bar": dict(cn="bar.internal", dns=["bar.internal", "localhost"],
                ips=["127.0.0.1"],
                uris=["spiffe://k8s.example/ns/default/sa/bar"],
                issuer="kubernetes"),
    "kube_client": dict(cn="kube_client", dns=["kube-client.k8s.internal"],
                        uris=["spiffe://k8s.example/ns/default/sa/kube-client"],
                        issuer="kubernetes"),
    "cloud_client": dict(cn="cloud_client", dns=["client.cloud.internal"],
                         issuer="cloud"),
    "rogue": dict(cn="foo.internal", dns=["foo.internal"], issuer="rogue"),
    "expired": dict(cn="foo.internal", dns=["foo.internal"], issuer="cloud",
                    not_before=datetime.timedelta(days=-10),
                    not_after=datetime.timedelta(days=-1)),
    "server_only": dict(cn="foo.internal", dns=["foo.internal"],
                        issuer="cloud", eku=("server",)),
    "stranger": dict(cn="stranger.internal", dns=["stranger.internal"],
                     uris=["spiffe://cloud.example/other"], issuer="cloud"),
}

EKU_OIDS = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}

LEAF_LIFETIME = datetime.timedelta(days=1)
LEAF_BACKDATE = datetime.timedelta(hours=1)
# CAs outlive every leaf, including the backdated "expired" one.
CA_BACKDATE = datetime.timedelta(days=30)
CA_LIFETIME = datetime.timedelta(days=365)


# --------------------------------------------------------------------------
# small helpers


def _now():
    # Whole seconds: certificates carry no fractions anyway.
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _new_key(key_type):
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError("key_type must be 'ec' or 'rsa', not %r" % (key_type,))


def _name(cn):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _write(path, data, private=False):
    """Write bytes to path; private files are created (or reset) to 0600."""
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # an existing file keeps its old mode otherwise
        with os.fdopen(fd, "wb") as f:
            fd = None
            f.write(data)
    finally:
        if fd is not None:
            os.close(fd)
    return path


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _when(value, now, default):
    """A validity bound: None -> now+default, timedelta -> now+delta,
    datetime -> itself (naive datetimes are taken as UTC)."""
    if value is None:
        return now + default
    if isinstance(value, datetime.timedelta):
        return now + value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value
    raise TypeError("validity bound must be None, timedelta or datetime")


def _sign(builder, issuer_key):
    return builder.sign(issuer_key, hashes.SHA256())


# --------------------------------------------------------------------------
# CAs


def _make_root(cn, key, now):
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn)).issuer_name(_name(cn))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - CA_BACKDATE)
         .not_valid_after(now + CA_LIFETIME)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                        critical=True)
         .add_extension(_ca_key_usage(), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(
             key.public_key()), critical=False))
    return _sign(b, key)


def _make_intermediate(cn, key, root_cert, root_key, now):
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn)).issuer_name(root_cert.subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - CA_BACKDATE)
         .not_valid_after(now + CA_LIFETIME)
         .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                        critical=True)
         .add_extension(_ca_key_usage(), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(
             key.public_key()), critical=False)
         .add_extension(_aki(root_cert), critical=False))
    return _sign(b, root_key)


def _ca_key_usage():
    return x509.KeyUsage(digital_signature=False, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=True,
                         crl_sign=True, encipher_only=False,
                         decipher_only=False)


def _aki(issuer_cert):
    ski = issuer_cert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


# --------------------------------------------------------------------------
# public API


def _load_pki(pki):
    """Accept the dict make_pki() returned or its outdir (reads pki.json)."""
    if isinstance(pki, dict):
        return pki
    with open(os.path.join(os.fspath(pki), "pki.json")) as f:
        return json.load(f)


def issue_leaf(pki, name, cn, dns=(), uris=(), issuer="cloud",
               not_before=None, not_after=None, eku=("server", "client"),
               ips=(), key_type=None):
    """Mint a leaf certificate and write NAME.crt, NAME.leaf.crt, NAME.key.

    pki        the dict make_pki() returned, or its outdir
    name       file stem; existing files of that name are overwritten
    cn         subject CN
    dns, uris, ips
               SubjectAltName entries (DNS names, URIs, IP address strings)
    issuer     "cloud", "kubernetes" (or "k8s") or "rogue": whose
               intermediate signs it
    not_before, not_after
               None (defaults: now-1h and now+1 day), a timedelta relative
               to now, or an absolute datetime (naive = UTC)
    eku        any of "server", "client"; empty -> no EKU extension
    key_type   "ec" / "rsa"; defaults to the PKI's key type

    Returns {"crt": chain path, "leaf": leaf path, "key": key path}. When
    given the make_pki() dict, also records the entry under pki["leaves"].
    """
    info = _load_pki(pki)
    outdir = info["dir"]
    issuer = ISSUER_ALIASES.get(issuer, issuer)
    if issuer not in CAS:
        raise ValueError("unknown issuer %r (want one of %s)"
                         % (issuer, ", ".join(CAS)))
    unknown = set(eku) - set(EKU_OIDS)
    if unknown:
        raise ValueError("unknown eku %s (want 'server'/'client')"
                         % sorted(unknown))

    ca = info["ca"][issuer]
    with open(ca["intermediate_key"], "rb") as f:
        ica_key = serialization.load_pem_private_key(f.read(), None)
    with open(ca["intermediate"], "rb") as f:
        ica_pem = f.read()
    ica_cert = x509.load_pem_x509_certificate(ica_pem)

    now = _now()
    key = _new_key(key_type or info["key_type"])
    sans = ([x509.DNSName(d) for d in dns]
            + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            + [x509.UniformResourceIdentifier(u) for u in uris])
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn)).issuer_name(ica_cert.subject)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(_when(not_before, now, -LEAF_BACKDATE))
         .not_valid_after(_when(not_after, now, LEAF_LIFETIME))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                        critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=True, content_commitment=False,
             key_encipherment=False, data_encipherment=False,
             key_agreement=False, key_cert_sign=False, crl_sign=False,
             encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(
             key.public_key()), critical=False)
         .add_extension(_aki(ica_cert), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku:
        # Keep a stable order: serverAuth before clientAuth.
        oids = [EKU_OIDS[k] for k in ("server", "client") if k in eku]
        b = b.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
    cert = _sign(b, ica_key)

    paths = {
        "crt": os.path.join(outdir, name + ".crt"),
        "leaf": os.path.join(outdir, name + ".leaf.crt"),
        "key": os.path.join(outdir, name + ".key"),
    }
    _write(paths["key"], _key_pem(key), private=True)
    _write(paths["leaf"], _cert_pem(cert))
    _write(paths["crt"], _cert_pem(cert) + ica_pem)
    if isinstance(pki, dict):
        pki.setdefault("leaves", {})[name] = paths
        files = pki.setdefault("files", [])
        files.extend(p for p in (paths["crt"], paths["leaf"], paths["key"])
                     if p not in files)
    return paths


def make_pki(outdir, key_type="ec"):
    """Generate the federated test PKI into outdir (created if missing).

    Returns a dict (JSON-serialisable; also saved as OUTDIR/pki.json):

      dir          absolute outdir
      key_type     "ec" or "rsa"
      federated    path of federated.pem (Cloud root + Kubernetes root)
      roots        {"cloud"|"kubernetes"|"rogue": root cert path}
      intermediates{same keys: intermediate cert path}
      root_cns     {same keys: root CN}, e.g. "Kubernetes Root CA"
      ca           {same keys: {"root", "intermediate", "root_key",
                                "intermediate_key"}: paths}
      leaves       {leaf name: {"crt", "leaf", "key"}: paths}
      files        every file written, in order
    """
    if key_type not in ("ec", "rsa"):
        raise ValueError("key_type must be 'ec' or 'rsa', not %r" % (key_type,))
    outdir = os.path.abspath(os.fspath(outdir))
    for sub in ("", "roots", "intermediates", "ca"):
        os.makedirs(os.path.join(outdir, sub), exist_ok=True)
    os.chmod(os.path.join(outdir, "ca"), 0o700)

    pki = {"dir": outdir, "key_type": key_type,
           "federated": os.path.join(outdir, "federated.pem"),
           "roots": {}, "intermediates": {}, "root_cns": {}, "ca": {},
           "leaves": {}, "files": []}
    files = pki["files"]
    now = _now()

    root_pems = {}
    for short, (root_cn, ica_cn) in CAS.items():
        root_key, ica_key = _new_key(key_type), _new_key(key_type)
        root = _make_root(root_cn, root_key, now)
        ica = _make_intermediate(ica_cn, ica_key, root, root_key, now)
        root_pems[short] = _cert_pem(root)
        ca = {
            "root": os.path.join(outdir, "roots", short + ".pem"),
            "intermediate": os.path.join(outdir, "intermediates",
                                         short + ".pem"),
            "root_key": os.path.join(outdir, "ca", short + "-root.key"),
            "intermediate_key": os.path.join(outdir, "ca",
                                             short + "-intermediate.key"),
        }
        files.append(_write(ca["root"], root_pems[short]))
        files.append(_write(ca["intermediate"], _cert_pem(ica)))
        files.append(_write(ca["root_key"], _key_pem(root_key), private=True))
        files.append(_write(ca["intermediate_key"], _key_pem(ica_key),
                            private=True))
        pki["ca"][short] = ca
        pki["roots"][short] = ca["root"]
        pki["intermediates"][short] = ca["intermediate"]
        pki["root_cns"][short] = root_cn

    files.append(_write(pki["federated"],
                        b"".join(root_pems[s] for s in FEDERATED)))

    for name, spec in LEAVES.items():
        issue_leaf(pki, name, **spec)

    manifest = os.path.join(outdir, "pki.json")
    files.append(manifest)
    _write(manifest, (json.dumps(pki, indent=2, sort_keys=True) + "\n")
           .encode())
    return pki


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write a throwaway federated test PKI for fedgate.")
    ap.add_argument("outdir")
    ap.add_argument("--key-type", choices=("ec", "rsa"), default="ec")
    args = ap.parse_args(argv)
    pki = make_pki(args.outdir, key_type=args.key_type)
    for path in pki["files"]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
