"""dataplane.local_redirect: sk_msg + sockhash moves the plaintext legs fedgate reads.

Real sockets, a real fedgate pair on loopback (app -> A originate -> TLS -> B terminate ->
service), the host kernel. The maps are read from outside (tests/legs_maps.py). Root and
BPF only: skipped loudly otherwise.
"""

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (BIG, FEDGATE, IN_VM, KERNEL_TX, connect, kernel_side, pair_configs,
                      recv_all, wait_for)
import legs_maps

BUDGET = 256 * 1024


def tcp_info(sock):
    """(data_segs_out, bytes_sent) of @sock (struct tcp_info, linux/tcp.h)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    return struct.unpack_from("I", raw, 156)[0], struct.unpack_from("Q", raw, 200)[0]


def redirect_cfg(cfg, on=True, **extra):
    cfg["dataplane"]["local_redirect"] = "on" if on else "off"
    cfg["dataplane"].update(extra)
    return cfg


@pytest.fixture(scope="module")
def bpf_usable(tmp_path_factory, pki):
    """Skips (loudly, with the reason) where fedgate cannot load the programs."""
    if os.geteuid() != 0:
        pytest.skip("local redirect tests need root (BPF programs and cgroup attach)")
    b_cfg, _ = pair_configs(pki, "127.0.0.1:9")
    path = tmp_path_factory.mktemp("lr-check") / "fedgate.json"
    path.write_text(json.dumps(redirect_cfg(b_cfg)))
    r = subprocess.run([FEDGATE, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        pytest.skip(f"BPF local redirect unusable here: {r.stderr.strip() or r.stdout.strip()}")
    return True


@pytest.fixture
def lr_pair(pki, gateways, upstream, bpf_usable):
    """Factory: (on, handler, a_listen, names) -> (A, B, service); both with the redirect."""

    def make(on=True, handler=None, a_listen=None, suffix="", budget=None):
        up = upstream(handler)
        b_cfg, a_cfg = pair_configs(pki, up.addr)
        extra = {"local_redirect_budget": budget} if budget else {}
        b = gateways("terminate" + suffix, redirect_cfg(b_cfg, on, **extra))
        a_conf = redirect_cfg(a_cfg(b.port("from-aws")), on, **extra)
        if a_listen:
            a_conf["tunnels"][0]["listen"] = a_listen
        a = gateways("originate" + suffix, a_conf)
        return a, b, up

    return make


class Maps:
    """Both gateways' maps, open for one test."""

    def __init__(self, *gws):
        self.m = [legs_maps.LegsMaps(gw.proc.pid) for gw in gws]

    def stats(self):
        return [m.stats() for m in self.m]

    def close(self):
        for m in self.m:
            m.close()


