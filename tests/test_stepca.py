"""fedgate against the real step-ca, not only our reading of it: step-ca 0.19.0 built from
Debian's Go sources (tests/stepca/build.sh, cached under build/stepca), two step-ca CAs that
federate ("federatedRoots"), and the federation tutorial run against them with fedgate
gateways and fedgate's own `ca` commands; then the cross checks: fedgate's tokens at step-ca,
step-ca's files under `fedgate ca serve`.

step-ca's files are those `step ca init` writes (tests/stepca/layout.py: the step CLI cannot be
built from Debian). Both CAs issue "40s" leaves (valid 100 s: notBefore is backdated one
minute), so gateways enrolled there renew every 2 to 12 s.
Where Go or step-ca's sources cannot be installed, every test here is skipped, loudly.
"""

import json
import os
import re
import socket
import subprocess
import time
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from conftest import FEDGATE, ROOT, stop_process, wait_for
from ca.helpers import (CA, assert_error, b64u, fedgate, load_certs, make_csr, ok, serving,
                        unb64u)
from stepca.layout import StepCADir, encrypt_jwk, jwk_of
from test_federation import (curl_hello, echo_roundtrip, federation, gw_config, hello,  # noqa: F401
                             originate, terminate)

BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
STEPCA = os.path.join(BUILD, "stepca", "step-ca")
PASSWORD = "step-ca's password, for tests"
CLAIMS = {"minTLSCertDuration": "10s", "defaultTLSCertDuration": "40s"}
# The tutorial's names: each root vouches for its own cloud only.
ROOTS = [{"cn": "Cloud Root CA", "dns": ["foo.internal"], "uri": ["spiffe://cloud.example/*"]},
         {"cn": "Kubernetes Root CA", "dns": ["bar.internal"],
          "uri": ["spiffe://k8s.example/*"], "leaf_cn": ["bar.internal", "kube_client"]}]
B_ALLOW = [{"dns": "foo.internal", "root": "Cloud Root CA"},
           {"uri": "spiffe://k8s.example/*", "root": "Kubernetes Root CA"}]
A_ALLOW = [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]
A_SANS = ["foo.internal", "spiffe://cloud.example/gw/foo"]
B_SANS = ["bar.internal", "spiffe://k8s.example/gw/bar"]


