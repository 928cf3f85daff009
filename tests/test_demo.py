"""`make demo` (scripts/demo.py): the two-cloud federation tutorial with two online CAs, run as
a user runs it, and its promises: the Hello lines, exit status 0 only on success, every child
stopped and the temp dir removed, whether it succeeds or fails.
"""

import os
import re
import stat
import subprocess
import sys
import uuid

from conftest import FEDGATE, ROOT

DEMO = os.path.join(ROOT, "scripts", "demo.py")


def run_demo(fedgate):
    """(returncode, stdout) of the demo run with FEDGATE=@fedgate, and a marker in its
    environment that every child it starts inherits."""
    mark = uuid.uuid4().hex
    env = dict(os.environ, FEDGATE=str(fedgate), FEDGATE_DEMO_TEST_MARK=mark)
    r = subprocess.run([sys.executable, DEMO], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    return r, mark


def processes_with(mark):
    """The pids of live processes whose environment holds @mark."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark.encode() in f.read():
                    pids.append(int(pid))
        except OSError:  # gone, or not ours to read
            pass
    return pids


def removed_tmp(stdout):
    m = re.search(r"^stopped \d+ process\(es\), removed (\S+)$", stdout, re.M)
    assert m, stdout
    return m.group(1)


def test_demo_runs_the_federation_tutorial_and_prints_both_hellos():
    r, mark = run_demo(FEDGATE)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    # the tutorial's commands, printed as they run
    for cmd in ("$ fedgate ca init --name Cloud ", "$ fedgate ca init --name Kubernetes ",
                "$ fedgate ca serve cloud-ca/config/ca.json ",
                "$ fedgate ca serve kube-ca/config/ca.json ", "$ fedgate ca federation ",
                "$ fedgate ca token kube_client ", "$ fedgate ca certificate kube_client ",
                "$ curl -sS --cacert federated.pem --cert kube_client.crt"):
        assert cmd in out, (cmd, out)
    # both CAs federate, each gateway enrolled at its own CA
    assert "subject=CN = Cloud Root CA\n    subject=CN = Kubernetes Root CA\n" in out, out
    assert re.search(r"enrolled at https://localhost:\d+: bar\.internal, serial", out), out
    assert re.search(r"enrolled at https://localhost:\d+: foo\.internal, serial", out), out
    # traffic A -> B -> backend, and the Kubernetes client through B
    assert out.count("ok   Hello foo.internal (cert issued by 'Cloud Root CA')\n") == 3, out
    assert "ok   Hello kube_client (cert issued by 'Kubernetes Root CA')\n" in out, out
    # the impostor is refused by B's name constraint on the Kubernetes root
    assert re.search(r"ok   gateway B: .*refused foo\.internal .*'Kubernetes Root CA'"
                     r".* may not vouch for dns:foo\.internal", out), out
    assert re.search(r"^Demo OK: all 7 checks passed in [\d.]+ s\.$", out, re.M), out
    assert "FAIL" not in out, out
    assert not os.path.exists(removed_tmp(out))
    assert processes_with(mark) == []


def test_demo_exits_nonzero_and_cleans_up_when_a_gateway_fails_to_start(tmp_path):
    # every `fedgate ca ...` works; `fedgate run` (the gateways) exits 2 at once
    wrapper = tmp_path / "fedgate"
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = run ] && {{ echo "broken gateway" >&2; exit 2; }}\n'
                       f'exec {FEDGATE} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    r, mark = run_demo(wrapper)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "DEMO FAILED: gateway-b exited with status 2 before listening" in out, out
    assert "broken gateway" in out, out
    assert "Demo OK" not in out and "Hello" not in out.split("DEMO FAILED")[1], out
    # both CAs, the backend and the failed gateway B are reaped, the temp dir is gone
    assert re.search(r"^stopped 4 process\(es\), removed ", out, re.M), out
    assert not os.path.exists(removed_tmp(out))
    assert processes_with(mark) == []
