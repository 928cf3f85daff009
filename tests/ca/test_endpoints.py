"""The CA's read endpoints (/health, /roots, /federation...) over curl, Python and
`fedgate ca federation|roots`, pinned to a root."""

import socket
import ssl

import pytest

from ca.helpers import assert_error, fedgate, fingerprint, load_certs, ok


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


@pytest.mark.parametrize("prefix", ["", "/1.0"])
def test_provisioners_are_listed_without_the_key_file_and_have_no_encrypted_key(cloud, prefix):
    # fedgate's own init keeps the provisioner key in a file (keyFile), a path of this host
    code, body = cloud.curl(f"{cloud.url}{prefix}/provisioners")
    want = {k: v for k, v in cloud.prov.items() if k != "keyFile"}
    assert code == 200 and body == {"provisioners": [want], "nextCursor": ""}, body
    kid = cloud.prov["key"]["kid"]
    assert_error(cloud.curl(f"{cloud.url}{prefix}/provisioners/{kid}/encrypted-key"), 404,
                 "encryptedKey")
    assert_error(cloud.curl("-X", "POST", "-d", "", f"{cloud.url}{prefix}/provisioners"), 405)
    assert_error(cloud.curl(f"{cloud.url}{prefix}/provisioners/{kid}/x/encrypted-key"), 404,
                 "no such endpoint")
