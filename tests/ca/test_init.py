"""`fedgate ca init` and `serve`: the step-ca layout, keys and files at rest."""

import json
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca.helpers import fedgate, load_certs, ok, thumbprint


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
