"""Config validation: every bad config is refused by `fedgate check` and `fedgate run` alike.

A refusal is exit status 2 and exactly one line on stderr:

    fedgate: FILE: $.json.path: problem

naming the config file, where in the JSON the problem is, and what it is. `run`
must refuse before it starts anything: no process of its group outlives it.
Valid configs (relative paths, both cipher spellings) pass `fedgate check`.
"""

import copy
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from conftest import FEDGATE, identity

# The upstream of the base terminate tunnel; nothing listens there (check never connects).
UPSTREAM = "127.0.0.1:9"
# The problem text getaddrinfo gives for an unresolvable name: EAI_NONAME (a resolver
# that answers) or EAI_AGAIN (no resolver reachable, e.g. an offline build box).
UNRESOLVABLE = ("host name does not resolve", "Temporary failure in name resolution")


def terminate_tunnel(name="t", **over):
    t = {"name": name, "mode": "terminate", "listen": "127.0.0.1:0", "upstream": UPSTREAM,
         "allow": [{"dns": "foo.internal", "root": "Cloud Root CA"}]}
    t.update(over)
    return t


def originate_tunnel(name="o", **over):
    t = {"name": name, "mode": "originate", "listen": "127.0.0.1:0",
         "peer": "127.0.0.1:8443", "server_name": "bar.internal",
         "allow": [{"dns": "bar.internal"}]}
    t.update(over)
    return t


def base_config(pki):
    """A complete valid config: every section present, one tunnel of each mode."""
    return {"identity": identity(pki, "foo"),
            "tls": {"min_version": "1.3", "max_version": "1.3",
                    "ciphers": ["AES-128-GCM"], "handshake_timeout_ms": 5000},
            "dataplane": {"workers": 1, "offload": "userspace"},
            "tunnels": [terminate_tunnel(), originate_tunnel()]}


def run_fedgate(args, cwd=None):
    """Runs fedgate in its own process group; returns (result, whether the group outlived it).

    Output goes to files, not pipes, so that a leftover child holding them open cannot
    make the wait hang: the wait is for fedgate itself.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([FEDGATE, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             cwd=cwd, start_new_session=True)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise AssertionError(f"fedgate {' '.join(args)} still running after 10 s")
        # The group is named after the (now reaped) leader; it exists while any member does.
        try:
            os.killpg(p.pid, 0)
            left_behind = True
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            left_behind = False
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read()), \
            left_behind


def assert_refused(path, jpath, *problem, any_of=()):
    """Both commands: exit 2, one stderr line "fedgate: PATH: JPATH: ..." with @problem in it."""
    lines = {}
    for cmd in ("check", "run"):
        r, left = run_fedgate([cmd, "-c", str(path)])
        assert r.returncode == 2, f"{cmd}: exit {r.returncode}\n{r.stderr}"
        assert r.stdout == "", f"{cmd}: unexpected stdout {r.stdout!r}"
        assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, \
            f"{cmd}: want exactly one stderr line, got {r.stderr!r}"
        line = r.stderr.rstrip("\n")
        assert line.startswith(f"fedgate: {path}: {jpath}: "), f"{cmd}: {line!r}"
        for text in problem:
            assert text in line, f"{cmd}: {text!r} not in {line!r}"
        if any_of:
            assert any(t in line for t in any_of), f"{cmd}: none of {any_of!r} in {line!r}"
        assert not left, f"{cmd}: left a process behind"
        lines[cmd] = line
    assert lines["check"] == lines["run"], "check and run disagree"
    return lines["check"]


def write_config(tmp_path, cfg, name="fedgate.json"):
    path = tmp_path / name
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2))
    return path


# ---------------------------------------------------------------------------
# Refusals. Each case: id -> (mutate(cfg, pki, tmp) -> cfg or JSON text,
#                            JSON path, [substrings of the problem], {extra}).
# mutate edits a deep copy of base_config(); a str return replaces the file.


def tun(i=0):
    return lambda cfg: cfg["tunnels"][i]


def setv(getter, key, value):
    def mutate(cfg, pki, tmp):
        getter(cfg)[key] = value
        return cfg
    return mutate


def delv(getter, key):
    def mutate(cfg, pki, tmp):
        del getter(cfg)[key]
        return cfg
    return mutate


def text(t):
    return lambda cfg, pki, tmp: t


def top(cfg):
    return cfg


def ident(cfg):
    return cfg["identity"]


def tls(cfg):
    return cfg["tls"]


def dataplane(cfg):
    return cfg["dataplane"]


def rule(t, r):
    return lambda cfg: cfg["tunnels"][t]["allow"][r]


def tmpfile(content, name):
    """A file in the test's tmp dir; returns its path (written when the case runs)."""
    def make(tmp):
        p = tmp / name
        p.write_text(content)
        return str(p)
    return make


