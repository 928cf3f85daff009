"""What fedgate reads from the file system, and the JSON in it, when it is not what it seems.

- A FIFO (or a directory) at an identity, trust or config path: `check` and `run` refuse it at
  once with one line naming the path ("not a regular file"), instead of blocking in open(2)
  for a writer that never comes.
- A running gateway whose certificate or trust file is replaced by a FIFO keeps serving with
  what it has (the 2 s reload poll must not block in open(2)) and still stops on SIGTERM.
- A NUL inside a JSON string ("t\\u0000evil", which cJSON would read as "t"): exit 2 naming
  the JSON path; the CA refuses it too (/sign body 400, token claims 401, its own config).
- An own certificate that has expired or is in the last third of its lifetime: `check` warns
  with one clear line on stderr (exit 0: a replaced file is taken by the reload), `run` logs it.
"""

import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import FEDGATE, Gateway, identity
from ca.helpers import CA, assert_error, fedgate, make_csr
from pki import issue_leaf

UPSTREAM = "127.0.0.1:9"


def terminate_config(ident):
    return {"identity": ident, "dataplane": {"offload": "userspace"},
            "tunnels": [{"name": "t", "mode": "terminate", "listen": "127.0.0.1:0",
                         "upstream": UPSTREAM, "allow": [{"dns": "foo.internal"}]}]}


def run_timed(args, timeout=5):
    """Runs fedgate in its own group; returns (rc or None if killed at @timeout, stderr, secs)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        p = subprocess.Popen([FEDGATE, *map(str, args)], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rc = None
        secs = time.monotonic() - t0
        try:
            os.killpg(p.pid, signal.SIGKILL)  # a child left behind, if any
        except ProcessLookupError:
            pass
        err.seek(0)
        out.seek(0)
        return rc, err.read(), out.read(), secs


def copy_identity(pki, tmp, leaf="foo"):
    """@leaf's cert and key and the trust bundle, copied into @tmp (the test may replace them)."""
    d = tmp / "pki"
    d.mkdir(exist_ok=True)
    src = identity(pki, leaf)
    ident = {}
    for k in ("cert", "key", "trust"):
        ident[k] = str(d / os.path.basename(src[k]))
        shutil.copy(src[k], ident[k])
    return ident


def sigterm_timed(gw, timeout=5):
    """SIGTERM to @gw's process: (its exit status, None if still running after @timeout s;
    the seconds it took)."""
    t0 = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    try:
        rc = gw.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
    return rc, time.monotonic() - t0


def kill_left(gw):
    """The test's end: @gw's log closed, and its process killed if it still runs."""
    gw.logf.close()
    if gw.proc.poll() is None:
        gw.proc.kill()
        gw.proc.wait()


def write_config(tmp, cfg, name="fedgate.json"):
    path = tmp / name
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2))
    return path


def replace_with_fifo(path):
    """Puts a FIFO (no writer) at @path, atomically, as a rename over the file."""
    tmp = str(path) + ".fifo"
    os.mkfifo(tmp, 0o600)
    os.rename(tmp, path)


# ---------------------------------------------------------------------------------------------
# check and run: a FIFO or a directory at a path is refused at once


@pytest.mark.parametrize("cmd", ["check", "run"])
@pytest.mark.parametrize("which", ["cert", "key", "trust"])
def test_fifo_at_identity_path_is_refused_at_once(pki, tmp_path, which, cmd):
    ident = copy_identity(pki, tmp_path)
    os.unlink(ident[which])
    os.mkfifo(ident[which], 0o600)
    path = write_config(tmp_path, terminate_config(ident))
    rc, err, out, secs = run_timed([cmd, "-c", path])
    assert rc is not None, f"{cmd} still blocked after 5 s on the FIFO at {ident[which]}"
    assert rc == 2 and secs < 1.0, (rc, secs, err)
    assert err == (f"fedgate: {path}: $.identity.{which}: {ident[which]}: not a regular file "
                   f"(a FIFO)\n"), err
    assert out == ""


