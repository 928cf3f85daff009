"""Runs each libFuzzer target of tests/fuzz/ (built by `make fuzz`, which `make test` does) for
a bounded time on its seed corpus, tests/fuzz/corpus/NAME/. Any crash, leak, sanitizer report
or timeout fails the test and leaves the input in the test's tmp folder; a crash that was
found becomes a seed, so it is replayed by every later run."""

import glob
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ_DIR = os.environ.get("FUZZ_DIR", os.path.join(os.path.dirname(HERE), "build", "fuzz"))
SECONDS = int(os.environ.get("FUZZ_SECONDS", "15"))
TARGETS = sorted(os.path.basename(p)[len("fuzz_"):-2]
                 for p in glob.glob(os.path.join(HERE, "fuzz", "fuzz_*.c")))


@pytest.mark.parametrize("name", TARGETS)
def test_fuzzer_finds_no_crash_in_its_time(name, tmp_path):
    binary = os.path.join(FUZZ_DIR, f"fuzz_{name}")
    assert os.access(binary, os.X_OK), f"{binary} is not built: run make fuzz"
    seeds = os.path.join(HERE, "fuzz", "corpus", name)
    assert os.path.isdir(seeds) and os.listdir(seeds), f"no seed corpus in {seeds}"
    work = tmp_path / "corpus"
    shutil.copytree(seeds, work)
    art = tmp_path / "artifacts"
    art.mkdir()
    # the seeds first, one by one, so a seed that crashes is named
    r = subprocess.run([binary, "-runs=0", str(work)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"a seed of {name} fails:\n{r.stderr[-4000:]}"
    r = subprocess.run([binary, f"-max_total_time={SECONDS}", "-timeout=10", "-rss_limit_mb=2048",
                        "-max_len=65536", "-print_final_stats=1", f"-artifact_prefix={art}/",
                        str(work)], capture_output=True, text=True, timeout=SECONDS + 120)
    found = sorted(os.listdir(art))
    assert r.returncode == 0 and not found, (
        f"fuzz_{name} failed (rc {r.returncode}); inputs in {art}: {found}\n{r.stderr[-4000:]}")
    assert "stat::number_of_executed_units" in r.stderr, r.stderr[-2000:]