def with_identity(key, make_path):
    def mutate(cfg, pki, tmp):
        cfg["identity"][key] = make_path(pki, tmp)
        return cfg
    return mutate


def missing_file(pki, tmp):
    return str(tmp / "no-such-dir" / "missing.pem")


GARBAGE = "this is not a PEM file\n"

CASES = {
    # --- JSON syntax and shape
    "json-syntax-bad-value": (
        text('{\n  "identity": {\n    "cert": oops\n  }\n}\n'),
        "$", ["JSON syntax error", "line 3, column 13"]),
    "json-syntax-missing-colon": (
        text('{\n  "tunnels"\t[]\n}\n'), "$", ["JSON syntax error", "line 2, column 13"]),
    "json-syntax-trailing-garbage": (
        text('{}\n}'), "$", ["JSON syntax error", "line 2, column 1"]),
    "json-syntax-truncated": (
        text('{\n  "identity": {\n'), "$", ["JSON syntax error", "line 3, column 1"]),
    "json-syntax-empty-file": (text(''), "$", ["JSON syntax error", "line 1, column 1"]),
    "top-level-array": (text('[{"identity": {}}]'), "$", ["expected an object"]),
    "top-level-string": (text('"fedgate"'), "$", ["expected an object"]),
    # --- unknown keys
    "unknown-top-level-key": (setv(top, "tunnel", []), "$.tunnel", ["unknown key"]),
    "unknown-identity-key": (setv(ident, "cafile", "x"), "$.identity.cafile", ["unknown key"]),
    "unknown-tls-key": (setv(tls, "min_versoin", "1.3"), "$.tls.min_versoin", ["unknown key"]),
    "unknown-dataplane-key": (setv(dataplane, "threads", 2), "$.dataplane.threads",
                              ["unknown key"]),
    "unknown-tunnel-key": (setv(tun(1), "sni", "bar.internal"), "$.tunnels[1].sni",
                           ["unknown key"]),
    "unknown-allow-rule-key": (setv(rule(0, 0), "san", "x"), "$.tunnels[0].allow[0].san",
                               ["unknown key"]),
    # --- wrong types
    "identity-not-object": (setv(top, "identity", "foo.pem"), "$.identity",
                            ["expected an object"]),
    "tls-not-object": (setv(top, "tls", ["1.3"]), "$.tls", ["expected an object"]),
    "workers-string": (setv(dataplane, "workers", "4"), "$.dataplane.workers",
                       ["expected an integer"]),
    "workers-fraction": (setv(dataplane, "workers", 1.5), "$.dataplane.workers",
                         ["expected an integer"]),
    "workers-bool": (setv(dataplane, "workers", True), "$.dataplane.workers",
                     ["expected an integer"]),
    "ciphers-string": (setv(tls, "ciphers", "AES-128-GCM"), "$.tls.ciphers",
                       ["expected a non-empty array of cipher names"]),
    "ciphers-empty": (setv(tls, "ciphers", []), "$.tls.ciphers",
                      ["expected a non-empty array of cipher names"]),
    "cert-number": (setv(ident, "cert", 1), "$.identity.cert", ["expected a string"]),
    "cert-empty-string": (setv(ident, "cert", ""), "$.identity.cert", ["must not be empty"]),
    "min-version-number": (setv(tls, "min_version", 1.3), "$.tls.min_version",
                           ["expected a string", '"1.3"']),
    "listen-number": (setv(tun(0), "listen", 8080), "$.tunnels[0].listen",
                      ["expected a string", "host:port"]),
    "tunnel-name-number": (setv(tun(0), "name", 7), "$.tunnels[0].name", ["expected a string"]),
    "tunnel-name-too-long": (setv(tun(0), "name", "t" * 64), "$.tunnels[0].name",
                             ["longer than 63 bytes"]),
    "tunnel-not-object": (setv(top, "tunnels", ["t"]), "$.tunnels[0]", ["expected an object"]),
    "tunnels-object": (setv(top, "tunnels", {"t": {}}), "$.tunnels",
                       ["expected a non-empty array of tunnels"]),
    "allow-object": (setv(tun(0), "allow", {"dns": "foo.internal"}), "$.tunnels[0].allow",
                     ["expected a non-empty array of rules"]),
    "allow-rule-string": (setv(tun(0), "allow", ["foo.internal"]), "$.tunnels[0].allow[0]",
                          ["expected an object"]),
    "allow-dns-array": (setv(rule(0, 0), "dns", ["foo.internal"]), "$.tunnels[0].allow[0].dns",
                        ["expected a string"]),
    "allow-dns-empty": (setv(rule(0, 0), "dns", ""), "$.tunnels[0].allow[0].dns",
                        ["must not be empty"]),
    # --- identity files
    "missing-identity": (delv(top, "identity"), "$.identity", ["missing required key"]),
    "missing-identity-key": (delv(ident, "key"), "$.identity.key", ["missing required key"]),
    "missing-identity-trust": (delv(ident, "trust"), "$.identity.trust",
                               ["missing required key"]),
    "cert-nonexistent": (with_identity("cert", missing_file), "$.identity.cert",
                         ["cannot read", "missing.pem", "No such file or directory"]),
    "cert-not-pem": (with_identity("cert", lambda pki, tmp: tmpfile(GARBAGE, "c.pem")(tmp)),
                     "$.identity.cert", ["c.pem is not a usable PEM certificate chain"]),
    "cert-is-a-key": (with_identity("cert", lambda pki, tmp: pki["leaves"]["foo"]["key"]),
                      "$.identity.cert", ["is not a usable PEM certificate chain"]),
    "key-nonexistent": (with_identity("key", missing_file), "$.identity.key",
                        ["cannot read", "missing.pem", "No such file or directory"]),
    "key-of-another-leaf": (with_identity("key", lambda pki, tmp: pki["leaves"]["bar"]["key"]),
                            "$.identity.key", ["bar.key", "does not match", "foo.crt"]),
    "key-garbage": (with_identity("key", lambda pki, tmp: tmpfile(GARBAGE, "k.pem")(tmp)),
                    "$.identity.key", ["k.pem is not a usable PEM private key"]),
    "key-is-a-certificate": (with_identity("key", lambda pki, tmp: pki["leaves"]["foo"]["crt"]),
                             "$.identity.key", ["is not a usable PEM private key"]),
    "trust-nonexistent": (with_identity("trust", missing_file), "$.identity.trust",
                          ["cannot read", "missing.pem", "No such file or directory"]),
    "trust-empty-file": (with_identity("trust", lambda pki, tmp: tmpfile("", "t.pem")(tmp)),
                         "$.identity.trust", ["t.pem holds no certificate"]),
    "trust-text-file": (with_identity("trust", lambda pki, tmp: tmpfile(GARBAGE, "t.pem")(tmp)),
                        "$.identity.trust", ["t.pem holds no certificate"]),
    "trust-only-a-key": (with_identity("trust", lambda pki, tmp: pki["leaves"]["foo"]["key"]),
                         "$.identity.trust", ["holds no certificate"]),
    # --- tls
    "min-version-1.2": (setv(tls, "min_version", "1.2"), "$.tls.min_version",
                        ["TLS 1.3 only", '"1.2" is not supported']),
    "max-version-TLSv1.2": (setv(tls, "max_version", "TLSv1.2"), "$.tls.max_version",
                            ["TLS 1.3 only", '"TLSv1.2" is not supported']),
    "unknown-cipher": (setv(tls, "ciphers", ["AES-128-GCM", "AES-128-CBC"]), "$.tls.ciphers[1]",
                       ["unknown cipher", "AES-128-GCM, AES-256-GCM or CHACHA20-POLY1305"]),
    "cipher-openssl-tls12-name": (setv(tls, "ciphers", ["ECDHE-RSA-AES128-GCM-SHA256"]),
                                  "$.tls.ciphers[0]", ["unknown cipher"]),
    "duplicate-cipher": (setv(tls, "ciphers", ["AES-256-GCM", "CHACHA20-POLY1305",
                                               "AES-256-GCM"]),
                         "$.tls.ciphers[2]", ["listed twice"]),
    "duplicate-cipher-two-spellings": (setv(tls, "ciphers", ["AES-128-GCM",
                                                             "TLS_AES_128_GCM_SHA256"]),
                                       "$.tls.ciphers[1]", ["listed twice"]),
    "handshake-timeout-too-low": (setv(tls, "handshake_timeout_ms", 99),
                                  "$.tls.handshake_timeout_ms",
                                  ["must be between 100 and 600000"]),
    "handshake-timeout-too-high": (setv(tls, "handshake_timeout_ms", 600001),
                                   "$.tls.handshake_timeout_ms",
                                   ["must be between 100 and 600000"]),
    "handshake-timeout-negative": (setv(tls, "handshake_timeout_ms", -1),
                                   "$.tls.handshake_timeout_ms",
                                   ["must be between 100 and 600000"]),
    "handshake-threads-negative": (setv(tls, "handshake_threads", -1),
                                   "$.tls.handshake_threads", ["must be between 0 and 64"]),
    "handshake-threads-too-many": (setv(tls, "handshake_threads", 65),
                                   "$.tls.handshake_threads", ["must be between 0 and 64"]),
    "handshake-threads-not-a-number": (setv(tls, "handshake_threads", "2"),
                                       "$.tls.handshake_threads", []),
    # --- dataplane
    "workers-0": (setv(dataplane, "workers", 0), "$.dataplane.workers",
                  ["must be between 1 and 64"]),
    "workers-65": (setv(dataplane, "workers", 65), "$.dataplane.workers",
                   ["must be between 1 and 64"]),
    "offload-fast": (setv(dataplane, "offload", "fast"), "$.dataplane.offload",
                     ['"auto", "kernel" or "userspace"', 'got "fast"']),
    "offload-case": (setv(dataplane, "offload", "Kernel"), "$.dataplane.offload",
                     ['got "Kernel"']),
    "kernel-tx-sendfile": (setv(dataplane, "kernel_tx", "sendfile"), "$.dataplane.kernel_tx",
                           ['"copy" or "splice"', 'got "sendfile"']),
    "kernel-tx-bool": (setv(dataplane, "kernel_tx", True), "$.dataplane.kernel_tx",
                       ["expected a string"]),
    # --- tunnels
    "tunnels-missing": (delv(top, "tunnels"), "$.tunnels", ["missing required key"]),
    "tunnels-empty": (setv(top, "tunnels", []), "$.tunnels",
                      ["expected a non-empty array of tunnels"]),
    "tunnel-name-missing": (delv(tun(1), "name"), "$.tunnels[1].name", ["missing required key"]),
    "duplicate-tunnel-names": (setv(tun(1), "name", "t"), "$.tunnels[1]",
                               ['tunnel name "t" is used twice']),
    "mode-missing": (delv(tun(0), "mode"), "$.tunnels[0].mode", ["missing required key"]),
    "mode-bogus": (setv(tun(0), "mode", "bogus"), "$.tunnels[0].mode",
                   ['"originate" or "terminate"', 'got "bogus"']),
    "listen-missing": (delv(tun(0), "listen"), "$.tunnels[0].listen", ["missing required key"]),
    "originate-without-server-name": (delv(tun(1), "server_name"),
                                      "$.tunnels[1].server_name", ["missing required key"]),
    "originate-without-peer": (delv(tun(1), "peer"), "$.tunnels[1].peer",
                               ["missing required key"]),
    "originate-with-upstream": (setv(tun(1), "upstream", UPSTREAM), "$.tunnels[1].upstream",
                                ['"upstream" belongs to terminate tunnels']),
    "originate-with-proxy-protocol": (setv(tun(1), "proxy_protocol", "v2"),
                                      "$.tunnels[1].proxy_protocol",
                                      ['"proxy_protocol" applies to terminate tunnels only']),
    "terminate-without-upstream": (delv(tun(0), "upstream"), "$.tunnels[0].upstream",
                                   ["missing required key"]),
    "terminate-with-peer": (setv(tun(0), "peer", "127.0.0.1:8443"), "$.tunnels[0].peer",
                            ['"peer" belongs to originate tunnels']),
    "terminate-with-server-name": (setv(tun(0), "server_name", "bar.internal"),
                                   "$.tunnels[0].server_name",
                                   ['"server_name" applies to originate tunnels only']),
    "proxy-protocol-v1": (setv(tun(0), "proxy_protocol", "v1"), "$.tunnels[0].proxy_protocol",
                          ['"v2" or "none"', 'got "v1"']),
    # --- addresses
    "listen-without-port": (setv(tun(0), "listen", "localhost"), "$.tunnels[0].listen",
                            ['bad address "localhost"', 'expected "host:port"']),
    "listen-port-plus-sign": (setv(tun(0), "listen", "127.0.0.1:+80"), "$.tunnels[0].listen",
                              ['bad address "127.0.0.1:+80"', "port must be"]),
    "listen-port-space": (setv(tun(0), "listen", "127.0.0.1: 80"), "$.tunnels[0].listen",
                          ["port must be"]),
    "listen-port-99999": (setv(tun(0), "listen", "1.2.3.4:99999"), "$.tunnels[0].listen",
                          ['bad address "1.2.3.4:99999"', "port must be 0..65535"]),
    "upstream-port-99999": (setv(tun(0), "upstream", "1.2.3.4:99999"), "$.tunnels[0].upstream",
                            ["port must be 1..65535"]),
    "listen-v6-without-colon": (setv(tun(0), "listen", "[::1]80"), "$.tunnels[0].listen",
                                ['bad address "[::1]80"', 'expected "[ipv6]:port"']),
    "listen-v6-unclosed": (setv(tun(0), "listen", "[::1:80"), "$.tunnels[0].listen",
                           ['expected "[ipv6]:port"']),
    "listen-empty-host": (setv(tun(0), "listen", ":80"), "$.tunnels[0].listen",
                          ["missing or overlong host"]),
    "listen-port-not-a-number": (setv(tun(0), "listen", "127.0.0.1:http"), "$.tunnels[0].listen",
                                 ["port must be 0..65535"]),
    "listen-port-empty": (setv(tun(0), "listen", "127.0.0.1:"), "$.tunnels[0].listen",
                          ["port must be 0..65535"]),
    "upstream-unresolvable": (setv(tun(0), "upstream", "nosuchhost.invalid:80"),
                              "$.tunnels[0].upstream", ['bad address "nosuchhost.invalid:80"'],
                              {"any_of": UNRESOLVABLE}),
    "peer-port-0": (setv(tun(1), "peer", "127.0.0.1:0"), "$.tunnels[1].peer",
                    ['bad address "127.0.0.1:0"', "port must be 1..65535"]),
    "upstream-port-0": (setv(tun(0), "upstream", "127.0.0.1:0"), "$.tunnels[0].upstream",
                        ["port must be 1..65535"]),
    # --- allow rules
    "allow-missing": (delv(tun(0), "allow"), "$.tunnels[0].allow",
                      ["missing required key", "admits no peer"]),
    "allow-empty": (setv(tun(1), "allow", []), "$.tunnels[1].allow",
                    ["expected a non-empty array of rules"]),
    "allow-rule-no-fields": (setv(tun(0), "allow", [{"dns": "foo.internal"}, {}]),
                             "$.tunnels[0].allow[1]",
                             ["an allow rule needs at least one of dns, uri, cn, root"]),
    # --- pool (warm connections)
    "pool-not-object": (setv(tun(1), "pool", 4), "$.tunnels[1].pool",
                        ["expected an object {\"size\": N, \"idle_s\": S}"]),
    "pool-originate-no-size": (setv(tun(1), "pool", {"idle_s": 10}), "$.tunnels[1].pool.size",
                               ["missing required key"]),
    "pool-size-zero": (setv(tun(1), "pool", {"size": 0}), "$.tunnels[1].pool.size",
                       ["must be between 1 and 64"]),
    "pool-size-huge": (setv(tun(1), "pool", {"size": 65}), "$.tunnels[1].pool.size",
                       ["must be between 1 and 64"]),
    "pool-idle-zero": (setv(tun(1), "pool", {"size": 2, "idle_s": 0}),
                       "$.tunnels[1].pool.idle_s", ["must be between 1 and 3600"]),
    "pool-originate-max": (setv(tun(1), "pool", {"size": 2, "max": 9}),
                           "$.tunnels[1].pool.max", ["unknown key"]),
    "pool-terminate-size": (setv(tun(0), "pool", {"size": 2}), "$.tunnels[0].pool.size",
                            ["unknown key"]),
    "pool-terminate-max-zero": (setv(tun(0), "pool", {"max": 0}), "$.tunnels[0].pool.max",
                                ["must be between 1 and 10000000"]),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_config_is_refused(pki, tmp_path, case):
    mutate, jpath, problem, *extra = case
    cfg = mutate(copy.deepcopy(base_config(pki)), pki, tmp_path)
    path = write_config(tmp_path, cfg)
    assert_refused(path, jpath, *problem, **(extra[0] if extra else {}))


def test_base_config_is_valid(pki, tmp_path):
    """The configs above differ from this one by one thing each."""
    path = write_config(tmp_path, base_config(pki))
    r, left = run_fedgate(["check", "-c", str(path)])
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.startswith(f"{path}: OK: 2 tunnel(s), 2 root(s) in the trust bundle, ")
    assert not left


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope" / "fedgate.json"
    assert_refused(path, "$", "cannot open", "No such file or directory")


def test_config_is_a_directory(tmp_path):
    assert_refused(tmp_path, "$", "not a regular file")


def test_error_names_the_right_file(pki, tmp_path):
    """The path in the message is the config file's, also when a PEM file is at fault."""
    cfg = base_config(pki)
    cfg["identity"]["trust"] = str(tmp_path / "gone.pem")
    path = write_config(tmp_path, cfg, name="edge gateway.json")
    line = assert_refused(path, "$.identity.trust", "gone.pem")
    assert line.count(str(path)) == 1


TCP_ULP = 31  # linux/tcp.h; not exported by Python's socket module


def kernel_has_ktls():
    """The probe fedgate makes: does a connected TCP socket accept the "tls" ULP?"""
    with socket.socket() as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        with socket.create_connection(lst.getsockname(), timeout=5) as c:
            conn, _ = lst.accept()
            with conn:
                try:
                    c.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
                    return True
                except OSError:
                    return False


def test_run_refuses_kernel_offload(pki, tmp_path):
    """offload "kernel" without kernel TLS: run refuses, naming the key and the way out."""
    if kernel_has_ktls():
        pytest.skip("this kernel has kTLS: offload \"kernel\" is not a config error here")
    cfg = base_config(pki)
    cfg["dataplane"]["offload"] = "kernel"
    path = write_config(tmp_path, cfg)
    for cmd in ("run", "check"):
        r, left = run_fedgate([cmd, "-c", str(path)])
        assert r.returncode == 2, r.stderr
        assert r.stdout == ""
        assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"fedgate: {path}: $.dataplane.offload: "), r.stderr
        assert '"kernel"' in r.stderr
        assert '"auto" or "userspace"' in r.stderr
        assert not left, f"{cmd} left a process behind"


