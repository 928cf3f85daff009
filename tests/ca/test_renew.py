"""Renewal over mTLS: names and key kept, validity moved, refusals."""

import datetime
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.helpers import assert_error, fedgate, load_certs, make_csr, not_after, ok


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


def minted_client(ca, tmp, name, cn_attr, not_before, not_after, sans=()):
    """A client certificate (and key) signed with @ca's intermediate key, bypassing /sign."""
    ikey = ca.intermediate_key()
    inter = load_certs(ca.intermediate.read_bytes())[0]
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(x509.Name([cn_attr]))
         .issuer_name(inter.subject).public_key(leaf_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(seconds=not_before))
         .not_valid_after(now + datetime.timedelta(seconds=not_after)))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in sans]), False)
    leaf = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ikey, hashes.SHA256()))
    crt, kf = tmp / f"{name}.crt", tmp / f"{name}.key"
    crt.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) +
                    ca.intermediate.read_bytes())
    kf.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return crt, kf


def test_renew_reads_a_bmpstring_cn_as_text_and_keeps_it(cloud, tmp_path):
    # /renew copies the CN: once through UTF-8, never as the encoding's raw bytes
    from cryptography.x509.name import _ASN1Type
    cn = "b\u00f6mp.internal"
    attr = x509.NameAttribute(NameOID.COMMON_NAME, cn, _type=_ASN1Type.BMPString)
    crt, kf = minted_client(cloud, tmp_path, "bmp", attr, -300, 3600, ["bmp.internal"])
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
    ecrt, ekey = minted_client(cloud, tmp_path, "expired",
                               x509.NameAttribute(NameOID.COMMON_NAME, "old.internal"),
                               -7200, -3600)
    assert_error(cloud.request("POST", "/1.0/renew", cert=ecrt, key=ekey), 401, "expired")


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
