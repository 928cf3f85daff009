"""The open files limit fedgate runs with ($.limits.open_files).

Shells and systemd start services with a soft RLIMIT_NOFILE of 1024 (for select(), which
fedgate never calls) and a far higher hard limit; at 2 fds a tunnel in the data plane, 1024
runs out at a few hundred tunnels. So `run` raises the soft limit to the hard one, for the
control process and the data plane it starts; $.limits.open_files asks for a number instead
(above the hard limit only where the process may raise that), and asking for more than it
can have stops `run` with exit 2 and a line that says why.
"""

import json
import re
import subprocess

import pytest

from conftest import FEDGATE, Gateway, gateway_config


def limits_of(pid):
    """(soft, hard) RLIMIT_NOFILE of process @pid, from /proc."""
    with open(f"/proc/{pid}/limits") as f:
        m = re.search(r"^Max open files\s+(\d+)\s+(\d+)", f.read(), re.M)
    return int(m.group(1)), int(m.group(2))


def dataplane_pid(gw):
    return int(re.search(r"data plane pid (\d+)", gw.log()).group(1))


def config(pki, open_files=None):
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
        "allow": [{"dns": "foo.internal"}]}])
    if open_files is not None:
        cfg["limits"] = {"open_files": open_files}
    return cfg


def test_a_soft_limit_of_1024_is_raised_to_the_hard_limit_in_both_processes(pki, gateways):
    gw = gateways("t", config(pki), nofile=(1024, 8192))
    assert limits_of(gw.proc.pid) == (8192, 8192)
    assert limits_of(dataplane_pid(gw)) == (8192, 8192)
    assert re.search(r"open files: soft limit 8192 \(was 1024; hard limit 8192\): room for "
                     r"about \d+ tunnels", gw.log()), gw.log()


def test_open_files_sets_the_soft_limit_below_the_hard_one(pki, gateways):
    gw = gateways("t", config(pki, 2000), nofile=(1024, 8192))
    assert limits_of(gw.proc.pid) == (2000, 8192)
    assert limits_of(dataplane_pid(gw)) == (2000, 8192)


def test_open_files_above_a_hard_limit_that_cannot_rise_is_exit_2(pki, tmp_path):
    # Past fs.nr_open not even root may raise it.
    with open("/proc/sys/fs/nr_open") as f:
        nr_open = int(f.read())
    want = nr_open + 1
    if want > 1 << 30:
        pytest.skip(f"fs.nr_open is {nr_open}: no value above it is a valid open_files")
    gw = Gateway(tmp_path, "t", config(pki, want), nofile=(1024, 4096))
    with pytest.raises(AssertionError, match="t exited 2"):
        gw.start()
    gw.logf.close()
    assert (f"$.limits.open_files: {want} is above the hard limit of 4096 and it cannot be "
            f"raised") in gw.log(), gw.log()


@pytest.mark.parametrize("bad", [0, 255, (1 << 30) + 1, "1024", 1.5])
def test_bad_open_files_is_a_config_error(pki, tmp_path, bad):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(pki, bad)))
    r = subprocess.run([FEDGATE, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2, (bad, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "$.limits.open_files" in lines[0], (bad, r.stderr)