# ---------------------------------------------------------------------------
# Valid configs.


def check_ok(path, cwd=None, tunnels=2):
    r, left = run_fedgate(["check", "-c", str(path)], cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert re.fullmatch(rf"{re.escape(str(path))}: OK: {tunnels} tunnel\(s\), 2 root\(s\) in the "
                        r"trust bundle, (userspace record layer|kernel TLS)\n", r.stdout), r.stdout
    assert not left
    return r


def copy_pki(pki, dest):
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki["leaves"]["foo"]["crt"], dest / "foo.crt")
    shutil.copy(pki["leaves"]["foo"]["key"], dest / "foo.key")
    shutil.copy(pki["federated"], dest / "federated.pem")


RELATIVE = {"cert": "pki/foo.crt", "key": "pki/foo.key", "trust": "pki/federated.pem"}


@pytest.mark.parametrize("how", ["absolute-config-path", "relative-config-path",
                                 "bare-config-name"])
def test_relative_paths_resolve_against_config_dir(pki, tmp_path, how):
    """PEM paths are relative to the config file's directory, not to the working directory."""
    conf_dir = tmp_path / "etc" / "fedgate"
    copy_pki(pki, conf_dir / "pki")
    cfg = base_config(pki)
    cfg["identity"] = dict(RELATIVE)
    write_config(conf_dir, cfg)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path, cwd = {"absolute-config-path": (conf_dir / "fedgate.json", elsewhere),
                 "relative-config-path": ("etc/fedgate/fedgate.json", tmp_path),
                 "bare-config-name": ("fedgate.json", conf_dir)}[how]
    check_ok(path, cwd=cwd)


