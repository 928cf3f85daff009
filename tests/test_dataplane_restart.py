"""A data plane that dies is restarted; the gateway stays up (issue 14).

kill -9 of the data plane mid-transfer: the transfer is cut (its tunnels are
lost, and the log says how many), but the control process keeps its listeners,
restarts the data plane at once (then with back-off), and new connections work
within a second. The gateway still stops cleanly (exit 0) on SIGTERM.
"""

import os
import re
import resource
import signal
import socket
import ssl
import time

from conftest import IN_VM, Gateway, count_refusals, gateway_config, stop_process, wait_for
from test_dataplane_orphan import alive, children

CHUNK = b"x" * 65536


def handler(conn):
    """'stream\\n': up to 200 MiB, paced; anything else is echoed."""
    first = conn.recv(100)
    if first.startswith(b"stream"):
        for _ in range(3200):
            conn.sendall(CHUNK)
            time.sleep(0.002)
        return
    while first:
        conn.sendall(first)
        first = conn.recv(65536)


def tls(pki, port, timeout=10):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(pki["federated"])
    ctx.load_cert_chain(pki["leaves"]["foo"]["crt"], pki["leaves"]["foo"]["key"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="bar.internal")


def echo_works(pki, port, tag):
    try:
        with tls(pki, port, timeout=2) as s:
            s.sendall(tag)
            got = b""
            while len(got) < len(tag):
                data = s.recv(len(tag) - len(got))
                if not data:
                    return False
                got += data
            return got == tag
    except (OSError, ssl.SSLError):
        return False


def data_plane(gw):
    pids = wait_for(lambda: [p for p in children(gw.proc.pid) if alive(p)], 5,
                    "the data plane child")
    assert len(pids) == 1, f"one data plane expected, found {pids}"
    return pids[0]


def read_until_cut(s, limit):
    """Bytes read until the stream ends (any way) or @limit; and how it ended."""
    n = 0
    try:
        while n < limit:
            data = s.recv(1 << 20)
            if not data:
                return n, "eof"
            n += len(data)
    except (OSError, ssl.SSLError) as e:
        return n, type(e).__name__
    return n, "complete"


def test_killed_data_plane_is_restarted_and_the_gateway_stays_up(pki, tmp_path, upstream):
    up = upstream(handler)
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
        "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    gw = Gateway(tmp_path, "terminate", cfg).start()
    rc = None
    try:
        port = gw.port("t")
        first = data_plane(gw)
        assert echo_works(pki, port, b"before\n"), gw.log()
        # one transfer under way and two idle tunnels: three to lose
        idle = [tls(pki, port) for _ in range(2)]
        for s in idle:
            s.sendall(b"idle\n")
            assert s.recv(5) == b"idle\n"
        big = tls(pki, port, timeout=20)
        big.sendall(b"stream\n")
        got = 0
        while got < (4 << 20):
            got += len(big.recv(1 << 20))
        gw.wait_log(r"accepted foo\.internal", count=4)

        killed_at = time.monotonic()
        os.kill(first, signal.SIGKILL)
        # new connections work within a second, on a new data plane
        while not echo_works(pki, port, b"after\n"):
            assert time.monotonic() - killed_at < 1.0, \
                f"no working connection 1 s after the kill:\n{gw.log()}"
            time.sleep(0.02)
        elapsed = time.monotonic() - killed_at
        assert gw.proc.poll() is None, f"the gateway stopped:\n{gw.log()}"
        second = data_plane(gw)
        assert second != first
        log = gw.wait_log(r"the data plane \(pid %d\) was killed by signal 9 \(Killed\)(?:: [^:\n]*)?: 3 tunnel\(s\) lost"
                          % first, timeout=5)
        assert log
        gw.wait_log(r"data plane restarted: pid %d" % second)

        # the transfer was cut, not completed; the idle tunnels are gone too
        n, how = read_until_cut(big, 200 << 20)
        assert how != "complete" and n < (200 << 20) - got, (n, how)
        for s in idle:
            assert read_until_cut(s, 1 << 20)[1] != "complete"

        # a second death in a row waits the back-off, and still comes back (the echo tunnels
        # of the checks above may not have reported their close yet: any count is right)
        os.kill(second, signal.SIGKILL)
        gw.wait_log(r"the data plane \(pid %d\) was killed by signal 9 \(Killed\)(?:: [^:\n]*)?: \d+ tunnel\(s\) lost; "
                    r"restarting it in 100 ms" % second, timeout=5)
        wait_for(lambda: echo_works(pki, port, b"again\n"), 5, "a connection after the back-off")
        assert gw.proc.poll() is None
        print(f"first connection after the kill worked after {elapsed * 1000:.0f} ms")
        for s in idle + [big]:
            s.close()
    finally:
        rc = stop_process(gw.proc)
        gw.logf.close()
    assert rc == 0, f"exit {rc}:\n{gw.log()}"
    assert not re.search(r"stopping\b.*data plane", gw.log())


def test_wedged_data_plane_never_freezes_handshakes_and_is_restarted(pki, tmp_path, upstream):
    """SIGSTOP of the data plane: handshakes go on (the handoff never blocks the
    control loop), a full queue refuses with a log line, and the unanswered data
    plane is killed and restarted; every client works or is refused, and says so."""
    up = upstream(handler)
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
        "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    # 301 tunnels at 4 fds each with kTLS TX by splice (its pipe) pass a soft limit of 1024
    # (the VM's): the gateway inherits the hard limit, so the last echo has room.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nofile[0] < 2048 <= nofile[1] or nofile[1] == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(nofile[0], 2048), nofile[1]))
    try:
        gw = Gateway(tmp_path, "terminate", cfg).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
    clients, results = [], {}
    try:
        port = gw.port("t")
        wedged = data_plane(gw)
        os.kill(wedged, signal.SIGSTOP)
        started = time.monotonic()
        for i in range(300):
            # each handshake needs the control loop: a blocked handoff would stop them all
            s = tls(pki, port, timeout=10)
            s.sendall(b"ping-%03d\n" % i)
            clients.append((i, s))
        handshakes = time.monotonic() - started
        gw.wait_log(r"the data plane has not answered handoff \d+ for 10000 ms: wedged",
                    timeout=20)
        gw.wait_log(r"data plane restarted: pid \d+", timeout=5)
        for i, s in clients:
            tag = b"ping-%03d\n" % i
            s.settimeout(15)
            try:
                got = b""
                while len(got) < len(tag):
                    data = s.recv(len(tag) - len(got))
                    if not data:
                        break
                    got += data
                results[i] = "ok" if got == tag else "closed"
            except (OSError, ssl.SSLError):
                results[i] = "closed"
        assert echo_works(pki, port, b"after\n"), gw.log()[-3000:]
        assert gw.proc.poll() is None
    finally:
        for _, s in clients:
            s.close()
        try:
            os.kill(wedged, signal.SIGCONT)
        except ProcessLookupError:
            pass
        rc = stop_process(gw.proc)
        gw.logf.close()
    log = gw.log()
    ok = sum(1 for r in results.values() if r == "ok")
    refused = count_refusals(log, r" warn: refused (?!\d+ more connection)")
    full = len(re.findall(r"the data plane is not taking tunnels now \(its queue is full\)", log))
    summary = (f"{ok} ok, {len(results) - ok} closed, {refused} refusals logged ({full} queue "
               f"full), handshakes took {handshakes:.1f} s")
    # 300 handshakes take about 85 s under TCG (tests/vm) on a loaded host, a few here
    assert handshakes < (240 if IN_VM else 60), f"handshakes took {handshakes:.1f} s: {summary}"
    # 300 handshakes inside the 10 s before the wedge is found: 256 wait, the rest are refused.
    # (On a slower machine the wedged data plane is replaced before the queue fills.)
    assert full > 0 or handshakes > 10.0, f"the queue never filled: {summary}"
    # Handoffs sent to the stopped data plane are refused when it is replaced: only clients
    # that came after the wedge was found (10 s) can have worked.
    assert ok > 0 or handshakes < 10.0, summary
    assert len(re.findall(r"accepted foo\.internal", log)) == ok + 1, summary
    assert refused == len(results) - ok, f"closed without a log line: {summary}\n{log[-3000:]}"
    assert rc == 0, f"exit {rc}:\n{log[-3000:]}"


def test_a_wedge_is_found_while_handoffs_keep_coming(pki, tmp_path, upstream):
    """The data plane's timer must not be pushed back by each new handoff: with a steady
    trickle of connections (one every 50 ms, faster than the 100 ms tick) against a stopped
    data plane, the wedge is still found about 10 s after the first unanswered handoff, before
    the queue (64 per worker, 4 workers) could fill."""
    up = upstream(handler)
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": up.addr,
        "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}], workers=4)
    gw = Gateway(tmp_path, "terminate", cfg).start()
    clients = []
    try:
        port = gw.port("t")
        wedged = data_plane(gw)
        os.kill(wedged, signal.SIGSTOP)
        started = time.monotonic()
        found = None
        while time.monotonic() - started < (90 if IN_VM else 16):
            s = tls(pki, port, timeout=10)
            s.sendall(b"ping\n")
            clients.append(s)
            if re.search(r"has not answered handoff \d+ for 10000 ms: wedged", gw.log()):
                found = time.monotonic() - started
                break
            time.sleep(0.05)
        assert found is not None, (f"no wedge found after {len(clients)} handoffs in "
                                   f"{time.monotonic() - started:.1f} s:\n{gw.log()[-2000:]}")
        assert not re.search(r"its queue is full", gw.log()), gw.log()[-2000:]
        gw.wait_log(r"data plane restarted: pid \d+", timeout=5)
        assert echo_works(pki, port, b"after\n"), gw.log()[-3000:]
    finally:
        for s in clients:
            s.close()
        try:
            os.kill(wedged, signal.SIGCONT)
        except (ProcessLookupError, UnboundLocalError):
            pass
        rc = stop_process(gw.proc)
        gw.logf.close()
    assert rc == 0, gw.log()[-3000:]
