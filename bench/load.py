"""Sinks, load generators and CPU pinning for the benchmark driver.

The sinks (iperf3 server, echo server, HTTP server) and the load generators
(iperf3, pingpong, conns, wrk) run on the load CPU; the proxies run on the
proxy CPU. Each may run inside a network namespace (the VPN contenders).
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import time


class BenchError(Exception):
    """A measurement or a contender failed; the message says what and why."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    """Raise our soft RLIMIT_NOFILE to the hard limit; children inherit it.

    Returns the limit. Unprivileged processes (and some containers, even as
    root) cannot go above the hard limit, which then caps the idle tunnels.
    """
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Pin:
    """Which CPU the proxies and which the load get, as taskset prefixes."""

    def __init__(self):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            self.proxy_cpu, self.load_cpu = str(cpus[0]), str(cpus[1])
        else:
            self.proxy_cpu = self.load_cpu = None

    def describe(self):
        if self.proxy_cpu is None:
            return "not pinned (fewer than 2 CPUs)"
        return f"proxies on CPU {self.proxy_cpu}, load generators and sinks on CPU {self.load_cpu}"

    @staticmethod
    def _wrap(cpu, argv, ns):
        pre = ["ip", "netns", "exec", ns] if ns else []
        return pre + (["taskset", "-c", cpu] if cpu is not None else []) + list(argv)

    def proxy(self, argv, ns=None):
        return self._wrap(self.proxy_cpu, argv, ns)

    def load(self, argv, ns=None):
        return self._wrap(self.load_cpu, argv, ns)


def spawn(argv, log_path, env=None, stdout=None):
    """Start a long-running process in its own process group, output to @log_path."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=stdout if stdout is not None else log,
                                stderr=log, env=env, start_new_session=True)
    finally:
        log.close()


def stop(proc, timeout=10):
    """SIGTERM the process group we started for @proc, then SIGKILL; reap it."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    # Forked children (socat) may outlive their listener: end the rest of the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


def wait_listen(ports, ns=None, timeout=15.0, procs=()):
    """Wait until TCP @ports listen (in netns @ns); fail early if a process in @procs exits."""
    deadline = time.monotonic() + timeout
    want = {int(p) for p in ports}
    while True:
        cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ss", "-Hltn"]
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        have = {int(m.group(1)) for m in re.finditer(r":(\d+)\s", out)}
        if want <= have:
            return
        for p in procs:
            if p.poll() is not None:
                raise BenchError(f"{p.args[-1] if p.args else 'process'} exited "
                                 f"{p.returncode} before listening")
        if time.monotonic() > deadline:
            raise BenchError(f"ports {sorted(want - have)} not listening after {timeout:.0f}s")
        time.sleep(0.05)


def read_line(proc, timeout):
    """The first stdout line of @proc within @timeout seconds, or BenchError."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if line:
        return line.decode().strip()
    if ready:
        proc.wait(5)
        raise BenchError(f"`{' '.join(proc.args)}` exited {proc.returncode}")
    raise BenchError(f"`{' '.join(proc.args)}` printed nothing within {timeout:.0f}s")


class Sinks:
    """iperf3 server, echo server and HTTP server, pinned to the load CPU.

    In a namespace they bind 0.0.0.0 so that the VPN's tunnel address reaches
    them; on the host they bind 127.0.0.1.
    """

    def __init__(self, tools, workdir, pin, ns=None):
        self.tools, self.workdir, self.pin, self.ns = tools, workdir, pin, ns
        self.procs = []
        self.ports = {}

    def start(self):
        bind = "0.0.0.0" if self.ns else "127.0.0.1"
        log = os.path.join(self.workdir, f"sinks{'-' + self.ns if self.ns else ''}.log")
        try:
            for key, extra in (("echo", []), ("http", ["--http"])):
                p = spawn(self.pin.load([os.path.join(self.tools, "echod")] + extra
                                        + ["--bind", bind, "0"], self.ns), log,
                          stdout=subprocess.PIPE)
                self.procs.append(p)
                self.ports[key] = int(read_line(p, 10))
            self.ports["iperf"] = 5201 if self.ns else free_port()
            p = spawn(self.pin.load(["iperf3", "-s", "-p", str(self.ports["iperf"]),
                                     "-B", bind], self.ns), log, stdout=subprocess.DEVNULL)
            self.procs.append(p)
            wait_listen([self.ports["iperf"]], self.ns, procs=[p])
        except Exception:
            self.stop()
            raise
        return self.ports

    def stop(self):
        for p in self.procs:
            stop(p, 5)
        self.procs = []