def test_relative_paths_do_not_use_working_directory(pki, tmp_path):
    """The PEM files next to the working directory, not the config: refused, resolved path named."""
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    copy_pki(pki, tmp_path / "pki")  # relative to cwd (tmp_path) only
    cfg = base_config(pki)
    cfg["identity"] = dict(RELATIVE)
    path = write_config(conf_dir, cfg)
    for cmd in ("check", "run"):
        r, left = run_fedgate([cmd, "-c", str(path)], cwd=tmp_path)
        assert r.returncode == 2
        assert r.stderr == (f"fedgate: {path}: $.identity.cert: cannot read "
                            f"{conf_dir}/pki/foo.crt: No such file or directory\n")
        assert not left


@pytest.mark.parametrize("ciphers", [
    ["AES-128-GCM"],
    ["TLS_AES_256_GCM_SHA384"],
    ["CHACHA20-POLY1305", "TLS_AES_128_GCM_SHA256"],
    ["TLS_CHACHA20_POLY1305_SHA256", "AES-256-GCM", "aes-128-gcm"],
], ids=["short", "iana", "mixed", "all-three-any-case"])
def test_cipher_names_accepted(pki, tmp_path, ciphers):
    cfg = base_config(pki)
    cfg["tls"]["ciphers"] = ciphers
    check_ok(write_config(tmp_path, cfg))


