"""Proof that kernel TLS does the work: only meaningful inside the VM (tests/test_vm.py)."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import CIPHERS, IN_VM, connect, gateway_config, recv_all, wait_for
from tls13_peer import CT_ALERT, CT_DATA, RawTLSClient

if not IN_VM:
    pytest.skip("needs kernel TLS: runs inside Debian's kernel via tests/test_vm.py",
                allow_module_level=True)


def tls_stat():
    stats = {}
    with open("/proc/net/tls_stat") as f:
        for line in f:
            k, v = line.split()
            stats[k] = int(v)
    return stats


@pytest.mark.parametrize("cipher", CIPHERS)
def test_kernel_encrypts_and_decrypts_while_tunnels_are_open(tunnel_pair, cipher):
    before = tls_stat()
    a, b, up = tunnel_pair(cipher, offload="kernel")
    n = 4
    socks = [connect(a.port("to-gcp")) for _ in range(n)]
    for s in socks:
        data = os.urandom(65536)
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(65536)
            assert chunk, "tunnel closed early"
            got += chunk
        assert got == data
    during = tls_stat()
    # Each tunnel has a kTLS socket in each gateway: 2 TX and 2 RX contexts.
    assert during["TlsCurrTxSw"] - before["TlsCurrTxSw"] >= 2 * n, during
    assert during["TlsCurrRxSw"] - before["TlsCurrRxSw"] >= 2 * n, during
    assert during["TlsTxSw"] - before["TlsTxSw"] >= 2 * n
    assert during["TlsRxSw"] - before["TlsRxSw"] >= 2 * n
    assert during["TlsDecryptError"] == before["TlsDecryptError"]
    assert "using the userspace record layer" not in a.log() + b.log()
    for s in socks:
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
        s.close()
    wait_for(lambda: tls_stat()["TlsCurrTxSw"] == before["TlsCurrTxSw"], 20,
             "kTLS contexts to be released")
    assert tls_stat()["TlsCurrRxSw"] == before["TlsCurrRxSw"]
    b.wait_log(r"tunnel from-aws: foo\.internal closed: 65536 bytes to peer, 65536 bytes from "
               r"peer", count=n)


def test_offload_auto_picks_the_kernel_and_says_why(pki, gateways, upstream):
    up = upstream()
    gw = gateways("auto", gateway_config(pki, "bar", [
        {"name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"root": "Kubernetes Root CA"}]}], offload="auto"))
    gw.wait_log(r"offload auto: kernel TLS \(kernel TLS probe: TCP_ULP \"tls\" works")
    gw.wait_log(r"worker\(s\) running, kernel TLS")


def test_corrupted_record_is_ebadmsg_and_closes_only_its_tunnel(pki, gateways, upstream):
    up = upstream()
    gw = gateways("wire", gateway_config(pki, "bar", [
        {"name": "wire", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
         "allow": [{"root": "Kubernetes Root CA"}]}], offload="kernel"))
    before = tls_stat()
    other = RawTLSClient(gw.port("wire"), pki)
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_data(b"fine")
    assert c.recv_data(4) == b"fine"
    rec = bytearray(c.tx.seal(CT_DATA, b"y" * 200))
    rec[-3] ^= 0x40
    c.send_raw(bytes(rec))
    assert c.recv_record() == (CT_ALERT, b"\x02\x14")  # bad_record_mac (test_alerts.py)
    assert c.recv_record() is None
    gw.wait_log(r"tunnel wire: kube_client closed: from peer: record authentication failed "
                r"\(bad_record_mac\)")
    assert tls_stat()["TlsDecryptError"] >= before["TlsDecryptError"] + 1
    other.send_data(b"unaffected")
    assert other.recv_data(10) == b"unaffected"
    other.close()


def test_new_session_tickets_after_handoff_are_consumed(pki, gateways, monkeypatch):
    """s_server sends two tickets once the handshake is done: they reach the kTLS socket."""
    cert = pki["leaves"]["bar"]
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert["crt"],
                            "-cert_chain", cert["crt"], "-key", cert["key"],
                            "-CAfile", pki["federated"], "-Verify", "1", "-tls1_3", "-rev",
                            "-num_tickets", "3"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        port = None
        for _ in range(10):
            m = re.match(rb"ACCEPT 127\.0\.0\.1:(\d+)", srv.stdout.readline())
            if m:
                port = int(m.group(1))
                break
        assert port
        monkeypatch.setenv("FEDGATE_DEBUG", "1")
        a = gateways("originate", gateway_config(pki, "foo", [
            {"name": "nst", "mode": "originate", "listen": "127.0.0.1:0",
             "peer": f"127.0.0.1:{port}", "server_name": "bar.internal",
             "allow": [{"root": "Kubernetes Root CA"}]}], offload="kernel"))
        s = connect(a.port("nst"))
        s.sendall(b"abc\n")
        got = b""
        deadline = time.monotonic() + 20
        while len(got) < 4 and time.monotonic() < deadline:
            got += s.recv(100)
        assert got == b"cba\n"
        a.wait_log(r"tunnel nst: ignored a NewSessionTicket", count=3)
        s.close()
    finally:
        srv.kill()
        srv.wait()


def dataplane_threads(gw):
    pid = int(re.search(r"data plane pid (\d+)", gw.log()).group(1))
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("cipher", CIPHERS)
def test_splice_tx_moves_bytes_exactly_and_idle_tunnels_park_no_threads(tunnel_pair, cipher,
                                                                          monkeypatch):
    """kernel_tx splice on both gateways: exact bytes both ways, through kTLS, and idle
    tunnels wait on a poll, not on a blocked splice in an io-wq thread each."""
    import conftest
    monkeypatch.setattr(conftest, "KERNEL_TX", "splice")
    before = tls_stat()
    a, b, up = tunnel_pair(cipher, offload="kernel")
    for gw in (a, b):
        gw.wait_log(r"worker\(s\) running, kernel TLS only, TX by splice")
    data = os.urandom(3 << 20)
    s = connect(a.port("to-gcp"), timeout=120)
    got = []
    reader = threading.Thread(target=lambda: got.append(recv_all(s)))
    reader.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reader.join(180)
    assert got and got[0] == data, "echo through splice TX differs"
    s.close()
    assert "using the userspace record layer" not in a.log() + b.log()
    b.wait_log(rf"tunnel from-aws: foo\.internal closed: {len(data)} bytes to peer, "
               rf"{len(data)} bytes from peer")
    after = tls_stat()
    assert after["TlsTxSw"] - before["TlsTxSw"] >= 2
    assert after["TlsDecryptError"] == before["TlsDecryptError"]
    # 40 idle tunnels: each has a splice queued behind a poll; none may hold a thread.
    base = dataplane_threads(a)
    idle = [connect(a.port("to-gcp")) for _ in range(40)]
    for i, c in enumerate(idle):
        c.sendall(b"%d" % i)
        assert c.recv(16) == b"%d" % i
    time.sleep(1)
    assert dataplane_threads(a) < base + 10, "idle splice tunnels parked io-wq threads"
    for c in idle:
        c.close()
