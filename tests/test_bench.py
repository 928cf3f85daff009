"""Smoke test of `make bench`: the driver runs one short round of plain and
fedgate-userspace and writes results of the documented shape.

No timing is asserted: the numbers only have to exist and be positive.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FEDGATE, ROOT

RUN = os.path.join(ROOT, "bench", "run.py")
PREFIXES = ("fedgate", "stunnel", "haproxy", "nginx", "socat", "wireguard", "openvpn", "plain")
# Every metric a fedgate pair must report, each a positive number.
FEDGATE_POSITIVE = ["throughput_1stream_gbps", "throughput_8streams_gbps", "cpu_at_1gbps_pct",
                    "cpu_core_s_per_gb", "rtt_p50_us", "rtt_p99_us", "handshakes_per_s",
                    "cpu_core_ms_per_handshake", "rss_per_idle_tunnel_kib",
                    "ttfb_new_conn_ms", "ttfb_new_conn_rtts"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not shutil.which("iperf3"):
        pytest.fail("iperf3 is missing: scripts/deps test installs it")
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, RUN, "--quick", "--contenders", "fedgate-userspace", "--rounds", "1",
           "--seconds", "1", "--idle-tunnels", "50", "--transfer-mb", "50",
           "--out", str(out), "--work", str(out / "work"), "--fedgate", FEDGATE]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"bench/run.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    with open(out / "latest.json") as f:
        return json.load(f), (out / "latest.md").read_text(), r.stdout


def test_bench_json_has_the_documented_shape(quick_run):
    doc, _, _ = quick_run
    for key in ("machine", "date", "kernel", "openssl", "cpu_model", "results"):
        assert doc.get(key), f"latest.json lacks {key!r}: {sorted(doc)}"
    assert doc["results"], "latest.json has no results"
    for row in doc["results"]:
        assert sorted(row) == ["contender", "max", "median", "metric", "min", "unit"], row
        assert row["contender"].startswith(PREFIXES), row
        assert all(isinstance(row[k], (int, float)) and math.isfinite(row[k])
                   for k in ("median", "min", "max")), row
        assert row["min"] <= row["median"] <= row["max"], row
        assert row["unit"], row


def test_bench_fedgate_rows_are_positive(quick_run):
    doc, _, out = quick_run
    fg = {r["metric"]: r for r in doc["results"] if r["contender"] == "fedgate-userspace"}
    missing = [m for m in FEDGATE_POSITIVE if m not in fg]
    assert not missing, f"fedgate-userspace lacks {missing}; skipped: {doc['skipped']}\n{out}"
    for m in FEDGATE_POSITIVE:
        assert fg[m]["median"] > 0, fg[m]
    # Added latency is a difference of two noisy numbers: it must exist, its sign may not hold.
    assert "rtt_added_p50_us" in fg and "rtt_added_p99_us" in fg, sorted(fg)


def test_bench_plain_baseline_and_table(quick_run):
    doc, md, _ = quick_run
    plain = {r["metric"] for r in doc["results"] if r["contender"] == "plain"}
    assert {"throughput_1stream_gbps", "rtt_p50_us"} <= plain, plain
    assert "| fedgate-userspace |" in md and "| plain |" in md, md
    # Metrics that do not apply are listed with a reason, never silently missing.
    reasons = {(s["contender"], s["metric"]): s["reason"] for s in doc["skipped"]}
    assert reasons.get(("plain", "cpu_core_s_per_gb")) == "no proxy processes", reasons


def test_bench_measures_the_crypto_floor(quick_run):
    doc, md, _ = quick_run
    aead = {(a["cipher"], a["impl"]): a for a in doc.get("aead") or []}
    assert ("AES-128-GCM", "fedgate") in aead, (doc.get("aead"), doc.get("aead_problem"))
    for key in aead:
        assert aead[key]["core_s_per_gb"] > 0 and aead[key]["seal_gb_per_s"] > 0, aead[key]
    assert "AES-128-GCM on one core" in md, md
    # "plain" picks plain alone: the relay floor is a contender of its own, not in QUICK mode.
    assert not any(r["contender"] == "plain-relay" for r in doc["results"]), doc["results"]


def test_bench_whole_machine_cpu(quick_run):
    doc, md, _ = quick_run
    rows = {(r["contender"], r["metric"]): r for r in doc["results"]}
    # The machine's CPU per GB applies to every row, plain's included (the load's own share).
    for name in ("plain", "fedgate-userspace"):
        assert (name, "cpu_machine_core_s_per_gb") in rows, (name, sorted(rows))
    assert rows[("fedgate-userspace", "cpu_machine_core_s_per_gb")]["median"] > 0
    assert "machine CPU per GB" in md, md


# What fedgate-transparent must report from its short run, each a positive number.
TRANSPARENT_POSITIVE = ["throughput_1stream_gbps", "cpu_core_s_per_gb",
                        "cpu_machine_core_s_per_gb", "rtt_p50_us", "rtt_p99_us"]


@pytest.fixture(scope="module")
def transparent_run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("SKIPPED: fedgate-transparent needs root (network namespaces, nftables)")
    out = tmp_path_factory.mktemp("bench-transparent")
    cmd = [sys.executable, RUN, "--contenders", "fedgate-transparent", "--rounds", "1",
           "--seconds", "1", "--metrics", "throughput1,cpugb,rtt", "--transfer-mb", "50",
           "--out", str(out), "--work", str(out / "work"), "--fedgate", FEDGATE]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"bench/run.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    with open(out / "latest.json") as f:
        doc = json.load(f)
    gone = {u["contender"]: u["reason"] for u in doc["unavailable"]}
    why = gone.get("fedgate-transparent", "")
    if why.startswith(("needs root", "cannot create network namespaces")):
        pytest.skip(f"SKIPPED: fedgate-transparent unavailable here: {why}")
    return doc, out, r.stdout


def test_bench_transparent_row(transparent_run):
    doc, _, out = transparent_run
    gone = {u["contender"]: u["reason"] for u in doc["unavailable"]}
    assert "fedgate-transparent" not in gone, f"{gone['fedgate-transparent']}\n{out}"
    fg = {r["metric"]: r for r in doc["results"] if r["contender"] == "fedgate-transparent"}
    missing = [m for m in TRANSPARENT_POSITIVE if m not in fg]
    assert not missing, f"fedgate-transparent lacks {missing}; skipped: {doc['skipped']}\n{out}"
    for m in TRANSPARENT_POSITIVE:
        assert fg[m]["median"] > 0, fg[m]
    assert "rtt_added_p50_us" in fg and "rtt_added_p99_us" in fg, sorted(fg)
    assert not doc["problems"], doc["problems"]


def test_bench_transparent_configs_follow_the_spec(transparent_run):
    """A captures (redirect) and routes the sinks' own address to B; B is transparent."""
    _, path, _ = transparent_run
    with open(path / "work" / "fedgate-transparent-a.json") as f:
        a = json.load(f)
    with open(path / "work" / "fedgate-transparent-b.json") as f:
        b = json.load(f)
    assert [t.get("capture") for t in a["tunnels"]] == ["redirect"], a["tunnels"]
    assert not any(k in a["tunnels"][0] for k in ("peer", "server_name", "allow")), a
    (route,) = a["routes"]
    assert route["to"] == ["10.77.0.2/32"] and route["peer"] == "10.77.0.2:8443", route
    (tunnel,) = b["tunnels"]
    assert tunnel["mode"] == "terminate" and tunnel["transparent"] is True, tunnel
    assert "upstream" not in tunnel, tunnel
    reach = tunnel["allow"][0]["reach"]
    assert reach and all(r.startswith("10.77.0.2:") for r in reach), reach
    assert sorted(int(r.rsplit(":", 1)[1]) for r in reach) == sorted(map(int, route["ports"]))


