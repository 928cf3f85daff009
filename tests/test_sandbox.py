"""fedgate confines itself: a seccomp filter on the data plane, Landlock on the control process,
and both processes dropping root for $.run_as once their root-only setup is done."""

import ctypes
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import FEDGATE, connect, gateway_config, pair_configs, recv_all, wait_for

PROBE = "FEDGATE_TEST_SECCOMP_PROBE"


def landlock_abi():
    """The kernel's Landlock ABI version, or 0 without Landlock."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return abi if abi > 0 else 0


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: run_as drops from root to another user")


def echo(port, payload=b"through the sandbox\n" * 100):
    s = connect(port)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    s.close()
    assert got == payload
    return got


def dataplane_pid(gw):
    m = gw.wait_log(r"data plane pid (\d+)")
    return int(m[0])


def status_fields(path):
    fields = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.split()
    return fields


def seccomp_is_compiled_out(log):
    return "seccomp: not installed in a sanitizer build" in log


def start_pair(pki, gateways, up, b_extra=None, a_extra=None):
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b_cfg.update(b_extra or {})
    b = gateways("terminate", b_cfg)
    a_cfg = a_cfg(b.port("from-aws"))
    a_cfg.update(a_extra or {})
    a = gateways("originate", a_cfg)
    return a, b


# --- seccomp ----------------------------------------------------------------------------------


def test_forbidden_syscall_kills_the_data_plane_with_sigsys(pki, upstream, tmp_path):
    """With the probe set, the data plane calls socket(2) right after its filter is in: the
    kernel kills it with SIGSYS, and the control process says so and stops with 1."""
    up = upstream()
    cfg = tmp_path / "fedgate.json"
    cfg.write_text(json.dumps(pair_configs(pki, up.addr)[0]))
    env = dict(os.environ, **{PROBE: "1"})
    logp = tmp_path / "log"
    with open(logp, "w") as logf:
        proc = subprocess.Popen([FEDGATE, "run", "-c", str(cfg)], env=env,
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: proc.poll() is not None or
                     seccomp_is_compiled_out(logp.read_text()), 30, "the data plane to die")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    log = logp.read_text()
    if seccomp_is_compiled_out(log):
        pytest.skip("sanitizer build: the data plane runs without its seccomp filter")
    assert "seccomp: test probe: calling socket(2)" in log, log
    assert "was not stopped" not in log, log
    # Not restarted: a new data plane would make the same call (or let an attacker retry).
    assert re.search(r"the data plane \(pid \d+\) was killed by signal 31 \(.*\): a system "
                     r"call outside its seccomp filter; \d+ tunnel\(s\) lost; not restarted", log), log
    assert "data plane restarted" not in log, log
    assert proc.returncode == 1, log


def test_probe_does_nothing_with_seccomp_off_and_tunnels_work(pki, gateways, upstream,
                                                              monkeypatch):
    """$.dataplane.seccomp false: no filter, so the probe's socket(2) is just a call, the data
    plane lives, and bytes flow; the threads show no seccomp mode."""
    monkeypatch.setenv(PROBE, "1")
    up = upstream()
    off = {"dataplane": {"workers": 1, "offload": "userspace", "seccomp": False}}
    a2, b2 = start_pair(pki, gateways, up, b_extra=off, a_extra=off)
    echo(a2.port("to-gcp"))
    for gw in (a2, b2):
        gw.wait_log(r"seccomp: off \(as configured\)")
        assert "test probe" not in gw.log()
        tasks = os.listdir(f"/proc/{dataplane_pid(gw)}/task")
        for t in tasks:
            st = status_fields(f"/proc/{dataplane_pid(gw)}/task/{t}/status")
            assert st["Seccomp"] == ["0"], (t, st["Seccomp"])


def test_every_data_plane_thread_runs_under_the_filter_and_tunnels_work(tunnel_pair):
    """By default the filter is on: every data plane thread is in seccomp filter mode with
    no_new_privs, and tunnels carry bytes under it (the workers' calls are all allowed)."""
    a, b, up = tunnel_pair()
    for _ in range(3):
        echo(a.port("to-gcp"), os.urandom(200000))
    for gw in (a, b):
        if seccomp_is_compiled_out(gw.log()):
            pytest.skip("sanitizer build: the data plane runs without its seccomp filter")
        gw.wait_log(r"seccomp: on")
        pid = dataplane_pid(gw)
        tasks = os.listdir(f"/proc/{pid}/task")
        assert len(tasks) >= 2, tasks  # the main thread and one worker
        for t in tasks:
            st = status_fields(f"/proc/{pid}/task/{t}/status")
            assert st["Seccomp"] == ["2"], (gw.name, t, st["Seccomp"])
            assert st["NoNewPrivs"] == ["1"], (gw.name, t, st["NoNewPrivs"])
        # and the control process is not under the data plane's filter
        ctl = status_fields(f"/proc/{gw.proc.pid}/status")
        assert ctl["Seccomp"] == ["0"], ctl["Seccomp"]


# --- Landlock ---------------------------------------------------------------------------------


def reload_with_cert_elsewhere(gw, cfg, pki, other):
    """Copies the terminate gateway's cert and key into @other, points the config there,
    and sends SIGHUP."""
    other.mkdir(exist_ok=True)
    leaf = pki["leaves"]["bar"]
    cert = other / "bar.crt"
    key = other / "bar.key"
    shutil.copy(leaf["crt"], cert)
    shutil.copy(leaf["key"], key)
    cfg = json.loads(json.dumps(cfg))
    cfg["identity"]["cert"] = str(cert)
    cfg["identity"]["key"] = str(key)
    gw.config_path.write_text(json.dumps(cfg, indent=2))
    gw.proc.send_signal(signal.SIGHUP)


def test_reload_naming_a_cert_outside_the_sandbox_fails_with_eacces_and_keeps_serving(
        pki, gateways, upstream, tmp_path):
    """Landlock: once serving, the control process cannot open a file outside its config,
    identity and system directories; a reload naming one fails with EACCES, the running
    config stays, and tunnels keep working. With $.sandbox.landlock false the same reload
    succeeds: the refusal was Landlock's."""
    if not landlock_abi():
        pytest.skip("this kernel has no Landlock")
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr)
    b = gateways("terminate", b_cfg)
    a = gateways("originate", a_cfg(b.port("from-aws")))
    b.wait_log(r"landlock: on \(ABI \d+\)")
    echo(a.port("to-gcp"))
    reload_with_cert_elsewhere(b, b_cfg, pki, tmp_path / "other")
    b.wait_log(r"config not reloaded: .*other/bar\.crt.*Permission denied.*the running config "
               r"stays")
    assert "config reloaded" not in b.log()
    echo(a.port("to-gcp"))

    off = json.loads(json.dumps(b_cfg))
    off["sandbox"] = {"landlock": False}
    c = gateways("terminate-unconfined", off)
    c.wait_log(r"landlock: off \(as configured\)")
    reload_with_cert_elsewhere(c, off, pki, tmp_path / "other2")
    c.wait_log(r"config reloaded: 1 tunnel")


