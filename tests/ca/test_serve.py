"""The CA's HTTP server: malformed, oversized and slow requests."""

import json
import os
import socket
import ssl
import time

from ca.helpers import assert_error, make_csr


def test_bad_json_is_refused_400(cloud):
    for body in ("{not json", "[1,2]", '"csr"', "", json.dumps({"ott": "a.b.c"}),
                 json.dumps({"csr": 5, "ott": "a.b.c"})):
        assert_error(cloud.request("POST", "/1.0/sign", body), 400)
    _, csr = make_csr("j.internal", ["j.internal"])
    assert_error(cloud.sign(csr, None), 400, "ott")


def test_oversized_body_is_refused_413_without_reading_it(cloud):
    big = json.dumps({"csr": "A" * 200000, "ott": "x"})
    assert_error(cloud.request("POST", "/1.0/sign", big), 413, "too large")
    code, _ = cloud.curl("-H", "Content-Type: application/json", "--data-binary", big[:70000],
                         f"{cloud.url}/sign")
    assert code == 413
    assert cloud.request("GET", "/health") == (200, {"status": "ok"})


def test_malformed_http_gets_400_and_the_ca_keeps_serving(cloud):
    def raw(data):
        with socket.create_connection(("127.0.0.1", cloud.port), 5) as s:
            with cloud.ssl_context().wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(data)
                out = b""
                while True:
                    try:
                        chunk = t.recv(65536)
                    except (ssl.SSLError, ConnectionResetError):
                        break
                    if not chunk:
                        break
                    out += chunk
                return out

    assert raw(b"BLAH\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET /health HTTP/1.1\r\nContent-Length: x\r\n\r\n").startswith(
        b"HTTP/1.1 400 ")
    assert raw(b"POST /sign HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").startswith(
        b"HTTP/1.1 411 ")
    assert raw(b"GET /health HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 ")
    # plain HTTP and garbage on the TLS port
    for junk in (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(3000)):
        with socket.create_connection(("127.0.0.1", cloud.port), 5) as s:
            s.sendall(junk)
            try:
                s.recv(100)
            except ConnectionResetError:
                pass
    assert cloud.request("GET", "/health") == (200, {"status": "ok"})
    assert cloud.proc.poll() is None


def test_slow_clients_do_not_block_others_and_time_out(cloud):
    idle = socket.create_connection(("127.0.0.1", cloud.port), 5)  # never says a word
    half_hello = socket.create_connection(("127.0.0.1", cloud.port), 5)
    half_hello.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    s = socket.create_connection(("127.0.0.1", cloud.port), 5)
    half_request = cloud.ssl_context().wrap_socket(s, server_hostname="localhost")
    half_request.sendall(b"POST /1.0/sign HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"csr\"")
    try:
        t0 = time.monotonic()
        for _ in range(5):
            assert cloud.request("GET", "/health") == (200, {"status": "ok"})
        assert time.monotonic() - t0 < 1.5
        # requestTimeout is 2s: each slow one is cut off, the half request with a 408.
        half_request.settimeout(6)
        assert half_request.recv(4096).startswith(b"HTTP/1.1 408 ")
        for sock in (idle, half_hello):
            sock.settimeout(6)
            try:
                assert sock.recv(4096) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in (idle, half_hello, half_request):
            sock.close()


# --- hardening: HTTP ------------------------------------------------------------------------------


def raw_https(ca, data, wait=5):
    """Sends @data over TLS to @ca and returns everything it answers."""
    with socket.create_connection(("127.0.0.1", ca.port), 5) as s:
        with ca.ssl_context().wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(data)
            t.settimeout(wait)
            out = b""
            while True:
                try:
                    chunk = t.recv(65536)
                except (ssl.SSLError, ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                out += chunk
            return out


def test_content_length_with_trailing_whitespace_is_accepted(cloud):
    out = raw_https(cloud, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0 \t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b'{"status":"ok"}'), out


def test_whitespace_between_header_name_and_colon_is_refused_400(cloud):
    for head in (b"Content-Length : 0", b"Transfer-Encoding\t: chunked"):
        out = raw_https(cloud, b"GET /health HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400 ") and b"colon" in out, out


def test_idle_connections_from_one_client_do_not_lock_others_out(cloud):
    # More than the whole connection table, from one address, never saying a word.
    t0 = time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", cloud.port), 5) for _ in range(300)]
    try:
        time.sleep(0.2)
        code, body = cloud.curl(f"{cloud.url}/health")
        assert (code, body) == (200, {"status": "ok"})
        assert cloud.request("GET", "/health") == (200, {"status": "ok"})
        # Handshakes get less time than requests (requestTimeout is 2 s here).
        last = idle[-1]
        last.settimeout(5)
        try:
            assert last.recv(100) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 1.9
    finally:
        for s in idle:
            s.close()
