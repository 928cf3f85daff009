#!/usr/bin/python3
"""A small HTTP/1.1 backend to put behind a fedgate terminate tunnel.

Usage:
    /usr/bin/python3 tests/hello_backend.py --listen 127.0.0.1:0 \\
        --port-file FILE [--proxy-protocol]

--listen HOST:PORT   where to listen; "[::1]:0" for IPv6; port 0 = any free
--port-file FILE     the bound port is written here (decimal and a newline),
                     atomically (temp file, then rename), once listening
--proxy-protocol     every connection must begin with a PROXY protocol v2
                     header; a connection without a valid one is logged to
                     stderr and closed without a response

It serves until SIGTERM or SIGINT, then stops and exits 0. One thread per
connection; one log line per request on stderr.

HTTP (keep-alive supported; request bodies need Content-Length, requests
with Transfer-Encoding get 501 and the connection is closed):
    GET /        200 text/plain
                   with --proxy-protocol and a client CN in the header:
                     "Hello <client CN> (cert issued by '<root CN>')\\n"
                     (root CN "unknown" when the 0xE2 TLV is absent)
                   with --proxy-protocol but no CN (LOCAL, no SSL TLV):
                     "Hello anonymous (no client certificate)\\n"
                   without --proxy-protocol:
                     "Hello anonymous (no PROXY header)\\n"
    GET /whoami  200 application/json: the info dict parse_proxy_v2()
                   returned for this connection, or null without
                   --proxy-protocol
    POST /echo   200 application/octet-stream: the request body, unchanged
    anything else: 404 (bodies are read and discarded); HEAD is as GET
    without the body.

PROXY protocol v2 (haproxy's proxy-protocol.txt), as fedgate sends it:
    12 bytes  signature  \\r\\n\\r\\n\\x00\\r\\nQUIT\\n
    1 byte    version (high nibble, must be 2) | command (low nibble:
              0x0 LOCAL, 0x1 PROXY), i.e. 0x21 for PROXY
    1 byte    family: 0x11 TCP over IPv4, 0x21 TCP over IPv6 (PROXY
              requires one of these; LOCAL may carry any, it is ignored)
    2 bytes   length of what follows, big-endian
    addresses IPv4: src(4) dst(4) sport(2) dport(2); IPv6: 16+16+2+2
    TLVs      type(1) length(2, big-endian) value, up to the end

TLVs understood (anything else is kept in "unknown_tlvs"):
    0x01 PP2_TYPE_ALPN        negotiated ALPN protocol           -> "alpn"
    0x02 PP2_TYPE_AUTHORITY   SNI the client asked for, UTF-8    -> "authority"
    0x04 PP2_TYPE_CRC32C      CRC32c of the whole header, with this value
                              zeroed; checked when present       -> "crc32c"
    0x20 PP2_TYPE_SSL         1 byte client flags (0x01 PP2_CLIENT_SSL,
                              0x02 PP2_CLIENT_CERT_CONN, 0x04
                              PP2_CLIENT_CERT_SESS), 4 bytes verify
                              (big-endian; 0 = client cert verified),
                              then sub-TLVs:                     -> "ssl"
        0x21 PP2_SUBTYPE_SSL_VERSION  e.g. "TLSv1.3"             -> "version"
        0x22 PP2_SUBTYPE_SSL_CN       client cert subject CN     -> "cn"
        0x23 PP2_SUBTYPE_SSL_CIPHER   e.g. "TLS_AES_128_GCM_SHA256" -> "cipher"
        0x24 PP2_SUBTYPE_SSL_SIG_ALG                             -> "sig_alg"
        0x25 PP2_SUBTYPE_SSL_KEY_ALG                             -> "key_alg"
    0xE0 fedgate: a DNS SAN of the client cert, one TLV per SAN -> "dns_sans"
    0xE1 fedgate: a URI SAN of the client cert, one TLV per SAN -> "uri_sans"
    0xE2 fedgate: CN of the root CA the client cert chains to   -> "root_cn"
    0xE3 fedgate: the tunnel's name                             -> "tunnel"
Text values must be valid UTF-8. The single-valued TLVs (0x01, 0x02, 0x04,
0x20, 0xE2, 0xE3) may appear at most once.
"""

import argparse
import http.server
import ipaddress
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading

# --------------------------------------------------------------------------
# PROXY protocol v2

PP2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PP2_HEADER_LEN = 16  # signature + ver/cmd + family + length