def _run(argv, timeout, what):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish within {timeout:.0f}s") from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise BenchError(f"{what} exited {r.returncode}: {' / '.join(tail)}")
    return r.stdout


def iperf(pin, host, port, ns=None, seconds=None, streams=1, bitrate=None, nbytes=None,
          probe=None):
    """One iperf3 run client -> server through the pair.

    Returns (Gbit/s received, bytes received, seconds, probe result): @probe,
    if given, is called with the running process (to sample CPU mid-run).
    """
    argv = ["iperf3", "-c", host, "-p", str(port), "-J", "-P", str(streams)]
    argv += ["-n", str(nbytes)] if nbytes else ["-t", str(seconds)]
    if bitrate:
        argv += ["-b", bitrate]
    timeout = (seconds or 60) + 60
    for attempt in (1, 2):
        proc = subprocess.Popen(pin.load(argv, ns), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            probed = probe(proc) if probe else None
            out, err = proc.communicate(timeout=timeout)
            data = json.loads(out)
            if "error" in data:
                raise BenchError(data["error"])
            end = data["end"]["sum_received"]
            return end["bits_per_second"] / 1e9, end["bytes"], end["seconds"], probed
        except subprocess.TimeoutExpired:
            e = f"did not finish within {timeout:.0f}s"
        except (BenchError, ValueError, KeyError) as exc:
            e = str(exc) or type(exc).__name__
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # The server refuses a test while it still winds down the last one.
        if attempt == 2:
            raise BenchError(f"iperf3 {' '.join(argv[5:])}: {e}")
        time.sleep(1)


def pingpong(pin, tools, host, port, count, ns=None):
    out = _run(pin.load([os.path.join(tools, "pingpong"), host, str(port), str(count), "64"], ns),
               120, "pingpong")
    return json.loads(out)


def conns_rate(pin, tools, host, port, seconds, concurrency, ns=None):
    out = _run(pin.load([os.path.join(tools, "conns"), "rate", host, str(port), str(seconds),
                         str(concurrency)], ns), seconds + 60, "conns rate")
    return json.loads(out)


def conns_idle(pin, tools, host, port, count, concurrency, log_path, ns=None, timeout=600):
    """Open @count idle tunnels; returns (process holding them, its report).

    Close the process's stdin to release them.
    """
    log = open(log_path, "ab")
    proc = subprocess.Popen(pin.load([os.path.join(tools, "conns"), "idle", host, str(port),
                                      str(count), str(concurrency)], ns),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                            start_new_session=True)
    log.close()
    try:
        return proc, json.loads(read_line(proc, timeout))
    except (BenchError, ValueError) as e:
        release(proc)
        with open(log_path) as f:
            tail = " / ".join(f.read().strip().splitlines()[-2:])
        raise BenchError(f"opening {count} idle tunnels failed: {e}: {tail}") from None


def release(proc):
    try:
        proc.stdin.close()
        proc.wait(60)
    except (OSError, subprocess.TimeoutExpired):
        stop(proc)


_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def wrk(pin, host, port, seconds, connections=16, ns=None):
    """wrk through the pair: (requests/s, p99 latency in us)."""
    out = _run(pin.load(["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s",
                         "--latency", f"http://{host}:{port}/"], ns), seconds + 60, "wrk")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\b", out, re.M)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if not rps or not p99:
        raise BenchError(f"cannot parse wrk output: {out.strip()[:200]}")
    if errs:
        raise BenchError(f"wrk saw errors: {errs.group(0)}")
    return float(rps.group(1)), float(p99.group(1)) * _UNITS_US[p99.group(2)]


def ttfb(host, port, count, ns=None):
    """Milliseconds from connect() to the first byte of the answer, for @count new
    connections one after the other, each carrying one HTTP request to the http sink."""
    if ns:
        raise BenchError("ttfb runs from this namespace only")
    out = []
    for _ in range(count):
        t0 = time.monotonic()
        with socket.create_connection((host, port), timeout=30) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            if not s.recv(1):
                raise BenchError(f"127.0.0.1:{port} closed before answering")
            out.append((time.monotonic() - t0) * 1000)
    return out