@pytest.mark.parametrize("version", ["1.3", "TLSv1.3", "tlsv1.3"])
def test_tls13_version_accepted(pki, tmp_path, version):
    cfg = base_config(pki)
    cfg["tls"]["min_version"] = version
    cfg["tls"]["max_version"] = version
    check_ok(write_config(tmp_path, cfg))


def test_minimal_config_accepted(pki, tmp_path):
    """tls and dataplane are optional; rule fields other than one are optional."""
    cfg = {"identity": identity(pki, "foo"),
           "tunnels": [terminate_tunnel(allow=[{"root": "Kubernetes Root CA"}],
                                        proxy_protocol="none")]}
    check_ok(write_config(tmp_path, cfg), tunnels=1)


def test_boundary_values_accepted(pki, tmp_path):
    cfg = base_config(pki)
    cfg["tls"]["handshake_timeout_ms"] = 600000
    cfg["dataplane"] = {"workers": 64, "offload": "auto", "kernel_tx": "splice"}
    cfg["tunnels"][0]["listen"] = "[::1]:0"
    cfg["tunnels"][0]["upstream"] = "localhost:65535"
    cfg["tunnels"][0]["proxy_protocol"] = "v2"
    cfg["tunnels"][1]["peer"] = "127.0.0.1:1"
    check_ok(write_config(tmp_path, cfg))