@pytest.mark.parametrize("which", ["cert", "trust"])
def test_directory_at_identity_path_is_refused(pki, tmp_path, which):
    ident = copy_identity(pki, tmp_path)
    os.unlink(ident[which])
    os.mkdir(ident[which])
    path = write_config(tmp_path, terminate_config(ident))
    rc, err, _, _ = run_timed(["check", "-c", path])
    assert rc == 2, (rc, err)
    assert err == (f"fedgate: {path}: $.identity.{which}: {ident[which]}: not a regular file "
                   f"(a directory)\n"), err


def test_fifo_as_the_config_file_is_refused_at_once(tmp_path):
    path = tmp_path / "fedgate.json"
    os.mkfifo(path, 0o600)
    for cmd in ("check", "run"):
        rc, err, _, secs = run_timed([cmd, "-c", path])
        assert rc == 2 and secs < 1.0, (cmd, rc, secs, err)
        assert err == f"fedgate: {path}: $: not a regular file (a FIFO)\n", err


# ---------------------------------------------------------------------------------------------
# a running gateway: the reload poll meets a FIFO


def handshake(pki, port, timeout=5):
    """One mTLS handshake as foo, then a line through the tunnel; True if it completed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(pki["federated"])
    ctx.load_cert_chain(pki["leaves"]["foo"]["crt"], pki["leaves"]["foo"]["key"])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="bar.internal") as s:
            s.sendall(b"ping\n")
            return s.recv(100) == b"ping\n"


@pytest.mark.parametrize("which", ["cert", "trust"])
def test_file_replaced_by_fifo_keeps_serving_and_obeys_sigterm(pki, tmp_path, upstream, which):
    up = upstream()
    ident = copy_identity(pki, tmp_path, "bar")
    cfg = terminate_config(ident)
    cfg["tunnels"][0]["upstream"] = up.addr
    gw = Gateway(tmp_path, "gw", cfg)
    gw.start()
    try:
        port = gw.port("t")
        assert handshake(pki, port)
        replace_with_fifo(ident[which])
        # Two polls 2 s apart see it settled, then the reload tries it and must give up.
        what = "identity files changed but are" if which == "cert" else \
            "trust bundle changed but is"
        gw.wait_log(rf"{what} not usable: .*{ident[which]}: not a regular file \(a FIFO\)",
                    timeout=15)
        assert handshake(pki, port), "no longer serving after the reload met a FIFO"
        rc, secs = sigterm_timed(gw)
        assert rc == 0 and secs < 5, f"SIGTERM: rc {rc}\n{gw.log()}"
    finally:
        kill_left(gw)
        up.close()


# ---------------------------------------------------------------------------------------------
# NUL inside a JSON string


def nul_refused(path, jpath):
    lines = set()
    for cmd in ("check", "run"):
        rc, err, out, _ = run_timed([cmd, "-c", path])
        assert rc == 2, (cmd, rc, err, out)
        assert err.count("\n") == 1 and err.startswith(f"fedgate: {path}: {jpath}: "), err
        lines.add(err)
    assert len(lines) == 1, lines
    return lines.pop()


def test_nul_escape_in_tunnel_name_is_refused_at_its_path(pki, tmp_path):
    cfg = terminate_config(identity(pki, "foo"))
    cfg["tunnels"][0]["name"] = "t\x00evil"  # json.dumps writes "t\u0000evil"
    path = write_config(tmp_path, cfg)
    assert "t\\u0000evil" in path.read_text()
    line = nul_refused(path, "$.tunnels[0].name")
    assert "\\u0000 (a NUL character) at line " in line, line


def test_nul_escape_in_a_key_or_a_path_is_refused(pki, tmp_path):
    cfg = terminate_config(identity(pki, "foo"))
    cfg["identity"]["cert"] += "\x00.ignored"
    nul_refused(write_config(tmp_path, cfg), "$.identity.cert")
    text = json.dumps(terminate_config(identity(pki, "foo"))).replace('"upstream"',
                                                                     '"upstream\\u0000x"')
    nul_refused(write_config(tmp_path, text), "$.tunnels[0].upstream")


def test_raw_nul_byte_after_the_json_is_refused(pki, tmp_path):
    path = tmp_path / "fedgate.json"
    path.write_bytes(json.dumps(terminate_config(identity(pki, "foo"))).encode() + b"\0junk")
    line = nul_refused(path, "$")
    assert "a NUL byte at line 1" in line, line


def test_escaped_backslash_before_u0000_is_not_a_nul(pki, tmp_path):
    cfg = terminate_config(identity(pki, "foo"))
    cfg["tunnels"][0]["name"] = "t\\u0000"  # a backslash, then the text u0000
    rc, err, _, _ = run_timed(["check", "-c", write_config(tmp_path, cfg)])
    assert rc == 0 and err == "", err


# ---------------------------------------------------------------------------------------------
# the own certificate's validity


def test_expired_own_certificate_makes_check_warn(pki, tmp_path):
    path = write_config(tmp_path, terminate_config(identity(pki, "expired")))
    rc, err, out, _ = run_timed(["check", "-c", path])
    assert rc == 0 and " OK: " in out, (rc, err, out)
    cert = pki["leaves"]["expired"]["crt"]
    assert err.count("\n") == 1, err
    assert err.startswith(f"fedgate: warning: {path}: $.identity.cert: the certificate in {cert} "
                          f"has expired (notAfter "), err
    assert "peers refuse it until it is replaced" in err


def test_certificate_in_its_last_third_makes_check_warn(pki, tmp_path):
    leaf = issue_leaf(pki, "late", "foo.internal", dns=["foo.internal"],
                      not_before=datetime.timedelta(hours=-20),
                      not_after=datetime.timedelta(hours=4))
    ident = {"cert": leaf["crt"], "key": leaf["key"], "trust": pki["federated"]}
    rc, err, _, _ = run_timed(["check", "-c", write_config(tmp_path, terminate_config(ident))])
    assert rc == 0, err
    assert err.count("\n") == 1 and "the certificate in " + leaf["crt"] + " expires in " in err \
        and "last third of its lifetime" in err, err


def test_fresh_certificate_gives_no_warning(pki, tmp_path):
    rc, err, _, _ = run_timed(["check", "-c", write_config(
        tmp_path, terminate_config(identity(pki, "foo")))])
    assert (rc, err) == (0, "")


def test_run_logs_an_expired_own_certificate(pki, tmp_path):
    gw = Gateway(tmp_path, "gw", terminate_config(identity(pki, "expired")))
    gw.start()
    try:
        gw.wait_log(r"warn: .*\$\.identity\.cert: the certificate in .*expired\.crt has "
                    r"expired")
    finally:
        assert gw.stop() == 0


# ---------------------------------------------------------------------------------------------
# the CA's JSON inputs


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    c = CA(tmp_path_factory.mktemp("ca"), "Nul")
    c.start()
    yield c
    assert c.stop() == 0, c.log()


def test_ca_sign_body_with_nul_is_refused_400(ca):
    _, csr = make_csr("svc.internal", ["svc.internal"])
    body = json.dumps({"csr": csr + "\x00junk", "ott": ca.token("svc.internal",
                                                                 ["svc.internal"])})
    assert_error(ca.request("POST", "/1.0/sign", body), 400, "NUL", "$.csr")


def test_ca_token_with_nul_in_a_claim_is_refused_401(ca):
    _, csr = make_csr("svc.internal", ["svc.internal"])
    tok = ca.token("svc.internal\x00.evil", ["svc.internal"])
    assert_error(ca.sign(csr, tok), 401, "NUL", "$.sub")


def test_ca_config_with_nul_is_refused(tmp_path):
    c = CA(tmp_path, "Bad")
    c.edit(lambda cfg: cfg.update(address=cfg["address"] + "\x00junk"))
    r = fedgate("ca", "serve", c.config, "--password-file", c.pwfile, timeout=20)
    assert r.returncode != 0 and "NUL" in r.stderr and "$.address" in r.stderr, r
