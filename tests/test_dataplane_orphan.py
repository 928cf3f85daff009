"""The data plane never outlives its control process (issue 14: PR_SET_PDEATHSIG)."""

import os
import signal

from conftest import Gateway, gateway_config, stop_process, wait_for


def children(pid):
    """The pids whose parent is @pid, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) comes after the ")" that ends the command name.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d))
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_data_plane_exits_when_the_control_process_is_killed(pki, tmp_path):
    cfg = gateway_config(pki, "bar", [{
        "name": "t", "mode": "terminate", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
        "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}])
    a = Gateway(tmp_path, "terminate", cfg).start()
    try:
        dp = wait_for(lambda: children(a.proc.pid), 5, "the data plane child")
    except AssertionError:
        stop_process(a.proc)
        raise
    assert len(dp) == 1, f"one data plane expected, found {dp}"
    with open(f"/proc/{dp[0]}/cmdline", "rb") as f:
        assert b"dataplane" in f.read()
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait(5)
    a.logf.close()
    # Reparented to init (or a subreaper), it must still go, not carry orphan tunnels.
    wait_for(lambda: not alive(dp[0]), 3, f"data plane {dp[0]} to exit after its parent died")
