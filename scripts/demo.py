#!/usr/bin/python3
"""fedgate demo: two gateways, two clouds, one federated PKI, all on loopback.

  client --HTTP--> gateway A (foo.internal, "AWS", Cloud Root CA)
         --mTLS--> gateway B (bar.internal, "GCP", Kubernetes Root CA)
         --PROXY v2 + HTTP--> hello backend (answers with the client's identity)

Run by `make demo` (FEDGATE=/abs/path/to/fedgate). Every port is picked by the
kernel and read back from a ports file, so parallel runs never collide. Every
child runs in its own process group and is stopped on exit, error or Ctrl-C;
the temp dir is always removed. Exit status 0 only if every check passed.
"""

import signal
import sys

# Ctrl-C while Python is still importing: nothing to clean up yet, exit quietly.
signal.signal(signal.SIGINT, lambda *_: sys.exit(130))

import contextlib, http.client, json, os, re, shutil  # noqa: E401,E402 (after the handler)
import subprocess, tempfile, time  # noqa: E401,E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # keep tests/ free of __pycache__
sys.path.insert(0, os.path.join(ROOT, "tests"))
from pki import make_pki  # noqa: E402

FEDGATE = os.environ.get("FEDGATE", os.path.join(ROOT, "build", "fedgate"))
HELLO_FOO = "Hello foo.internal (cert issued by 'Cloud Root CA')"
HELLO_KUBE = "Hello kube_client (cert issued by 'Kubernetes Root CA')"
INTERESTING = re.compile(r"accepted|refused|closed")


class DemoError(Exception):
    """A step failed in a way that makes the rest pointless."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived."""


# ---- signals: Ctrl-C/SIGTERM become Interrupted, except inside shielded()
# blocks, where it is deferred so that a child or temp dir is never started
# without being recorded for cleanup.
_state = {"shield": 0, "pending": None}


def _on_signal(signo, _frame):
    _state["pending"] = signo
    if not _state["shield"]:
        raise Interrupted(signo)


@contextlib.contextmanager
def shielded():
    _state["shield"] += 1
    try:
        yield
    finally:
        _state["shield"] -= 1
    if _state["pending"] and not _state["shield"]:
        raise Interrupted(_state["pending"])


def spawn(children, make, *args):
    """Starts a child and records it for cleanup, with no signal in between."""
    with shielded():
        children.append(make(*args))
    return children[-1]


def say(msg=""):
    try:
        print(msg, flush=True)
    except BrokenPipeError:  # `make demo | head`: stay quiet, but still clean up
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise DemoError("timed out after %gs waiting for %s" % (timeout, what))


class Child:
    """A child process in its own process group, stderr+stdout to a log file."""

    def __init__(self, name, argv, tmp, ports_file):
        self.name, self.ports_file = name, ports_file
        self.log_path = os.path.join(tmp, name + ".log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ports(self, timeout=10):
        """Waits for the ports file; fails clearly if the child exits first."""
        wait_for(lambda: os.path.exists(self.ports_file) or self.proc.poll() is not None,
                 timeout, "%s to listen" % self.name)
        if self.proc.poll() is not None:
            raise DemoError("%s exited with status %d before listening:\n%s"
                            % (self.name, self.proc.returncode, self.log()))
        with open(self.ports_file) as f:
            return f.read().split()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: fedgate stops its data plane
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        # Sweep the process group (a hung child, an orphaned data plane worker).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(5)


def start_gateway(name, tmp, pki, leaf, tunnel):
    cfg = {"identity": {"cert": pki["leaves"][leaf]["crt"], "key": pki["leaves"][leaf]["key"],
                        "trust": pki["federated"]},
           "dataplane": {"workers": 1, "offload": "auto"}, "tunnels": [tunnel]}
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    ports = os.path.join(tmp, name + ".ports")
    return Child(name, [FEDGATE, "run", "-c", path, "--ports-file", ports], tmp, ports)


def curl(port, pki, leaf):
    """GET https://bar.internal:PORT/ with LEAF's cert; the body, or curl's error."""
    crt, key = pki["leaves"][leaf]["crt"], pki["leaves"][leaf]["key"]
    say("  $ curl --cacert federated.pem --cert %s.crt --key %s.key \\\n"
        "      --resolve bar.internal:%d:127.0.0.1 https://bar.internal:%d/"
        % (leaf, leaf, port, port))
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", pki["federated"],
                        "--cert", crt, "--key", key, "--resolve",
                        "bar.internal:%d:127.0.0.1" % port, "https://bar.internal:%d/" % port],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    return r.stdout.strip() or "(curl exit %d) %s" % (r.returncode, r.stderr.strip())


