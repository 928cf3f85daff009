"""A terminate tunnel with proxy_protocol v2 tells the service who called."""

import json
import subprocess

from test_interop import hello_backend, terminate_gateway  # noqa: F401 (fixture)


def test_proxy_v2_header_carries_verified_identity(pki, gateways, hello_backend):  # noqa: F811
    b = terminate_gateway(pki, gateways, hello_backend)
    port = b.port("from-k8s")
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", pki["federated"],
                        "--resolve", f"bar.internal:{port}:127.0.0.1",
                        "--cert", pki["leaves"]["kube_client"]["crt"],
                        "--key", pki["leaves"]["kube_client"]["key"],
                        "-w", "\n%{local_port}",
                        f"https://bar.internal:{port}/whoami"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    body, local_port = r.stdout.rsplit("\n", 1)
    info = json.loads(body)
    assert info["command"] == "PROXY"
    assert info["src_addr"] == "127.0.0.1" and info["dst_addr"] == "127.0.0.1"
    assert info["src_port"] == int(local_port)
    assert info["dst_port"] == port
    assert info["authority"] == "bar.internal"
    assert info["ssl"]["version"] == "TLSv1.3"
    assert info["ssl"]["cn"] == "kube_client"
    assert info["ssl"]["verify"] == 0
    assert info["ssl"]["client_flags"] == 0x07
    assert info["ssl"]["cipher"].startswith("TLS_")
    assert info["dns_sans"] == ["kube-client.k8s.internal"]
    assert info["uri_sans"] == ["spiffe://k8s.example/ns/default/sa/kube-client"]
    assert info["root_cn"] == "Kubernetes Root CA"
    assert info["tunnel"] == "from-k8s"