PP2_CMD_LOCAL = 0x0
PP2_CMD_PROXY = 0x1
PP2_FAM_TCP4 = 0x11
PP2_FAM_TCP6 = 0x21

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x04
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_SUBTYPE_SSL_SIG_ALG = 0x24
PP2_SUBTYPE_SSL_KEY_ALG = 0x25
PP2_TYPE_FG_DNS_SAN = 0xE0
PP2_TYPE_FG_URI_SAN = 0xE1
PP2_TYPE_FG_ROOT_CN = 0xE2
PP2_TYPE_FG_TUNNEL = 0xE3

PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02
PP2_CLIENT_CERT_SESS = 0x04

# TLV type -> info key, for the text TLVs that may appear once.
_SINGLE_TEXT = {
    PP2_TYPE_ALPN: "alpn",
    PP2_TYPE_AUTHORITY: "authority",
    PP2_TYPE_FG_ROOT_CN: "root_cn",
    PP2_TYPE_FG_TUNNEL: "tunnel",
}
# TLV type -> info key, for the text TLVs that may repeat.
_LIST_TEXT = {
    PP2_TYPE_FG_DNS_SAN: "dns_sans",
    PP2_TYPE_FG_URI_SAN: "uri_sans",
}
# The TLVs that may appear at most once.
_SINGLE_TLVS = frozenset(_SINGLE_TEXT) | {PP2_TYPE_SSL, PP2_TYPE_CRC32C}
_SSL_SUB_TEXT = {
    PP2_SUBTYPE_SSL_VERSION: "version",
    PP2_SUBTYPE_SSL_CN: "cn",
    PP2_SUBTYPE_SSL_CIPHER: "cipher",
    PP2_SUBTYPE_SSL_SIG_ALG: "sig_alg",
    PP2_SUBTYPE_SSL_KEY_ALG: "key_alg",
}


def _crc32c_table():
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC32c (Castagnoli) of data, as PP2_TYPE_CRC32C uses it."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _iter_tlvs(buf, what):
    """Yield (type, value, offset of value) from a TLV run; ValueError when
    a TLV header or value runs past the end of buf."""
    off = 0
    while off < len(buf):
        if len(buf) - off < 3:
            raise ValueError("%s overrun: %d trailing byte(s) at offset "
                             "%d cannot hold a TLV header"
                             % (what, len(buf) - off, off))
        typ, n = struct.unpack_from("!BH", buf, off)
        if off + 3 + n > len(buf):
            raise ValueError("%s overrun: TLV 0x%02X at offset %d claims "
                             "%d bytes, only %d left"
                             % (what, typ, off, n, len(buf) - off - 3))
        yield typ, bytes(buf[off + 3:off + 3 + n]), off + 3
        off += 3 + n


def _text(value, typ):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("TLV 0x%02X is not valid UTF-8: %s" % (typ, e)) from None


def _parse_ssl(value):
    if len(value) < 5:
        raise ValueError("PP2_TYPE_SSL TLV too short: %d bytes, need at "
                         "least 5 (client flags + verify)" % len(value))
    client, verify = struct.unpack_from("!BI", value, 0)
    ssl = {
        "client_flags": client,
        "client_ssl": bool(client & PP2_CLIENT_SSL),
        "client_cert_conn": bool(client & PP2_CLIENT_CERT_CONN),
        "client_cert_sess": bool(client & PP2_CLIENT_CERT_SESS),
        "verify": verify,
        "verified": verify == 0,
        "version": None, "cn": None, "cipher": None,
        "sig_alg": None, "key_alg": None,
        "unknown": [],
    }
    for typ, sub, _ in _iter_tlvs(value[5:], "PP2_TYPE_SSL sub-TLV"):
        key = _SSL_SUB_TEXT.get(typ)
        if key is None:
            ssl["unknown"].append({"type": typ, "value_hex": sub.hex()})
        elif ssl[key] is not None:
            raise ValueError("duplicate PP2_TYPE_SSL sub-TLV 0x%02X" % typ)
        else:
            ssl[key] = _text(sub, typ)
    return ssl


