"""What ps, top and ss call fedgate's two processes.

The data plane is exec'd as /proc/self/exe, so the kernel would name it "exe": in `ps -o
comm`, `top` and `ss -p` nobody could tell it is fedgate's. It names itself "fedgate-dp"
(its worker threads too); the control process keeps the name of its binary ("fedgate").
"""

import os
import re
import socket
import subprocess

from conftest import FEDGATE, connect, recv_all


def comm(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/comm" if tid else f"/proc/{pid}/comm"
    with open(path) as f:
        return f.read().strip()


def test_the_data_plane_is_fedgate_dp_in_ps_and_ss_and_the_control_process_fedgate(
        tunnel_pair):
    a, b, up = tunnel_pair()
    dp = int(re.search(r"data plane pid (\d+)", b.log()).group(1))
    assert comm(b.proc.pid) == os.path.basename(FEDGATE)[:15]
    assert comm(dp) == "fedgate-dp"
    for tid in os.listdir(f"/proc/{dp}/task"):
        assert comm(dp, tid) == "fedgate-dp", f"thread {tid} of the data plane"
    ps = subprocess.run(["ps", "-o", "comm=", "-p", str(dp)], capture_output=True, text=True)
    assert ps.stdout.strip() == "fedgate-dp", ps
    # A tunnel's sockets, as ss shows them: held by fedgate-dp.
    with connect(a.port("to-gcp")) as s:
        s.sendall(b"hello")
        assert s.recv(5) == b"hello"
        ss = subprocess.run(["ss", "-tnp"], capture_output=True, text=True).stdout
        assert f'("fedgate-dp",pid={dp},' in ss, ss
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
