"""`make deb` and fedgate@.service (packaging/): the package holds what README's "Packaging"
says, its Depends name the package of every library the binary links, and what it installs
works from where it installs it: `fedgate check` of the shipped example through the unit's
own ExecStartPre, the demo with the installed binary, `systemd-analyze verify` of the unit
in the unpacked tree, `fedgate run` under the unit's CapabilityBoundingSet and
NoNewPrivileges (emulated with setpriv: these machines' init is not systemd), and every
system call a gateway pair makes (strace) inside the unit's SystemCallFilter and
MemoryDenyWriteExecute. The maintainer scripts run with a stub systemctl.

The package is unpacked with `dpkg -x` into a throwaway root (no maintainer scripts run);
the host's libraries serve the binary there, as Depends would on a real install.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest

import conftest
from conftest import ROOT, Gateway, connect, pair_configs, recv_all, wait_for

BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
UNIT = "lib/systemd/system/fedgate@.service"
EXAMPLE = "usr/share/doc/fedgate/examples/gateway.json"
BIN = "usr/bin/fedgate"
# What the README's "Packaging" section promises is in the package.
EXPECTED = [BIN, UNIT, EXAMPLE, "usr/share/doc/fedgate/README.md.gz",
            "usr/share/doc/fedgate/copyright", "usr/share/doc/fedgate/changelog.gz",
            "etc/fedgate/", "var/lib/fedgate/"]


def version_h():
    text = open(os.path.join(ROOT, "control", "version.h"), encoding="utf-8").read()
    return re.search(r'^#define FEDGATE_VERSION "([^"]+)"', text, re.M).group(1)


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"SKIP: {tool} is missing (scripts/deps test installs it)")


@pytest.fixture(scope="module")
def deb():
    """The .deb `make deb` builds into BUILD_DIR (a sanitizer build dir: SANITIZE=1)."""
    need("dpkg-deb")
    need("dpkg-shlibdeps")
    args = ["make", "-C", ROOT, "deb"]
    if os.path.realpath(BUILD) == os.path.realpath(os.path.join(ROOT, "build", "san")):
        args.append("SANITIZE=1")
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    path = os.path.join(BUILD, f"fedgate_{version_h()}_{arch}.deb")
    assert os.path.isfile(path), f"make deb did not write {path}:\n{r.stdout}"
    return path


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory):
    """The package unpacked into a throwaway root."""
    d = tmp_path_factory.mktemp("debroot")
    subprocess.run(["dpkg", "-x", deb, str(d)], check=True, timeout=60)
    return d


def field(deb, name):
    return subprocess.run(["dpkg-deb", "--field", deb, name], capture_output=True, text=True,
                          check=True).stdout.strip()


def unit_lines(root, key):
    text = (root / UNIT).read_text()
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def test_package_name_version_and_arch_come_from_version_h_and_dpkg(deb):
    assert field(deb, "Package") == "fedgate"
    assert field(deb, "Version") == version_h()
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert field(deb, "Architecture") == arch
    assert field(deb, "Maintainer") and field(deb, "Description")


def test_package_holds_binary_unit_example_and_docs(deb):
    r = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True,
                       check=True)
    rows = {}
    for line in r.stdout.splitlines():
        cols = line.split()
        rows[cols[5][2:] if cols[5].startswith("./") else cols[5]] = (cols[0], cols[1])
    missing = [p for p in EXPECTED if p not in rows]
    assert not missing, f"not in the package: {missing}\n{r.stdout}"
    assert rows[BIN] == ("-rwxr-xr-x", "root/root"), rows[BIN]
    assert rows[UNIT] == ("-rw-r--r--", "root/root"), rows[UNIT]
    # nothing of the build tree leaks in (objects, libraries, tests)
    strays = [p for p in rows if re.search(r"\.(o|a|d)$|build/|tests/", p)]
    assert not strays, strays


def test_depends_name_the_package_of_every_library_the_binary_links(deb, root):
    depends = {d.split()[0] for d in field(deb, "Depends").split(", ")}
    binary = str(root / BIN)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True,
                                       text=True, check=True).stdout)
    assert needed, "readelf found no NEEDED entries"
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    lacking = []
    for soname in needed:
        path = os.path.realpath(where[soname])
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if owner.returncode:  # usrmerge: dpkg knows the /lib spelling
            owner = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/", 1)],
                                   capture_output=True, text=True)
        assert owner.returncode == 0, f"no package owns {path} ({soname})"
        pkg = owner.stdout.split(":")[0]
        if pkg not in depends:
            lacking.append(f"{soname} ({pkg})")
    assert not lacking, f"Depends lacks {lacking}: {sorted(depends)}"
    # the libraries the Makefile links, by their bookworm package names
    for pkg in ("libssl3", "libcurl4", "libgcrypt20", "liburing2", "libcjson1",
                "libnftables1", "libmnl0", "libbpf1", "libc6"):
        assert pkg in depends, (pkg, sorted(depends))
    assert "procps" in depends  # ExecReload's /bin/kill


def test_installed_binary_says_the_package_version(deb, root):
    r = subprocess.run([str(root / BIN), "version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"fedgate {field(deb, 'Version')} "), r.stdout


def unit_command(root, line, config):
    """The unit's command @line with the installed tree's binary and @config for
    /etc/fedgate/%i.json; it must name exactly those."""
    argv = line.split()
    assert argv[0] == "/" + BIN, line
    assert "/etc/fedgate/%i.json" in argv, line
    return [str(root / BIN)] + [config if a == "/etc/fedgate/%i.json" else a for a in argv[1:]]


def place_example_pki(root, pki):
    """The example config as shipped, with the test PKI's terminate gateway (bar) beside it
    under the names it uses."""
    ex = root / EXAMPLE
    cfg = json.loads(ex.read_text())
    shutil.copy(pki["leaves"]["bar"]["crt"], ex.parent / cfg["identity"]["cert"])
    shutil.copy(pki["leaves"]["bar"]["key"], ex.parent / cfg["identity"]["key"])
    shutil.copy(pki["federated"], ex.parent / cfg["identity"]["trust"])
    return str(ex)


def test_unit_execstartpre_checks_the_shipped_example_config(root, pki):
    pre = unit_lines(root, "ExecStartPre")
    assert len(pre) == 1 and " check " in pre[0], pre
    r = subprocess.run(unit_command(root, pre[0], place_example_pki(root, pki)),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"gateway\.json: OK: 1 tunnel\(s\), 2 root\(s\)", r.stdout), r.stdout


def test_unit_execstartpre_fails_on_a_broken_config(root, tmp_path):
    # the same command refuses what it must: the unit's start stops here, exit 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"tunnels": []}')
    r = subprocess.run(unit_command(root, unit_lines(root, "ExecStartPre")[0], str(bad)),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr


def test_demo_runs_with_the_installed_binary(root):
    env = dict(os.environ, FEDGATE=str(root / BIN))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "demo.py")], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^Demo OK: all 7 checks passed", r.stdout, re.M), r.stdout
    assert "ok   Hello kube_client (cert issued by 'Kubernetes Root CA')\n" in r.stdout


def verify_root(root, tmp_path):
    """A root for systemd-analyze: the unpacked package, the host's own units (targets the
    unit is ordered after) and /bin/kill (ExecReload), as on a host with the package."""
    need("systemd-analyze")
    vr = tmp_path / "vroot"
    shutil.copytree(root, vr, symlinks=True)
    for d in ("/lib/systemd/system", "/usr/lib/systemd/system"):
        if os.path.isdir(d) and not os.path.islink(d):
            shutil.copytree(d, str(vr) + d, symlinks=True, dirs_exist_ok=True)
            break
    os.makedirs(vr / "usr/bin", exist_ok=True)
    if not (vr / "bin").exists():
        os.symlink("usr/bin", vr / "bin")
    shutil.copy(os.path.realpath("/bin/kill"), vr / "usr/bin/kill")
    # the package's unit, not a host copy of it
    shutil.copy(root / UNIT, vr / UNIT)
    return vr


def analyze_verify(vr):
    return subprocess.run(["systemd-analyze", "verify", f"--root={vr}", "fedgate@gw.service"],
                          capture_output=True, text=True, timeout=60)


def test_installed_unit_passes_systemd_analyze_verify(root, tmp_path):
    vr = verify_root(root, tmp_path)
    r = analyze_verify(vr)
    # verify exits 0 on unknown keys and bad values too, so any word from it is a failure
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    # and it does look at the unpacked tree: without the binary, ExecStart fails it
    os.unlink(vr / BIN)
    r = analyze_verify(vr)
    assert r.returncode != 0 and "/usr/bin/fedgate is not executable" in r.stderr, r.stderr


def free_low_port():
    for port in range(600, 1000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip("SKIP: no free port below 1000 on 127.0.0.1")


def bounded(root):
    """setpriv's argv for the unit's CapabilityBoundingSet and NoNewPrivileges."""
    need("setpriv")
    if os.geteuid():
        pytest.skip("SKIP: the unit runs fedgate as root; this test needs root too")
    caps = unit_lines(root, "CapabilityBoundingSet")
    assert len(caps) == 1, caps
    assert unit_lines(root, "NoNewPrivileges") == ["yes"]
    names = ",".join("+" + c.lower().removeprefix("cap_") for c in caps[0].split())
    return ["setpriv", f"--bounding-set=-all,{names}", "--no-new-privs"]


def sanitized():
    """A sanitizer build (make test SANITIZE=1): its data plane installs no seccomp filter,
    and LeakSanitizer does not run under ptrace; plain `make test` checks both."""
    r = subprocess.run(["ldd", conftest.FEDGATE], capture_output=True, text=True)
    return "libasan" in r.stdout


def test_unit_capabilities_let_run_bind_a_low_port_confine_itself_and_drop_to_run_as(
        root, pki, tmp_path):
    if sanitized():
        pytest.skip("SKIP: sanitizer build: the data plane installs no seccomp filter "
                    "(plain make test checks this)")
    port = free_low_port()
    cfg = json.loads((root / EXAMPLE).read_text())
    cfg["identity"] = {"cert": pki["leaves"]["bar"]["crt"], "key": pki["leaves"]["bar"]["key"],
                       "trust": pki["federated"]}
    cfg["run_as"] = "nobody"
    cfg["dataplane"]["offload"] = "userspace"
    cfg.pop("admin")
    cfg["tunnels"][0]["listen"] = f"127.0.0.1:{port}"
    path = tmp_path / "gw.json"
    path.write_text(json.dumps(cfg))
    ports = tmp_path / "ports"
    log = tmp_path / "log"
    with open(log, "w") as logf:
        proc = subprocess.Popen(bounded(root) + [str(root / BIN), "run", "-c", str(path),
                                                 "--ports-file", str(ports)],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "seccomp: on" in log.read_text() or proc.poll() is not None, 10,
                 "the gateway to start")
        text = log.read_text()
        assert proc.poll() is None, text
        assert ports.read_text() == f"from-aws 127.0.0.1:{port}\n", text
        assert "landlock: on" in text and "run_as: running as nobody" in text, text
        assert "seccomp: on" in text, text
        ps = subprocess.run(["ps", "-o", "user=,comm=", "--ppid", str(proc.pid), "-p",
                             str(proc.pid)], capture_output=True, text=True).stdout
        assert sorted(ps.split()) == sorted(["nobody", "fedgate", "nobody", "fedgate-dp"]), ps
    finally:
        proc.terminate()
        rc = proc.wait(15)
    assert rc == 0, log.read_text()


def test_unit_capabilities_let_check_load_the_cgroup_capture_programs(root, pki, tmp_path):
    cg = next((d for d in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
               if os.path.exists(os.path.join(d, "cgroup.procs"))
               and "cgroup2" in subprocess.run(["stat", "-f", "-c", "%T", d],
                                               capture_output=True, text=True).stdout), None)
    if not cg:
        pytest.skip("SKIP: no cgroup2 mount")
    cfg = {"identity": {"cert": pki["leaves"]["foo"]["crt"], "key": pki["leaves"]["foo"]["key"],
                        "trust": pki["federated"]},
           "capture": {"cgroup": cg},
           "routes": [{"to": ["10.20.0.0/16"], "peer": "127.0.0.1:8443",
                       "server_name": "bar.internal", "allow": [{"dns": "bar.internal"}]}],
           "tunnels": [{"name": "c", "mode": "originate", "capture": "cgroup",
                        "listen": "127.0.0.1:15003"}]}
    path = tmp_path / "cg.json"
    path.write_text(json.dumps(cfg))
    loads = "cgroup capture: the BPF programs load on this kernel"
    full = subprocess.run([str(root / BIN), "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=30)
    if loads not in full.stdout:
        pytest.skip(f"SKIP: this kernel does not load the programs even as root: "
                    f"{full.stdout}{full.stderr}")
    r = subprocess.run(bounded(root) + [str(root / BIN), "check", "-c", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and loads in r.stdout, r.stdout + r.stderr


def expand_filter(name, seen):
    """The system calls of a SystemCallFilter entry: a call, or a group systemd-analyze
    expands (groups within groups too)."""
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    r = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    calls = set()
    for line in r.stdout.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            calls |= expand_filter(line, seen)
    return calls


def traced(proc):
    """The pid of the fedgate that strace (@proc) started: signals to strace are not its."""
    def child():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == proc.pid:
                return int(pid)
        return None
    return wait_for(child, 10, "strace's child")


def stop_traced(gw):
    """SIGTERM to the traced gateway (a drain); strace exits with its status. Stopping
    strace instead would detach it and leave the gateway running: past 60 s it is killed."""
    if gw.proc.poll() is None:
        pid = traced(gw.proc)
        os.kill(pid, signal.SIGTERM)
        try:
            gw.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
    return gw.stop()


STRACE_CALL = re.compile(r"^\d+\s+([a-z_0-9]+)\(", re.M)


def test_unit_syscall_filter_and_mdwe_allow_every_call_a_gateway_pair_makes(
        root, pki, tmp_path, upstream, monkeypatch):
    # start, handshake, a tunnel in the data plane (io_uring, seccomp), SIGHUP, SIGTERM drain:
    # a call outside the unit's filter would fail with EPERM under systemd
    if sanitized():
        pytest.skip("SKIP: sanitizer build: LeakSanitizer does not run under strace's ptrace, "
                    "and ASan's own calls are not fedgate's (plain make test checks this)")
    need("strace")
    need("systemd-analyze")
    entries = " ".join(unit_lines(root, "SystemCallFilter")).split()
    assert entries and not any(e.startswith("~") for e in entries), entries
    allowed = set()
    for e in entries:
        allowed |= expand_filter(e, set())
    assert {"io_uring_setup", "io_uring_enter", "seccomp", "landlock_restrict_self"} <= allowed
    traces = tmp_path / "strace"
    traces.mkdir()
    wrapper = tmp_path / "fedgate"
    wrapper.write_text(f'#!/bin/sh\nexec strace -f -qq -o {traces}/$$ {root / BIN} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "FEDGATE", str(wrapper))
    up = upstream()
    b_cfg, a_cfg = pair_configs(pki, up.addr, offload="userspace")
    b = Gateway(tmp_path, "b", b_cfg).start()
    try:
        a = Gateway(tmp_path, "a", a_cfg(b.port("from-aws"))).start()
        try:
            data = os.urandom(256 << 10)
            s = connect(a.port("to-gcp"))
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            assert recv_all(s) == data
            s.close()
            os.kill(traced(b.proc), signal.SIGHUP)
            b.wait_log(r"config reloaded: 1 tunnel\(s\)", timeout=30)
        finally:
            rc_a = stop_traced(a)
    finally:
        rc_b = stop_traced(b)
    assert (rc_a, rc_b) == (0, 0), a.log() + b.log()
    calls, wx = set(), []
    for f in traces.iterdir():
        text = f.read_text()
        calls |= set(STRACE_CALL.findall(text))
        # MemoryDenyWriteExecute refuses a mapping both writable and executable, and
        # making any mapping executable afterwards
        wx += re.findall(r"^\d+\s+(?:mmap\([^)\n]*PROT_WRITE\|PROT_EXEC|"
                         r"(?:pkey_)?mprotect\([^)\n]*PROT_EXEC).*$", text, re.M)
    assert unit_lines(root, "MemoryDenyWriteExecute") == ["yes"]
    assert not wx, f"MemoryDenyWriteExecute would refuse: {wx[:5]}"
    # the trace did follow both processes of both gateways
    assert {"execve", "io_uring_enter", "seccomp", "landlock_restrict_self"} <= calls, calls
    outside = sorted(calls - allowed)
    assert not outside, f"fedgate calls {outside}, which the unit's SystemCallFilter refuses"


MAINT = {  # argv -> the systemctl calls it makes where systemd runs
    ("postinst", "configure", ""): ["--system daemon-reload"],
    ("postinst", "configure", "0.0.9"): ["--system daemon-reload",
                                         "try-restart fedgate@*.service"],
    ("prerm", "remove"): ["stop fedgate@*.service"],
    ("prerm", "upgrade", "0.2.0"): [],
    ("postrm", "remove"): ["--system daemon-reload"],
    ("postrm", "purge"): ["--system daemon-reload"],
}


def test_maintainer_scripts_reload_systemd_restart_on_upgrade_and_stop_on_remove(deb, tmp_path):
    need("unshare")
    if os.geteuid():
        pytest.skip("SKIP: a private /run/systemd/system needs root (unshare -m)")
    ctl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "--control", deb, str(ctl)], check=True)
    stub = tmp_path / "bin"
    stub.mkdir()
    calls = tmp_path / "calls"
    (stub / "systemctl").write_text(f'#!/bin/sh\necho "$*" >>{calls}\n')
    (stub / "systemctl").chmod(0o755)
    for argv, want in MAINT.items():
        script = ctl / argv[0]
        assert script.stat().st_mode & 0o777 == 0o755, argv
        assert subprocess.run(["dash", "-n", str(script)]).returncode == 0, argv
        # where systemd is not the init (these machines), nothing is called
        calls.write_text("")
        r = subprocess.run(["dash", str(script), *argv[1:]], capture_output=True, text=True,
                           env=dict(os.environ, PATH=f"{stub}:{os.environ['PATH']}"))
        assert r.returncode == 0 and calls.read_text() == "", (argv, r.stderr, calls.read_text())
        # and under a /run/systemd/system of its own, what the package promises
        calls.write_text("")
        args = " ".join(f"'{a}'" for a in argv[1:])
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            "mount -t tmpfs none /run && mkdir -p /run/systemd/system && "
                            f"PATH={stub}:$PATH exec dash {script} {args}"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (argv, r.stderr)
        assert calls.read_text().splitlines() == want, (argv, calls.read_text())
