#!/usr/bin/env python3
"""kTLS TX by copy or by splice: which moves plaintext into the kernel more cheaply.

Runs where kernel TLS works (natively, or in Debian's kernel under QEMU:
`tests/vm/run -- python3 bench/ktls_tx.py`). Each round starts a fresh gateway
pair (offload "kernel", one worker) per mode, alternating the modes, and pushes
--mib MiB one way: client -> originate (the TX under test) -> terminate -> sink.
It reports the throughput and the CPU the originate gateway's data plane spent
(utime + stime from /proc, io-wq threads included), as medians over the rounds.
"""

import argparse
import json
import os
import platform
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import Gateway, identity, wait_for  # noqa: E402
from pki import make_pki  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Sink:
    """Counts what arrives on each connection; one thread per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.received = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.drain, args=(conn,), daemon=True).start()

    def drain(self, conn):
        n = 0
        with conn:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    break
                n += len(data)
        self.received.append(n)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def dataplane_pid(gw):
    m = gw.wait_log(r"data plane pid (\d+)")
    return int(re.search(r"data plane pid (\d+)", gw.log()).group(1)) if m else None


def config(pki, leaf, tunnel, kernel_tx):
    return {"identity": identity(pki, leaf),
            "dataplane": {"workers": 1, "offload": "kernel", "kernel_tx": kernel_tx},
            "tls": {"ciphers": ["AES-128-GCM"]}, "tunnels": [tunnel]}


def one_round(tmp, pki, sink, kernel_tx, nbytes):
    tmp = Path(tempfile.mkdtemp(dir=tmp))  # a fresh ports file each round
    term = {"name": "in", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": sink.addr,
            "allow": [{"dns": "foo.internal"}]}
    b = Gateway(tmp, f"term-{kernel_tx}", config(pki, "bar", term, kernel_tx)).start()
    try:
        orig = {"name": "out", "mode": "originate", "listen": "127.0.0.1:0",
                "peer": f"127.0.0.1:{b.port('in')}", "server_name": "bar.internal",
                "allow": [{"dns": "bar.internal"}]}
        a = Gateway(tmp, f"orig-{kernel_tx}", config(pki, "foo", orig, kernel_tx)).start()
        try:
            dp = dataplane_pid(a)
            before = len(sink.received)
            chunk = os.urandom(1 << 20)
            with socket.create_connection(("127.0.0.1", a.port("out"))) as c:
                # The handshake and handoff happen before the first byte is timed.
                c.sendall(b"x")
                a.wait_log(r"accepted bar.internal", timeout=60)
                cpu0, t0 = cpu_seconds(dp), time.monotonic()
                sent = 1
                while sent < nbytes:
                    n = min(len(chunk), nbytes - sent)
                    c.sendall(chunk[:n])
                    sent += n
                c.shutdown(socket.SHUT_WR)
                c.settimeout(120)
                c.recv(1)  # the terminate side closes once the sink has all of it
                wait_for(lambda: len(sink.received) > before, 120, "the sink to finish")
                elapsed, cpu = time.monotonic() - t0, cpu_seconds(dp) - cpu0
            got = sink.received[before]
            if got != nbytes:
                raise SystemExit(f"{kernel_tx}: sink got {got} bytes of {nbytes}")
            if "TX by splice" not in a.log() and kernel_tx == "splice":
                raise SystemExit(f"splice was not in use:\n{a.log()}")
            return {"mb_per_s": nbytes / elapsed / 1e6, "cpu_s_per_gb": cpu / (nbytes / 1e9)}
        finally:
            a.stop()
    finally:
        b.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if not Path("/proc/net/tls_stat").exists():
        raise SystemExit("ktls_tx: this kernel has no kTLS (/proc/net/tls_stat missing); run "
                         "it in the VM: tests/vm/run -- python3 bench/ktls_tx.py")
    tmp = Path(tempfile.mkdtemp(prefix="ktls-tx-"))
    pki = make_pki(str(tmp / "pki"))
    sink = Sink()
    runs = {"copy": [], "splice": []}
    for r in range(args.rounds):
        order = ["copy", "splice"] if r % 2 == 0 else ["splice", "copy"]
        for mode in order:
            runs[mode].append(one_round(tmp, pki, sink, mode, args.mib << 20))
            print(f"round {r + 1} {mode}: {runs[mode][-1]}", file=sys.stderr)
    out = {"kernel": platform.release(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "mib": args.mib, "rounds": args.rounds, "results": []}
    for mode, rs in runs.items():
        for metric, unit in (("mb_per_s", "MB/s"), ("cpu_s_per_gb", "core-s/GB")):
            v = [x[metric] for x in rs]
            out["results"].append({"contender": f"fedgate-kernel-{mode}", "metric": metric,
                                   "median": round(statistics.median(v), 3),
                                   "min": round(min(v), 3), "max": round(max(v), 3),
                                   "unit": unit})
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