# Each CPU figure of a contender's processes and the whole machine's over the same interval.
PROCESS_AND_MACHINE = {"cpu_at_1gbps_pct": "cpu_machine_at_1gbps_pct",
                       "cpu_core_s_per_gb": "cpu_machine_core_s_per_gb",
                       "cpu_core_ms_per_handshake": "cpu_machine_core_ms_per_handshake"}


def test_bench_machine_cpu_beside_every_process_cpu(quick_run):
    doc, md, _ = quick_run
    rows = {(r["contender"], r["metric"]): r for r in doc["results"]}
    for (name, metric) in list(rows):
        if metric in PROCESS_AND_MACHINE:
            machine = rows.get((name, PROCESS_AND_MACHINE[metric]))
            assert machine and machine["median"] > 0, (name, metric, sorted(rows))
    for machine in PROCESS_AND_MACHINE.values():
        assert ("fedgate-userspace", machine) in rows, (machine, sorted(rows))
    # plain has no processes of its own but the machine still works for its load.
    assert ("plain", "cpu_machine_at_1gbps_pct") in rows, sorted(rows)
    assert "machine CPU at 1 Gbit/s" in md and "machine CPU per handshake" in md, md


# The local legs redirect rows (issue 16): fedgate with local_redirect on, and the relay floor
# driven by fedgate's own legs programs (bench/legsrelay.c).
REDIRECT_ROWS = ("fedgate-userspace+redirect", "plain-relay+redirect")


@pytest.fixture(scope="module")
def redirect_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-redirect")
    cmd = [sys.executable, RUN, "--contenders", ",".join(REDIRECT_ROWS), "--rounds", "1",
           "--seconds", "1", "--metrics", "throughput1,cpugb", "--transfer-mb", "50",
           "--out", str(out), "--work", str(out / "work"), "--fedgate", FEDGATE]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"bench/run.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    with open(out / "latest.json") as f:
        return json.load(f), (out / "latest.md").read_text(), out, r.stdout


@pytest.mark.parametrize("name", REDIRECT_ROWS)
def test_bench_redirect_row_runs_or_says_why(redirect_run, name):
    """Numbers, or one clean "unavailable: why" row (no BPF, a fedgate without the key)."""
    doc, md, path, out = redirect_run
    for side in ("terminate", "originate"):
        cfg_path = path / "work" / f"{name}-{side}.json"
        if cfg_path.exists():
            with open(cfg_path) as f:
                assert json.load(f)["dataplane"]["local_redirect"] == "on"
    gone = {u["contender"]: u["reason"] for u in doc["unavailable"]}
    if name in gone:
        assert gone[name].strip(), gone
        assert f"| {name} | unavailable: " in md, md
        print(f"{name} unavailable here: {gone[name]}")
        return
    rows = {r["metric"]: r for r in doc["results"] if r["contender"] == name}
    for m in ("throughput_1stream_gbps", "cpu_core_s_per_gb", "cpu_machine_core_s_per_gb"):
        assert m in rows and rows[m]["median"] > 0, (m, sorted(rows), out)


def test_bench_wan_link_gives_plain_two_and_tls_about_three_round_trips(quick_run):
    """bench/wan.py's model, not a timing goal: plain TCP is connect + request (2 RTT), a TLS
    pair adds its handshake; far below would mean the link does not delay, far above that it
    delays twice."""
    doc, _, out = quick_run
    rtts = {r["contender"]: r["median"] for r in doc["results"]
            if r["metric"] == "ttfb_new_conn_rtts"}
    assert 1.9 <= rtts["plain"] <= 2.9, (rtts, out)
    assert 2.9 <= rtts["fedgate-userspace"] <= 4.4, (rtts, out)
