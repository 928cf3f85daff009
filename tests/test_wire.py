"""Post-handshake records on the wire: fedgate's record layer against a hand-driven peer."""

import os
import socket

import pytest

from conftest import CIPHERS, kernel_side
from tls13_peer import CT_ALERT, CT_DATA, RawTLSClient, still_works


def test_echo_through_hand_sealed_records(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    for size in (0, 1, 16384, 50000):
        data = os.urandom(size)
        c.send_data(data)
        assert c.recv_data(size) == data
    c.close()


@pytest.mark.parametrize("cipher", CIPHERS)
def test_key_update_requested_is_answered_and_data_flows(pki, term, cipher):
    if kernel_side("terminate"):
        pytest.skip("kTLS on Linux 6.1 cannot rekey: test_key_update_closes_on_kernel_tls")
    gw, up = term(cipher=cipher)
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_data(b"before")
    assert c.recv_data(6) == b"before"
    c.send_key_update(request=True)
    c.send_data(b"after update")
    assert c.recv_data(12) == b"after update"
    assert c.rx_key_updates == 1, "fedgate did not send its own KeyUpdate"
    c.send_key_update(request=False)
    c.send_data(b"again")
    assert c.recv_data(5) == b"again"
    assert c.rx_key_updates == 1
    c.close()
    gw.wait_log(r"tunnel wire: peer KeyUpdate, RX rekeyed, ours follows")
    gw.wait_log(r"tunnel wire: sent KeyUpdate, TX rekeyed")


def test_key_update_closes_on_kernel_tls(pki, term):
    """Linux before 6.14 takes one TLS_RX key (a second is EBUSY): the tunnel closes with
    internal_error, logged."""
    if not kernel_side("terminate"):
        pytest.skip("only for the kernel backend")
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_data(b"before")
    assert c.recv_data(6) == b"before"
    c.send_key_update(request=True)
    c.send_data(b"after update")
    # Under the key it still reads with, why: internal_error (fatal), then the end.
    assert c.recv_record() == (CT_ALERT, b"\x02\x50")
    assert c.recv_record() is None
    gw.wait_log(r"tunnel wire: peer sent KeyUpdate, and kernel TLS on this kernel cannot rekey; "
                r"closing the tunnel with internal_error")
    gw.wait_log(r"tunnel wire: sent fatal alert internal_error \(80\)")
    gw.wait_log(r"tunnel wire: kube_client closed: KeyUpdate not supported by kernel TLS")


def test_corrupted_record_closes_only_that_tunnel(pki, term):
    gw, up = term()
    other = RawTLSClient(gw.port("wire"), pki)
    c = RawTLSClient(gw.port("wire"), pki)
    rec = bytearray(c.tx.seal(CT_DATA, b"x" * 100))
    rec[20] ^= 1
    c.send_raw(bytes(rec))
    assert c.recv_record() == (CT_ALERT, b"\x02\x14")  # bad_record_mac (test_alerts.py)
    assert c.recv_record() is None
    gw.wait_log(r"tunnel wire: kube_client closed: from peer: record authentication failed "
                r"\(bad_record_mac\)")
    other.send_data(b"unaffected")
    assert other.recv_data(10) == b"unaffected"
    other.close()


def test_fatal_alert_closes_the_tunnel_with_a_log_line(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_alert(2, 80)
    assert c.recv_record() is None
    gw.wait_log(r"tunnel wire: peer sent fatal alert internal_error \(80\)")
    gw.wait_log(r"tunnel wire: kube_client closed: peer alert")


def test_close_notify_half_closes_toward_the_service(pki, term):
    def answer_after_eof(conn):
        got = b""
        while True:
            d = conn.recv(65536)
            if not d:
                break
            got += d
        conn.sendall(b"you sent %d bytes" % len(got))
        conn.shutdown(socket.SHUT_WR)

    gw, up = term(answer_after_eof)
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_data(b"a" * 1000)
    c.send_alert(1, 0)
    c.sock.shutdown(socket.SHUT_WR)
    assert c.recv_record() == (CT_DATA, b"you sent 1000 bytes")
    assert c.recv_record() == (CT_ALERT, b"\x01\x00"), "no close_notify from fedgate"
    assert c.recv_record() is None
    gw.wait_log(r"tunnel wire: kube_client closed: 19 bytes to peer, 1000 bytes from peer")


def test_oversized_record_is_refused(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_raw(b"\x17\x03\x03\x50\x00" + b"\x00" * 0x5000)
    assert c.recv_record() == (CT_ALERT, b"\x02\x16")  # record_overflow
    assert c.recv_record() is None
    gw.wait_log(r"record too long \(record_overflow\)")
    still_works(pki, gw)


def test_non_application_outer_type_is_refused(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_raw(b"\x14\x03\x03\x00\x01\x01")
    # bad_record_mac from kTLS, unexpected_message from the userspace layer
    assert c.recv_record() == (CT_ALERT, b"\x02\x14" if kernel_side("terminate") else b"\x02\x0a")
    assert c.recv_record() is None
    # The kernel authenticates the outer header as AAD instead of checking it first.
    gw.wait_log(r"from peer: record authentication failed" if kernel_side("terminate")
                else r"from peer: malformed record")


def test_fin_inside_a_record_is_logged(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    rec = c.tx.seal(CT_DATA, b"partial")
    c.send_raw(rec[:10])
    c.sock.shutdown(socket.SHUT_WR)
    c.recv_record()
    gw.wait_log(r"tunnel wire: peer closed inside a record \(10 bytes dropped\)")


def test_padded_records_and_empty_records_carry_data(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_record(CT_DATA, b"", pad=0)
    c.send_record(CT_DATA, b"padded", pad=100)
    c.send_record(CT_DATA, b"\x00\x00data-ending-in-zeros\x00\x00", pad=7)
    want = b"padded\x00\x00data-ending-in-zeros\x00\x00"
    assert c.recv_data(len(want)) == want
    c.close()


def test_unexpected_handshake_message_closes(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_record(22, bytes([13, 0, 0, 0]))  # CertificateRequest: never offered
    assert c.recv_record() == (CT_ALERT, b"\x02\x0a")  # unexpected_message
    assert c.recv_record() is None
    gw.wait_log(r"unexpected post-handshake message type 13")


def test_garbage_after_handshake_closes(pki, term):
    gw, up = term()
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_raw(b"\xde\xad" + os.urandom(4000))
    try:
        r = c.recv_record()
    except ConnectionResetError:
        r = None
    # A fatal alert first; which one depends on the random header (test_alerts.py).
    assert r is not None and r[0] == CT_ALERT and r[1][0] == 2, r
    gw.wait_log(r"tunnel wire: kube_client closed: from peer:")
    still_works(pki, gw)


def upstream_end_recorder():
    """An upstream handler that records how its stream ended: 'reset', 'fin' or 'timeout'."""
    import queue
    ends = queue.Queue()

    def handler(conn):
        conn.settimeout(10)
        try:
            while conn.recv(65536):
                pass
            ends.put("fin")
        except ConnectionResetError:
            ends.put("reset")
        except socket.timeout:
            ends.put("timeout")
    return handler, ends


def test_record_cut_by_a_fin_resets_the_service(pki, term):
    """A FIN inside a record is a truncated stream: the service must see a reset, never a
    clean end it could take for a complete request."""
    handler, ends = upstream_end_recorder()
    gw, up = term(handler)
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_data(b"a complete first record")
    rec = c.tx.seal(CT_DATA, b"the rest of the request")
    c.send_raw(rec[:12])
    c.sock.shutdown(socket.SHUT_WR)
    assert ends.get(timeout=15) == "reset"
    gw.wait_log(r"tunnel wire: kube_client closed: the stream was cut inside a record")


def test_bad_record_resets_the_service(pki, term):
    handler, ends = upstream_end_recorder()
    gw, up = term(handler)
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_data(b"first")
    rec = bytearray(c.tx.seal(CT_DATA, b"x" * 100))
    rec[20] ^= 1
    c.send_raw(bytes(rec))
    assert ends.get(timeout=15) == "reset"


def test_clean_close_notify_is_a_fin_at_the_service(pki, term):
    """The control case of the two above: the same handler sees a FIN for a proper end."""
    handler, ends = upstream_end_recorder()
    gw, up = term(handler)
    c = RawTLSClient(gw.port("wire"), pki)
    c.send_data(b"first")
    c.send_alert(1, 0)
    c.sock.shutdown(socket.SHUT_WR)
    assert ends.get(timeout=15) == "fin"
