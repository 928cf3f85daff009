"""A TLS 1.3 client whose post-handshake records the test writes byte by byte.

OpenSSL (Python's ssl over memory BIOs) does the handshake; the traffic
secrets come from its keylog; after that this module seals and opens records
itself (RFC 8446 section 5), so tests can put anything on the wire: alerts,
KeyUpdate, corrupted or oversized records, padding.
"""

import os
import socket
import ssl
import struct
import tempfile

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

SUITES = {
    "TLS_AES_128_GCM_SHA256": (AESGCM, 16, hashes.SHA256),
    "TLS_AES_256_GCM_SHA384": (AESGCM, 32, hashes.SHA384),
    "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, 32, hashes.SHA256),
}
CT_ALERT, CT_HANDSHAKE, CT_DATA = 21, 22, 23


def expand_label(secret, label, length, hash_cls):
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    return HKDFExpand(hash_cls(), length, info).derive(secret)


class Direction:
    def __init__(self, suite, secret):
        self.aead_cls, self.key_len, self.hash_cls = SUITES[suite]
        self.set_secret(secret)

    def set_secret(self, secret):
        self.secret = secret
        self.aead = self.aead_cls(expand_label(secret, b"key", self.key_len, self.hash_cls))
        self.iv = expand_label(secret, b"iv", 12, self.hash_cls)
        self.seq = 0

    def update(self):
        self.set_secret(expand_label(self.secret, b"traffic upd",
                                     self.hash_cls().digest_size, self.hash_cls))

    def nonce(self):
        return bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big")))

    def seal(self, ctype, payload, pad=0):
        inner = payload + bytes([ctype]) + b"\x00" * pad
        hdr = struct.pack(">BHH", CT_DATA, 0x0303, len(inner) + 16)
        rec = hdr + self.aead.encrypt(self.nonce(), inner, hdr)
        self.seq += 1
        return rec

    def open(self, rec):
        inner = self.aead.decrypt(self.nonce(), rec[5:], rec[:5])
        self.seq += 1
        inner = inner.rstrip(b"\x00")
        return inner[-1], inner[:-1]


class RawTLSClient:
    def __init__(self, port, pki, leaf="kube_client", server_name="bar.internal", cipher=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(pki["federated"])
        ctx.load_cert_chain(pki["leaves"][leaf]["crt"], pki["leaves"][leaf]["key"])
        fd, keylog = tempfile.mkstemp(prefix="fedgate-keylog-")
        os.close(fd)
        ctx.keylog_filename = keylog
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname=server_name)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(out.read())
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during handshake")
                inc.write(data)
        self.sock.sendall(out.read())
        self.buf = inc.read()  # anything past the handshake stays ours
        secrets = {}
        with open(keylog) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    secrets[parts[0]] = bytes.fromhex(parts[2])
        os.unlink(keylog)
        suite = obj.cipher()[0]
        self.suite = suite
        self.tx = Direction(suite, secrets["CLIENT_TRAFFIC_SECRET_0"])
        self.rx = Direction(suite, secrets["SERVER_TRAFFIC_SECRET_0"])
        self.rx_key_updates = 0

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_record(self, ctype, payload, pad=0):
        self.sock.sendall(self.tx.seal(ctype, payload, pad))

    def send_data(self, data):
        for i in range(0, max(len(data), 1), 16384):
            self.send_record(CT_DATA, data[i:i + 16384])

    def send_alert(self, level, desc):
        self.send_record(CT_ALERT, bytes([level, desc]))

    def send_key_update(self, request):
        self.send_record(CT_HANDSHAKE, bytes([24, 0, 0, 1, 1 if request else 0]))
        self.tx.update()

    def recv_record(self):
        """Returns (type, plaintext), or None at EOF. Follows the peer's KeyUpdates."""
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack(">H", self.buf[3:5])[0]
                if len(self.buf) >= 5 + n:
                    rec, self.buf = self.buf[:5 + n], self.buf[5 + n:]
                    ctype, pt = self.rx.open(rec)
                    if ctype == CT_HANDSHAKE and pt[:1] == b"\x18":
                        self.rx.update()
                        self.rx_key_updates += 1
                        continue
                    return ctype, pt
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data

    def recv_data(self, n):
        """Reads application data until @n bytes came or a non-data record / EOF."""
        got = b""
        while len(got) < n:
            r = self.recv_record()
            if r is None or r[0] != CT_DATA:
                break
            got += r[1]
        return got

    def close(self):
        self.sock.close()


def still_works(pki, gw, tunnel="wire"):
    """The gateway still carries a fresh tunnel after something was refused."""
    c = RawTLSClient(gw.port(tunnel), pki)
    c.send_data(b"still here")
    assert c.recv_data(10) == b"still here"
    c.close()
