"""An originate+terminate pair carries bytes exactly, for every cipher."""

import hashlib
import os
import socket
import threading

import pytest

from conftest import BIG, CIPHERS, IN_VM, connect, recv_all

SIZES = [0, 1, 16383, 16384, 16385, 100000]


def echo_roundtrip(port, payload):
    """Sends @payload and half-closes while reading; returns what came back."""
    s = connect(port)
    got = []

    def reader():
        got.append(recv_all(s))

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    t.join(120)
    s.close()
    assert not t.is_alive(), "echo did not finish"
    return got[0]


@pytest.mark.parametrize("cipher", CIPHERS)
def test_payload_sizes_arrive_byte_exact_through_echo(tunnel_pair, cipher):
    a, b, up = tunnel_pair(cipher)
    for size in SIZES:
        payload = os.urandom(size)
        assert echo_roundtrip(a.port("to-gcp"), payload) == payload, f"size {size}"
    b.wait_log(r"accepted foo\.internal \(issued by 'Cloud Intermediate CA', root 'Cloud Root "
               r"CA'\) on tunnel from-aws",
               count=len(SIZES))
    a.wait_log(r"accepted bar\.internal \(issued by 'Kubernetes Intermediate CA', root "
               r"'Kubernetes Root CA'\) on tunnel to-gcp")


@pytest.mark.parametrize("cipher", CIPHERS)
def test_big_random_payload_both_directions(tunnel_pair, cipher):
    """64 MiB on the host, 4 MiB in the VM."""
    a, b, up = tunnel_pair(cipher)
    payload = os.urandom(BIG)
    got = echo_roundtrip(a.port("to-gcp"), payload)
    assert len(got) == len(payload)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    b.wait_log(rf"tunnel from-aws: foo\.internal closed: {BIG} bytes to peer, "
               rf"{BIG} bytes from peer")


def test_server_speaks_first_big_payload(tunnel_pair):
    blob = os.urandom(BIG)

    def source(conn):
        conn.sendall(blob)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)

    a, b, up = tunnel_pair(handler=source)
    s = connect(a.port("to-gcp"))
    got = recv_all(s)
    s.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()


def test_half_close_lets_the_reply_flow_after_client_eof(tunnel_pair):
    """The client half-closes; the service reads to EOF, then answers; the answer arrives."""

    def digest_after_eof(conn):
        h = hashlib.sha256()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            h.update(data)
        conn.sendall(b"sha256=" + h.hexdigest().encode())
        conn.shutdown(socket.SHUT_WR)

    a, b, up = tunnel_pair(handler=digest_after_eof)
    payload = os.urandom(300000)
    s = connect(a.port("to-gcp"))
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    reply = recv_all(s)
    s.close()
    assert reply == b"sha256=" + hashlib.sha256(payload).hexdigest().encode()


def test_200_concurrent_tunnels(tunnel_pair):
    a, b, up = tunnel_pair(workers=2)
    n = 200
    socks = [connect(a.port("to-gcp"), timeout=60) for _ in range(n)]
    base = 4096 if IN_VM else 65536
    payloads = [os.urandom(base + i) for i in range(n)]
    results = [None] * n

    def run(i):
        s = socks[i]
        got = []
        t = threading.Thread(target=lambda: got.append(recv_all(s)))
        t.start()
        s.sendall(payloads[i])
        s.shutdown(socket.SHUT_WR)
        t.join(120)
        results[i] = got[0] if got else None
        s.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    bad = [i for i in range(n) if results[i] != payloads[i]]
    assert not bad, f"{len(bad)} tunnels lost or mangled data, first {bad[:5]}"
    assert up.accepted == n
    b.wait_log(r"accepted foo\.internal", count=n)
