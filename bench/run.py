#!/usr/bin/python3
"""make bench: fedgate side by side with the TLS proxies and VPNs people use today.

Brings up each contender as an originate/terminate pair on loopback (the VPNs
between two network namespaces) in front of the same sinks, and measures them
in the same run: contenders alternate within each round, the order rotates
from round to round, and each metric is reported as the median and the
min-max over the rounds. See bench/README.md for the method.

  bench/run.py [--quick] [--contenders a,b] [--metrics x,y] [--rounds N]
               [--seconds S] [--idle-tunnels N] [--out DIR] [--work DIR]
               [--fedgate PATH] [--tools DIR]

Writes OUT/latest.json, OUT/latest.md and OUT/METRIC.png (OUT defaults to
bench/results); a full run into the default OUT also refreshes the table in
bench/README.md. The VPN contenders need root (network namespaces, tun).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import contenders as cont  # noqa: E402
import load  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
from load import BenchError  # noqa: E402

# What one run measures, in the order it runs inside a contender's slot: the
# idle-tunnel memory first, while the processes are fresh.
GROUPS = {
    "rss": ["rss_per_idle_tunnel_kib"],
    "handshakes": ["handshakes_per_s", "cpu_core_ms_per_handshake",
                   "cpu_machine_core_ms_per_handshake"],
    "throughput1": ["throughput_1stream_gbps"],
    "throughput8": ["throughput_8streams_gbps"],
    "cpu1g": ["cpu_at_1gbps_pct", "cpu_machine_at_1gbps_pct"],
    "cpugb": ["cpu_core_s_per_gb", "cpu_machine_core_s_per_gb"],
    "rtt": ["rtt_p50_us", "rtt_p99_us"],
    "wrk": ["wrk_requests_per_s", "wrk_p99_us"],
    # Last: it restarts the contender over bench/wan.py's delay link between its sides.
    "wan": ["ttfb_new_conn_ms", "ttfb_new_conn_rtts"],
}
QUICK_CONTENDERS = ("plain", "fedgate", "stunnel")
SETTINGS = {
    # rounds; seconds per timed run; at most this many bytes for CPU per GB; round
    # trips; idle tunnels, held in the first idle_rounds rounds only: opening 10,000
    # tunnels takes most of a minute, and memory does not vary like timings do.
    # aead_mb: MB sealed and opened by bench/aead for the crypto floor.
    "full": dict(rounds=5, seconds=3, transfer=2_000_000_000, rtt_count=10000, idle=10000,
                 idle_rounds=1, aead_mb=2000, wan_conns=15),
    "quick": dict(rounds=2, seconds=1, transfer=250_000_000, rtt_count=2000, idle=300,
                  idle_rounds=1, aead_mb=200, wan_conns=5),
}
HANDSHAKE_CONCURRENCY = 16
WRK_CONNECTIONS = 16


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="plain, fedgate and stunnel only, 2 short rounds")
    ap.add_argument("--contenders", help="comma-separated names or prefixes "
                    "(plain is always measured: it is the latency baseline)")
    ap.add_argument("--metrics", help="comma-separated groups: " + ",".join(GROUPS))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=float, help="duration of each timed run")
    ap.add_argument("--transfer-mb", type=int, help="MB moved for cpu_core_s_per_gb")
    ap.add_argument("--idle-tunnels", type=int)
    ap.add_argument("--idle-rounds", type=int, help="rounds that measure idle tunnels")
    ap.add_argument("--wan-rtt-ms", type=float, default=40.0,
                    help="the delay link's round trip for ttfb_new_conn_ms (default 40)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--work", help="scratch dir (default OUT/tmp), emptied first")
    ap.add_argument("--fedgate", default=os.environ.get("FEDGATE",
                                                        os.path.join(ROOT, "build", "fedgate")))
    ap.add_argument("--tools", help="dir with echod, pingpong, conns (default: build them)")
    return ap.parse_args(argv)


def build_tools(workdir):
    """Compile bench/*.c when no --tools dir was given (make bench passes one)."""
    out = os.path.join(workdir, "bin")
    os.makedirs(out, exist_ok=True)
    for name in ("echod", "pingpong", "conns"):
        subprocess.run(["cc", "-std=gnu11", "-O2", "-Wall", "-D_GNU_SOURCE",
                        os.path.join(HERE, name + ".c"), "-o", os.path.join(out, name)],
                       check=True)
    return out


def machine_info(fedgate):
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    cpus = os.cpu_count()
    ssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    try:
        fg = subprocess.run([fedgate, "version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        fg = "fedgate not built"
    return {"machine": f"{model}, {cpus} CPUs, {mem_kib / 1048576:.1f} GiB RAM",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "kernel": platform.release(), "openssl": ssl or "openssl not found",
            "cpu_model": model, "cpus": cpus, "fedgate": fg}


def tool_versions():
    cmds = {"iperf3": ["iperf3", "--version"], "wrk": ["wrk", "-v"],
            "stunnel": ["stunnel", "-version"], "haproxy": ["haproxy", "-v"],
            "nginx": ["nginx", "-v"], "socat": ["socat", "-V"],
            "wireguard-go": ["wireguard-go", "--version"], "openvpn": ["openvpn", "--version"]}
    out = {}
    for name, argv in cmds.items():
        if not shutil.which(argv[0]):
            continue
        r = subprocess.run(argv, capture_output=True, text=True)
        text = (r.stdout + r.stderr).strip().splitlines()
        line = next((ln for ln in text if any(ch.isdigit() for ch in ln)), "")
        out[name] = line.strip()[:120]
    return out


def measure_aead(pin, tools, fedgate, mb):
    """bench/aead on the proxies' CPU: seal + open per GB, fedgate's record layer and OpenSSL's.

    Returns (rows, problem): the tool's JSON lines, or None and why there are none.
    """
    exe = next((p for p in (os.path.join(tools, "aead"),
                            os.path.join(os.path.dirname(fedgate), "bench", "aead"))
                if os.access(p, os.X_OK)), None)
    if not exe:
        return None, "bench/aead is not built (make bench and make test build it)"
    r = subprocess.run(pin.proxy([exe, str(mb)]), capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None, f"bench/aead exited {r.returncode}: {r.stderr.strip()[:300]}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()], None


def pick(all_contenders, wanted):
    """The contenders named (or prefixed) in @wanted, in table order, plain first.

    A name that is exactly a contender's picks that one alone: "plain" is not "plain-relay".
    """
    names = {c.name for c in all_contenders}

    def named(c, w):
        if c.name == w:
            return True
        # An opt-in row (bench/README.md) only by its name or a prefix of its family's.
        if c.opt_in and not w.startswith(c.family):
            return False
        return w not in names and c.name.startswith(w)
    chosen = [c for c in all_contenders
              if c.name == "plain" or any(named(c, w) for w in wanted)]
    unknown = [w for w in wanted if not any(c.name.startswith(w) for c in all_contenders)]
    if unknown:
        sys.exit(f"bench: unknown contender(s) {', '.join(unknown)}; known: "
                 + ", ".join(c.name for c in all_contenders))
    return chosen


class Bench:
    def __init__(self, args, settings, ctx, tools, groups):
        self.args, self.s, self.ctx, self.tools = args, settings, ctx, tools
        self.pin = ctx.pin
        self.groups = groups
        self.samples = {}  # contender -> metric -> [values]
        self.by_round = {}  # (contender, metric) -> {round: value}
        self.problems = []  # {contender, metric, reason}
        self.idle_counts = {}
        self.restart = False  # set once idle tunnels have been held

    def record(self, c, metric, value, rnd):
        self.samples.setdefault(c.name, {}).setdefault(metric, []).append(value)
        self.by_round.setdefault((c.name, metric), {})[rnd] = value

    def problem(self, c, metric, reason, rnd):
        self.problems.append({"contender": c.name, "metric": metric, "round": rnd + 1,
                              "reason": reason})
        print(f"  {c.name} {metric}: {reason}", flush=True)

    # ---- one measurement each; they raise BenchError

    def m_rss(self, c, rnd):
        if rnd >= self.s["idle_rounds"]:
            return
        n = min(self.s["idle"], c.idle_cap())
        self.idle_counts[c.name] = n
        self.restart = True
        base, fds = procs.pss_kib(c.roots), procs.fd_count(c.roots)
        holder, rep = load.conns_idle(self.pin, self.tools, c.host, c.ports["echo"], n, 64,
                                      self.ctx.path("conns-idle.log"), c.client_ns)
        try:
            time.sleep(0.5)
            full = procs.pss_kib(c.roots)
        finally:
            load.release(holder)
        self.record(c, "rss_per_idle_tunnel_kib", (full - base) / n, rnd)
        # The next measurement starts once the proxies have closed the idle tunnels.
        if not procs.wait_fds(c.roots, fds + 16, 120):
            self.problem(c, "rss_per_idle_tunnel_kib", "the idle tunnels were still not all "
                         f"closed 120 s after their clients closed ({procs.fd_count(c.roots)} "
                         f"descriptors, {fds} before)", rnd)

    def m_handshakes(self, c, rnd):
        t0, m0 = procs.cpu_seconds(c.roots), procs.machine_cpu_seconds()
        rep = load.conns_rate(self.pin, self.tools, c.host, c.ports["echo"],
                              self.s["seconds"], HANDSHAKE_CONCURRENCY, c.client_ns)
        used, machine = procs.cpu_seconds(c.roots) - t0, procs.machine_cpu_seconds() - m0
        if rep["completed"] == 0:
            raise BenchError(f"no connection completed ({rep['errors']} errors)")
        self.record(c, "handshakes_per_s", rep["per_s"], rnd)
        if c.roots:
            self.record(c, "cpu_core_ms_per_handshake", used * 1000 / rep["completed"], rnd)
        self.record(c, "cpu_machine_core_ms_per_handshake", machine * 1000 / rep["completed"],
                    rnd)

    def m_throughput1(self, c, rnd):
        gbps, _, _, _ = load.iperf(self.pin, c.host, c.ports["iperf"], c.client_ns,
                                   seconds=self.s["seconds"])
        self.record(c, "throughput_1stream_gbps", gbps, rnd)

    def m_throughput8(self, c, rnd):
        gbps, _, _, _ = load.iperf(self.pin, c.host, c.ports["iperf"], c.client_ns,
                                   seconds=self.s["seconds"], streams=8)
        self.record(c, "throughput_8streams_gbps", gbps, rnd)

    def m_cpu1g(self, c, rnd):
        secs = self.s["seconds"]
        warm = min(1.0, 0.3 * secs)

        def probe(proc):
            # Steady state only: skip the connection setup (handshakes) and the end.
            time.sleep(warm)
            t0, c0, m0 = time.monotonic(), procs.cpu_seconds(c.roots), procs.machine_cpu_seconds()
            time.sleep(max(0.2, secs - warm - 0.3))
            dt = time.monotonic() - t0
            return ((procs.cpu_seconds(c.roots) - c0) / dt,
                    (procs.machine_cpu_seconds() - m0) / dt)

        gbps, _, _, (cores, machine) = load.iperf(self.pin, c.host, c.ports["iperf"],
                                                  c.client_ns, seconds=secs, bitrate="1G",
                                                  probe=probe)
        if "cpu_at_1gbps_pct" not in c.skip:
            self.record(c, "cpu_at_1gbps_pct", cores * 100, rnd)
        # As for CPU per GB: the load's and the sinks' share too, and with a local redirect
        # the copies that moved into the application's own sendmsg.
        self.record(c, "cpu_machine_at_1gbps_pct", machine * 100, rnd)
        if gbps < 0.95:
            self.problem(c, "cpu_at_1gbps_pct", f"carried only {gbps:.2f} Gbit/s of the 1 "
                         "offered: the CPU shown is at that rate", rnd)

    def m_cpugb(self, c, rnd):
        # A slow contender moves what it carries in about 2 timed runs, not 2 GB.
        nbytes = self.s["transfer"]
        gbps = self.by_round.get((c.name, "throughput_1stream_gbps"), {}).get(rnd)
        if gbps:
            nbytes = int(min(nbytes, max(50e6, gbps / 8 * 1e9 * 2 * self.s["seconds"])))
        t0, m0 = procs.cpu_seconds(c.roots), procs.machine_cpu_seconds()
        _, nbytes, _, _ = load.iperf(self.pin, c.host, c.ports["iperf"], c.client_ns,
                                     nbytes=nbytes)
        used, machine = procs.cpu_seconds(c.roots) - t0, procs.machine_cpu_seconds() - m0
        if "cpu_core_s_per_gb" not in c.skip:
            self.record(c, "cpu_core_s_per_gb", used / (nbytes / 1e9), rnd)
        # The whole machine: the load and the sinks too (plain's row is their share), and
        # the kernel work that no process is charged with (the VPNs' tun, veth and UDP).
        self.record(c, "cpu_machine_core_s_per_gb", machine / (nbytes / 1e9), rnd)

    def m_rtt(self, c, rnd):
        rep = load.pingpong(self.pin, self.tools, c.host, c.ports["echo"], self.s["rtt_count"],
                            c.client_ns)
        self.record(c, "rtt_p50_us", rep["p50_us"], rnd)
        self.record(c, "rtt_p99_us", rep["p99_us"], rnd)

    def m_wan(self, c, rnd):
        """ttfb_new_conn_ms: connect() to the first byte of the answer, one request per new
        connection, over a WAN of --wan-rtt-ms between the contender's sides (for plain,
        between the client and the sinks). The median of wan_conns connections."""
        rtt = self.args.wan_rtt_ms
        c.stop()
        self.ctx.wan_rtt_ms = rtt
        try:
            c.start(self.upstream)
            time.sleep(getattr(c, "settle_s", 0))
            times = load.ttfb(c.host, c.ports["http"], self.s["wan_conns"], c.client_ns)
        finally:
            self.ctx.wan_rtt_ms = None
            c.stop()
            c.start(self.upstream)
        p50 = statistics.median(times)
        self.record(c, "ttfb_new_conn_ms", p50, rnd)
        self.record(c, "ttfb_new_conn_rtts", p50 / rtt, rnd)

    def m_wrk(self, c, rnd):
        rps, p99 = load.wrk(self.pin, c.host, c.ports["http"], self.s["seconds"],
                            WRK_CONNECTIONS, c.client_ns)
        self.record(c, "wrk_requests_per_s", rps, rnd)
        self.record(c, "wrk_p99_us", p99, rnd)

    # ----

    def slot(self, c, rnd):
        """Start @c in front of fresh sinks, run every selected group, stop it."""
        sinks = load.Sinks(self.tools, self.ctx.workdir, self.pin, c.sink_ns)
        t0 = time.monotonic()
        self.restart = False
        try:
            upstream = self.upstream = sinks.start()
            c.start(upstream)
            # A tunnel that does not work fails here, not as odd numbers later.
            load.pingpong(self.pin, self.tools, c.host, c.ports["echo"], 20, c.client_ns)
            for group in self.groups:
                if all(m in c.skip for m in GROUPS[group]):
                    continue
                if self.restart:
                    # Fresh processes again: what 10,000 tunnels left behind (heap,
                    # thread stacks, pools) must not weigh on this round's timings.
                    self.restart = False
                    c.stop()
                    c.start(upstream)
                try:
                    getattr(self, "m_" + group)(c, rnd)
                except (BenchError, OSError, ValueError, KeyError) as e:
                    self.problem(c, GROUPS[group][0], f"{type(e).__name__}: {e}"
                                 if not isinstance(e, BenchError) else str(e), rnd)
        finally:
            c.stop()
            sinks.stop()
        print(f"  {c.name}: {time.monotonic() - t0:.1f}s", flush=True)

    def added_latency(self):
        """rtt_added_*: the contender's round trip minus plain's in the same round."""
        for c_name in list(self.samples):
            if c_name == "plain":
                continue
            for pct in ("p50", "p99"):
                mine = self.by_round.get((c_name, f"rtt_{pct}_us"), {})
                base = self.by_round.get(("plain", f"rtt_{pct}_us"), {})
                values = [mine[r] - base[r] for r in sorted(mine) if r in base]
                if values:
                    self.samples[c_name][f"rtt_added_{pct}_us"] = values


def main(argv=None):
    args = parse_args(argv)
    s = dict(SETTINGS["quick" if args.quick else "full"])
    for key, val in (("rounds", args.rounds), ("seconds", args.seconds),
                     ("idle", args.idle_tunnels), ("idle_rounds", args.idle_rounds)):
        if val is not None:
            s[key] = val
    if args.transfer_mb:
        s["transfer"] = args.transfer_mb * 1_000_000
    groups = list(GROUPS)
    if args.metrics:
        groups = [g for g in GROUPS if g in args.metrics.split(",")]
        bad = set(args.metrics.split(",")) - set(GROUPS)
        if bad:
            sys.exit(f"bench: unknown metric group(s) {', '.join(sorted(bad))}; "
                     f"known: {', '.join(GROUPS)}")
    if not shutil.which("iperf3"):
        sys.exit("bench: iperf3 is not installed (scripts/deps bench)")

    os.makedirs(args.out, exist_ok=True)
    workdir = os.path.abspath(args.work or os.path.join(args.out, "tmp"))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    tools = os.path.abspath(args.tools) if args.tools else build_tools(workdir)

    # SIGTERM unwinds like Ctrl-C so that every process and namespace is cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from pki import make_pki
    fd_limit = load.raise_nofile()
    pin = load.Pin()
    ctx = cont.Ctx(make_pki(os.path.join(workdir, "pki")), workdir, pin,
                   os.path.abspath(args.fedgate), fd_limit, tools)
    netns = cont.Netns(os.getpid() % 100000)
    wanted = (args.contenders.split(",") if args.contenders
              else QUICK_CONTENDERS if args.quick else [""])
    chosen = pick(cont.make_all(ctx, netns), wanted)
    if not shutil.which("wrk"):
        for c in chosen:
            c.skip.setdefault("wrk_requests_per_s", "wrk is not installed (scripts/deps bench)")
            c.skip.setdefault("wrk_p99_us", "wrk is not installed (scripts/deps bench)")
    meta = machine_info(ctx.fedgate)
    meta.update({"mode": "quick" if args.quick else "full", "rounds": s["rounds"],
                 "pinning": pin.describe(), "nofile_limit": fd_limit,
                 "settings": {"seconds": s["seconds"], "transfer_bytes": s["transfer"],
                              "rtt_round_trips": s["rtt_count"], "idle_tunnels": s["idle"],
                              "idle_tunnel_rounds": min(s["idle_rounds"], s["rounds"]),
                              "handshake_concurrency": HANDSHAKE_CONCURRENCY,
                              "wrk_connections": WRK_CONNECTIONS},
                 "versions": tool_versions()})
    print(f"bench: {meta['machine']}, {meta['kernel']}, {meta['openssl']}; {pin.describe()}",
          flush=True)

    meta["aead"], why = measure_aead(pin, tools, ctx.fedgate, s["aead_mb"])
    if why:
        meta["aead_problem"] = why
        print(f"bench: crypto floor not measured: {why}", flush=True)

    unavailable = []
    bench = Bench(args, s, ctx, tools, groups)
    try:
        running = []
        for c in chosen:
            reason = c.unavailable()
            if reason:
                unavailable.append({"contender": c.name, "reason": reason})
                print(f"bench: {c.name} unavailable: {reason}", flush=True)
            else:
                running.append(c)
        for rnd in range(s["rounds"]):
            order = running[rnd % len(running):] + running[:rnd % len(running)]
            print(f"bench: round {rnd + 1}/{s['rounds']}: {', '.join(c.name for c in order)}",
                  flush=True)
            for c in order:
                if any(u["contender"] == c.name for u in unavailable):
                    continue
                try:
                    bench.slot(c, rnd)
                except (BenchError, OSError, ValueError) as e:
                    # A contender that cannot even start is reported, not silently dropped.
                    if c.name not in bench.samples:
                        unavailable.append({"contender": c.name,
                                            "reason": f"could not start: {e}"})
                    bench.problem(c, "start", str(e), rnd)
    finally:
        if netns.up:
            netns.destroy()

    bench.added_latency()
    order = [c.name for c in chosen]
    rows = report.aggregate(bench.samples, order)
    skipped = []
    gone = {u["contender"] for u in unavailable}
    wanted_metrics = [m for g in groups for m in GROUPS[g]]
    if "rtt" in groups:
        wanted_metrics += ["rtt_added_p50_us", "rtt_added_p99_us"]
    for c in chosen:
        if c.name in gone:
            continue
        for m in wanted_metrics:
            if m in bench.samples.get(c.name, {}):
                continue
            reason = c.skip.get(m) or next(
                (p["reason"] for p in bench.problems
                 if p["contender"] == c.name and p["metric"] in (m, GROUPS_OF.get(m))),
                "no successful round")
            skipped.append({"contender": c.name, "metric": m, "reason": reason})
    meta["idle_tunnels_per_contender"] = bench.idle_counts
    meta["problems"] = bench.problems
    json_path = os.path.join(args.out, "latest.json")
    report.write_json(json_path, meta, rows, skipped, unavailable)
    table = report.markdown(meta, rows, order, skipped, unavailable)
    pngs, chart_problem = report.write_charts(args.out, workdir, rows, order, s["rounds"])
    if chart_problem:
        table += f"\n{chart_problem}\n"
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(table)
    if not args.quick and os.path.abspath(args.out) == os.path.join(HERE, "results"):
        report.update_readme(os.path.join(HERE, "README.md"), table)
    print(table)
    print(f"bench: wrote {json_path}, latest.md and {len(pngs)} chart(s) in {args.out}")
    return 0


# The first metric of each group names the group in problem reports.
GROUPS_OF = {m: ms[0] for ms in GROUPS.values() for m in ms}

if __name__ == "__main__":
    sys.exit(main())
