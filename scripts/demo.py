#!/usr/bin/python3
"""fedgate demo: two clouds, two online CAs that federate, two gateways, all on loopback.

The shape of step-ca's basic-federation tutorial, with fedgate's own CA:

  Cloud CA (fedgate ca serve)              Kubernetes CA (fedgate ca serve)
    "federatedRoots": [Kubernetes root]      "federatedRoots": [Cloud root]
        | enroll (one-time token), /federation      | enroll, /federation
  client --HTTP--> gateway A (foo.internal, originate)
                     --mTLS--> gateway B (bar.internal, terminate)
                                 --PROXY v2 + HTTP--> hello backend

Then a Kubernetes workload enrolls with `fedgate ca certificate` and calls gateway B with
`curl --cacert federated.pem`, and an impostor cert is refused by B's per-root name constraints.

Run by `make demo` (FEDGATE=/abs/path/to/fedgate). Every command is printed before it runs,
from the demo's temp dir, which holds everything. Every port is picked by the kernel and read
back from an address or ports file, so parallel runs never collide. Every child runs in its own
process group and is stopped on exit, error or Ctrl-C; the temp dir is always removed. Exit
status 0 only if every step and check passed.
"""

import signal
import sys

# Ctrl-C while Python is still importing: nothing to clean up yet, exit quietly.
signal.signal(signal.SIGINT, lambda *_: sys.exit(130))

import contextlib, json, os, re, shlex, shutil  # noqa: E401,E402 (after handler)
import subprocess, tempfile, time  # noqa: E401,E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEDGATE = os.environ.get("FEDGATE", os.path.join(ROOT, "build", "fedgate"))
HELLO_FOO = "Hello foo.internal (cert issued by 'Cloud Root CA')"
HELLO_KUBE = "Hello kube_client (cert issued by 'Kubernetes Root CA')"
INTERESTING = re.compile(r"accepted|refused|closed")
# Which names each root may vouch for (the config's "roots"): what a merged pool lacks.
ROOTS = [{"cn": "Cloud Root CA", "dns": ["foo.internal"], "uri": ["spiffe://cloud.example/*"]},
         {"cn": "Kubernetes Root CA", "dns": ["bar.internal"],
          "uri": ["spiffe://k8s.example/*"], "leaf_cn": ["bar.internal", "kube_client"]}]


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


def say(msg=""):
    try:
        print(msg, flush=True)
    except BrokenPipeError:  # `make demo | head`: stay quiet, but still clean up
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def section(title):
    say("\n== " + title)


def shown(argv):
    """@argv as a shell command line, with the fedgate binary called plain `fedgate`."""
    argv = ["fedgate" if a == FEDGATE else str(a) for a in argv]
    return " ".join(shlex.quote(a) for a in argv)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise DemoError("timed out after %gs waiting for %s" % (timeout, what))


