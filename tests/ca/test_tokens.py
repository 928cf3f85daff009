"""One-time tokens: the refusals (replay, audience, SANs, time, signature, headers)."""

import json
import os
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca.helpers import (assert_error, b64u, CA, fedgate, load_certs, make_csr, san_value,
                        unb64u)


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


def test_csr_for_other_names_than_the_token_is_refused_403_as_step_ca(cloud):
    # step-ca's JWK validators: each SAN type in the CSR must be exactly the token's names of
    # that type; the CN empty or the token's sub (a SAN is not enough)
    sans = ["a.internal", "spiffe://cloud.example/a"]
    for cn, csr_sans in (("a.internal", ["a.internal", "b.internal", sans[1]]),
                         ("a.internal", ["b.internal"]),
                         ("a.internal", ["spiffe://cloud.example/b"]),
                         ("other.internal", sans), ("spiffe://cloud.example/a", sans)):
        _, csr = make_csr(cn, csr_sans)
        assert_error(cloud.sign(csr, cloud.token("a.internal", sans)), 403,
                     "CN" if csr_sans == sans else "are not the token's SANs")


def test_csr_with_some_san_types_of_the_token_gets_all_the_tokens_names_as_step_ca(cloud):
    sans = ["a.internal", "spiffe://cloud.example/a"]
    for cn, csr_sans in (("a.internal", ["a.internal"]), ("", ["spiffe://cloud.example/a"]),
                         ("a.internal", [])):
        _, csr = make_csr(cn, csr_sans) if cn else make_csr_no_cn(csr_sans)
        code, resp = cloud.sign(csr, cloud.token("a.internal", sans))
        assert code == 201, resp
        leaf = load_certs(resp["crt"])[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["a.internal"], (csr_sans, san)
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [sans[1]], san
        assert leaf.subject.rfc4514_string() == "CN=a.internal"


def make_csr_no_cn(sans):
    key = ec.generate_private_key(ec.SECP256R1())
    return key, (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
                 .add_extension(x509.SubjectAlternativeName([san_value(s) for s in sans]),
                                critical=False)
                 .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


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
    # step-ca never reads "sha"; fedgate refuses one naming another root (README)
    assert_error(cloud.sign(csr, cloud.token("t.internal", ["t.internal"], sha="00" * 32)), 401,
                 "sha")
    assert_error(cloud.sign(csr, cloud.token("t.internal", ["t.internal"], jti=7)), 401, "jti")


def test_token_without_sha_or_jti_is_taken_once_as_step_ca(cloud):
    _, csr = make_csr("nj.internal", ["nj.internal"])
    for over in ({"sha": None}, {"jti": None}, {"jti": ""}):
        tok = cloud.token("nj.internal", ["nj.internal"], **over)
        code, resp = cloud.sign(csr, tok)
        assert code == 201, (over, resp)
        # without a jti, the token's hash is what is remembered as used
        assert_error(cloud.sign(csr, tok), 401, "already used")


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
    assert_error(cloud.sign(csr, tok), 403, "are not the token's SANs")
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
