"""The contenders: each brings up an originate/terminate pair on loopback (or a
VPN between two network namespaces) in front of the sinks, and stops it again.

Every TLS contender uses the same PKI (ECDSA P-256 leaves from tests/pki.py:
foo.internal originates, bar.internal terminates, each trusts the federated
roots), TLS 1.3 only, TLS_AES_128_GCM_SHA256, X25519, a client certificate
required and verified, the server name checked, and no session resumption
(tickets off on the terminate side, reuse off on the originate side), using
each program's own options. OPENSSL_CONF additionally pins the same protocol,
suite and group for every program that loads the OpenSSL config (socat has no
option for TLS 1.3 suites).

A contender exposes, after start(): ports {"iperf", "echo", "http"} to dial,
host (the address to dial), client_ns (the namespace the load runs in),
roots (the pids whose process trees are "the proxy"), and skip
{metric: reason} for metrics that do not apply to it.

fedgate-transparent runs in the VPNs' namespaces too: the load dials the sinks'
own address and gateway A captures it on the way.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

from load import BenchError, Pin, conns_idle, free_port, release, spawn, stop, wait_listen

SUITE = "TLS_AES_128_GCM_SHA256"
UPSTREAMS = ("iperf", "echo", "http")

OPENSSL_CNF = f"""\
# make bench: the same TLS parameters for every program that loads this file.
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.3
Ciphersuites = {SUITE}
Groups = X25519
"""


class Ctx:
    """What every contender shares: PKI paths, work dir, pinning, limits."""

    def __init__(self, pki, workdir, pin, fedgate, fd_limit, tools=None):
        self.pki, self.workdir, self.pin, self.fedgate = pki, workdir, pin, fedgate
        self.fd_limit, self.tools = fd_limit, tools
        self.wan_rtt_ms = None  # set while a contender runs over bench/wan.py
        leaves = pki["leaves"]
        self.client_crt, self.client_key = leaves["foo"]["crt"], leaves["foo"]["key"]
        self.server_crt, self.server_key = leaves["bar"]["crt"], leaves["bar"]["key"]
        self.trust = pki["federated"]
        self.server_name = "bar.internal"
        self.openssl_cnf = os.path.join(workdir, "openssl.cnf")
        with open(self.openssl_cnf, "w") as f:
            f.write(OPENSSL_CNF)
        self.env = dict(os.environ, OPENSSL_CONF=self.openssl_cnf)
        # HAProxy wants certificate chain and key in one file.
        self.client_pem = self._combined("foo")
        self.server_pem = self._combined("bar")

    def _combined(self, leaf):
        path = os.path.join(self.workdir, f"{leaf}.combined.pem")
        with open(path, "w") as out:
            for part in ("crt", "key"):
                with open(self.pki["leaves"][leaf][part]) as f:
                    out.write(f.read())
        os.chmod(path, 0o600)
        return path

    def path(self, name):
        return os.path.join(self.workdir, name)


class Contender:
    name = "?"
    kind = "tls"
    host = "127.0.0.1"
    client_ns = None
    sink_ns = None

    def __init__(self, ctx):
        self.ctx = ctx
        self.procs = []
        self.wan_procs = []  # bench/wan.py, not the proxy: never in roots
        self.ports = {}
        self.skip = {}

    @property
    def roots(self):
        return [p.pid for p in self.procs]

    def unavailable(self):
        """None if the contender can run here, else the reason it cannot."""
        return None

    def idle_cap(self):
        """The most idle tunnels to open: the same for every contender, within the fd limit.

        A proxy process holds two descriptors per tunnel, and stunnel admits at most
        125/256 of its descriptor limit as clients; stay just under that.
        """
        return max(1, self.ctx.fd_limit * 125 // 256 - 32)

    def start(self, upstream):
        raise NotImplementedError

    def stop(self):
        for p in self.procs + self.wan_procs:
            stop(p)
        self.procs, self.wan_procs = [], []

    def via_wan(self, ports):
        """@ports ({name: port} the far side listens on), or while ctx.wan_rtt_ms is set,
        ports of bench/wan.py relays in front of them: the WAN between the two sides."""
        if not self.ctx.wan_rtt_ms:
            return ports
        relay = {k: free_port() for k in ports}
        p = spawn([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "wan.py"), "--rtt-ms", str(self.ctx.wan_rtt_ms)]
                  + [f"{relay[k]}:{ports[k]}" for k in ports],
                  self.ctx.path(f"{self.name}-wan.log"))
        self.wan_procs.append(p)
        wait_listen(list(relay.values()), procs=[p])
        return relay

    # True: the proxy runs on every CPU (beside the load), not pinned to the proxies' one.
    unpinned = False
    # True: only in a run that names it (or its family, FedgateHs.family): not in the table.
    opt_in = False

    def _spawn(self, argv, log, env=None, ns=None):
        argv = Pin._wrap(None, argv, ns) if self.unpinned else self.ctx.pin.proxy(argv, ns)
        p = spawn(argv, self.ctx.path(log), env=env or self.ctx.env)
        self.procs.append(p)
        return p


def _need(*programs):
    missing = [p for p in programs if not shutil.which(p)]
    return f"not installed: {', '.join(missing)} (scripts/deps bench)" if missing else None


# offsetof(struct tcp_info, tcpi_data_segs_out) in <linux/tcp.h> (since Linux 4.6).
TCPI_DATA_SEGS_OUT = 156


def check_redirected(host, port, name, log, nbytes=65536):
    """BenchError unless an app's bytes sent to @host:@port take the local redirect.

    A redirected sendmsg puts the bytes straight into the reader's socket, so the app's own
    TCP sends no data segment; on TCP, 64 KiB is at least two. Without this check a relay
    that left its legs on TCP would pass for a +redirect row.
    """
    payload = os.urandom(nbytes)
    got = bytearray()
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(payload)
        while len(got) < nbytes:
            chunk = s.recv(nbytes - len(got))
            if not chunk:
                break
            got += chunk
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    segs = struct.unpack_from("I", info, TCPI_DATA_SEGS_OUT)[0]
    if bytes(got) != payload:
        raise BenchError(f"{name}: the echo of {nbytes} bytes came back wrong "
                         f"({len(got)} bytes) (see {log})")
    if segs:
        raise BenchError(f"{name}: the app's {nbytes} bytes left in {segs} TCP data "
                         f"segment(s): not redirected (see {log})")


class Plain(Contender):
    """No proxy: the load talks to the sinks directly (loopback's own limit)."""
    name = "plain"
    kind = "plain"

    def __init__(self, ctx):
        super().__init__(ctx)
        reason = "no proxy processes"
        self.skip = {m: reason for m in ("cpu_at_1gbps_pct", "cpu_core_s_per_gb",
                                         "cpu_core_ms_per_handshake", "rss_per_idle_tunnel_kib",
                                         "rtt_added_p50_us", "rtt_added_p99_us")}
        self.skip["handshakes_per_s"] = "no TLS handshake"
        self.skip["cpu_machine_core_ms_per_handshake"] = "no TLS handshake"

    def start(self, upstream):
        self.ports = self.via_wan(dict(upstream))


class Fedgate(Contender):
    """fedgate run: a terminate gateway and an originate gateway, one worker each.

    @redirect: both gateways with `dataplane.local_redirect: "on"` (issue 16): the app's
    bytes into the originate side and the service's into the terminate side move socket to
    socket in the kernel, in the sender's own sendmsg (bench/README.md, "CPU accounting").
    @resume: both sides with `tunnels[].resumption` on (issue 17): after the first
    connection, the pair resumes TLS 1.3 sessions (PSK with ECDHE) instead of a full
    handshake; the "-resume" row, beside nginx-resume.
    """

    def __init__(self, ctx, offload, kernel_tx=None, redirect=False, resume=False, pool=0):
        super().__init__(ctx)
        self.offload, self.kernel_tx, self.redirect = offload, kernel_tx, redirect
        self.resume = resume
        self.pool = pool
        # m_wan: a pool fills in about two round trips of the link; a running gateway's is full
        self.settle_s = 1.0 if pool else 0
        self.name = (f"fedgate-{offload}" + (f"-{kernel_tx}" if kernel_tx else "")
                     + ("+redirect" if redirect else "") + ("-resume" if resume else "")
                     + ("+pool" if pool else ""))

    hs_threads = None  # tls.handshake_threads; None: the gateway's default (one per CPU)

    def _config(self, leaf, tunnels):
        dataplane = {"workers": 1, "offload": self.offload}
        if self.kernel_tx:
            dataplane["kernel_tx"] = self.kernel_tx
        if self.redirect:
            dataplane["local_redirect"] = "on"
        return {"identity": {"cert": self.ctx.pki["leaves"][leaf]["crt"],
                             "key": self.ctx.pki["leaves"][leaf]["key"],
                             "trust": self.ctx.trust},
                "tls": {"ciphers": ["AES-128-GCM"]} | (
                    {"handshake_threads": self.hs_threads} if self.hs_threads is not None
                    else {}),
                "dataplane": dataplane,
                "tunnels": [dict(t, resumption=True) for t in tunnels] if self.resume
                else tunnels}

    def _terminate_config(self, upstream):
        cfg = self._config("bar", [
            {"name": f"from-{k}", "mode": "terminate", "listen": "127.0.0.1:0",
             "upstream": f"127.0.0.1:{upstream[k]}",
             "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]} for k in UPSTREAMS])
        if self.pool:
            for t in cfg["tunnels"]:
                t["pool"] = {}
        return cfg

    def unavailable(self):
        if not os.access(self.ctx.fedgate, os.X_OK):
            return f"{self.ctx.fedgate} is not built (make)"
        if self.offload == "userspace" and not self.redirect:
            return None
        # `fedgate check` gives the same offload and local_redirect verdicts as `fedgate run`
        # would (a kernel without kTLS, a fedgate without the key, BPF not permitted); the
        # offload's first, so that a +redirect row without kTLS says so like its plain row.
        cfg = self._terminate_config({k: 9 for k in UPSTREAMS})
        redirect = cfg["dataplane"].pop("local_redirect", None)
        why = self._check("terminate", cfg) if self.offload != "userspace" else None
        if not why and redirect:
            cfg["dataplane"]["local_redirect"] = redirect
            why = self._check("terminate", cfg)
        return why

    def _check(self, side, cfg):
        """None if `fedgate check` accepts @cfg, else its reason."""
        path = self.ctx.path(f"{self.name}-{side}-check.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([self.ctx.fedgate, "check", "-c", path], capture_output=True,
                           text=True, env=self.ctx.env)
        if r.returncode:
            why = (r.stderr.strip().splitlines() or [f"exited {r.returncode}"])[-1]
            # Drop "fedgate: /path/to/check.json: ": the path is ours; and the offload's own
            # JSON path, as its reason names it again.
            why = why.split(f"{path}: ", 1)[-1]
            return "fedgate check: " + why.split("$.dataplane.offload: ", 1)[-1]
        return None

    def _write_config(self, side, cfg):
        path = self.ctx.path(f"{self.name}-{side}.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return path

    def _gateway(self, side, cfg, ns=None):
        """Start `fedgate run` (in netns @ns) and wait for its ports file: {tunnel: port}."""
        cfg_path = self._write_config(side, cfg)
        ports_path = self.ctx.path(f"{self.name}-{side}.ports")
        if os.path.exists(ports_path):
            os.unlink(ports_path)
        p = self._spawn([self.ctx.fedgate, "run", "-c", cfg_path, "--ports-file", ports_path],
                        f"{self.name}-{side}.log", ns=ns)
        deadline = time.monotonic() + 15
        while not os.path.exists(ports_path):
            if p.poll() is not None:
                log = self.ctx.path(f"{self.name}-{side}.log")
                with open(log, errors="replace") as f:
                    last = (f.read().strip().splitlines() or [""])[-1]
                raise BenchError(f"fedgate {side} exited {p.returncode}: {last} (see {log})")
            if time.monotonic() > deadline:
                raise BenchError(f"fedgate {side} wrote no ports file within 15s")
            time.sleep(0.02)
        with open(ports_path) as f:
            return {t: int(a.rsplit(":", 1)[1]) for t, a in (ln.split() for ln in f if ln.strip())}

    def start(self, upstream):
        term = self._gateway("terminate", self._terminate_config(upstream))
        term = self.via_wan({t: p for t, p in term.items() if not t.startswith("@")})
        orig = self._gateway("originate", self._config("foo", [
            {"name": f"to-{k}", "mode": "originate", "listen": "127.0.0.1:0",
             "peer": f"127.0.0.1:{term['from-' + k]}", "server_name": self.ctx.server_name,
             "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}],
             **({"pool": {"size": self.pool}} if self.pool else {})}
            for k in UPSTREAMS]))
        self.ports = {k: orig[f"to-{k}"] for k in UPSTREAMS}
        if self.redirect:
            check_redirected(self.host, self.ports["echo"], self.name,
                             self.ctx.path(f"{self.name}-originate.log"))


class FedgateHs(Fedgate):
    """fedgate-userspace with tls.handshake_threads N (0: on the loop thread), unpinned: both
    gateways may use every CPU, as handshake threads are for; the load shares them. Opt-in
    (`--contenders fedgate-userspace-hs`): the rows compare thread counts with each other;
    the pinned rows stay the table's (bench/README.md)."""
    family = "fedgate-userspace-hs"
    unpinned = True
    opt_in = True

    def __init__(self, ctx, n):
        super().__init__(ctx, "userspace")
        self.hs_threads = n
        self.name = f"{self.family}{n}"


class Stunnel(Contender):
    """stunnel4: one process per side (a thread per connection), three services each."""
    name = "stunnel"

    def unavailable(self):
        return _need("stunnel")

    def _conf(self, side, services):
        c = self.ctx
        lines = ["foreground = yes", "pid =", "debug = 4", "syslog = no",
                 f"output = {c.path('stunnel-' + side + '.log')}"]
        for name, accept, connect in services:
            lines += [f"[{name}]", f"accept = 127.0.0.1:{accept}",
                      f"connect = 127.0.0.1:{connect}", f"CAfile = {c.trust}",
                      "verifyChain = yes", "sslVersionMin = TLSv1.3",
                      f"ciphersuites = {SUITE}", "curves = X25519", "sessionResume = no",
                      "socket = l:TCP_NODELAY=1", "socket = r:TCP_NODELAY=1"]
            if side == "originate":
                lines += ["client = yes", f"cert = {c.client_crt}", f"key = {c.client_key}",
                          f"checkHost = {c.server_name}", f"sni = {c.server_name}"]
            else:
                lines += [f"cert = {c.server_crt}", f"key = {c.server_key}",
                          "requireCert = yes", "options = NO_TICKET"]
        path = c.path(f"stunnel-{side}.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self, upstream):
        term = {k: free_port() for k in UPSTREAMS}
        orig = {k: free_port() for k in UPSTREAMS}
        p1 = self._spawn(["stunnel", self._conf("terminate", [(k, term[k], upstream[k])
                                                              for k in UPSTREAMS])],
                         "stunnel-terminate.out")
        far = self.via_wan(term)
        p2 = self._spawn(["stunnel", self._conf("originate", [(k, orig[k], far[k])
                                                             for k in UPSTREAMS])],
                         "stunnel-originate.out")
        wait_listen(list(term.values()) + list(orig.values()), procs=[p1, p2])
        self.ports = orig


class Haproxy(Contender):
    """HAProxy 2.6 in TCP mode, one thread per side."""
    name = "haproxy"

    def unavailable(self):
        return _need("haproxy")

    def _conf(self, side, listen, connect):
        c = self.ctx
        maxconn = self.idle_cap() + 64
        lines = ["global", "    nbthread 1", f"    maxconn {maxconn}",
                 "    tune.ssl.cachesize 0", "",
                 "defaults", "    mode tcp", f"    maxconn {maxconn}",
                 "    timeout connect 10s", "    timeout client 1h", "    timeout server 1h", ""]
        for k in UPSTREAMS:
            tls = (f" ssl crt {c.server_pem} ca-file {c.trust} verify required"
                   f" ssl-min-ver TLSv1.3 ciphersuites {SUITE} curves X25519 no-tls-tickets"
                   if side == "terminate" else "")
            lines += [f"frontend f_{k}", f"    bind 127.0.0.1:{listen[k]}{tls}",
                      f"    default_backend b_{k}", f"backend b_{k}"]
            srv = f"    server s 127.0.0.1:{connect[k]}"
            if side == "originate":
                srv += (f" ssl crt {c.client_pem} ca-file {c.trust} verify required"
                        f" verifyhost {c.server_name} sni str({c.server_name}) no-ssl-reuse"
                        f" ssl-min-ver TLSv1.3 ciphersuites {SUITE}")
            lines += [srv, ""]
        path = c.path(f"haproxy-{side}.cfg")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        return path

    def start(self, upstream):
        term = {k: free_port() for k in UPSTREAMS}
        orig = {k: free_port() for k in UPSTREAMS}
        p1 = self._spawn(["haproxy", "-db", "-f", self._conf("terminate", term, upstream)],
                         "haproxy-terminate.log")
        p2 = self._spawn(["haproxy", "-db", "-f", self._conf("originate", orig,
                                                             self.via_wan(term))],
                         "haproxy-originate.log")
        wait_listen(list(term.values()) + list(orig.values()), procs=[p1, p2])
        self.ports = orig


NGINX_STREAM = "/usr/lib/nginx/modules/ngx_stream_module.so"


class Nginx(Contender):
    """nginx stream module: a master and one worker per side."""
    name = "nginx"
    resume = False

    def unavailable(self):
        missing = _need("nginx")
        if missing:
            return missing
        if not os.path.exists(NGINX_STREAM):
            return f"{NGINX_STREAM} missing (Debian package libnginx-mod-stream)"
        return None

    def _conf(self, side, listen, connect):
        c = self.ctx
        prefix = c.path(f"nginx-{side}")
        os.makedirs(prefix, exist_ok=True)
        nofile = c.fd_limit
        servers = []
        for k in UPSTREAMS:
            if side == "terminate":
                tls = [f"ssl_certificate {c.server_crt};", f"ssl_certificate_key {c.server_key};",
                       f"ssl_client_certificate {c.trust};", "ssl_verify_client on;",
                       "ssl_verify_depth 3;", "ssl_protocols TLSv1.3;",
                       f"ssl_session_tickets {'on' if self.resume else 'off'};",
                       "ssl_ecdh_curve X25519;",
                       f"ssl_conf_command Ciphersuites {SUITE};"]
                listen_line = f"listen 127.0.0.1:{listen[k]} ssl backlog=4096;"
            else:
                tls = ["proxy_ssl on;", f"proxy_ssl_certificate {c.client_crt};",
                       f"proxy_ssl_certificate_key {c.client_key};",
                       f"proxy_ssl_trusted_certificate {c.trust};", "proxy_ssl_verify on;",
                       "proxy_ssl_verify_depth 3;", f"proxy_ssl_name {c.server_name};",
                       "proxy_ssl_server_name on;", "proxy_ssl_protocols TLSv1.3;",
                       f"proxy_ssl_session_reuse {'on' if self.resume else 'off'};",
                       f"proxy_ssl_conf_command Ciphersuites {SUITE};"]
                listen_line = f"listen 127.0.0.1:{listen[k]} backlog=4096;"
            body = "\n        ".join([listen_line, f"proxy_pass 127.0.0.1:{connect[k]};",
                                      "proxy_timeout 1h;"] + tls)
            servers.append(f"    server {{\n        {body}\n    }}")
        conf = (f"load_module {NGINX_STREAM};\n"
                f"worker_processes 1;\nworker_rlimit_nofile {nofile};\n"
                f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
                f"events {{ worker_connections {nofile}; }}\n"
                "stream {\n    tcp_nodelay on;\n" + "\n".join(servers) + "\n}\n")
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        return prefix, path

    def _nginx(self, side, listen, connect):
        prefix, conf = self._conf(side, listen, connect)
        return self._spawn(["nginx", "-p", prefix, "-c", conf, "-e", f"{prefix}/error.log",
                            "-g", "daemon off;"], f"nginx-{side}.out")

    def start(self, upstream):
        term = {k: free_port() for k in UPSTREAMS}
        orig = {k: free_port() for k in UPSTREAMS}
        p1 = self._nginx("terminate", term, upstream)
        p2 = self._nginx("originate", orig, self.via_wan(term))
        wait_listen(list(term.values()) + list(orig.values()), procs=[p1, p2])
        self.ports = orig


class NginxResume(Nginx):
    """nginx with TLS session reuse between its two sides: tickets on at the terminate
    side, `proxy_ssl_session_reuse on` at the originate side (TLS 1.3 PSK resumption with
    ECDHE, as OpenSSL does by default); the fair peer of fedgate-userspace-resume."""
    name = "nginx-resume"
    resume = True


class PlainRelay(Contender):
    """Two socat TCP relays, no TLS: what any userspace pair pays before its crypto.

    Not a contender to pick instead of fedgate but the floor under every TLS proxy here:
    each side reads into userspace and writes back out, as a TLS proxy must, with 128 KiB
    buffers (socat's default is 8 KiB) so that syscalls are as few as they can be.
    """
    name = "plain-relay"
    kind = "plain"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.skip = {m: "no TLS handshake" for m in ("handshakes_per_s",
                                                     "cpu_core_ms_per_handshake",
                                                     "cpu_machine_core_ms_per_handshake")}
        reason = "a floor for bytes moved, not a proxy to compare"
        for m in ("rss_per_idle_tunnel_kib", "rtt_p50_us", "rtt_p99_us", "rtt_added_p50_us",
                  "rtt_added_p99_us", "wrk_requests_per_s", "wrk_p99_us"):
            self.skip[m] = reason

    def unavailable(self):
        return _need("socat")

    def start(self, upstream):
        term = {k: free_port() for k in UPSTREAMS}
        orig = {k: free_port() for k in UPSTREAMS}
        far = self.via_wan(term)
        procs = []
        for k in UPSTREAMS:
            for listen, to, side in ((term[k], upstream[k], "terminate"),
                                     (orig[k], far[k], "originate")):
                procs.append(self._spawn(
                    ["socat", "-b", "131072",
                     f"TCP-LISTEN:{listen},bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay",
                     f"TCP:127.0.0.1:{to},nodelay"], f"plain-relay-{side}-{k}.log"))
        wait_listen(list(term.values()) + list(orig.values()), procs=procs)
        self.ports = orig


class PlainRelayRedirect(PlainRelay):
    """plain-relay with fedgate's local legs redirect: the floor under the +redirect rows.

    Two bench/legsrelay processes (one per side, a thread per direction, 128 KiB reads like
    plain-relay's socat) whose legs where fedgate is the reader, app -> originate and sink ->
    terminate, go through fedgate's own programs and loader (bpf/legs.bpf.c, bpf/legs.c),
    budget and close semantics included; the leg between the two stays TCP, as fedgate's TLS
    leg does. Its start fails unless the app's bytes leave in no TCP data segment.
    """
    name = "plain-relay+redirect"

    def _exe(self):
        tools = self.ctx.tools or ""
        return next((p for p in (os.path.join(tools, "legsrelay"),
                                 os.path.join(os.path.dirname(self.ctx.fedgate), "bench",
                                              "legsrelay"))
                     if os.access(p, os.X_OK)), None)

    def unavailable(self):
        exe = self._exe()
        if not exe:
            return ("bench/legsrelay is not built (make bench builds it where bpf/legs.c, "
                    "fedgate's local legs redirect, exists)")
        # Loads and attaches the programs and exits: BPF not permitted, or a kernel that
        # refuses them, is its reason.
        r = subprocess.run([exe, "probe"], capture_output=True, text=True, timeout=30)
        if r.returncode:
            why = (r.stderr.strip().splitlines() or [f"exited {r.returncode}"])[-1]
            return why.split("legsrelay: ", 1)[-1]
        return None

    def start(self, upstream):
        term = {k: free_port() for k in UPSTREAMS}
        orig = {k: free_port() for k in UPSTREAMS}
        exe = self._exe()
        far = self.via_wan(term)
        procs = [self._spawn([exe, "terminate"] + [f"{term[k]}:{upstream[k]}" for k in UPSTREAMS],
                             "plain-relay+redirect-terminate.log"),
                 self._spawn([exe, "originate"] + [f"{orig[k]}:{far[k]}" for k in UPSTREAMS],
                             "plain-relay+redirect-originate.log")]
        wait_listen(list(term.values()) + list(orig.values()), procs=procs)
        self.ports = orig
        check_redirected(self.host, self.ports["echo"], self.name,
                         self.ctx.path("plain-relay+redirect-originate.log"))


class Socat(Contender):
    """socat with OpenSSL addresses: a listener per tunnel, a forked child per connection."""
    name = "socat"
    # Each idle tunnel is two forked processes: thousands of them would crowd the pid space.
    IDLE_CAP = 1000

    def unavailable(self):
        return _need("socat")

    def idle_cap(self):
        return min(self.IDLE_CAP, super().idle_cap())

    def start(self, upstream):
        c = self.ctx
        term = {k: free_port() for k in UPSTREAMS}
        orig = {k: free_port() for k in UPSTREAMS}
        far = self.via_wan(term)
        procs = []
        for k in UPSTREAMS:
            procs.append(self._spawn(
                ["socat", f"OPENSSL-LISTEN:{term[k]},bind=127.0.0.1,reuseaddr,fork,backlog=4096,"
                 f"cert={c.server_crt},key={c.server_key},cafile={c.trust},verify=1,nodelay,"
                 "min-version=TLS1.3", f"TCP:127.0.0.1:{upstream[k]},nodelay"],
                f"socat-terminate-{k}.log"))
            procs.append(self._spawn(
                ["socat", f"TCP-LISTEN:{orig[k]},bind=127.0.0.1,reuseaddr,fork,backlog=4096,"
                 "nodelay", f"OPENSSL:127.0.0.1:{far[k]},cert={c.client_crt},"
                 f"key={c.client_key},cafile={c.trust},verify=1,commonname={c.server_name},"
                 f"snihost={c.server_name},nodelay,min-version=TLS1.3"],
                f"socat-originate-{k}.log"))
        wait_listen(list(term.values()) + list(orig.values()), procs=procs)
        self.ports = orig


class Netns:
    """Two network namespaces joined by a veth pair: A (load) 10.77.0.1, B (sinks) 10.77.0.2."""

    def __init__(self, tag):
        self.a, self.b = f"fgb{tag}a", f"fgb{tag}b"
        self.veth_a, self.veth_b = f"fgv{tag}a", f"fgv{tag}b"
        self.addr_a, self.addr_b = "10.77.0.1", "10.77.0.2"
        self.up = False
        self.error = None

    def create(self):
        cmds = [["ip", "netns", "add", self.a], ["ip", "netns", "add", self.b],
                ["ip", "link", "add", self.veth_a, "netns", self.a, "type", "veth",
                 "peer", "name", self.veth_b, "netns", self.b]]
        for ns, dev, addr in ((self.a, self.veth_a, self.addr_a),
                              (self.b, self.veth_b, self.addr_b)):
            cmds += [["ip", "-n", ns, "link", "set", "lo", "up"],
                     ["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev],
                     ["ip", "-n", ns, "link", "set", dev, "up"]]
        for cmd in cmds:
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                self.error = f"`{' '.join(cmd)}` failed: {r.stderr.strip()}"
                self.destroy()
                return False
            self.up = True
        return True

    def destroy(self):
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.up = False

    def ready(self):
        """None once both namespaces are up (made on first use), else why they cannot be."""
        if os.geteuid() != 0:
            return "needs root (network namespaces)"
        if not self.up and not self.create():
            return f"cannot create network namespaces: {self.error}"
        return None


class Vpn(Contender):
    kind = "vpn"

    def __init__(self, ctx, netns):
        super().__init__(ctx)
        self.netns = netns
        self.client_ns, self.sink_ns = netns.a, netns.b
        self.skip = {m: "a VPN sets up one tunnel for every connection"
                     for m in ("handshakes_per_s", "cpu_core_ms_per_handshake",
                               "cpu_machine_core_ms_per_handshake")}
        # Its sides talk over a veth pair in two namespaces (UDP for the VPNs): the TCP
        # delay relay of bench/wan.py cannot sit between them.
        for m in ("ttfb_new_conn_ms", "ttfb_new_conn_rtts"):
            self.skip[m] = "the delay link is a TCP relay; this pair talks over a veth pair"

    def unavailable(self):
        if os.geteuid() != 0:
            return "needs root (network namespaces and tun devices)"
        if not os.path.exists("/dev/net/tun"):
            return "no /dev/net/tun on this machine"
        return self.netns.ready()

    def _ip(self, ns, *args):
        r = subprocess.run(["ip", "-n", ns] + list(args), capture_output=True, text=True)
        if r.returncode:
            raise BenchError(f"ip -n {ns} {' '.join(args)}: {r.stderr.strip()}")

    def _wait_dev(self, ns, dev, proc, timeout=15):
        deadline = time.monotonic() + timeout
        while subprocess.run(["ip", "-n", ns, "link", "show", "dev", dev],
                             capture_output=True).returncode:
            if proc.poll() is not None:
                raise BenchError(f"{self.name} in {ns} exited {proc.returncode} before "
                                 f"creating {dev}: {self._log_tail(proc)}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no {dev} in {ns} after {timeout}s")
            time.sleep(0.05)

    def _log_tail(self, proc):
        return ""


class Wireguard(Vpn):
    """wireguard-go (userspace WireGuard) in each namespace, over the veth pair."""
    name = "wireguard-go"

    def unavailable(self):
        return _need("wireguard-go", "wg") or super().unavailable()

    def _keys(self):
        if hasattr(self, "priv"):
            return
        self.priv, self.pub = {}, {}
        for side in ("a", "b"):
            priv = subprocess.run(["wg", "genkey"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            self.pub[side] = subprocess.run(["wg", "pubkey"], input=priv, capture_output=True,
                                            text=True, check=True).stdout.strip()
            self.priv[side] = self.ctx.path(f"wg-{side}.key")
            fd = os.open(self.priv[side], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(priv + "\n")

    def start(self, upstream):
        n = self.netns
        self._keys()
        env = dict(self.ctx.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
        sides = (("a", n.a, "b", n.addr_b, "10.78.0.1", "10.78.0.2"),
                 ("b", n.b, "a", n.addr_a, "10.78.0.2", "10.78.0.1"))
        for side, ns, other, endpoint, mine, theirs in sides:
            dev = f"fgwg{os.getpid() % 100000}{side}"
            log = f"wireguard-{side}.log"
            p = self._spawn(["wireguard-go", "-f", dev], log, env=env, ns=ns)
            self.log_paths = getattr(self, "log_paths", {})
            self.log_paths[p.pid] = self.ctx.path(log)
            self._wait_dev(ns, dev, p)
            r = subprocess.run(["ip", "netns", "exec", ns, "wg", "set", dev, "private-key",
                                self.priv[side], "listen-port", "51820", "peer",
                                self.pub[other], "allowed-ips", f"{theirs}/32", "endpoint",
                                f"{endpoint}:51820"], capture_output=True, text=True)
            if r.returncode:
                raise BenchError(f"wg set {dev}: {r.stderr.strip()}")
            self._ip(ns, "addr", "add", f"{mine}/24", "dev", dev)
            self._ip(ns, "link", "set", dev, "up")
        self.host = "10.78.0.2"
        self.ports = dict(upstream)

    def _log_tail(self, proc):
        try:
            with open(self.log_paths[proc.pid]) as f:
                return " / ".join(f.read().strip().splitlines()[-2:])
        except (OSError, KeyError, AttributeError):
            return ""


class Openvpn(Vpn):
    """OpenVPN 2.6 in TLS mode (same certificates, TLS 1.3 control channel,
    AES-128-GCM data channel), UDP, point-to-point, userspace (no DCO)."""
    name = "openvpn"

    def unavailable(self):
        return _need("openvpn") or super().unavailable()

    def start(self, upstream):
        c, n = self.ctx, self.netns
        sides = (("a", n.a, n.addr_a, n.addr_b, "10.79.0.1", "10.79.0.2"),
                 ("b", n.b, n.addr_b, n.addr_a, "10.79.0.2", "10.79.0.1"))
        logs = []
        for side, ns, local, remote, mine, theirs in sides:
            dev = f"fgov{os.getpid() % 100000}{side}"
            log = c.path(f"openvpn-{side}.log")
            if os.path.exists(log):
                os.unlink(log)
            argv = ["openvpn", "--dev", dev, "--dev-type", "tun", "--proto", "udp",
                    "--local", local, "--lport", "1194", "--remote", remote, "1194",
                    "--ifconfig", mine, theirs, "--ca", c.trust, "--tls-version-min", "1.3",
                    "--tls-ciphersuites", SUITE, "--tls-groups", "X25519",
                    "--data-ciphers", "AES-128-GCM", "--cipher", "AES-128-GCM",
                    "--disable-dco", "--verb", "3", "--log", log]
            if side == "a":
                argv += ["--tls-client", "--cert", c.client_crt, "--key", c.client_key,
                         "--remote-cert-tls", "server",
                         "--verify-x509-name", c.server_name, "name"]
            else:
                argv += ["--tls-server", "--dh", "none", "--cert", c.server_crt,
                         "--key", c.server_key, "--remote-cert-tls", "client"]
            self._spawn(argv, f"openvpn-{side}.out", ns=ns)
            logs.append(log)
        deadline = time.monotonic() + 30
        while True:
            done = 0
            for log, p in zip(logs, self.procs):
                text = open(log).read() if os.path.exists(log) else ""
                if p.poll() is not None:
                    tail = " / ".join(text.strip().splitlines()[-2:])
                    raise BenchError(f"openvpn exited {p.returncode}: {tail}")
                done += "Initialization Sequence Completed" in text
            if done == 2:
                break
            if time.monotonic() > deadline:
                raise BenchError("openvpn: no 'Initialization Sequence Completed' within 30s")
            time.sleep(0.1)
        self.host = "10.79.0.2"
        self.ports = dict(upstream)


class FedgateTransparent(Fedgate):
    """fedgate as the VPN it replaces, in the VPN rows' namespaces: the load in A dials the
    sinks' own address in B (10.77.0.2) unchanged, and gateway A captures it.

    Local mode (nftables REDIRECT in A's output hook), because the client runs on A's own
    host, as the VPN rows' client runs beside their tunnel end. Gateway A looks the original
    destination up in `$.routes`, dials gateway B (10.77.0.2:8443) over mutual TLS and sends
    the PROXY v2 header; B's transparent terminate tunnel checks `reach` (the three sinks) and
    dials the destination. Both gateways run one userspace worker, like fedgate-userspace.
    """
    name = "fedgate-transparent"
    PEER_PORT = 8443
    CAPTURE_PORT = 15002

    def __init__(self, ctx, netns):
        super().__init__(ctx, "userspace")
        self.name = FedgateTransparent.name
        self.netns = netns
        self.client_ns, self.sink_ns = netns.a, netns.b
        self.host = netns.addr_b
        self.captured = None  # A's config while its capture table is installed
        for m in ("ttfb_new_conn_ms", "ttfb_new_conn_rtts"):
            self.skip[m] = "the delay link is a TCP relay; this pair talks over a veth pair"

    def unavailable(self):
        return super().unavailable() or self.netns.ready()

    def _capture(self, action, cfg_path):
        """`fedgate capture up|down` in A's namespace; BenchError with its reason on failure."""
        r = subprocess.run(["ip", "netns", "exec", self.netns.a, self.ctx.fedgate, "capture",
                            action, "-c", cfg_path], capture_output=True, text=True,
                           env=self.ctx.env)
        if r.returncode:
            why = " / ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            raise BenchError(f"fedgate capture {action} exited {r.returncode}: {why}")

    def start(self, upstream):
        n = self.netns
        services = [f"{n.addr_b}:{upstream[k]}" for k in UPSTREAMS]
        self._gateway("b", self._config("bar", [
            {"name": "from-a", "mode": "terminate", "transparent": True,
             "listen": f"{n.addr_b}:{self.PEER_PORT}",
             "allow": [{"dns": "foo.internal", "root": "Cloud Root CA", "reach": services}]}]),
            ns=n.b)
        cfg = self._config("foo", [{"name": "local", "mode": "originate", "capture": "redirect",
                                    "listen": f"[::]:{self.CAPTURE_PORT}"}])
        # Only the sinks' ports: the route is what the application reaches, not B's own port.
        cfg["routes"] = [{"to": [f"{n.addr_b}/32"],
                          "ports": [str(upstream[k]) for k in UPSTREAMS],
                          "peer": f"{n.addr_b}:{self.PEER_PORT}",
                          "server_name": self.ctx.server_name,
                          "allow": [{"dns": "bar.internal", "root": "Kubernetes Root CA"}]}]
        self._capture("up", self._write_config("a", cfg))
        self.captured = self.ctx.path(f"{self.name}-a.json")
        self._gateway("a", cfg, ns=n.a)
        self.ports = dict(upstream)
        self._check_captured()

    def _check_captured(self):
        """BenchError unless a connection to a sink rides a tunnel to B.

        Without capture the load would reach the sinks directly over the veth pair, in
        plaintext, and the row would measure nothing but the veth pair.
        """
        n = self.netns
        holder, _ = conns_idle(self.ctx.pin, self.ctx.tools, n.addr_b, self.ports["echo"], 1, 1,
                               self.ctx.path(f"{self.name}-check.log"), n.a, timeout=30)
        try:
            r = subprocess.run(["ip", "netns", "exec", n.a, "ss", "-Htn", "state", "established",
                                "dst", f"{n.addr_b}:{self.PEER_PORT}"],
                               capture_output=True, text=True)
        finally:
            release(holder)
        if r.returncode or not r.stdout.strip():
            raise BenchError(f"a connection to {n.addr_b}:{self.ports['echo']} in {n.a} "
                             f"opened no tunnel to {n.addr_b}:{self.PEER_PORT}: not captured "
                             f"(see {self.ctx.path(self.name + '-a.log')})")

    def stop(self):
        super().stop()
        if self.captured:
            path, self.captured = self.captured, None
            try:
                self._capture("down", path)
            except BenchError as e:
                # Not fatal: the namespaces, and the table with them, go at the end of the run.
                print(f"  {self.name}: {e}", flush=True)


# The +pool row's pool.size: a few ready connections per tunnel, refilled in the background.
POOL_SIZE = 4

# fedgate's data plane modes: (offload, kernel_tx, local_redirect on). Those the kernel or
# this fedgate cannot run are reported unavailable with `fedgate check`'s reason.
FEDGATE_MODES = [("userspace", None, False), ("kernel", None, False), ("kernel", "splice", False),
                 ("userspace", None, True), ("kernel", None, True)]


def make_all(ctx, netns):
    """Every contender in the order of the results table."""
    out = [Plain(ctx), PlainRelay(ctx), PlainRelayRedirect(ctx)]
    out += [Fedgate(ctx, *m) for m in FEDGATE_MODES]
    out += [Fedgate(ctx, "userspace", resume=True)]
    # warm pools on both sides (issue 17): what ttfb_new_conn_ms gains, what the rest costs
    out += [Fedgate(ctx, "userspace", pool=POOL_SIZE)]
    out += [FedgateHs(ctx, n) for n in (0, 1, 2)]
    out += [Stunnel(ctx), Haproxy(ctx), Nginx(ctx), NginxResume(ctx), Socat(ctx)]
    out += [FedgateTransparent(ctx, netns), Wireguard(ctx, netns), Openvpn(ctx, netns)]
    return out