def demo(tmp, children, checks):
    def check(what, ok, shown):
        checks.append((what, ok))
        say("  %-4s %s" % ("ok" if ok else "FAIL", shown))

    say("== 1. A throwaway federated PKI in %s" % tmp)
    pki = make_pki(os.path.join(tmp, "pki"))
    say("  roots: %s" % ", ".join(repr(cn) for cn in pki["root_cns"].values()))
    say("  federated.pem (the trust bundle) holds both 'Cloud Root CA' and 'Kubernetes Root"
        " CA',\n  not the Rogue one; each gateway trusts both clouds' roots through it")

    say("\n== 2. The hello backend (expects a PROXY v2 header from gateway B)")
    backend_ports = os.path.join(tmp, "backend.port")
    backend = spawn(children, Child, "hello_backend", [
        sys.executable, os.path.join(ROOT, "tests", "hello_backend.py"), "--listen",
        "127.0.0.1:0", "--port-file", backend_ports, "--proxy-protocol"], tmp, backend_ports)
    backend_port = int(backend.wait_ports()[0])
    say("  listening on 127.0.0.1:%d" % backend_port)

    say("\n== 3. Gateway B: bar.internal, GCP side, cert from 'Kubernetes Root CA'")
    gw_b = spawn(children, start_gateway, "gateway-B", tmp, pki, "bar", {
        "name": "from-aws", "mode": "terminate", "listen": "127.0.0.1:0",
        "upstream": "127.0.0.1:%d" % backend_port, "proxy_protocol": "v2",
        "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"},
                  {"uri": "spiffe://k8s.example/*", "root": "Kubernetes Root CA"}]})
    b_port = int(gw_b.wait_ports()[1].rsplit(":", 1)[1])
    say("  tunnel from-aws: mTLS on 127.0.0.1:%d -> backend; admits foo.internal from the"
        "\n  Cloud root and spiffe://k8s.example/* from the Kubernetes root" % b_port)

    say("\n== 4. Gateway A: foo.internal, AWS side, cert from 'Cloud Root CA'")
    gw_a = spawn(children, start_gateway, "gateway-A", tmp, pki, "foo", {
        "name": "to-gcp", "mode": "originate", "listen": "127.0.0.1:0",
        "peer": "127.0.0.1:%d" % b_port, "server_name": "bar.internal",
        "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]})
    a_port = int(gw_a.wait_ports()[1].rsplit(":", 1)[1])
    say("  tunnel to-gcp: plaintext on 127.0.0.1:%d -> mTLS to bar.internal at :%d"
        % (a_port, b_port))

    say("\n== 5. A plain HTTP client talks to gateway A; A and B do the mTLS")
    for i in range(1, 4):
        conn = http.client.HTTPConnection("127.0.0.1", a_port, timeout=10)
        try:
            conn.request("GET", "/")
            body = conn.getresponse().read().decode().strip()
        except OSError as e:
            body = "(error) %s" % e
        finally:
            conn.close()
        check("request %d to get %r" % (i, HELLO_FOO), body == HELLO_FOO,
              "request %d -> %s" % (i, body))

    say("\n== 6. A Kubernetes workload calls gateway B directly with its own cert")
    body = curl(b_port, pki, "kube_client")
    check("kube_client to get %r" % HELLO_KUBE, body == HELLO_KUBE, "-> " + body)

    say("\n== 7. An impostor: CN foo.internal, but from 'Rogue Root CA' (not trusted)")
    body = curl(b_port, pki, "rogue")
    check("no Hello for the rogue cert", not body.startswith("Hello"), "-> " + body)
    rogue = re.compile(r".*refused .*'Rogue Root CA'.*")
    with contextlib.suppress(DemoError):
        wait_for(lambda: rogue.search(gw_b.log()), 5, "B to log the refusal")
    line = rogue.search(gw_b.log())
    check("a 'refused' line in B's log", bool(line),
          "gateway B logged:\n       " + (line.group(0) if line else "(nothing)"))

    say("\n== 8. What the gateways logged")
    # Give the data planes a moment to log the "closed" lines of finished tunnels.
    with contextlib.suppress(DemoError):
        wait_for(lambda: gw_a.log().count(" closed") >= 3, 3, "A's closed lines")
    for gw in (gw_a, gw_b):
        say("  -- %s" % gw.name)
        for line in gw.log().splitlines():
            if INTERESTING.search(line):
                say("    " + re.sub(r"^\d{4}-\d\d-\d\dT", "", line))  # time of day only


def main():
    children, checks, tmp, status = [], [], None, 1
    try:
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        if not os.access(FEDGATE, os.X_OK):
            raise DemoError("no fedgate binary at %s (run `make` first)" % FEDGATE)
        if not shutil.which("curl"):
            raise DemoError("curl is not installed (`scripts/deps demo` installs it)")
        with shielded():
            tmp = tempfile.mkdtemp(prefix="fedgate-demo-")
        demo(tmp, children, checks)
        failed = [what for what, ok in checks if not ok]
        if failed:
            say("\nDEMO FAILED: %d of %d checks failed:" % (len(failed), len(checks)))
            for what in failed:
                say("  - expected " + what)
        else:
            say("\nDemo OK: all %d checks passed." % len(checks))
            status = 0
    except Interrupted as e:
        say("\ninterrupted (%s): stopping everything" % signal.Signals(e.args[0]).name)
        status = 128 + e.args[0]
    except DemoError as e:
        say("\nDEMO FAILED: %s" % e)
    finally:
        # No more interruptions: the cleanup below is bounded (~10 s a child at most).
        _state["shield"] += 1
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):  # A, then B, then the backend
            rc = child.stop()
            if rc != 0 and status == 0:
                say("%s exited with status %s:\n%s" % (child.name, rc, child.log()))
                status = 1
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if children or tmp:
            say("stopped %d process(es), removed %s" % (len(children), tmp))
    return status


if __name__ == "__main__":
    sys.exit(main())