# --- run_as -----------------------------------------------------------------------------------


def test_run_as_nobody_serves_a_tunnel_with_both_processes_as_nobody(pki, gateways, upstream):
    """$.run_as "nobody": after binding (as root) both processes become nobody, with no
    supplementary groups and no way back, and the tunnel carries bytes."""
    need_root()
    nobody = pwd.getpwnam("nobody")
    up = upstream()
    a, b = start_pair(pki, gateways, up, b_extra={"run_as": "nobody"},
                      a_extra={"run_as": "nobody"})
    echo(a.port("to-gcp"))
    for gw in (a, b):
        gw.wait_log(r"run_as: running as nobody \(uid %d gid %d\)" % (nobody.pw_uid,
                                                                     nobody.pw_gid))
        for pid in (gw.proc.pid, dataplane_pid(gw)):
            st = status_fields(f"/proc/{pid}/status")
            assert st["Uid"] == [str(nobody.pw_uid)] * 4, (gw.name, pid, st["Uid"])
            assert st["Gid"] == [str(nobody.pw_gid)] * 4, (gw.name, pid, st["Gid"])
            assert st.get("Groups", []) == [], (gw.name, pid, st.get("Groups"))
            assert st["CapEff"] == ["0000000000000000"], (gw.name, pid, st["CapEff"])
    echo(a.port("to-gcp"))


def run_config(tmp_path, cfg, cmd="run"):
    path = tmp_path / "fedgate.json"
    path.write_text(json.dumps(cfg))
    return subprocess.run([FEDGATE, cmd, "-c", str(path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)


def test_run_as_an_unknown_user_is_refused_with_exit_2(pki, tmp_path):
    need_root()
    cfg = gateway_config(pki, "bar", [{"name": "t", "mode": "terminate",
                                       "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
                                       "allow": [{"dns": "foo.internal"}]}])
    cfg["run_as"] = "no-such-fedgate-user"
    p = run_config(tmp_path, cfg)
    assert p.returncode == 2, p.stderr
    assert '$.run_as: user "no-such-fedgate-user": no such user' in p.stderr, p.stderr
    assert "listening" not in p.stderr


def test_run_as_with_the_local_redirect_is_refused_before_any_bpf_loads(pki, tmp_path):
    """The local redirect updates BPF maps for every connection, which an unprivileged user
    cannot: run_as with it is a config error, found before anything is loaded."""
    need_root()
    cfg = gateway_config(pki, "bar", [{"name": "t", "mode": "terminate",
                                       "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
                                       "allow": [{"dns": "foo.internal"}]}])
    cfg["dataplane"]["local_redirect"] = "on"
    cfg["run_as"] = "nobody"
    p = run_config(tmp_path, cfg)
    assert p.returncode == 2, p.stderr
    assert "$.run_as: dataplane.local_redirect updates BPF maps for every connection" in p.stderr
    assert "local legs redirect: on" not in p.stderr, p.stderr


@pytest.mark.parametrize("patch,message", [
    ({"run_as": 65534}, r"\$\.run_as: expected a user name"),
    ({"run_as": "../etc"}, r"\$\.run_as: expected a user name"),
    ({"run_as": "x" * 33}, r"\$\.run_as: expected a user name"),
    ({"sandbox": {"landlock": "yes"}}, r"\$\.sandbox\.landlock: expected true or false"),
    ({"sandbox": {"seccomp": True}}, r"\$\.sandbox\.seccomp: unknown key"),
    ({"dataplane": {"seccomp": 1}}, r"\$\.dataplane\.seccomp: expected true or false"),
])
def test_bad_sandbox_settings_are_config_errors(pki, tmp_path, patch, message):
    cfg = gateway_config(pki, "bar", [{"name": "t", "mode": "terminate",
                                       "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
                                       "allow": [{"dns": "foo.internal"}]}])
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    p = run_config(tmp_path, cfg, "check")
    assert p.returncode == 2, p.stdout + p.stderr
    assert re.search(message, p.stderr), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
