"""Results of `make bench`: latest.json, latest.md and one gnuplot PNG per metric."""

import json
import os
import shutil
import statistics
import subprocess

# name, unit, column header, higher is better
METRICS = [
    ("throughput_1stream_gbps", "Gbit/s", "1 stream", True),
    ("throughput_8streams_gbps", "Gbit/s", "8 streams", True),
    ("cpu_at_1gbps_pct", "% of a core", "CPU at 1 Gbit/s", False),
    ("cpu_machine_at_1gbps_pct", "% of a core", "machine CPU at 1 Gbit/s", False),
    ("cpu_core_s_per_gb", "core-s/GB", "CPU per GB", False),
    ("cpu_machine_core_s_per_gb", "core-s/GB", "machine CPU per GB", False),
    ("rtt_p50_us", "us", "RTT p50", False),
    ("rtt_p99_us", "us", "RTT p99", False),
    ("rtt_added_p50_us", "us", "added p50", False),
    ("rtt_added_p99_us", "us", "added p99", False),
    ("wrk_requests_per_s", "req/s", "wrk req/s", True),
    ("wrk_p99_us", "us", "wrk p99", False),
    ("handshakes_per_s", "1/s", "handshakes/s", True),
    ("cpu_core_ms_per_handshake", "core-ms", "CPU per handshake", False),
    ("cpu_machine_core_ms_per_handshake", "core-ms", "machine CPU per handshake", False),
    ("rss_per_idle_tunnel_kib", "KiB", "RSS per idle tunnel", False),
    ("ttfb_new_conn_ms", "ms", "first byte, new conn, WAN", False),
    ("ttfb_new_conn_rtts", "RTTs", "first byte in RTTs", False),
]
UNITS = {m: u for m, u, _, _ in METRICS}


def aggregate(samples, order):
    """samples {contender: {metric: [values]}} -> result rows, in table order."""
    rows = []
    for name in order:
        for metric, unit, _, _ in METRICS:
            values = samples.get(name, {}).get(metric)
            if not values:
                continue
            rows.append({"contender": name, "metric": metric,
                         "median": _round(statistics.median(values)),
                         "min": _round(min(values)), "max": _round(max(values)),
                         "unit": unit})
    return rows


def _round(x):
    return float(f"{x:.4g}")


def _fmt(x):
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def write_json(path, meta, rows, skipped, unavailable):
    doc = dict(meta)
    doc["results"] = rows
    doc["skipped"] = skipped
    doc["unavailable"] = unavailable
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def markdown(meta, rows, order, skipped, unavailable):
    """The results table: one row per contender, one column per metric."""
    by = {(r["contender"], r["metric"]): r for r in rows}
    cols = [m for m in METRICS if any(r["metric"] == m[0] for r in rows)]
    out = [f"Ran {meta['date']} on {meta['machine']}; kernel {meta['kernel']}, "
           f"{meta['openssl']}; {meta['pinning']}; {meta['rounds']} round(s), "
           f"{meta['mode']} mode. Cells: median (min-max).", ""]
    out.append("| contender | " + " | ".join(f"{h} ({u})" for _, u, h, _ in cols) + " |")
    out.append("|---|" + "---|" * len(cols))
    gone = {u["contender"]: u["reason"] for u in unavailable}
    for name in order:
        if name in gone:
            reason = gone[name].replace("|", "/")
            out.append(f"| {name} | unavailable: {reason} |" + " |" * (len(cols) - 1))
            continue
        cells = []
        for metric, _, _, _ in cols:
            r = by.get((name, metric))
            cells.append(f"{_fmt(r['median'])} ({_fmt(r['min'])}-{_fmt(r['max'])})" if r
                         else "-")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += floor(meta, by)
    if skipped:
        out += ["", "Not measured:", ""]
        out += [f"- {s['contender']} {s['metric']}: {s['reason']}" for s in skipped]
    return "\n".join(out) + "\n"


def floor(meta, by):
    """Lines on the crypto cost and the floor of a userspace TLS pair, when measured."""
    aead = {(a["cipher"], a["impl"]): a for a in meta.get("aead") or []}
    mine, ossl = aead.get(("AES-128-GCM", "fedgate")), aead.get(("AES-128-GCM", "openssl"))
    if not mine:
        why = meta.get("aead_problem")
        return ["", f"Crypto floor not measured: {why}"] if why else []
    out = ["", f"AES-128-GCM on one core (`bench/aead`, 16 KiB records, seal then open): "
           f"fedgate's record layer {mine['seal_gb_per_s']:.2f} GB/s, "
           f"{mine['core_s_per_gb']:.2f} core-s/GB for both"]
    if ossl:
        out[-1] += (f"; OpenSSL's EVP {ossl['seal_gb_per_s']:.2f} GB/s, "
                    f"{ossl['core_s_per_gb']:.2f} core-s/GB")
    out[-1] += "."
    relay = by.get(("plain-relay", "cpu_core_s_per_gb"))
    if relay:
        total = relay["median"] + mine["core_s_per_gb"]
        out += ["", f"Floor of a userspace TLS pair on this machine: plain-relay's "
                f"{_fmt(relay['median'])} + seal and open {mine['core_s_per_gb']:.2f} = "
                f"{_fmt(total)} core-s/GB, that is at most {_fmt(8 / total)} Gbit/s "
                "through a pair on one core."]
    return out


def write_charts(outdir, workdir, rows, order, rounds):
    """One bar chart per metric (median, min-max error bars). Returns (paths, problem)."""
    if not shutil.which("gnuplot"):
        return [], "gnuplot is not installed (scripts/deps bench): no charts"
    paths = []
    for metric, unit, header, higher in METRICS:
        mine = {r["contender"]: r for r in rows if r["metric"] == metric}
        if not mine:
            continue
        dat = os.path.join(workdir, f"{metric}.dat")
        with open(dat, "w") as f:
            for name in order:
                if name in mine:
                    r = mine[name]
                    f.write(f"\"{name}\" {r['median']} {r['min']} {r['max']}\n")
        png = os.path.join(outdir, f"{metric}.png")
        better = "higher" if higher else "lower"
        yrange = "[0:*]" if all(r["min"] >= 0 for r in mine.values()) else "[*:*]"
        script = "\n".join([
            "set terminal pngcairo size 900,420 font ',10' noenhanced",
            f"set output '{png}'",
            f"set title \"{header}: {metric} ({unit}), {better} is better; "
            f"median and min-max over {rounds} round(s)\"",
            "set style data histogram", "set style histogram errorbars gap 2 lw 1",
            "set style fill solid 0.7 border -1", "set boxwidth 0.8", f"set yrange {yrange}",
            "set grid ytics", "unset key", "set xtics rotate by -25",
            f"set ylabel '{unit}'",
            f"plot '{dat}' using 2:3:4:xtic(1) lc rgb '#4477aa'", ""])
        r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
        if r.returncode:
            return paths, f"gnuplot failed on {metric}: {r.stderr.strip()[:200]}"
        paths.append(png)
    return paths, None


def update_readme(readme, table):
    """Replace the block between the results markers of bench/README.md with @table."""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    try:
        with open(readme) as f:
            text = f.read()
    except OSError:
        return False
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(readme, "w") as f:
        f.write(head + begin + "\n" + table + end + tail)
    return True
