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
                    "cpu_core_ms_per_handshake", "rss_per_idle_tunnel_kib"]


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
