"""A TLS peer that reads slowly still gets every byte, then close_notify, then the FIN.

The service sends a few MiB and closes while the TLS peer of the terminate gateway is not
reading: the gateway's TLS socket is full when the service's FIN arrives, so the last records
and the close_notify must wait behind it. With kTLS (tests/vm), a record the kernel could
not yet hand to TCP waits in kTLS's own queue, which a FIN sent by shutdown(SHUT_WR) would
overtake: the peer would see the stream cut short (EOF without close_notify). Each peer here
counts the bytes, checks their digest, and checks that the stream ended with close_notify.
"""

import hashlib
import os
import socket
import ssl
import threading
import time

from conftest import Gateway, client_ctx, gateway_config, stop_process

# What the buffers on the way hold (the service's, both of the gateway's) with room to spare.
TOTAL = 2 << 20
CHUNK = 64 << 10
PEERS = 3


def test_a_slow_tls_reader_gets_every_byte_then_close_notify(pki, tmp_path, upstream):
    block = os.urandom(CHUNK)
    want = hashlib.sha256(block * (TOTAL // CHUNK)).hexdigest()
    served = threading.Semaphore(0)

    def handler(conn):
        conn.recv(1)
        for _ in range(TOTAL // CHUNK):
            conn.sendall(block)
        conn.shutdown(socket.SHUT_WR)
        served.release()

    up = upstream(handler)
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
        "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    gw = Gateway(tmp_path, "terminate", cfg).start()
    ctx = client_ctx(pki)
    try:
        peers = []
        for _ in range(PEERS):
            raw = socket.create_connection(("127.0.0.1", gw.port("t")), timeout=60)
            # A small window: the gateway's socket fills long before the service is done.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
            s = ctx.wrap_socket(raw, server_hostname="bar.internal", suppress_ragged_eofs=False)
            s.sendall(b"g")
            peers.append(s)
        # The service is done (its FIN sent) once the buffers on the way took it all; the
        # gateway then reads that FIN with its TLS socket full (the peers read nothing yet).
        for _ in range(PEERS):
            assert served.acquire(timeout=30), f"the service never finished:\n{gw.log()}"
        time.sleep(0.5)
        for i, s in enumerate(peers):
            h, n, how = hashlib.sha256(), 0, None
            try:
                while True:
                    data = s.recv(CHUNK)
                    if not data:
                        how = "close_notify"
                        break
                    h.update(data)
                    n += len(data)
            except (OSError, ssl.SSLError) as e:
                how = f"{type(e).__name__}: {e}"
            s.close()
            assert (how, n) == ("close_notify", TOTAL), (i, how, n, gw.log()[-3000:])
            assert h.hexdigest() == want, f"peer {i}: the bytes differ"
    finally:
        stop_process(gw.proc)
        gw.logf.close()