def parse_proxy_v2(data):
    """Parse a PROXY protocol v2 header at the start of data.

    Returns (header_len, info): header_len is how many bytes of data the
    header takes (the payload follows); info is a JSON-serialisable dict:

      version      2
      command      "PROXY" or "LOCAL"
      family       "TCP4", "TCP6" or, for LOCAL, "0x.." as sent
      src_addr, src_port, dst_addr, dst_port
                   the client and the address it connected to (None for
                   LOCAL, whose address block and TLVs are skipped)
      authority, alpn, root_cn, tunnel
                   str or None
      dns_sans, uri_sans
                   lists of str, in header order
      ssl          None, or {"client_flags", "client_ssl",
                   "client_cert_conn", "client_cert_sess", "verify",
                   "verified", "version", "cn", "cipher", "sig_alg",
                   "key_alg", "unknown"}
      crc32c       None, or the checksum (which has been verified)
      unknown_tlvs [{"type": int, "value_hex": str}]

    Raises ValueError saying why on a bad signature, a bad version or
    command, an unsupported family, data shorter than the header claims
    (length overrun), an address block that does not fit, a TLV overrun,
    a bad SSL TLV, invalid UTF-8, a repeated single-valued TLV or a CRC32c
    mismatch.
    """
    data = bytes(data)
    if len(data) < PP2_HEADER_LEN:
        if not PP2_SIGNATURE.startswith(data[:len(PP2_SIGNATURE)]):
            raise ValueError("bad PROXY v2 signature")
        raise ValueError("truncated PROXY v2 header: %d bytes, need %d"
                         % (len(data), PP2_HEADER_LEN))
    if data[:12] != PP2_SIGNATURE:
        raise ValueError("bad PROXY v2 signature")
    ver_cmd, fam, length = struct.unpack_from("!BBH", data, 12)
    if ver_cmd >> 4 != 2:
        raise ValueError("bad PROXY version %d (ver/cmd byte 0x%02X), want 2"
                         % (ver_cmd >> 4, ver_cmd))
    cmd = ver_cmd & 0x0F
    if cmd not in (PP2_CMD_LOCAL, PP2_CMD_PROXY):
        raise ValueError("bad PROXY v2 command 0x%X" % cmd)
    header_len = PP2_HEADER_LEN + length
    if len(data) < header_len:
        raise ValueError("PROXY v2 length overrun: header claims %d bytes "
                         "after the fixed part, only %d present"
                         % (length, len(data) - PP2_HEADER_LEN))

    info = {
        "version": 2, "command": "PROXY" if cmd == PP2_CMD_PROXY else "LOCAL",
        "family": None, "src_addr": None, "src_port": None,
        "dst_addr": None, "dst_port": None,
        "authority": None, "alpn": None, "root_cn": None, "tunnel": None,
        "dns_sans": [], "uri_sans": [], "ssl": None, "crc32c": None,
        "unknown_tlvs": [],
    }
    if cmd == PP2_CMD_LOCAL:
        # The receiver must ignore the address block (and so the TLVs).
        info["family"] = "0x%02X" % fam
        return header_len, info

    body = data[PP2_HEADER_LEN:header_len]
    if fam == PP2_FAM_TCP4:
        alen, size, name = 12, 4, "TCP4"
    elif fam == PP2_FAM_TCP6:
        alen, size, name = 36, 16, "TCP6"
    else:
        raise ValueError("unsupported PROXY v2 family 0x%02X (want 0x11 "
                         "TCP4 or 0x21 TCP6)" % fam)
    if length < alen:
        raise ValueError("PROXY v2 address block overrun: %s needs %d "
                         "bytes, length is %d" % (name, alen, length))
    info["family"] = name
    info["src_addr"] = str(ipaddress.ip_address(body[:size]))
    info["dst_addr"] = str(ipaddress.ip_address(body[size:2 * size]))
    info["src_port"], info["dst_port"] = struct.unpack_from(
        "!HH", body, 2 * size)

    seen = set()
    for typ, value, voff in _iter_tlvs(body[alen:], "PROXY v2 TLV"):
        if typ in _SINGLE_TLVS:
            if typ in seen:
                raise ValueError("duplicate PROXY v2 TLV 0x%02X" % typ)
            seen.add(typ)
        if typ in _SINGLE_TEXT:
            info[_SINGLE_TEXT[typ]] = _text(value, typ)
        elif typ in _LIST_TEXT:
            info[_LIST_TEXT[typ]].append(_text(value, typ))
        elif typ == PP2_TYPE_SSL:
            info["ssl"] = _parse_ssl(value)
        elif typ == PP2_TYPE_CRC32C:
            if len(value) != 4:
                raise ValueError("PP2_TYPE_CRC32C TLV is %d bytes, want 4"
                                 % len(value))
            want = struct.unpack("!I", value)[0]
            start = PP2_HEADER_LEN + alen + voff
            zeroed = data[:start] + b"\0\0\0\0" + data[start + 4:header_len]
            got = crc32c(zeroed)
            if got != want:
                raise ValueError("PROXY v2 CRC32C mismatch: header says "
                                 "0x%08X, computed 0x%08X" % (want, got))
            info["crc32c"] = want
        else:
            info["unknown_tlvs"].append({"type": typ,
                                         "value_hex": value.hex()})
    return header_len, info


