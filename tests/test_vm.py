"""The kernel TLS suite, inside Debian's own kernel under QEMU (tests/vm/run).

One VM boot runs every pass of tests/vm/suite. Where QEMU or the kernel package
cannot be had, this is a loud SKIP, never a silent pass.
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import FEDGATE, IN_VM, ROOT, UNIT_DIR

VM_TIMEOUT = 1500  # the suite aims at under 10 min; a busy host can make it far slower


@pytest.mark.skipif(IN_VM, reason="already inside the VM")
def test_kernel_tls_suite_in_vm():
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("SKIP: qemu-system-x86_64 missing: kernel TLS tests did not run")
    env = dict(os.environ, VM_TIMEOUT=str(VM_TIMEOUT))
    # The VM tests the very binaries of this run (a BUILD= or SANITIZE=1 build included).
    cmd = [os.path.join(ROOT, "tests/vm/run"), "--", "env", f"FEDGATE={FEDGATE}",
           f"UNIT_DIR={UNIT_DIR}", "tests/vm/suite"]
    r = subprocess.run(cmd, cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=VM_TIMEOUT + 120)
    out = r.stdout + r.stderr
    # Kept for a look after the fact: the VM's tmpfs and its logs are gone.
    os.makedirs(os.path.join(ROOT, "build", "vm"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "vm", "last-suite.log"), "w") as f:
        f.write(out)
    print(out)
    if r.returncode == 125:
        pytest.skip("SKIP: the VM could not be started: kernel TLS tests did not run:\n"
                    + out[-2000:])
    summaries = re.findall(r"^(\d+ passed.*|.*\d+ failed.*)$", r.stdout, re.M)
    assert r.returncode == 0, f"VM suite failed (rc {r.returncode}):\n{out[-12000:]}"
    # One summary per pass of the suite, none with a failure: a pass that printed nothing died.
    with open(os.path.join(ROOT, "tests/vm/suite"), encoding="utf-8") as f:
        passes = len(re.findall(r"^pass \S", f.read(), re.M))
    # "2 xfailed" is not a failure: only "N failed" is.
    assert len(summaries) == passes and not any(re.search(r"\b\d+ failed", s) for s in summaries), \
        out[-4000:]
