"""The handshake threads under ThreadSanitizer, in every `make test`: tests/test_handshake_threads.py
runs again on build/tsan/fedgate (`make test` builds it; `make test-tsan` runs more files there). A
report makes the gateway exit 66 and puts "WARNING: ThreadSanitizer" in its log, which the
gateways fixture fails on; here the whole file must pass. Skips loudly where no TSan build was
made (a sanitizer build of the suite: `make test SANITIZE=1`)."""

import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TSAN_FEDGATE = os.environ.get("TSAN_FEDGATE")


def test_handshake_threads_pass_under_threadsanitizer_with_no_report(tmp_path):
    if not TSAN_FEDGATE or not os.access(TSAN_FEDGATE, os.X_OK):
        pytest.skip("SKIP: no ThreadSanitizer build (TSAN_FEDGATE unset or not built: "
                    "make test builds build/tsan/fedgate; SANITIZE=1 runs do not)")
    env = dict(os.environ, FEDGATE=TSAN_FEDGATE,
               TSAN_OPTIONS="exitcode=66 second_deadlock_stack=1 suppressions="
                            + os.path.join(HERE, "tsan.supp"))
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        "--basetemp", str(tmp_path / "t"),
                        os.path.join(HERE, "test_handshake_threads.py")],
                       capture_output=True, text=True, env=env, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "ThreadSanitizer" not in out, out[-6000:]
    m = re.search(r"(\d+) passed", out)
    assert m and int(m.group(1)) >= 5 and " skipped" not in out, out[-3000:]