def _tlv(typ, value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    value = bytes(value)
    if not 0 <= typ <= 0xFF:
        raise ValueError("TLV type 0x%X out of range" % typ)
    if len(value) > 0xFFFF:
        raise ValueError("TLV 0x%02X value too long (%d bytes)"
                         % (typ, len(value)))
    return struct.pack("!BH", typ, len(value)) + value


def build_ssl_tlv_value(cn=None, version="TLSv1.3",
                        cipher="TLS_AES_128_GCM_SHA256", verify=0,
                        client_flags=PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN
                        | PP2_CLIENT_CERT_SESS, extra=()):
    """The value of a PP2_TYPE_SSL TLV: flags, verify, then the sub-TLVs
    that are not None (VERSION, CN, CIPHER, then extra (type, value))."""
    out = struct.pack("!BI", client_flags, verify)
    for typ, val in ((PP2_SUBTYPE_SSL_VERSION, version),
                     (PP2_SUBTYPE_SSL_CN, cn),
                     (PP2_SUBTYPE_SSL_CIPHER, cipher), *extra):
        if val is not None:
            out += _tlv(typ, val)
    return out


def build_proxy_v2(src, dst, tlvs=(), command="PROXY", crc=False):
    """Build a PROXY protocol v2 header (for tests).

    src, dst   (address string, port); both IPv4 (family 0x11) or both
               IPv6 (family 0x21)
    tlvs       iterable of (type, value) in wire order; value is bytes or
               str (UTF-8 encoded). Use build_ssl_tlv_value() for 0x20.
    command    "PROXY" (0x21) or "LOCAL" (0x20; src/dst/tlvs still sent)
    crc        append a PP2_TYPE_CRC32C TLV over the finished header
    """
    s_ip, d_ip = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if s_ip.version != d_ip.version:
        raise ValueError("src and dst must be the same IP version")
    fam = PP2_FAM_TCP4 if s_ip.version == 4 else PP2_FAM_TCP6
    cmd = {"PROXY": PP2_CMD_PROXY, "LOCAL": PP2_CMD_LOCAL}[command]
    body = s_ip.packed + d_ip.packed + struct.pack("!HH", src[1], dst[1])
    body += b"".join(_tlv(t, v) for t, v in tlvs)
    if crc:
        body += _tlv(PP2_TYPE_CRC32C, b"\0\0\0\0")
    if len(body) > 0xFFFF:
        raise ValueError("PROXY v2 header too long")
    hdr = PP2_SIGNATURE + struct.pack("!BBH", 0x20 | cmd, fam, len(body))
    hdr += body
    if crc:
        hdr = hdr[:-4] + struct.pack("!I", crc32c(hdr))
    return hdr


def read_proxy_v2(rfile):
    """Read exactly one PROXY v2 header from a binary file object and
    parse it. Stops at the first byte that breaks the signature, so a
    plain client is rejected without waiting for 16 bytes. ValueError on
    a bad or short header (EOF included)."""
    got = b""
    while len(got) < len(PP2_SIGNATURE):
        b = rfile.read(1)
        if not b:
            raise ValueError("connection closed inside the PROXY v2 header "
                             "(%d bytes read)" % len(got))
        got += b
        if not PP2_SIGNATURE.startswith(got):
            raise ValueError("bad PROXY v2 signature (first bytes %r)" % got)
    got += _read_exact(rfile, PP2_HEADER_LEN - len(got))
    length = struct.unpack_from("!H", got, 14)[0]
    got += _read_exact(rfile, length)
    return parse_proxy_v2(got)


def _read_exact(rfile, n):
    data = rfile.read(n) if n else b""
    if len(data) != n:
        raise ValueError("connection closed inside the PROXY v2 header")
    return data


# --------------------------------------------------------------------------
# HTTP

COPY_CHUNK = 64 * 1024


def log(msg):
    sys.stderr.write("hello_backend: %s\n" % msg)
    sys.stderr.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close
    server_version = "hello_backend/1"
    timeout = 60  # idle seconds per read before the connection is dropped

    proxy_info = None  # parse_proxy_v2()'s info for this connection

    def version_string(self):
        return self.server_version  # no Python version in "Server:"

    def handle(self):
        if self.server.proxy_protocol:
            try:
                _, self.proxy_info = read_proxy_v2(self.rfile)
            except (ValueError, OSError) as e:
                log("%s: rejecting connection: %s" % (self._peer(), e))
                self.close_connection = True
                return
        super().handle()

    # -- routes --

    def do_GET(self):
        self._route(head=False)

    def do_HEAD(self):
        self._route(head=True)

    def do_POST(self):
        if self.command == "POST" and self.path == "/echo":
            self._echo()
        else:
            self._route(head=False)

    # Other methods get 404 after their body is read.
    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _route(self, head):
        if not self._discard_body():
            return
        if self.command in ("GET", "HEAD") and self.path == "/":
            self._reply(200, "text/plain; charset=utf-8",
                        self._hello().encode("utf-8"), head)
        elif self.command in ("GET", "HEAD") and self.path == "/whoami":
            body = json.dumps(self.proxy_info, indent=2, sort_keys=True)
            self._reply(200, "application/json", (body + "\n").encode(), head)
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found\n",
                        head)

    def _hello(self):
        if not self.server.proxy_protocol:
            return "Hello anonymous (no PROXY header)\n"
        info = self.proxy_info or {}
        cn = (info.get("ssl") or {}).get("cn")
        if not cn:
            return "Hello anonymous (no client certificate)\n"
        return "Hello %s (cert issued by '%s')\n" % (
            cn, info.get("root_cn") or "unknown")

    def _echo(self):
        n = self._content_length()
        if n is None:
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        while n > 0:  # stream: bodies of any size, constant memory
            chunk = self.rfile.read(min(n, COPY_CHUNK))
            if not chunk:
                self.close_connection = True
                return
            self.wfile.write(chunk)
            n -= len(chunk)

    # -- helpers --

    def _content_length(self):
        """The request body's length, or None after answering an error
        (the connection is then closed: its framing is unknown)."""
        if self.headers.get("Transfer-Encoding"):
            self._fail(501, "Transfer-Encoding is not supported; "
                       "send Content-Length")
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return 0
        if len(set(v.strip() for v in values)) != 1 \
                or not values[0].strip().isdigit():
            self._fail(400, "bad Content-Length")
            return None
        return int(values[0])

    def _discard_body(self):
        n = self._content_length()
        if n is None:
            return False
        while n > 0:
            chunk = self.rfile.read(min(n, COPY_CHUNK))
            if not chunk:
                self.close_connection = True
                return False
            n -= len(chunk)
        return True

    def _fail(self, code, why):
        self.close_connection = True
        self._reply(code, "text/plain; charset=utf-8", (why + "\n").encode(),
                    head=False, close=True)

    def _reply(self, code, ctype, body, head, close=False):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _peer(self):
        host, port = self.client_address[:2]
        return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host,
                                                                      port)

    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)  # HTTPStatus -> int
        who = self._peer()
        info = self.proxy_info
        if info and info.get("src_addr"):
            who += " proxy-src=%s:%s" % (info["src_addr"], info["src_port"])
        if info and (info.get("ssl") or {}).get("cn"):
            who += " cn=%s" % info["ssl"]["cn"]
        log('%s "%s" %s' % (who, self.requestline, code))

    def log_message(self, format, *args):
        log("%s %s" % (self._peer(), format % args))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True  # a stuck client never blocks shutdown
    allow_reuse_address = True

    def __init__(self, addr, proxy_protocol):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.proxy_protocol = proxy_protocol
        super().__init__(addr, Handler)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def parse_listen(text):
    """"HOST:PORT" or "[V6]:PORT" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("want HOST:PORT, got %r" % text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def write_port_file(path, port):
    """Write port atomically: a temp file in the same directory, renamed."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="HTTP backend for fedgate tests")
    ap.add_argument("--listen", type=parse_listen, required=True,
                    metavar="HOST:PORT")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--proxy-protocol", action="store_true",
                    help="require a PROXY v2 header on every connection")
    args = ap.parse_args(argv)

    stop = threading.Event()
    # Install the handlers before the port file exists, so a test that
    # signals as soon as it sees the file gets a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    server = Server(args.listen, args.proxy_protocol)
    port = server.server_address[1]
    write_port_file(args.port_file, port)
    log("listening on %s port %d%s" % (args.listen[0], port,
                                       " (PROXY v2 required)"
                                       if args.proxy_protocol else ""))

    # serve_forever() runs in a thread: shutdown() must not be called from
    # the serving thread, and the main thread has to be free for signals.
    t = threading.Thread(target=server.serve_forever, args=(0.1,),
                         name="accept", daemon=True)
    t.start()
    while not stop.wait(0.5):
        if not t.is_alive():  # the accept loop died: exit non-zero
            server.server_close()
            return 1
    server.shutdown()
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
