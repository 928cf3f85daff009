"""Enrollment: tokens and CSRs signed into certificates, what is issued and what refused."""

import base64
import datetime
import json
import os
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.helpers import (assert_error, fedgate, load_certs, make_csr, not_after, not_before, ok,
                        unb64u)


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
    # neither: the CA's encrypted key (GET /provisioners), which fedgate's own init does not
    # serve (its key is a keyFile); refused before any password is asked for
    r = fedgate("ca", "token", "k.internal", "--ca-url", cloud.url, "--root", cloud.root)
    assert r.returncode == 1 and r.stdout == "", r
    assert f"CA {cloud.url} has no JWK provisioner with an encrypted key" in r.stderr, r


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