@pytest.fixture(scope="module")
def stepca_bin():
    r = subprocess.run([os.path.join(ROOT, "tests", "stepca", "build.sh"), BUILD],
                       capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if r.returncode == 77:
        why = ("SKIP: NOT TESTED AGAINST THE REAL step-ca: Go or step-ca's sources cannot be "
               "installed here (tests/stepca/build.sh): " + r.stderr.strip())
        warnings.warn(why)
        pytest.skip(why)
    assert r.returncode == 0, f"building step-ca failed:\n{r.stdout}{r.stderr}"
    return STEPCA


def free_port():
    """A loopback port free now (step-ca has no address file: its address is fixed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StepCA:
    """One step-ca directory (StepCADir) and its `step-ca` process (or `fedgate ca serve`'s,
    when @binary is FEDGATE), with the attributes the gateway helpers of test_federation read
    (url, root)."""

    def __init__(self, tmp, name, binary):
        self.name, self.binary = name, binary
        self.port = free_port()
        self.url = f"https://localhost:{self.port}"
        self.d = StepCADir(str(tmp / name.lower()), name, PASSWORD, f"127.0.0.1:{self.port}",
                           claims=CLAIMS)
        self.root, self.config, self.pwfile = self.d.root, self.d.config, self.d.password_file
        self.fingerprint = self.d.fingerprint
        self.proc = None

    def start(self):
        self.log_path = os.path.join(self.d.dir, "log")
        self.logf = open(self.log_path, "w")
        argv = [self.binary, self.config, "--password-file", self.pwfile]
        ready = "Serving HTTPS on"
        if self.binary == FEDGATE:
            argv[1:1], ready = ["ca", "serve"], "CA: listening on"
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: ready in self.log() or self.proc.poll() is not None, 20,
                 f"{self.binary} {self.name} to listen")
        assert self.proc.poll() is None, f"step-ca {self.name} exited:\n{self.log()}"

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.logf.close()
        return stop_process(self.proc)

    # Python-side tokens and requests, as for fedgate's own CA (ca.helpers.CA)
    token, sign, request, ssl_context = CA.token, CA.sign, CA.request, CA.ssl_context

    @property
    def prov(self):
        return self.d.cfg["authority"]["provisioners"][0]

    def provisioner_key(self):
        return self.d.provisioner_key

    def cli_token(self, subject, *sans):
        """`fedgate ca token --ca-config` on step-ca's ca.json: the provisioner's key from its
        "encryptedKey", under the CA's password (as `step ca token` takes it)."""
        args = ["ca", "token", subject, "--ca-url", self.url, "--root", self.root,
                "--ca-config", self.config, "--password-file", self.pwfile]
        for s in sans:
            args += ["--san", s]
        return ok(fedgate(*args)).stdout.strip()

    def enroll(self, tmp, name, sans):
        crt, key = tmp / f"{name}.crt", tmp / f"{name}.key"
        ok(fedgate("ca", "certificate", name, crt, key, "--token", self.cli_token(name, *sans),
                   "--ca-url", self.url, "--root", self.root))
        return crt, key


@pytest.fixture(scope="module")
def stepcas(stepca_bin, tmp_path_factory):
    """Cloud and Kubernetes, two step-ca CAs, each listing the other's root."""
    tmp = tmp_path_factory.mktemp("stepcas")
    cloud, kube = StepCA(tmp, "Cloud", stepca_bin), StepCA(tmp, "Kubernetes", stepca_bin)
    for ca, other in ((cloud, kube), (kube, cloud)):
        ca.d.cfg["federatedRoots"] = [other.root]
        ca.d.save()
    # step-ca exits 0 on SIGTERM after closing its listener and database
    with serving(cloud, kube):
        yield cloud, kube


def ca_identity(ca, d, subject, sans):
    """identity.ca for a gateway in directory @d, with a fresh token from `fedgate ca token`."""
    d.mkdir(parents=True, exist_ok=True)
    token = d / "token"
    token.write_text(ca.cli_token(subject, *sans) + "\n")
    return {"cert": str(d / "gw.crt"), "key": str(d / "gw.key"),
            "ca": {"url": ca.url, "root": ca.root, "token_file": str(token),
                   "subject": subject, "sans": list(sans)}}


def sans_of(crt_path):
    """The SANs of the certificate in @crt_path as sorted strings."""
    ext = load_certs(open(crt_path, "rb").read())[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return sorted(str(v) for t in (x509.DNSName, x509.UniformResourceIdentifier)
                  for v in ext.get_values_for_type(t))


def subjects(pem_path):
    return sorted(c.subject.rfc4514_string() for c in load_certs(open(pem_path, "rb").read()))


# --- the tutorial against step-ca ------------------------------------------------------------


def test_fedgate_reads_roots_and_the_federation_of_two_federated_stepca_cas(stepcas, tmp_path):
    cloud, kube = stepcas
    ok(fedgate("ca", "roots", "--ca-url", kube.url, "--root", kube.root, tmp_path / "roots.pem"))
    assert subjects(tmp_path / "roots.pem") == ["CN=Kubernetes Root CA"]
    for ca in (cloud, kube):
        out = tmp_path / f"{ca.name}.federated.pem"
        ok(fedgate("ca", "federation", "--ca-url", ca.url, "--root", ca.root, out))
        assert subjects(out) == ["CN=Cloud Root CA", "CN=Kubernetes Root CA"]
    # the pin holds: the other CA's root does not authenticate this one
    r = fedgate("ca", "roots", "--ca-url", kube.url, "--root", cloud.root, tmp_path / "x.pem")
    assert r.returncode != 0 and not (tmp_path / "x.pem").exists(), r


def test_gateways_enrolled_at_two_stepca_cas_renew_and_carry_a_tunnel_byte_exact(
        stepcas, gateways, upstream, tmp_path):
    cloud, kube = stepcas
    up = upstream()
    b = gateways("b", gw_config(ca_identity(kube, tmp_path / "b", "bar.internal", B_SANS),
                                federation(kube), [terminate(up.addr, B_ALLOW)], ROOTS))
    a = gateways("a", gw_config(ca_identity(cloud, tmp_path / "a", "foo.internal", A_SANS),
                                federation(cloud, kube),
                                [originate(b.port("from-aws"), "bar.internal", A_ALLOW)],
                                ROOTS))
    b.wait_log(r"enrolled at " + re.escape(kube.url) + r": bar\.internal, serial")
    a.wait_log(r"enrolled at " + re.escape(cloud.url) + r": foo\.internal, serial")
    for gw in (a, b):
        gw.wait_log(r"trust bundle from https://localhost:\d+: 2 root\(s\)")
    leaf = load_certs((tmp_path / "b" / "gw.crt").read_bytes())[0]
    assert leaf.issuer.rfc4514_string() == "CN=Kubernetes Intermediate CA"
    assert leaf.subject.rfc4514_string() == "CN=bar.internal"
    payload = os.urandom(1 << 20)
    assert echo_roundtrip(a.port("to-gcp"), payload) == payload
    b.wait_log(r"accepted foo\.internal \(issued by 'Cloud Intermediate CA', root 'Cloud Root "
               r"CA'\) on tunnel from-aws")
    # step-ca's /renew, twice on each side, and the tunnel still carries every byte
    for gw, ca in ((a, cloud), (b, kube)):
        gw.wait_log(r"renewed at " + re.escape(ca.url), timeout=40, count=2)
    renewed = load_certs((tmp_path / "b" / "gw.crt").read_bytes())[0]
    assert renewed.serial_number != leaf.serial_number
    assert renewed.subject == leaf.subject
    assert renewed.public_key().public_numbers() == leaf.public_key().public_numbers()
    assert echo_roundtrip(a.port("to-gcp"), payload) == payload
    for gw in (a, b):
        assert not re.search(r"(renewal|enrollment|federation refresh) .*failed", gw.log()), \
            gw.log()


def test_the_tutorials_hellos_through_a_and_b_and_from_a_renewed_curl_client_impostor_refused(
        stepcas, gateways, hello, tmp_path):  # noqa: F811 (hello: test_federation's fixture)
    cloud, kube = stepcas
    federated = tmp_path / "federated.pem"
    ok(fedgate("ca", "federation", "--ca-url", cloud.url, "--root", cloud.root, federated))
    b = gateways("b", gw_config(ca_identity(kube, tmp_path / "b", "bar.internal", B_SANS),
                                federation(kube), [terminate(hello, B_ALLOW, proxy_v2=True)],
                                ROOTS))
    b.wait_log(r"enrolled at " + re.escape(kube.url))
    # plain HTTP into A, mTLS A -> B, PROXY v2 to the backend: the tutorial's Hello
    a = gateways("a", gw_config(ca_identity(cloud, tmp_path / "a", "foo.internal", A_SANS),
                                federation(cloud, kube),
                                [originate(b.port("from-aws"), "bar.internal", A_ALLOW)],
                                ROOTS))
    a.wait_log(r"enrolled at " + re.escape(cloud.url))
    r = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{a.port('to-gcp')}/"],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout == "Hello foo.internal (cert issued by 'Cloud Root CA')\n", (r, b.log())
    crt, key = kube.enroll(tmp_path, "kube_client", ["spiffe://k8s.example/ns/prod/kube_client"])
    r = curl_hello(b.port("from-aws"), federated, crt, key, name="bar.internal")
    assert r.returncode == 0, (r.stderr, b.log())
    assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n"
    # `fedgate ca renew` at step-ca: same names and key, a new serial, and still let in
    before = load_certs(crt.read_bytes())[0]
    ok(fedgate("ca", "renew", crt, key, "--ca-url", kube.url, "--root", kube.root))
    after = load_certs(crt.read_bytes())[0]
    assert after.serial_number != before.serial_number and after.subject == before.subject
    assert sans_of(crt) == ["spiffe://k8s.example/ns/prod/kube_client"]
    r = curl_hello(b.port("from-aws"), federated, crt, key, name="bar.internal")
    assert r.stdout == "Hello kube_client (cert issued by 'Kubernetes Root CA')\n", r
    # the Kubernetes step-ca issues a Cloud name: it chains, but B's roots rule refuses it
    crt, key = kube.enroll(tmp_path, "foo.internal",
                           ["foo.internal", "spiffe://k8s.example/ns/prod/impostor"])
    r = curl_hello(b.port("from-aws"), federated, crt, key, name="bar.internal")
    assert r.returncode != 0 and "Hello" not in r.stdout, r
    b.wait_log(r"refused foo\.internal .*'Kubernetes Root CA'.* may not vouch for "
               r"dns:foo\.internal")


# --- where fedgate and step-ca differed ------------------------------------------------------

LONG_SUB = "spiffe://k8s.example/ns/production/sa/payments-ledger-reconciliation-worker"


def test_a_gateway_whose_subject_is_a_spiffe_id_over_64_characters_enrolls_and_renews(
        stepcas, gateways, upstream, tmp_path):
    # step-ca puts the token's sub into the CN whatever its length; the gateway asked for no
    # CN (a CN may hold 64 characters) and must take either answer
    assert len(LONG_SUB) > 64
    _, kube = stepcas
    up = upstream()
    g = gateways("g", gw_config(ca_identity(kube, tmp_path / "g", LONG_SUB, [LONG_SUB]),
                                federation(kube), [terminate(up.addr, B_ALLOW)], ROOTS))
    g.wait_log(r"enrolled at " + re.escape(kube.url) + ": " + re.escape(LONG_SUB) + ", serial")
    leaf = load_certs((tmp_path / "g" / "gw.crt").read_bytes())[0]
    assert leaf.subject.rfc4514_string() == "CN=" + LONG_SUB
    g.wait_log(r"renewed at " + re.escape(kube.url), timeout=30)
    renewed = load_certs((tmp_path / "g" / "gw.crt").read_bytes())[0]
    assert renewed.serial_number != leaf.serial_number and renewed.subject == leaf.subject


def test_a_token_for_other_names_than_the_gateways_is_not_spent_and_still_works_elsewhere(
        stepcas, tmp_path):
    # step-ca issues the token's sub and sans whatever the CSR asks: the gateway would refuse
    # that certificate, so it must refuse the token before sending it
    _, kube = stepcas
    ident = ca_identity(kube, tmp_path / "g", "bar.internal", B_SANS)
    for subject, sans, words in (("other.internal", B_SANS, "the token is for 'bar.internal', "
                                  "not 'other.internal': not spending it"),
                                 ("bar.internal", B_SANS[:1], "the token names 'spiffe://k8s."
                                  "example/gw/bar', which is not one of the SANs asked for")):
        cfg = gw_config(dict(ident, ca=dict(ident["ca"], subject=subject, sans=sans)),
                        federation(kube), [terminate("127.0.0.1:1", B_ALLOW)], ROOTS)
        path = tmp_path / "g.json"
        path.write_text(json.dumps(cfg))
        r = fedgate("run", "-c", path)
        assert r.returncode == 2 and words in r.stderr, r
    assert not os.path.exists(ident["cert"])
    token = open(ident["ca"]["token_file"]).read().strip()
    ok(fedgate("ca", "certificate", "bar.internal", tmp_path / "b.crt", tmp_path / "b.key",
               "--token", token, "--ca-url", kube.url, "--root", kube.root))
    assert sans_of(tmp_path / "b.crt") == sorted(B_SANS)
    # spent now, at step-ca (whose answer has no reason: its log has)
    r = fedgate("ca", "certificate", "bar.internal", tmp_path / "c.crt", tmp_path / "c.key",
                "--token", token, "--ca-url", kube.url, "--root", kube.root)
    assert r.returncode != 0 and "POST /1.0/sign: 401 " in r.stderr, r
    wait_for(lambda: "token already used" in kube.log(), 5, "step-ca to log the reused token")


# --- step-ca's files under `fedgate ca serve` ------------------------------------------------


@pytest.fixture
def served_step_dir(stepca_bin, tmp_path):
    """A step-ca directory (federating with nothing) served by `fedgate ca serve`."""
    ca = StepCA(tmp_path, "Partner", FEDGATE)
    ca.start()
    yield ca
    assert ca.stop() == 0, ca.log()


def test_fedgate_ca_serve_runs_on_step_cas_files_and_a_spiffe_id_gateway_enrolls_there(
        served_step_dir, gateways, upstream, tmp_path):
    ca = served_step_dir
    ok(fedgate("ca", "roots", "--ca-url", ca.url, "--root", ca.root, tmp_path / "roots.pem"))
    assert subjects(tmp_path / "roots.pem") == ["CN=Partner Root CA"]
    up = upstream()
    g = gateways("g", gw_config(ca_identity(ca, tmp_path / "g", LONG_SUB, [LONG_SUB]),
                                federation(ca), [terminate(up.addr, B_ALLOW)], ROOTS))
    g.wait_log(r"enrolled at " + re.escape(ca.url) + r": \(no CN\), serial")
    # fedgate's CA leaves out a CN over 64 characters (RFC 5280's upper bound, which OpenSSL
    # enforces): the SAN, critical then, carries the identity
    leaf = load_certs((tmp_path / "g" / "gw.crt").read_bytes())[0]
    assert len(leaf.subject) == 0 and sans_of(tmp_path / "g" / "gw.crt") == [LONG_SUB]
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    assert leaf.issuer.rfc4514_string() == "CN=Partner Intermediate CA"
    g.wait_log(r"renewed at " + re.escape(ca.url), timeout=30)


# --- `fedgate ca token --ca-config` on step-ca's ca.json -------------------------------------


def token_args(ca, config, pwfile):
    return ["ca", "token", "foo.internal", "--ca-url", ca.url, "--root", ca.root,
            "--ca-config", config, "--password-file", pwfile]


def test_fedgate_token_takes_the_provisioner_key_from_step_cas_encrypted_key(stepcas, tmp_path):
    cloud, _ = stepcas
    tok = ok(fedgate(*token_args(cloud, cloud.config, cloud.pwfile))).stdout.strip()
    header = json.loads(unb64u(tok.split(".")[0]))
    assert header["kid"] == cloud.d.cfg["authority"]["provisioners"][0]["key"]["kid"]
    # the token verifies with the provisioner's public key, so step-ca takes it
    key = cloud.d.provisioner_key.public_key()
    r, s = (int.from_bytes(unb64u(tok.split(".")[2])[i:i + 32], "big") for i in (0, 32))
    key.verify(encode_dss_signature(r, s), tok.rsplit(".", 1)[0].encode(),
               ec.ECDSA(hashes.SHA256()))
    crt, _ = cloud.enroll(tmp_path, "foo.internal", ["foo.internal"])
    assert load_certs(crt.read_bytes())[0].subject.rfc4514_string() == "CN=foo.internal"


def jwe_with(jwe, **header):
    """@jwe with its protected header changed (the tag no longer matches: fedgate must refuse
    before it decrypts, or when it does)."""
    parts = jwe.split(".")
    h = dict(json.loads(unb64u(parts[0])), **header)
    return ".".join([b64u(json.dumps(h).encode())] + parts[1:])


def flip(text, i):
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]


@pytest.mark.parametrize("change,words", [
    ("password", "cannot decrypt the JWE: wrong password, or it was altered"),
    ("ciphertext", "cannot decrypt the JWE: wrong password, or it was altered"),
    ("p2c", "JWE p2c must be 1000..10000000"),
    ("alg", "JWE alg RSA-OAEP, enc A256GCM: only PBES2"),
    ("parts", "not a compact JWE (five parts)"),
    ("d", "the JWK's d is not the private key of its x and y"),
    ("key", 'its "encryptedKey" is not the key of provisioner "admin"'),
])
def test_fedgate_token_refuses_an_encrypted_key_it_cannot_open_and_prints_no_token(
        stepcas, tmp_path, change, words):
    cloud, _ = stepcas
    cfg = json.loads(open(cloud.config).read())
    prov = cfg["authority"]["provisioners"][0]
    pwfile = cloud.pwfile
    if change == "password":
        pwfile = tmp_path / "wrong"
        pwfile.write_text("not the password\n")
    elif change == "ciphertext":
        parts = prov["encryptedKey"].split(".")
        parts[3] = flip(parts[3], 5)
        prov["encryptedKey"] = ".".join(parts)
    elif change == "p2c":
        prov["encryptedKey"] = jwe_with(prov["encryptedKey"], p2c=10 ** 8)
    elif change == "alg":
        prov["encryptedKey"] = jwe_with(prov["encryptedKey"], alg="RSA-OAEP")
    elif change == "parts":
        prov["encryptedKey"] = prov["encryptedKey"].rsplit(".", 1)[0]
    else:  # another key's d with this x and y, or another key altogether
        other = jwk_of(ec.generate_private_key(ec.SECP256R1()), private=True)
        mine = jwk_of(cloud.d.provisioner_key, private=True)
        prov["encryptedKey"] = encrypt_jwk(dict(mine, d=other["d"]) if change == "d"
                                           else other, PASSWORD)
    config = tmp_path / "ca.json"
    config.write_text(json.dumps(cfg))
    r = fedgate(*token_args(cloud, config, pwfile))
    assert r.returncode != 0 and r.stdout == "" and words in r.stderr, r


# --- /sign decisions: step-ca and `fedgate ca serve` on the same files -------------------------


@pytest.fixture
def both(stepcas, served_step_dir):
    """The Kubernetes step-ca and a step-ca directory under `fedgate ca serve`."""
    return {"step-ca": stepcas[1], "fedgate": served_step_dir}


SANS = ["a.internal", "spiffe://k8s.example/a"]


@pytest.mark.parametrize("cn,csr_sans,words", [
    ("a.internal", SANS + ["b.internal"], "SANs"),
    ("a.internal", ["spiffe://k8s.example/b"], "SANs"),
    ("other.internal", SANS, "CN"),
    ("spiffe://k8s.example/a", SANS, "CN"),  # a SAN, but not the token's sub
], ids=["extra-dns", "other-uri", "other-cn", "cn-is-a-san"])
def test_a_csr_for_other_names_than_the_token_is_refused_403_by_both(both, cn, csr_sans, words):
    for name, ca in both.items():
        _, csr = make_csr(cn, csr_sans)
        code, body = ca.sign(csr, ca.token("a.internal", SANS))
        assert code == 403, (name, code, body)
        if name == "fedgate":  # step-ca's message is a generic one
            assert words in body["message"], body


@pytest.mark.parametrize("csr_sans", [["a.internal"], ["spiffe://k8s.example/a"], []],
                         ids=["dns-only", "uri-only", "none"])
def test_a_csr_with_some_san_types_of_the_token_gets_all_its_names_from_both(both, csr_sans):
    for name, ca in both.items():
        _, csr = make_csr("a.internal", csr_sans)
        code, body = ca.sign(csr, ca.token("a.internal", SANS))
        assert code == 201, (name, body)
        leaf = load_certs(body["crt"])[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(str(v.value) for v in san) == sorted(SANS), (name, san)
        assert leaf.subject.rfc4514_string() == "CN=a.internal", name


@pytest.mark.parametrize("over", [{"sha": None}, {"jti": None}], ids=["no-sha", "no-jti"])
def test_a_token_without_sha_or_jti_is_taken_once_by_both(both, over):
    for name, ca in both.items():
        _, csr = make_csr("a.internal", SANS)
        tok = ca.token("a.internal", SANS, **over)
        code, body = ca.sign(csr, tok)
        assert code == 201, (name, body)
        code, body = ca.sign(csr, tok)
        assert code == 401, (name, code, body)


def test_documented_differences_exp_over_an_hour_ahead_and_a_foreign_sha(both):
    # step-ca takes both; fedgate refuses them (README, "Differences from step-ca")
    now = int(time.time())
    for over, words in (({"exp": now + 7200}, "at most 3600 s ahead"),
                        ({"sha": "00" * 32}, "sha")):
        _, csr = make_csr("a.internal", SANS)
        code, body = both["step-ca"].sign(csr, both["step-ca"].token("a.internal", SANS, **over))
        assert code == 201, (over, body)
        assert_error(both["fedgate"].sign(csr, both["fedgate"].token("a.internal", SANS, **over)),
                     401, words)


def test_documented_difference_a_token_issued_before_the_ca_started(both):
    # step-ca refuses it (its used tokens may have been in memory only); fedgate keeps them on
    # disk, so it takes a token minted before a restart
    iat = int(time.time()) - 3600
    for name, want in (("step-ca", 401), ("fedgate", 201)):
        _, csr = make_csr("a.internal", SANS)
        code, body = both[name].sign(csr, both[name].token("a.internal", SANS, iat=iat))
        assert code == want, (name, body)


def test_provisioners_and_their_encrypted_key_are_served_by_both_alike(both):
    # the step CLI's online token flow: list the provisioners, fetch the encrypted key
    answers = {}
    for name, ca in both.items():
        kid = ca.prov["key"]["kid"]
        answers[name] = (ca.request("GET", "/provisioners"),
                         ca.request("GET", f"/1.0/provisioners/{kid}/encrypted-key"))
        assert answers[name][0] == (200, {"provisioners": [ca.prov], "nextCursor": ""}), name
        assert answers[name][1] == (200, {"key": ca.prov["encryptedKey"]}), name
        code, body = ca.request("GET", "/provisioners/no-such-kid/encrypted-key")
        assert code == 404 and body["status"] == 404, (name, body)


def test_fedgate_token_takes_the_encrypted_key_from_the_ca_itself_as_step_ca_token(both,
                                                                                  tmp_path):
    # no ca.json and no key file: GET /provisioners, then the provisioner's encrypted key
    for name, ca in both.items():
        args = ["ca", "token", "a.internal", "--ca-url", ca.url, "--root", ca.root]
        for san in SANS:
            args += ["--san", san]
        tok = ok(fedgate(*args, "--password-file", ca.pwfile)).stdout.strip()
        _, csr = make_csr("a.internal", SANS)
        code, body = ca.sign(csr, tok)
        assert code == 201, (name, body)
        r = fedgate(*args, "--password-file", ca.pwfile, "--provisioner", "nope")
        assert r.returncode == 1 and r.stdout == "", (name, r)
        assert 'has no JWK provisioner "nope" with an encrypted key' in r.stderr, (name, r)
        wrong = tmp_path / "wrong"
        wrong.write_text("not the password\n")
        r = fedgate(*args, "--password-file", wrong)
        assert r.returncode == 1 and "wrong password" in r.stderr and r.stdout == "", (name, r)


def test_a_mixed_case_dns_name_is_issued_as_the_token_writes_it_by_both(both):
    for name, ca in both.items():
        _, csr = make_csr("Mixed.Internal", ["Mixed.Internal"])
        code, body = ca.sign(csr, ca.token("Mixed.Internal", ["Mixed.Internal"]))
        assert code == 201, (name, body)
        san = load_certs(body["crt"])[0].extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["Mixed.Internal"], (name, san)
        # a documented difference: fedgate compares DNS names without regard to case (the
        # leaf still gets the token's name as written); step-ca compares them exactly
        _, csr = make_csr("Mixed.Internal", ["mixed.internal"])
        code, body = ca.sign(csr, ca.token("Mixed.Internal", ["Mixed.Internal"]))
        assert code == {"step-ca": 403, "fedgate": 201}[name], (name, body)
        if code == 201:
            san = load_certs(body["crt"])[0].extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
            assert san.get_values_for_type(x509.DNSName) == ["Mixed.Internal"], san