def echo_roundtrip(port, payload, host="127.0.0.1", family=socket.AF_INET):
    """Sends @payload, half-closes, reads the echo; returns (echo, app's tcp_info)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(120)
    s.connect((host, port))
    got = []
    t = threading.Thread(target=lambda: got.append(recv_all(s)))
    t.start()
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    t.join(180)
    info = tcp_info(s)
    s.close()
    assert not t.is_alive(), "echo did not finish"
    return got[0], info


def settle(maps, what="no pair, sockhash, expect entry or owned slot"):
    """Waits until every map of @maps is empty again (TCP_CLOSE comes at TIME_WAIT)."""

    def empty():
        return all(m.pairs() == 0 and m.socks() == 0 and m.expects() == 0 and
                   not m.owned_slots() for m in maps.m)

    wait_for(empty, 20, what)


# ---- byte-exact, both ways, with proof of the path ----

@pytest.mark.parametrize("size,budget", [
    (0, None), (1, None), (64 * 1024, None),
    # 64 MiB (4 in the VM) in one go: with the largest budget all of it may wait unread.
    (BIG, 64 << 20),
])
def test_sizes_byte_exact_and_redirected(lr_pair, size, budget):
    seen = []

    def echo(conn):  # the service's socket is a sender too: service -> B's upstream socket
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        seen.append(tcp_info(conn))
        conn.shutdown(socket.SHUT_WR)

    a, b, up = lr_pair(budget=budget, handler=echo)
    maps = Maps(a, b)
    try:
        before = maps.stats()
        payload = os.urandom(size)
        got, (segs, sent) = echo_roundtrip(a.port("to-gcp"), payload)
        assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest(), f"size {size}"
        after = maps.stats()
        da = {k: after[0][k] - before[0][k] for k in after[0]}
        db = {k: after[1][k] - before[1][k] for k in after[1]}
        # app -> A (originate reader), service -> B (terminate reader): one pair each, and
        # every byte of both took the redirect: the app's socket sent no TCP data segment.
        assert da["pairs"] == 1 and db["pairs"] == 1, (da, db)
        assert da["bytes"] == size and db["bytes"] == size, (da, db)
        assert da["tcp_bytes"] == 0 and db["tcp_bytes"] == 0, (da, db)
        assert segs == 0 and sent == 0, f"app sent {segs} data segments, {sent} bytes"
        wait_for(lambda: seen, 10, "the service's tcp_info")
        assert seen[0] == (0, 0), f"service sent {seen[0][0]} data segments, {seen[0][1]} bytes"
        settle(maps)
    finally:
        maps.close()


def test_over_budget_falls_back_to_tcp_for_good_byte_exact(lr_pair):
    """64 MiB at once with the default budget: the direction goes by TCP, and stays there."""
    a, b, up = lr_pair()
    maps = Maps(a, b)
    try:
        before = maps.stats()
        payload = os.urandom(BIG)
        got, (segs, sent) = echo_roundtrip(a.port("to-gcp"), payload)
        assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
        da = {k: v - before[0][k] for k, v in maps.stats()[0].items()}
        assert da["pairs"] == 1 and da["over_budget"] == 1, da
        # What went by TCP came after everything redirected (nothing can overtake it).
        assert da["bytes"] < BIG and segs > 0, (da, segs)
        settle(maps)
    finally:
        maps.close()


def test_off_uses_tcp_and_loads_nothing(lr_pair):
    a, b, up = lr_pair(on=False)
    assert "local legs redirect: off" in a.log()
    assert legs_maps.map_ids(a.proc.pid) == {} and legs_maps.map_ids(b.proc.pid) == {}
    payload = os.urandom(64 * 1024)
    got, (segs, sent) = echo_roundtrip(a.port("to-gcp"), payload)
    assert got == payload
    assert segs > 0 and sent == len(payload)


def test_start_log_and_check_say_what_is_in_use(lr_pair, tmp_path, pki):
    a, b, up = lr_pair()
    a.wait_log(r"local legs redirect: on, budget 262144 bytes per direction, sock_ops on "
               r"cgroup /sys/fs/cgroup")
    r = subprocess.run([FEDGATE, "check", "-c", str(a.config_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "local legs redirect: on, budget 262144 bytes per direction" in r.stdout


def test_unusable_cgroup_refuses_to_start(pki, tmp_path, bpf_usable):
    b_cfg, _ = pair_configs(pki, "127.0.0.1:9")
    path = tmp_path / "fedgate.json"
    path.write_text(json.dumps(redirect_cfg(b_cfg, local_redirect_cgroup="/nonexistent/cg")))
    for verb in ("check", "run"):
        r = subprocess.run([FEDGATE, verb, "-c", str(path)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2, (verb, r.stdout, r.stderr)
        assert "$.dataplane.local_redirect: \"on\", but no such cgroup" in r.stderr


@pytest.mark.parametrize("key,value,message", [
    ("local_redirect", "yes", "expected \"off\" or \"on\""),
    ("local_redirect_budget", 1024, "local_redirect_budget"),
    ("local_redirect_budget", (64 << 20) + 1, "local_redirect_budget"),
])
def test_config_errors(pki, tmp_path, key, value, message):
    b_cfg, _ = pair_configs(pki, "127.0.0.1:9")
    b_cfg["dataplane"][key] = value
    path = tmp_path / "fedgate.json"
    path.write_text(json.dumps(b_cfg))
    r = subprocess.run([FEDGATE, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_reload_keeps_the_redirect_settings(lr_pair):
    a, b, up = lr_pair()
    cfg = json.loads(a.config_path.read_text())
    cfg["dataplane"]["local_redirect_budget"] = 1 << 20
    a.config_path.write_text(json.dumps(cfg))
    a.proc.send_signal(signal.SIGHUP)
    a.wait_log(r"the data plane settings change only on restart")
    payload = os.urandom(100000)
    assert echo_roundtrip(a.port("to-gcp"), payload)[0] == payload


# ---- half-close, families ----

def test_half_close_each_way(lr_pair):
    def digest_after_eof(conn):
        h = hashlib.sha256()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            h.update(data)
        conn.sendall(b"sha256=" + h.hexdigest().encode())
        conn.shutdown(socket.SHUT_WR)

    a, b, up = lr_pair(handler=digest_after_eof)
    payload = os.urandom(200000)
    s = connect(a.port("to-gcp"))
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b"sha256=" + hashlib.sha256(payload).hexdigest().encode()
    s.close()

    def speaks_first(conn):
        conn.sendall(b"hello " * 1000)
        conn.shutdown(socket.SHUT_WR)
        rest = recv_all(conn)
        # The far end got EOF first and still reads what the app sends after it.
        conn.close()
        speaks_first.got = rest

    a2, b2, up2 = lr_pair(handler=speaks_first, suffix="-2")
    s = connect(a2.port("to-gcp"))
    assert recv_all(s) == b"hello " * 1000
    s.sendall(b"after eof")
    s.shutdown(socket.SHUT_WR)
    wait_for(lambda: getattr(speaks_first, "got", None) is not None, 30, "the service's read")
    assert speaks_first.got == b"after eof"
    s.close()


@pytest.mark.parametrize("listen,host,family", [
    ("[::]:0", "127.0.0.1", socket.AF_INET),  # IPv4 client, IPv4-mapped on a dual-stack listener
    ("[::]:0", "::1", socket.AF_INET6),
    ("[::1]:0", "::1", socket.AF_INET6),
    ("127.0.0.1:0", "127.0.0.1", socket.AF_INET),
    ("0.0.0.0:0", "127.0.0.1", socket.AF_INET),
])
def test_families_are_redirected(lr_pair, listen, host, family):
    a, b, up = lr_pair(a_listen=listen)
    maps = Maps(a)
    try:
        before = maps.stats()[0]
        payload = os.urandom(100000)
        got, (segs, sent) = echo_roundtrip(a.port("to-gcp"), payload, host, family)
        assert got == payload
        after = maps.stats()[0]
        assert after["bytes"] - before["bytes"] == len(payload), (before, after)
        assert segs == 0, f"{listen} {host}: the app sent {segs} TCP data segments"
    finally:
        maps.close()


# ---- the budget ----

BLOCK = 64 << 10  # under the budget: the first ones are redirected, then the budget bites
TOTAL = (64 << 20) if IN_VM else (1 << 30)


def blocks():
    seed = os.urandom(BLOCK - 8)
    for i in range(TOTAL // BLOCK):
        yield struct.pack("<Q", i) + seed


def tcp_mem_bytes():
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            f = line.split()
            return int(f[f.index("mem") + 1]) * 4096
    raise AssertionError("no TCP line in /proc/net/sockstat")


def test_backpressure_app_blocks_and_memory_stays_bounded(lr_pair):
    """A service that does not read; the app sends 1 GiB (64 MiB in the VM): its send blocks."""
    go = threading.Event()
    result = {}

    def slow_reader(conn):
        go.wait(300)
        h, n = hashlib.sha256(), 0
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            h.update(data)
            n += len(data)
        result["digest"], result["n"] = h.digest(), n

    a, b, up = lr_pair(handler=slow_reader)
    maps = Maps(a)
    mem0 = tcp_mem_bytes()
    s = connect(a.port("to-gcp"), timeout=300)
    sent = [0]
    want = hashlib.sha256()

    def writer():
        for blk in blocks():
            want.update(blk)
            s.sendall(blk)
            sent[0] += len(blk)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=writer)
    t.start()
    try:
        # The app stalls: its sends stop making progress.
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if sent[0] != last:
                last, stable_since = sent[0], time.monotonic()
            elif time.monotonic() - stable_since > 1.5:
                break
        blocked_at, mem = sent[0], tcp_mem_bytes() - mem0
        st = maps.stats()[0]
        print(f"app blocked after {blocked_at >> 20} MiB; TCP mem +{mem >> 20} MiB; {st}")
        assert blocked_at < 256 << 20, f"the app wrote {blocked_at >> 20} MiB before blocking"
        # Redirected and unread stays under the budget; the rest is TCP's own windows.
        assert st["bytes"] > 0 and st["over_budget"] == 1, st
        assert mem < BUDGET + (200 << 20), f"TCP memory grew by {mem >> 20} MiB"
        owned = [sl for sl in maps.m[0].owned_slots() if sl[1] & legs_maps.CLAIMED]
        assert owned, "no claimed slot while the tunnel is up"
        for _, _, redirected, consumed, sticky in owned:
            assert sticky == 1, "over the budget, the direction is on TCP for good"
            assert redirected - consumed <= BUDGET, (redirected, consumed)
    finally:
        go.set()
        t.join(300)
        s.settimeout(60)
        s.close()
        maps.close()
    assert not t.is_alive(), "the app's send never finished once the service read"
    wait_for(lambda: "digest" in result, 120, "the service to read everything")
    assert result["n"] == TOTAL
    assert result["digest"] == want.digest(), "bytes reordered or lost"


# ---- close, churn, restart, neighbours ----

def test_close_with_unread_data_resets_the_app(lr_pair):
    """The far end breaks while redirected bytes wait unread: the app sees a reset."""
    release = threading.Event()

    def breaks(conn):
        release.wait(60)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    a, b, up = lr_pair(handler=breaks)
    s = connect(a.port("to-gcp"))
    s.sendall(os.urandom(100000))  # redirected; the service never reads
    time.sleep(0.5)
    release.set()
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not s.recv(65536):
                raise AssertionError("clean EOF: the app was not told with a reset")
    s.close()


N_TUNNELS = 100 if IN_VM else 1000  # handshakes cost 50 to 100 times more under TCG


def test_1000_tunnels_leave_no_entry(lr_pair):
    a, b, up = lr_pair()
    maps = Maps(a, b)
    try:
        errors = []

        def run(k):
            for i in range(k, N_TUNNELS, 8):
                try:
                    payload = os.urandom(1 + i % 4000)
                    got, _ = echo_roundtrip(a.port("to-gcp"), payload)
                    if got != payload:
                        errors.append(i)
                except OSError as e:
                    errors.append((i, str(e)))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not errors, errors[:5]
        st = maps.stats()
        assert st[0]["pairs"] == N_TUNNELS and st[1]["pairs"] == N_TUNNELS, st
        settle(maps)
    finally:
        maps.close()


def test_restart_with_live_connections_leaves_nothing(lr_pair):
    a, b, up = lr_pair()
    before = legs_maps.all_legs_map_ids()
    a_maps = set(legs_maps.map_ids(a.proc.pid).values())
    live = [connect(a.port("to-gcp")) for _ in range(20)]
    for s in live:
        s.sendall(b"x" * 1000)
    for s in live:
        assert s.recv(1000)
    assert a.stop() == 0
    for s in live:
        s.close()
    # The old maps go with the process: nothing pinned, nothing left behind.
    wait_for(lambda: not (a_maps & legs_maps.all_legs_map_ids()), 20, "A's maps to go")
    assert legs_maps.all_legs_map_ids() <= before
    a.ports_path.unlink()
    a.start()
    maps = Maps(a, b)
    try:
        payload = os.urandom(50000)
        assert echo_roundtrip(a.port("to-gcp"), payload)[0] == payload
        assert maps.stats()[0]["bytes"] == len(payload)
        settle(maps)
    finally:
        maps.close()


def test_killed_data_plane_frees_the_slots_of_its_tunnels(lr_pair):
    """A data plane that dies cannot release the slots of the readers it held: the control
    process frees them when it restarts it, so a crash leaks none (each would be a slot the
    redirect can never use again)."""
    from test_dataplane_orphan import alive, children
    a, b, up = lr_pair()
    maps = Maps(a, b)
    live = []
    try:
        for _ in range(20):
            s = connect(a.port("to-gcp"))
            s.sendall(b"x" * 1000)
            assert s.recv(1000)
            live.append(s)
        claimed = [sl for sl in maps.m[0].owned_slots() if sl[1] & legs_maps.CLAIMED]
        assert len(claimed) >= 20, claimed
        dp = wait_for(lambda: [p for p in children(a.proc.pid) if alive(p)], 5,
                      "A's data plane")[0]
        os.kill(dp, signal.SIGKILL)
        a.wait_log(r"data plane restarted")
        for s in live:
            s.close()
        live = []
        settle(maps, "no slot left owned by the killed data plane's tunnels")
        payload = os.urandom(50000)
        assert echo_roundtrip(a.port("to-gcp"), payload)[0] == payload
        settle(maps)
    finally:
        for s in live:
            s.close()
        maps.close()


def test_a_second_fedgate_does_not_break_the_first(lr_pair):
    a, b, up = lr_pair()
    a2, b2, up2 = lr_pair(suffix="-2")
    maps = Maps(a, b, a2, b2)
    try:
        for _ in range(3):
            for gw in (a, a2):
                payload = os.urandom(100000)
                got, (segs, _) = echo_roundtrip(gw.port("to-gcp"), payload)
                assert got == payload and segs == 0
        st = maps.stats()
        assert all(x["bytes"] == 3 * 100000 for x in st), st
        assert a2.stop() == 0 and b2.stop() == 0
        payload = os.urandom(100000)
        got, (segs, _) = echo_roundtrip(a.port("to-gcp"), payload)
        assert got == payload and segs == 0
        assert maps.stats()[0]["bytes"] == 4 * 100000
    finally:
        maps.close()


def tls_stat():
    with open("/proc/net/tls_stat") as f:
        return {k: int(v) for k, v in (line.split() for line in f)}


def test_ktls_tls_leg_with_redirected_legs(lr_pair):
    """kTLS on the TLS leg (the VM pass), the plaintext legs redirected: byte-exact."""
    if not (kernel_side("originate") and kernel_side("terminate")):
        pytest.skip("needs kTLS on both gateways (FEDGATE_OFFLOAD=kernel, as the VM pass runs)")
    a, b, up = lr_pair()
    maps = Maps(a, b)
    try:
        before, tls0 = maps.stats(), tls_stat()
        payload = os.urandom(100000)
        got, (segs, _) = echo_roundtrip(a.port("to-gcp"), payload)
        assert got == payload and segs == 0
        after, tls1 = maps.stats(), tls_stat()
        assert [x["bytes"] - y["bytes"] for x, y in zip(after, before)] == [len(payload)] * 2
        assert tls1["TlsTxSw"] > tls0["TlsTxSw"] and tls1["TlsRxSw"] > tls0["TlsRxSw"], tls1
        if KERNEL_TX == "splice":
            a.wait_log(r"kernel_tx splice: redirected local legs are read by copy")
    finally:
        maps.close()


# ---- the application's own blocking recv (its socket is in the sockhash as a sender) ----

# Linux (6.1 .. at least 6.18, net/ipv4/tcp_bpf.c): every socket in a sockmap/sockhash
# reads through tcp_bpf_recvmsg, the app's too although fedgate -> app is plain TCP. With
# nothing queued it sleeps ONCE (tcp_msg_wait_data: one sk_wait_event) and, if that sleep
# ends without data, returns -EAGAIN: it neither sleeps again nor says EINTR/ERESTARTSYS as
# tcp_recvmsg would. So a blocking recv says EAGAIN after a signal, or after the write-space
# wakeup another thread's blocked send gets (the socket's one wait queue wakes every waiter).
KERNEL_EAGAIN = ("Linux tcp_bpf_recvmsg: a blocking recv on a sockhash socket returns EAGAIN "
                 "when its one sleep (tcp_msg_wait_data) ends without data")
ON_OFF = [pytest.param(False, id="off"),
          pytest.param(True, id="on", marks=pytest.mark.xfail(strict=True, reason=KERNEL_EAGAIN,
                                                             raises=BlockingIOError))]


def test_check_and_start_log_warn_of_the_kernel_eagain(lr_pair):
    a, b, up = lr_pair()
    a.wait_log(r"blocking recv\(\) on a redirected application's or service's socket can "
               r"fail with EAGAIN")
    r = subprocess.run([FEDGATE, "check", "-c", str(a.config_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "tcp_bpf_recvmsg (6.1 to at least 6.18) does not sleep again" in r.stdout, r.stdout


def blocking_app(port, seconds=30):
    """A blocking app socket (no O_NONBLOCK, no timeout) and a watchdog bounding its waits."""
    s = connect(port)
    s.settimeout(None)
    dog = threading.Timer(seconds, lambda: s.shutdown(socket.SHUT_RDWR))
    dog.daemon = True
    dog.start()
    return s, dog


def late_echo(conn):
    """Request/response: every request is answered 200 ms late."""
    while True:
        data = conn.recv(65536)
        if not data:
            break
        time.sleep(0.2)
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


def test_blocking_recv_waits_for_a_late_answer(lr_pair):
    """The common case is fine: one thread, no signal: the one sleep ends with the answer."""
    a, b, up = lr_pair(handler=late_echo)
    s, dog = blocking_app(a.port("to-gcp"))
    try:
        for i in range(10):
            req = b"request %d" % i
            s.sendall(req)
            assert s.recv(65536) == req, f"request {i}"
    finally:
        dog.cancel()
        s.close()


@pytest.mark.parametrize("on", ON_OFF)
def test_blocking_recv_survives_a_signal(lr_pair, on):
    """A signal handler runs while the app waits for a late answer: recv must go on waiting.

    Plain TCP: recv returns EINTR, Python runs the handler and calls recv again (PEP 475).
    Redirected: tcp_bpf_recvmsg's sleep ends on the signal and it returns EAGAIN instead.
    """
    a, b, up = lr_pair(on=on, handler=late_echo)
    s, dog = blocking_app(a.port("to-gcp"))
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        for i in range(10):
            req = b"request %d" % i
            s.sendall(req)
            signal.setitimer(signal.ITIMER_REAL, 0.05)  # the answer comes after 200 ms
            assert s.recv(65536) == req, f"request {i}"
        assert len(fired) == 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        dog.cancel()
        s.close()


def digest_late(conn):
    """Reads to EOF, then answers (200 ms late) with the SHA-256 of what it read."""
    h = hashlib.sha256()
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        h.update(data)
    time.sleep(0.2)
    conn.sendall(h.hexdigest().encode())
    conn.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("on", ON_OFF)
def test_blocking_recv_while_another_thread_sends(lr_pair, on):
    """The bench's case: one thread sends 8 MiB (over the budget: TCP), another waits in recv.

    The sender's blocked send is woken for write space on the socket's one wait queue, and
    the waiting recv with it: tcp_bpf_recvmsg finds nothing queued and returns EAGAIN.
    """
    a, b, up = lr_pair(on=on, handler=digest_late)
    for i in range(3):
        s, dog = blocking_app(a.port("to-gcp"), 60)
        payload = os.urandom(8 << 20)
        err = []

        def writer():
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=writer)
        t.start()
        try:
            got = recv_all(s)
        finally:
            t.join(60)
            dog.cancel()
            s.close()
        assert not err, err
        assert got == hashlib.sha256(payload).hexdigest().encode(), f"connection {i}"
