"""$.tunnels[].resumption: TLS 1.3 PSK resumption between gateways, psk_dhe_ke only.

A pair of real gateways with resumption on: the first connection is a full handshake whose
originate side reads the NewSessionTicket before its handoff; the next ones resume (both
logs name the handshake: "handshake resumed" / "handshake full ...") and carry data
byte-exact. A trust bundle change, an allow edit with SIGHUP and a renewal of the
identity each rotate the ticket keys and the client's cache, so the next connection is a
full handshake; a ticket past its lifetime is refused; a peer no longer allowed is refused
whatever ticket it holds. A client that offers only psk_ke (no (EC)DHE) never resumes, and
one that offers both gets a ServerHello with a key share.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import threading
import time

import pytest

from conftest import client_ctx, closed_without_data, pair_configs, wait_for
from pki import issue_leaf

FULL = r"handshake full"
RESUMED = r"handshake resumed"


def with_resumption(cfg, lifetime=None):
    for t in cfg["tunnels"]:
        t["resumption"] = True
        if lifetime:
            t["resumption_lifetime_s"] = lifetime
    return cfg


def start_pair(pki, gateways, up, b_lifetime=None, a_lifetime=None, b_mod=None, a_mod=None):
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b_cfg = with_resumption(b_cfg, b_lifetime)
    if b_mod:
        b_mod(b_cfg)
    b = gateways("terminate", b_cfg)
    a_cfg = with_resumption(a_cfg(b.port("from-aws")), a_lifetime)
    if a_mod:
        a_mod(a_cfg)
    a = gateways("originate", a_cfg)
    return a, b, b_cfg, a_cfg


def accepted(gw):
    return re.findall(r"^.*accepted .*$", gw.log(), re.M)


def one_conn(a, b, data=None):
    """One application connection through the pair, byte-exact; returns the two sides'
    accepted lines for it."""
    na, nb = len(accepted(a)), len(accepted(b))
    data = data or os.urandom(200_000)
    s = socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=15)
    got = bytearray()
    sender = threading.Thread(target=s.sendall, args=(data,))
    sender.start()
    while len(got) < len(data):
        chunk = s.recv(65536)
        assert chunk, f"closed after {len(got)} bytes:\n{a.log()}\n{b.log()}"
        got += chunk
    sender.join()
    s.close()
    assert bytes(got) == data
    wait_for(lambda: len(accepted(a)) > na and len(accepted(b)) > nb, 10, "accepted lines")
    return accepted(a)[na], accepted(b)[nb]


def assert_kind(lines, a_rx, b_rx):
    la, lb = lines
    assert re.search(a_rx, la), la
    assert re.search(b_rx, lb), lb


def reload_with(gw, cfg):
    n = gw.log().count("config reloaded")
    gw.config_path.write_text(json.dumps(cfg))
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log("config reloaded", count=n + 1)


def test_a_pair_resumes_and_carries_data_byte_exact(pki, gateways, upstream):
    up = upstream()
    a, b, _, _ = start_pair(pki, gateways, up)
    # The first: full, and the originate side reads its ticket before handing off.
    assert_kind(one_conn(a, b), FULL + r", its ticket read first$", FULL + "$")
    for _ in range(3):
        assert_kind(one_conn(a, b), RESUMED + "$", RESUMED + "$")
    # A resumed tunnel is an ordinary one: the peer's identity is in its line.
    la, lb = one_conn(a, b)
    assert "accepted bar.internal" in la and "accepted foo.internal" in lb, (la, lb)
    assert not re.search(r"warn: refused", b.log()), b.log()


def test_resumption_is_off_by_default(pki, gateways, upstream):
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b = gateways("terminate", b_cfg)
    a = gateways("originate", a_cfg(b.port("from-aws")))
    for _ in range(2):
        la, lb = one_conn(a, b)
        assert "handshake" not in la and "handshake" not in lb, (la, lb)
    # and a client that asks for one gets no ticket from a tunnel without resumption
    raw = socket.create_connection(("127.0.0.1", b.port("from-aws")), timeout=10)
    c = client_ctx(pki, "foo").wrap_socket(raw, server_hostname="bar.internal")
    c.sendall(b"ping")
    assert c.recv(4) == b"ping"
    assert c.session is None or not c.session.has_ticket
    c.close()


def test_a_trust_bundle_change_refuses_the_old_tickets(pki, gateways, upstream, tmp_path):
    trust_b, trust_a = tmp_path / "trust_b.pem", tmp_path / "trust_a.pem"
    for t in (trust_b, trust_a):
        t.write_bytes(open(pki["federated"], "rb").read())

    def use(path):
        return lambda cfg: cfg["identity"].__setitem__("trust", str(path))

    up = upstream()
    a, b, _, _ = start_pair(pki, gateways, up, b_mod=use(trust_b), a_mod=use(trust_a))
    one_conn(a, b)
    assert_kind(one_conn(a, b), RESUMED, RESUMED)
    rogue = open(pki["roots"]["rogue"], "rb").read()
    # The terminate side's bundle: its ticket keys go with it.
    new = tmp_path / "trust_b.new"
    new.write_bytes(trust_b.read_bytes() + rogue)
    new.rename(trust_b)
    b.wait_log(r"trust bundle reloaded from .*trust_b\.pem: 3 root\(s\)")
    assert_kind(one_conn(a, b), FULL + r" \(the peer did not take our ticket\)",
                FULL + r" \(ticket not used: ticket key unknown")
    assert_kind(one_conn(a, b), RESUMED, RESUMED)
    # The originate side's bundle: its cache goes with it, nothing is offered.
    new = tmp_path / "trust_a.new"
    new.write_bytes(trust_a.read_bytes() + rogue)
    new.rename(trust_a)
    a.wait_log(r"trust bundle reloaded from .*trust_a\.pem: 3 root\(s\)")
    assert_kind(one_conn(a, b), FULL + r", its ticket read first$", FULL + "$")
    assert_kind(one_conn(a, b), RESUMED, RESUMED)


def test_an_allow_edit_refuses_the_old_tickets_and_a_peer_no_longer_allowed(
        pki, gateways, upstream):
    up = upstream()
    a, b, b_cfg, _ = start_pair(pki, gateways, up)
    one_conn(a, b)
    assert_kind(one_conn(a, b), RESUMED, RESUMED)
    # An edit that still admits foo: a full handshake all the same.
    b_cfg["tunnels"][0]["allow"].append({"dns": "other.internal", "root": "Cloud Root CA"})
    reload_with(b, b_cfg)
    assert_kind(one_conn(a, b), FULL + r" \(the peer did not take our ticket\)",
                FULL + r" \(ticket not used: ")
    assert_kind(one_conn(a, b), RESUMED, RESUMED)
    # A resumed tunnel that stays open is revalidated like any other.
    n_acc = len(accepted(b))
    held = socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=10)
    held.sendall(b"held")
    assert held.recv(4) == b"held"
    wait_for(lambda: len(accepted(b)) > n_acc, 10, "accepted line")
    assert re.search(RESUMED, accepted(b)[n_acc]), accepted(b)[n_acc]
    # An edit that drops foo: refused, ticket or not.
    b_cfg["tunnels"][0]["allow"] = [r for r in b_cfg["tunnels"][0]["allow"]
                                    if r.get("dns") != "foo.internal"]
    reload_with(b, b_cfg)
    b.wait_log(r"tunnel from-aws: foo\.internal closed: after a config reload it no longer "
               r"passes: allow\[0\]")
    held.settimeout(10)
    assert closed_without_data(held)
    held.close()
    n = len(re.findall(r"refused foo\.internal", b.log()))
    s = socket.create_connection(("127.0.0.1", a.port("to-gcp")), timeout=10)
    s.sendall(b"x")
    s.settimeout(10)
    assert closed_without_data(s)
    s.close()
    b.wait_log(r"refused foo\.internal .*on tunnel from-aws: allow\[0\]", count=n + 1)
    assert len(re.findall(RESUMED, b.log())) == 3, b.log()


def test_a_renewal_refuses_the_old_tickets(pki, gateways, upstream, tmp_path):
    crt, key = tmp_path / "bar.crt", tmp_path / "bar.key"
    shutil.copy(pki["leaves"]["bar"]["crt"], crt)
    shutil.copy(pki["leaves"]["bar"]["key"], key)

    def use(cfg):
        cfg["identity"]["cert"], cfg["identity"]["key"] = str(crt), str(key)

    up = upstream()
    a, b, _, _ = start_pair(pki, gateways, up, b_mod=use)
    one_conn(a, b)
    assert_kind(one_conn(a, b), RESUMED, RESUMED)
    renewed = issue_leaf(pki, "bar_renewed", "bar.internal", dns=["bar.internal", "localhost"],
                         issuer="kubernetes")
    for src, dst in ((renewed["key"], key), (renewed["crt"], crt)):
        shutil.copy(src, str(dst) + ".new")
        os.rename(str(dst) + ".new", dst)
    b.wait_log(r"identity reloaded from .*bar\.crt")
    assert_kind(one_conn(a, b), FULL + r" \(the peer did not take our ticket\)",
                FULL + r" \(ticket not used: ticket key unknown")
    assert_kind(one_conn(a, b), RESUMED, RESUMED)


def test_a_ticket_past_its_lifetime_is_not_used(pki, gateways, upstream):
    up = upstream()
    a, b, _, _ = start_pair(pki, gateways, up, b_lifetime=2, a_lifetime=2)
    one_conn(a, b)
    assert_kind(one_conn(a, b), RESUMED, RESUMED)
    time.sleep(3)
    # The client's cache drops it: a full handshake, and a new ticket.
    assert_kind(one_conn(a, b), FULL + r", its ticket read first$", FULL + "$")
    assert_kind(one_conn(a, b), RESUMED, RESUMED)


def python_client(ctx, port, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    c = ctx.wrap_socket(raw, server_hostname="bar.internal", session=session)
    c.sendall(b"ping")
    assert c.recv(4) == b"ping"
    return c


def test_the_server_refuses_a_ticket_past_its_lifetime(pki, gateways, upstream):
    """The terminate side checks the lifetime itself, whatever the client keeps."""
    up = upstream()
    b_cfg, _ = pair_configs(pki, up.addr)
    b = gateways("terminate", with_resumption(b_cfg, 2))
    ctx = client_ctx(pki, "foo")
    c = python_client(ctx, b.port("from-aws"))
    sess = c.session
    c.close()
    assert sess is not None and sess.has_ticket and sess.ticket_lifetime_hint <= 2
    c = python_client(ctx, b.port("from-aws"), sess)
    assert c.session_reused
    c.close()
    time.sleep(3)
    c = python_client(ctx, b.port("from-aws"), sess)
    assert not c.session_reused
    c.close()
    lines = accepted(b)
    assert re.search(FULL + "$", lines[0]) and re.search(RESUMED, lines[1]), lines
    wait_for(lambda: len(accepted(b)) == 3, 10, "third line")
    assert re.search(FULL, accepted(b)[2]), accepted(b)


class HelloProxy:
    """Relays one TCP connection to @port; rewrites the ClientHello's psk_key_exchange_modes
    with @modes (same length) and keeps the ServerHello's extension types."""

    def __init__(self, port, modes=None):
        self.port, self.modes = port, modes
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.server_exts = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def read_record(s):
        hdr = b""
        while len(hdr) < 5:
            chunk = s.recv(5 - len(hdr))
            if not chunk:
                raise EOFError
            hdr += chunk
        body = b""
        n = struct.unpack(">H", hdr[3:5])[0]
        while len(body) < n:
            chunk = s.recv(n - len(body))
            if not chunk:
                raise EOFError
            body += chunk
        return hdr + body

    @staticmethod
    def extensions(hello, client):
        """(offset, type, data) of each extension of a ClientHello/ServerHello record."""
        p = 5 + 4 + 2 + 32
        p += 1 + hello[p]
        if client:
            p += 2 + struct.unpack(">H", hello[p:p + 2])[0]
            p += 1 + hello[p]
        else:
            p += 2 + 1
        end = p + 2 + struct.unpack(">H", hello[p:p + 2])[0]
        p += 2
        out = []
        while p < end:
            t, n = struct.unpack(">HH", hello[p:p + 4])
            out.append((p + 4, t, hello[p + 4:p + 4 + n]))
            p += 4 + n
        return out

    def run(self):
        c, _ = self.sock.accept()
        s = socket.create_connection(("127.0.0.1", self.port))
        try:
            hello = bytearray(self.read_record(c))
            for off, t, data in self.extensions(hello, True):
                if t == 0x2d and self.modes is not None:
                    assert len(self.modes) == data[0]
                    hello[off + 1:off + 1 + data[0]] = self.modes
            s.sendall(hello)
            sh = self.read_record(s)
            self.server_exts = [t for _, t, _ in self.extensions(sh, False)]
            c.sendall(sh)
        except (EOFError, OSError):
            return
        for src, dst in ((c, s), (s, c)):
            threading.Thread(target=self.pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @property
    def addr_port(self):
        return self.sock.getsockname()[1]


OP_ALLOW_NO_DHE_KEX = 0x400  # OpenSSL 3's SSL_OP_ALLOW_NO_DHE_KEX: offer psk_ke too
PRE_SHARED_KEY, KEY_SHARE = 0x29, 0x33


def test_only_psk_dhe_ke_resumes(pki, gateways, upstream):
    up = upstream()
    b_cfg, _ = pair_configs(pki, up.addr)
    b = gateways("terminate", with_resumption(b_cfg))
    ctx = client_ctx(pki, "foo")
    ctx.options |= OP_ALLOW_NO_DHE_KEX
    c = python_client(ctx, b.port("from-aws"))
    sess = c.session
    c.close()
    # A client that offers both modes resumes with a fresh (EC)DHE key share.
    p = HelloProxy(b.port("from-aws"))
    c = python_client(ctx, p.addr_port, sess)
    assert c.session_reused
    c.close()
    assert PRE_SHARED_KEY in p.server_exts and KEY_SHARE in p.server_exts, p.server_exts
    # One whose only mode is psk_ke (0) gets no PSK: the server hello has none, and the
    # handshake (whose transcript the proxy changed) cannot finish as a resumption.
    p = HelloProxy(b.port("from-aws"), modes=b"\x00\x00")
    with pytest.raises((ssl.SSLError, OSError, AssertionError)):
        c = python_client(ctx, p.addr_port, sess)
        c.close()
    wait_for(lambda: p.server_exts is not None, 10, "server hello")
    assert PRE_SHARED_KEY not in p.server_exts and KEY_SHARE in p.server_exts, p.server_exts
    assert len(re.findall(RESUMED, b.log())) == 1, b.log()
