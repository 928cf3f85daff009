"""Identity files on a mount that stops answering (a hung NFS or FUSE file system).

A real FUSE file system (fusepy, run by this file as a subprocess) serves the gateway's PKI
files and, while a control file exists, makes every getattr/open/read under it sleep until it
is removed (or the caller is killed: it answers the kernel's interrupt with EINTR, as a
well-behaved FUSE server does, so that a killed process can be reaped).

- A running gateway whose identity.cert lives there keeps serving handshakes while the mount
  hangs (the reload poll's stat/open/read run off the control loop), logs one warning naming
  the path after 5 s, and still exits 0 at once on SIGTERM (the stuck poll is left behind).
- `fedgate check` against the hung mount exits 2 within the 5 s deadline (+1 s), with one line
  naming the path, instead of hanging.
- A SIGHUP while the config file, or an identity file it names, hangs: handshakes go on (the
  load runs on a thread of its own), the reload fails after 5 s naming the path, a SIGHUP that
  came during the load gets a load of its own after it, and SIGTERM still stops at once.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import FEDGATE, Gateway, identity, wait_for
from test_config_files import (handshake, kill_left, run_timed, sigterm_timed, terminate_config,
                               write_config)

HANG_WARNING = ("identity: polling {} has not returned for 5 s (a hung NFS or FUSE mount?); "
                "still serving the current identity")


def serve(src, mnt, hang_flag):
    """The FUSE server: @src read-only at @mnt; every call sleeps while @hang_flag exists."""
    import fusepy

    def stall():
        while os.path.exists(hang_flag):
            # Killed while waiting: the kernel sends FUSE_INTERRUPT; answer it.
            if fusepy._libfuse.fuse_interrupted():
                raise fusepy.FuseOSError(errno.EINTR)
            time.sleep(0.02)

    class Hang(fusepy.Operations):
        def _real(self, path):
            return os.path.join(src, path.lstrip("/"))

        def getattr(self, path, fh=None):
            if path != "/":
                stall()
            try:
                st = os.lstat(self._real(path))
            except OSError as e:
                raise fusepy.FuseOSError(e.errno)
            return {k: getattr(st, k) for k in ("st_mode", "st_size", "st_uid", "st_gid",
                                                 "st_nlink", "st_atime", "st_mtime",
                                                 "st_ctime", "st_ino")}

        def readdir(self, path, fh):
            return [".", ".."] + os.listdir(src)

        def open(self, path, flags):
            stall()
            if flags & (os.O_WRONLY | os.O_RDWR):
                raise fusepy.FuseOSError(errno.EROFS)
            return 0

        def read(self, path, size, offset, fh):
            stall()
            with open(self._real(path), "rb") as f:
                f.seek(offset)
                return f.read(size)

    # No attribute or entry caching: every stat(2) reaches the server, as on a real hang.
    fusepy.FUSE(Hang(), mnt, foreground=True, nothreads=False, ro=True, intr=True,
                attr_timeout=0, entry_timeout=0, direct_io=True)


def skip_reason():
    if os.geteuid() != 0:
        return "needs root to mount a FUSE file system"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse in this kernel/container"
    try:
        import fusepy  # noqa: F401
    except ImportError:
        return "python3-fusepy is not installed (scripts/deps test)"
    if not shutil.which("fusermount3") and not shutil.which("fusermount"):
        return "fusermount3 is not installed (fuse3, scripts/deps test)"
    return None


class HungMount:
    def __init__(self, tmp):
        self.src = tmp / "fuse-src"
        self.mnt = tmp / "fuse-mnt"
        self.flag = tmp / "hang"
        self.src.mkdir()
        self.mnt.mkdir()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "serve", str(self.src), str(self.mnt), str(self.flag)],
            stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.ismount(self.mnt) or self.proc.poll() is not None, 10,
                     "the FUSE mount")
        except AssertionError:
            self.close()
            raise
        if self.proc.poll() is not None:
            raise AssertionError(f"the FUSE server exited {self.proc.returncode}")

    def put(self, path):
        """A copy of @path served by the mount; its path there."""
        name = os.path.basename(path)
        shutil.copy(path, self.src / name)
        return str(self.mnt / name)

    def hang(self):
        self.flag.touch()

    def release(self):
        try:
            self.flag.unlink()
        except FileNotFoundError:
            pass

    def close(self):
        # Released first, so that nothing stays stuck in the mount while it goes away.
        self.release()
        um = shutil.which("fusermount3") or shutil.which("fusermount")
        if os.path.ismount(self.mnt):
            if subprocess.run([um, "-u", str(self.mnt)], timeout=10).returncode:
                subprocess.run([um, "-u", "-z", str(self.mnt)], timeout=10)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def mount(tmp_path):
    why = skip_reason()
    if why:
        pytest.skip(why)
    m = HungMount(tmp_path)
    try:
        yield m
    finally:
        m.close()


def ident_on(mount, pki, leaf):
    ident = identity(pki, leaf)
    ident["cert"] = mount.put(ident["cert"])
    ident["key"] = mount.put(ident["key"])
    return ident


def test_hung_identity_mount_keeps_serving_warns_once_and_obeys_sigterm(pki, tmp_path, mount,
                                                                       upstream):
    up = upstream()
    ident = ident_on(mount, pki, "bar")
    cfg = terminate_config(ident)
    cfg["tunnels"][0]["upstream"] = up.addr
    gw = Gateway(tmp_path, "gw", cfg)
    gw.start()
    try:
        port = gw.port("t")
        assert handshake(pki, port)
        mount.hang()
        # Over 8 s of hang (four reload polls, one stuck since the first): handshakes go on.
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 8:
            try:
                ok = handshake(pki, port, timeout=3)
            except OSError as e:  # ssl.SSLError and timeouts too
                ok = e
            assert ok is True, f"handshake {n + 1} failed {time.monotonic() - t0:.1f} s into " \
                f"the hang ({ok!r})\n{gw.log()}"
            n += 1
            time.sleep(0.5)
        assert n >= 8
        warning = HANG_WARNING.format(ident["cert"])
        wait_for(lambda: warning in gw.log(), 5, f"the warning:\n{gw.log()}")
        assert gw.log().count("has not returned") == 1, gw.log()
        rc, secs = sigterm_timed(gw)
        assert rc == 0 and secs < 5, f"SIGTERM during the hang: rc {rc} after {secs:.1f} s\n" \
            f"{gw.log()}"
    finally:
        mount.release()
        kill_left(gw)
        up.close()


def test_hung_mount_returns_and_the_poll_resumes(pki, tmp_path, mount, upstream):
    up = upstream()
    ident = ident_on(mount, pki, "bar")
    cfg = terminate_config(ident)
    cfg["tunnels"][0]["upstream"] = up.addr
    gw = Gateway(tmp_path, "gw", cfg)
    gw.start()
    try:
        mount.hang()
        gw.wait_log("has not returned for 5 s", timeout=10)
        mount.release()
        gw.wait_log("polling the identity files has returned", timeout=5)
        assert handshake(pki, gw.port("t"))
        assert gw.stop() == 0, gw.log()
    finally:
        mount.release()
        if gw.proc.poll() is None:
            gw.stop()
        up.close()


@pytest.mark.parametrize("where", ["config", "cert"])
def test_sighup_during_a_hang_keeps_serving_and_reloads_once_the_mount_answers(
        pki, tmp_path, mount, upstream, where):
    up = upstream()
    ident = ident_on(mount, pki, "bar") if where == "cert" else identity(pki, "bar")
    cfg = terminate_config(ident)
    cfg["tunnels"][0]["upstream"] = up.addr
    gw = Gateway(tmp_path, "gw", cfg)
    if where == "config":
        gw.config_path = mount.put(gw.config_path)
    hung = ident["cert"]
    gw.start()
    try:
        port = gw.port("t")
        mount.hang()
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        gw.proc.send_signal(signal.SIGHUP)  # during the load: one more load after it
        gw.wait_log("a reload is in progress", timeout=5)
        n = 0
        while time.monotonic() - t0 < 6:
            try:
                ok = handshake(pki, port, timeout=3)
            except OSError as e:
                ok = e
            assert ok is True, f"handshake {n + 1} failed {time.monotonic() - t0:.1f} s " \
                f"after SIGHUP ({ok!r})\n{gw.log()}"
            n += 1
            time.sleep(0.3)
        where_why = "$" if where == "config" else f"$.identity.cert: {hung}"
        failed = (f"config not reloaded: {gw.config_path}: {where_why}: not readable within "
                  f"5 s (a hung NFS or FUSE mount?); the running config stays")
        wait_for(lambda: failed in gw.log(), 5, f"the failed reload:\n{gw.log()}")
        # The second load, queued behind the first, is waiting on the mount: it answers now.
        mount.release()
        gw.wait_log("config reloaded", timeout=10)
        assert gw.log().count("config not reloaded") == 1, gw.log()
        assert handshake(pki, port)
        # A load stuck in the mount does not hold SIGTERM up.
        mount.hang()
        gw.proc.send_signal(signal.SIGHUP)
        gw.wait_log("SIGHUP: reloading", timeout=5, count=3)
        time.sleep(0.5)
        rc, secs = sigterm_timed(gw)
        assert rc == 0 and secs < 5, f"SIGTERM during a stuck reload: rc {rc} after " \
            f"{secs:.1f} s\n{gw.log()}"
    finally:
        mount.release()
        kill_left(gw)
        up.close()


@pytest.mark.parametrize("which", ["cert", "key"])
def test_check_on_a_hung_mount_exits_2_within_the_deadline(pki, tmp_path, mount, which):
    ident = ident_on(mount, pki, "bar")
    path = write_config(tmp_path, terminate_config(ident))
    if which == "key":
        # The cert answers; the key's mount is the one that hangs (its own copy elsewhere).
        local = tmp_path / "cert.pem"
        shutil.copy(identity(pki, "bar")["cert"], local)
        ident["cert"] = str(local)
        path = write_config(tmp_path, terminate_config(ident))
    mount.hang()
    rc, err, _, secs = run_timed(["check", "-c", path], timeout=15)
    mount.release()
    assert rc == 2 and secs < 6, f"check: rc {rc} after {secs:.1f} s: {err}"
    assert err == (f"fedgate: {path}: $.identity.{which}: {ident[which]}: not readable within "
                   f"5 s (a hung NFS or FUSE mount?)\n"), err


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "serve":
    serve(*sys.argv[2:])
