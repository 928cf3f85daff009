#!/usr/bin/python3
"""Handshake cost: interleaved A/B rounds of fedgate builds (and nginx), and perf profiles.

Starts each arm exactly as bench/run.py's handshakes group does (bench/contenders.py's
Fedgate("userspace") or Nginx pair, the same PKI, sinks and CPU pinning), then runs
`conns rate` against it and counts the arm's process trees' CPU per completed connection
(= one full mutual handshake on each side, as cpu_core_ms_per_handshake).

  hs.py ab OUT ROUNDS SECONDS ARM...     ARM: nginx, or NAME=PATH/TO/fedgate[,KEY=JSON...]
        (KEY=JSON: a member of both gateways' "tls" object, e.g. verify_cache=0)
        each round runs every arm once, in shuffled order; prints a table of medians and
        the spread, and each arm's paired per-round ratio against the first arm.
  hs.py perf OUT SECONDS ARM [PERF ARGS]  perf record over the arm's process trees while
        the load runs (default: -F 2999 --call-graph dwarf,16384).
"""

import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import contenders as cont  # noqa: E402
import load  # noqa: E402
import procs  # noqa: E402
from pki import make_pki  # noqa: E402

CONCURRENCY = 16  # bench/run.py HANDSHAKE_CONCURRENCY


def setup(out):
    os.makedirs(out, exist_ok=True)
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    tools = os.path.join(ROOT, "build", "bench")
    load.raise_nofile()
    pin = load.Pin()
    pki_dir = os.path.join(work, "pki")
    pki = (json.load(open(os.path.join(pki_dir, "pki.json")))
           if os.path.exists(os.path.join(pki_dir, "pki.json")) else make_pki(pki_dir))
    return work, tools, pin, pki


def contender(arm, work, pin, pki, tools):
    name, _, rest = arm.partition("=")
    path, *extra = rest.split(",") if rest else [""]
    tls = {k: json.loads(v) for k, v in (e.split("=", 1) for e in extra)}
    ctx = cont.Ctx(pki, work, pin, os.path.abspath(path) if path else "", 4096, tools)
    if name == "nginx":
        c = cont.Nginx(ctx)
    else:
        c = cont.Fedgate(ctx, "userspace")
        c.name = name
        base = c._config

        def config(leaf, tunnels):
            cfg = base(leaf, tunnels)
            cfg["tls"].update(tls)
            return cfg
        c._config = config
    return name, c


def measure(c, pin, tools, seconds):
    t0, m0 = procs.cpu_seconds(c.roots), procs.machine_cpu_seconds()
    rep = load.conns_rate(pin, tools, c.host, c.ports["echo"], seconds, CONCURRENCY)
    used, machine = procs.cpu_seconds(c.roots) - t0, procs.machine_cpu_seconds() - m0
    n = max(1, rep["completed"])
    return {"per_s": rep["per_s"], "core_ms": used * 1000 / n, "machine_ms": machine * 1000 / n,
            "errors": rep["errors"]}


def run_arm(arm, work, pin, pki, tools, seconds, during=None):
    name, c = contender(arm, work, pin, pki, tools)
    sinks = load.Sinks(tools, work, pin)
    try:
        c.start(sinks.start())
        load.pingpong(pin, tools, c.host, c.ports["echo"], 20)
        # A short warm-up: the first handshakes fault in pages and fill caches.
        load.conns_rate(pin, tools, c.host, c.ports["echo"], 0.5, CONCURRENCY)
        hook = during(c) if during else None
        try:
            return name, measure(c, pin, tools, seconds)
        finally:
            if hook:
                hook()
    finally:
        c.stop()
        sinks.stop()


def ab(out, rounds, seconds, arms):
    work, tools, pin, pki = setup(out)
    res = {a.partition("=")[0]: [] for a in arms}
    for r in range(rounds):
        order = list(arms)
        random.shuffle(order)
        for arm in order:
            name, m = run_arm(arm, work, pin, pki, tools, seconds)
            res[name].append(m)
            print(f"round {r + 1} {name}: {m['per_s']:.0f}/s {m['core_ms']:.3f} core-ms "
                  f"(machine {m['machine_ms']:.3f}) errors {m['errors']}", flush=True)
    with open(os.path.join(out, "ab.json"), "w") as f:
        json.dump(res, f, indent=1)
    base = arms[0].partition("=")[0]
    print(f"\n| arm | handshakes/s | core-ms/handshake | machine core-ms | paired ratio to {base} |")
    print("|---|---|---|---|---|")
    for name, ms in res.items():
        cm = [m["core_ms"] for m in ms]
        ratio = [m["core_ms"] / b["core_ms"] for m, b in zip(ms, res[base])]
        print(f"| {name} | {statistics.median(m['per_s'] for m in ms):.0f} "
              f"| {statistics.median(cm):.3f} ({min(cm):.3f}-{max(cm):.3f}) "
              f"| {statistics.median(m['machine_ms'] for m in ms):.3f} "
              f"| {statistics.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f}) |")


def perf(out, seconds, arm, perf_args):
    work, tools, pin, pki = setup(out)
    data = os.path.join(out, arm.partition("=")[0] + ".perf.data")

    def during(c):
        pids = ",".join(str(p) for p in procs.tree(c.roots))
        p = subprocess.Popen(["perf", "record", "-o", data, "-p", pids] + perf_args,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

        def stop():
            p.send_signal(2)
            p.wait(60)
        return stop
    name, m = run_arm(arm, work, pin, pki, tools, seconds, during)
    print(json.dumps({name: m}))
    print(data)


def main():
    cmd = sys.argv[1]
    if cmd == "ab":
        ab(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:])
    elif cmd == "perf":
        perf(sys.argv[2], float(sys.argv[3]), sys.argv[4],
             sys.argv[5:] or ["-F", "2999", "--call-graph", "dwarf,16384"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
