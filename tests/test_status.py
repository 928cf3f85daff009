"""`fedgate status` and GET /status on the admin listener: what a running gateway carries.

A tunnel pair with admin listeners on both sides: each side's status names its tunnel, the
peer identity of the open tunnel, the plaintext bytes each way (exact, from the data plane's
tallies, for a running tunnel and after its close), the identity's expiry and the trust
bundle's source with its age. /metrics shows the same bytes. Usage errors and a gateway that
does not answer get their exit status and a line that says why.
"""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest
from cryptography import x509

from conftest import FEDGATE, pair_configs, wait_for

UP = 300_001   # bytes the application sends (to the service)
DOWN = 70_003  # bytes the service answers with


def status(gw, *extra):
    """The originate side's config names its admin port; the other's is port 0: its ports
    file says where it is."""
    where = ["-c", str(gw.config_path)] if gw.name == "originate" else \
        ["--admin", f"127.0.0.1:{gw.port('@admin')}"]
    r = subprocess.run([FEDGATE, "status", *where, *extra],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def status_json(gw):
    return json.loads(status(gw, "--json"))


def one_tunnel(s):
    assert len(s["tunnels"]) == 1, s
    return s["tunnels"][0]


def answer_fixed(conn):
    """Reads UP bytes, answers DOWN, then waits for the client's close."""
    got = 0
    while got < UP:
        data = conn.recv(65536)
        if not data:
            return
        got += len(data)
    conn.sendall(b"d" * DOWN)
    while conn.recv(65536):
        pass


@pytest.fixture
def pair(pki, gateways, upstream):
    up = upstream(answer_fixed)
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b_cfg["admin"] = {"listen": "127.0.0.1:0"}
    b = gateways("terminate", b_cfg)
    a_cfg = a_cfg(b.port("from-aws"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        a_cfg["admin"] = {"listen": "127.0.0.1:%d" % s.getsockname()[1]}
    a = gateways("originate", a_cfg)
    return a, b


def metric_bytes(gw, tunnel, direction):
    url = f"http://127.0.0.1:{gw.port('@admin')}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("fedgate_tunnel_bytes_total{") and \
                    f'tunnel="{tunnel}"' in line and f'direction="{direction}"' in line:
                return int(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no fedgate_tunnel_bytes_total for {tunnel} {direction}")


def test_status_names_the_open_tunnel_its_peer_and_the_exact_bytes_each_way(pki, pair):
    a, b = pair
    s = status_json(a)
    t = one_tunnel(s)
    assert (t["name"], t["mode"], t["open"], t["accepted"]) == ("to-gcp", "originate", 0, 0)
    assert t["listen"] == f"127.0.0.1:{a.port('to-gcp')}"
    assert t["server_name"] == "bar.internal"
    assert (t["bytes_to_peer"], t["bytes_from_peer"]) == (0, 0)
    assert s["dataplane"]["pid"] > 0 and s["dataplane"]["restarts"] == 0
    assert s["dataplane"]["local_redirect"] == "off"
    assert s["pid"] == a.proc.pid

    app = socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=10)
    app.sendall(b"u" * UP)
    got = 0
    while got < DOWN:
        chunk = app.recv(65536)
        assert chunk, "the service's answer was cut short"
        got += len(chunk)
    # The tunnel is open and idle now: its bytes arrive by the data plane's next tally.
    want = {a: (UP, DOWN), b: (DOWN, UP)}
    for gw, name, peer in [(a, "to-gcp", "bar.internal"), (b, "from-aws", "foo.internal")]:
        wait_for(lambda: (one_tunnel(status_json(gw))["bytes_to_peer"],
                          one_tunnel(status_json(gw))["bytes_from_peer"]) == want[gw], 5,
                 f"{name}'s bytes in its status: {one_tunnel(status_json(gw))}")
        t = one_tunnel(status_json(gw))
        assert t["open"] == 1 and t["accepted"] == 1, t
        assert t["peers"] == [{"identity": peer, "open": 1, "being_handed": 0}], t
        assert metric_bytes(gw, name, "to_peer") == want[gw][0]
        assert metric_bytes(gw, name, "from_peer") == want[gw][1]
    lines = status(a)
    assert "tunnel to-gcp (originate)" in lines, lines
    assert f"1 open, 1 accepted, 0 refused; {UP} bytes to peer, {DOWN} from peer" in lines, lines
    assert "peer bar.internal: 1 open" in lines, lines

    # Once closed, the totals stay exact (the close report carries what no tally told).
    app.close()
    for gw in (a, b):
        wait_for(lambda: one_tunnel(status_json(gw))["open"] == 0, 5, "the close")
        t = one_tunnel(status_json(gw))
        assert (t["bytes_to_peer"], t["bytes_from_peer"]) == want[gw], t
        assert t["peers"] == [], t


def test_status_shows_the_identity_expiry_and_the_trust_source_with_its_age(pki, pair):
    a, _ = pair
    t0 = time.time()
    s = status_json(a)
    with open(pki["leaves"]["foo"]["crt"], "rb") as f:
        leaf = x509.load_pem_x509_certificate(f.read())
    na = leaf.not_valid_after.replace(tzinfo=None)
    epoch = int((na - na.__class__(1970, 1, 1)).total_seconds())
    ident = s["identity"]
    assert ident["cn"] == leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert ident["source"] == "files"
    assert ident["not_after"] == epoch
    assert abs(ident["expires_in_s"] - (epoch - t0)) < 30, ident
    trust = s["trust"]
    assert trust["roots"] == 2
    assert t0 < trust["first_root_expiry"] < t0 + 30 * 365 * 86400, trust
    assert len(trust["sources"]) == 1, trust
    src = trust["sources"][0]
    assert (src["kind"], src["path"], src["roots"]) == ("file", pki["federated"], 2), src
    assert 0 <= src["age_s"] < 60, src
    lines = status(a)
    assert f"trust: 2 root(s)" in lines and f"file {pki['federated']}: 2 root(s)" in lines, lines


def test_status_without_admin_listen_or_with_no_gateway_says_why(pki, tmp_path, gateways,
                                                                  upstream):
    b_cfg, _ = pair_configs(pki, upstream().addr)
    path = tmp_path / "noadmin.json"
    path.write_text(json.dumps(b_cfg))
    r = subprocess.run([FEDGATE, "status", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "has no admin.listen" in r.stderr, r.stderr
    b_cfg["admin"] = {"listen": "127.0.0.1:0"}
    path.write_text(json.dumps(b_cfg))
    r = subprocess.run([FEDGATE, "status", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "has port 0: give --admin" in r.stderr, r.stderr
    # nobody listens there: a refused connection, exit 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    r = subprocess.run([FEDGATE, "status", "--admin", f"127.0.0.1:{free}"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "Connection refused" in r.stderr, r.stderr
    # a listener that never answers: the 5 s bound, exit 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        t0 = time.monotonic()
        r = subprocess.run([FEDGATE, "status", "--admin", "%s:%d" % s.getsockname()],
                           capture_output=True, text=True, timeout=20)
        took = time.monotonic() - t0
    assert r.returncode == 1 and "no answer within 5 s" in r.stderr, r.stderr
    assert 4.5 < took < 10, took
    for args in ([], ["-c", str(path), "--admin", "127.0.0.1:1"], ["--admin", "nope"]):
        r = subprocess.run([FEDGATE, "status", *args], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 2 and r.stderr, (args, r.stderr)