class Demo:
    """The temp dir (the cwd of every command) and the children started in it."""

    def __init__(self, tmp):
        self.tmp, self.children, self.checks = tmp, [], []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def run(self, argv, stdout=None, show=None, quiet=False):
        """Prints and runs one command in the temp dir; its output (stdout, or stdout to the
        file @stdout), indented. A non-zero exit fails the demo."""
        say("  $ " + (show or shown(argv)) + (" > " + stdout if stdout else ""))
        r = subprocess.run(argv, cwd=self.tmp, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        if stdout and r.returncode == 0:
            with open(self.path(stdout), "w") as f:
                f.write(r.stdout)
        out = (r.stderr if stdout else r.stdout + r.stderr).strip()
        if out and not quiet:
            say("\n".join("    " + line for line in out.splitlines()))
        if r.returncode != 0:
            raise DemoError("`%s` exited with status %d:\n%s"
                            % (show or shown(argv), r.returncode, (r.stdout + r.stderr).strip()))
        return r.stdout

    def start(self, name, argv, ready_file):
        """Prints `argv &` and starts it in its own process group, logging to logs/NAME.log."""
        say("  $ %s &" % shown(argv))
        with shielded():
            self.children.append(Child(name, argv, self.tmp, self.path(ready_file)))
        return self.children[-1]

    def check(self, what, ok, text):
        self.checks.append((what, ok))
        say("  %-4s %s" % ("ok" if ok else "FAIL", text))


class Child:
    """A child process in its own process group, stderr+stdout to a log file."""

    def __init__(self, name, argv, tmp, ready_file):
        self.name, self.ready_file = name, ready_file
        os.makedirs(os.path.join(tmp, "logs"), exist_ok=True)
        self.log_path = os.path.join(tmp, "logs", name + ".log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout=15):
        """The words of the address/ports file once it exists; fails clearly if the child
        exits first."""
        wait_for(lambda: os.path.exists(self.ready_file) or self.proc.poll() is not None,
                 timeout, "%s to listen" % self.name)
        if self.proc.poll() is not None:
            raise DemoError("%s exited with status %d before listening:\n%s"
                            % (self.name, self.proc.returncode, self.log()))
        with open(self.ready_file) as f:
            return f.read().split()

    def wait_log(self, pattern, timeout=10):
        wait_for(lambda: re.search(pattern, self.log()) or self.proc.poll() is not None,
                 timeout, "%s to log /%s/" % (self.name, pattern))
        if self.proc.poll() is not None:
            raise DemoError("%s exited with status %d:\n%s"
                            % (self.name, self.proc.returncode, self.log()))

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


def init_ca(d, name, dirname):
    d.run([FEDGATE, "ca", "init", "--name", name, "--dir", dirname, "--password-file",
           "password", "--dns", "localhost", "--address", "127.0.0.1:0"])


def federate(d, ca_dir, other_root):
    """Adds @other_root to @ca_dir's federatedRoots, as the tutorial's ca.json does."""
    cfg_path = d.path(ca_dir, "config", "ca.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["federatedRoots"] = [d.path(ca_dir, "certs", other_root)]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    say("  %s: \"federatedRoots\": %s" % (cfg_path[len(d.tmp) + 1:],
                                         json.dumps(cfg["federatedRoots"])))


def serve_ca(d, name, ca_dir, label):
    addr_file = ca_dir + ".address"
    ca = d.start(name, [FEDGATE, "ca", "serve", ca_dir + "/config/ca.json", "--password-file",
                        "password", "--address-file", addr_file], addr_file)
    port = int(ca.wait_ready()[0].rsplit(":", 1)[1])
    ca.url = "https://localhost:%d" % port
    say("    %s CA: %s" % (label, ca.url))
    return ca


def compact_json(obj, indent=""):
    """@obj as JSON with one line per leaf object or array: a config that reads at a glance."""
    if isinstance(obj, dict) and any(isinstance(v, (dict, list)) for v in obj.values()):
        items = ["%s  %s: %s" % (indent, json.dumps(k), compact_json(v, indent + "  ").lstrip())
                 for k, v in obj.items()]
        return indent + "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        items = [compact_json(v, indent + "  ") for v in obj]
        return indent + "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return indent + json.dumps(obj)


def token(d, ca, ca_dir, subject, sans, out):
    """`fedgate ca token ... > OUT`: a one-time token, signed with the provisioner's key."""
    os.makedirs(os.path.dirname(d.path(out)), exist_ok=True)
    argv = [FEDGATE, "ca", "token", subject]
    for san in sans:
        argv += ["--san", san]
    argv += ["--ca-url", ca.url, "--root", ca_dir + "/certs/root_ca.crt", "--ca-config",
             ca_dir + "/config/ca.json", "--password-file", "password"]
    d.run(argv, stdout=out)


def start_gateway(d, name, ca, ca_dir, subject, sans, token_file, federation, tunnel):
    """Writes NAME/gateway.json (identity from @ca, trust from @federation) and runs it."""
    cfg = {"identity": {
        "cert": subject + ".crt", "key": subject + ".key",
        "ca": {"url": ca.url, "root": "../" + ca_dir + "/certs/root_ca.crt",
               "token_file": os.path.basename(token_file), "subject": subject, "sans": sans},
        "trust": {"federation": [{"url": c.url, "root": "../" + c_dir + "/certs/root_ca.crt"}
                                 for c, c_dir in federation]}},
        "roots": ROOTS, "dataplane": {"workers": 1, "offload": "auto"}, "tunnels": [tunnel]}
    conf = os.path.join(name, "gateway.json")
    with open(d.path(conf), "w") as f:
        json.dump(cfg, f, indent=2)
    say("  %s (paths relative to its directory):" % conf)
    for line in compact_json(cfg).splitlines():
        say("    " + line)
    ports = os.path.join(name, "ports")
    gw = d.start(name, [FEDGATE, "run", "-c", conf, "--ports-file", ports], ports)
    port = int(gw.wait_ready()[1].rsplit(":", 1)[1])
    gw.wait_log(r"enrolled at %s: %s, serial" % (re.escape(ca.url), re.escape(subject)))
    for line in gw.log().splitlines():
        if re.search(r"enrolled at|trust bundle from|listening", line):
            say("    | " + re.sub(r"^\d{4}-\d\d-\d\dT", "", line))
    return gw, port


def curl(d, *args):
    """Prints and runs `curl -sS ARGS...`; the body, or curl's error (the caller checks)."""
    argv = ["curl", "-sS", *args]
    say("  $ " + shown(argv))
    # --max-time (not shown) keeps a hung peer from stalling the demo
    r = subprocess.run(argv + ["--max-time", "10"], cwd=d.tmp, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    return r.stdout.strip() or "(curl exit %d) %s" % (r.returncode, r.stderr.strip())


def curl_b(d, port, crt, key):
    """GET https://bar.internal:PORT/ on gateway B with a client cert, as the tutorial does."""
    return curl(d, "--cacert", "federated.pem", "--cert", crt, "--key", key, "--resolve",
                "bar.internal:%d:127.0.0.1" % port, "https://bar.internal:%d/" % port)


def show_roots(d, pem):
    """Prints the subjects of the certificates in @pem (a pipeline, so through sh)."""
    cmd = ("openssl crl2pkcs7 -nocrl -certfile %s | openssl pkcs7 -print_certs -noout"
           " | grep subject" % pem)
    d.run(["sh", "-c", cmd], show=cmd)


def demo(d):
    say("fedgate demo in %s (every command below runs there)" % d.tmp)
    with open(d.path("password"), "w") as f:
        f.write("demo password, not a secret\n")

    section("1. Two autonomous CAs: one in the cloud, one in Kubernetes")
    init_ca(d, "Cloud", "cloud-ca")
    init_ca(d, "Kubernetes", "kube-ca")

    section("2. Federate: each CA lists the other's root in ca.json's federatedRoots")
    say("  (root certificates are public: hand them over any way you like)")
    for src, dst in (("kube-ca/certs/root_ca.crt", "cloud-ca/certs/kubernetes_root_ca.crt"),
                     ("cloud-ca/certs/root_ca.crt", "kube-ca/certs/cloud_root_ca.crt")):
        say("  $ cp %s %s" % (src, dst))
        shutil.copy(d.path(src), d.path(dst))
    federate(d, "cloud-ca", "kubernetes_root_ca.crt")
    federate(d, "kube-ca", "cloud_root_ca.crt")

    section("3. Serve both CAs (step-ca's HTTPS API)")
    cloud = serve_ca(d, "cloud-ca", "cloud-ca", "Cloud")
    kube = serve_ca(d, "kube-ca", "kube-ca", "Kubernetes")
    d.run([FEDGATE, "ca", "roots", "--ca-url", kube.url, "--root", "kube-ca/certs/root_ca.crt",
           "kube-roots.pem"])
    show_roots(d, "kube-roots.pem")
    d.run([FEDGATE, "ca", "federation", "--ca-url", cloud.url, "--root",
           "cloud-ca/certs/root_ca.crt", "federated.pem"])
    show_roots(d, "federated.pem")
    with open(d.path("federated.pem")) as f:
        n = f.read().count("BEGIN CERTIFICATE")
    d.check("federated.pem to hold both roots", n == 2,
            "federated.pem holds %d root(s): the Cloud CA vouches for both clouds" % n)

    section("4. The hello backend behind gateway B (reads the PROXY v2 header B sends)")
    backend = d.start("hello-backend", [sys.executable, os.path.join(ROOT, "tests",
                                                                     "hello_backend.py"),
                                        "--listen", "127.0.0.1:0", "--port-file",
                                        "backend.port", "--proxy-protocol"], "backend.port")
    backend_port = int(backend.wait_ready()[0])
    say("    listening on 127.0.0.1:%d" % backend_port)

    section("5. Gateway B (bar.internal, terminate): enrolls at the Kubernetes CA")
    b_sans = ["bar.internal", "spiffe://k8s.example/gw/bar"]
    token(d, kube, "kube-ca", "bar.internal", b_sans, "gateway-b/bar.token")
    gw_b, b_port = start_gateway(
        d, "gateway-b", kube, "kube-ca", "bar.internal", b_sans, "gateway-b/bar.token",
        [(kube, "kube-ca")],
        {"name": "from-cloud", "mode": "terminate", "listen": "127.0.0.1:0",
         "upstream": "127.0.0.1:%d" % backend_port, "proxy_protocol": "v2",
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"},
                   {"uri": "spiffe://k8s.example/*", "root": "Kubernetes Root CA"}]})

    section("6. Gateway A (foo.internal, originate): enrolls at the Cloud CA, trusts both CAs'"
            " /federation")
    a_sans = ["foo.internal", "spiffe://cloud.example/gw/foo"]
    token(d, cloud, "cloud-ca", "foo.internal", a_sans, "gateway-a/foo.token")
    gw_a, a_port = start_gateway(
        d, "gateway-a", cloud, "cloud-ca", "foo.internal", a_sans, "gateway-a/foo.token",
        [(cloud, "cloud-ca"), (kube, "kube-ca")],
        {"name": "to-kube", "mode": "originate", "listen": "127.0.0.1:0",
         "peer": "127.0.0.1:%d" % b_port, "server_name": "bar.internal",
         "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]})

    section("7. Traffic: plain HTTP into gateway A, mTLS A -> B, PROXY v2 + HTTP to the backend")
    for i in range(1, 4):
        body = curl(d, "http://127.0.0.1:%d/" % a_port)
        d.check("request %d to get %r" % (i, HELLO_FOO), body == HELLO_FOO, body)

    section("8. A Kubernetes workload enrolls and calls gateway B with curl")
    token(d, kube, "kube-ca", "kube_client", ["spiffe://k8s.example/ns/prod/kube_client"],
          "kube_client.token")
    d.run([FEDGATE, "ca", "certificate", "kube_client", "kube_client.crt", "kube_client.key",
           "--token-file", "kube_client.token", "--ca-url", kube.url, "--root",
           "kube-ca/certs/root_ca.crt"])
    body = curl_b(d, b_port, "kube_client.crt", "kube_client.key")
    d.check("kube_client to get %r" % HELLO_KUBE, body == HELLO_KUBE, body)

    section("9. An impostor: the Kubernetes CA issues a cert for foo.internal, a Cloud name")
    token(d, kube, "kube-ca", "foo.internal", ["foo.internal",
                                               "spiffe://k8s.example/ns/prod/impostor"],
          "impostor.token")
    d.run([FEDGATE, "ca", "certificate", "foo.internal", "impostor.crt", "impostor.key",
           "--token-file", "impostor.token", "--ca-url", kube.url, "--root",
           "kube-ca/certs/root_ca.crt"])
    say("  (B's allow rules alone would admit it: its URI matches spiffe://k8s.example/*; B's\n"
        "  roots rule keeps the Kubernetes root to bar.internal and spiffe://k8s.example/*)")
    body = curl_b(d, b_port, "impostor.crt", "impostor.key")
    d.check("no Hello for the impostor", not body.startswith("Hello"), body)
    refused = r".*refused .*foo\.internal.*"
    with contextlib.suppress(DemoError):
        gw_b.wait_log(refused, 5)
    line = re.search(refused, gw_b.log())
    d.check("a 'refused' line for foo.internal in B's log", bool(line),
            "gateway B: " + (re.sub(r"^\d{4}-\d\d-\d\dT", "", line.group(0)) if line
                             else "(no refused line)"))

    section("10. What the gateways logged")
    # Give the data planes a moment to log the "closed" lines of finished tunnels.
    with contextlib.suppress(DemoError):
        wait_for(lambda: gw_a.log().count(" closed") >= 3, 3, "A's closed lines")
    for gw in (gw_a, gw_b):
        say("  -- logs/%s.log" % gw.name)
        for line in gw.log().splitlines():
            if INTERESTING.search(line):
                say("    " + re.sub(r"^\d{4}-\d\d-\d\dT", "", line))  # time of day only


def main():
    d, tmp, status = None, None, 1
    try:
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        if not os.access(FEDGATE, os.X_OK):
            raise DemoError("no fedgate binary at %s (run `make` first)" % FEDGATE)
        for tool in ("curl", "openssl"):
            if not shutil.which(tool):
                raise DemoError("%s is not installed (`scripts/deps demo` installs it)" % tool)
        with shielded():
            tmp = tempfile.mkdtemp(prefix="fedgate-demo-")
            d = Demo(tmp)
        started = time.monotonic()
        demo(d)
        failed = [what for what, ok in d.checks if not ok]
        if failed:
            say("\nDEMO FAILED: %d of %d checks failed:" % (len(failed), len(d.checks)))
            for what in failed:
                say("  - expected " + what)
        else:
            say("\nDemo OK: all %d checks passed in %.1f s." % (len(d.checks),
                                                               time.monotonic() - started))
            status = 0
    except Interrupted as e:
        say("\ninterrupted (%s): stopping everything" % signal.Signals(e.args[0]).name)
        status = 128 + e.args[0]
    except (DemoError, subprocess.TimeoutExpired) as e:
        say("\nDEMO FAILED: %s" % e)
    finally:
        # No more interruptions: the cleanup below is bounded (~10 s a child at most).
        _state["shield"] += 1
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children = d.children if d else []
        for child in reversed(children):  # gateways, backend, then the CAs
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