def test_check_does_not_start_anything(pki, tmp_path):
    """check on a config whose listen port is taken still says OK: it binds nothing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        cfg = base_config(pki)
        cfg["tunnels"][0]["listen"] = f"127.0.0.1:{s.getsockname()[1]}"
        check_ok(write_config(tmp_path, cfg))


# ---------------------------------------------------------------------------
# Command line.


def test_no_arguments_prints_usage_and_exits_2():
    r, left = run_fedgate([])
    assert r.returncode == 2
    assert "usage: fedgate COMMAND" in r.stdout
    assert "check -c FILE" in r.stdout and "run -c FILE" in r.stdout
    assert not left


def test_unknown_command_exits_2():
    r, left = run_fedgate(["frobnicate"])
    assert r.returncode == 2
    assert r.stderr == 'fedgate: unknown command "frobnicate"; try "fedgate help"\n'
    assert not left


@pytest.mark.parametrize("args", [["check"], ["run"], ["check", "-c", "a.json", "extra"],
                                  ["run", "--bogus"]], ids=["check-no-c", "run-no-c",
                                                            "check-extra-arg", "run-bad-option"])
def test_bad_command_line_exits_2(args):
    r, left = run_fedgate(args)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1].startswith(f"usage: fedgate {args[0]} -c FILE")
    assert not left


def test_version():
    r, _ = run_fedgate(["version"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("fedgate ")
    assert "OpenSSL 3." in r.stdout


# ---------------------------------------------------------------------------
# Doubtful input that JSON allows.


def refused_one_line(path, jpath, words):
    for cmd in ("check", "run"):
        r, left = run_fedgate([cmd, "-c", str(path)])
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.endswith("\n"), r.stderr
        assert r.stderr.startswith(f"fedgate: {path}: {jpath}: "), r.stderr
        for w in words:
            assert w in r.stderr, r.stderr
        assert not left


def test_duplicate_key_is_refused(pki, tmp_path):
    text = json.dumps(base_config(pki))
    text = text[:-1] + ', "tunnels": []}'
    path = tmp_path / "dup.json"
    path.write_text(text)
    refused_one_line(path, "$.tunnels", ["key given twice"])


def test_control_characters_in_keys_stay_on_one_line(pki, tmp_path):
    cfg = base_config(pki)
    cfg["a\nb"] = 1
    path = write_config(tmp_path, cfg)
    refused_one_line(path, "$.a?b", ["unknown key"])


def test_huge_number_is_out_of_range_not_a_crash(pki, tmp_path):
    cfg = base_config(pki)
    cfg["dataplane"]["workers"] = 1e30
    path = write_config(tmp_path, cfg)
    refused_one_line(path, "$.dataplane.workers", ["must be between 1 and 64"])


def test_cipher_that_is_not_a_string(pki, tmp_path):
    cfg = base_config(pki)
    cfg["tls"] = {"ciphers": [1]}
    path = write_config(tmp_path, cfg)
    refused_one_line(path, "$.tls.ciphers[0]", ["expected a string"])
