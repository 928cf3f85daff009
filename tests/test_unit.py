"""The C unit tests (key schedule, record layer, allow patterns), one pytest case per binary."""

import os
import subprocess

import pytest

from conftest import UNIT_DIR

BINARIES = sorted(f for f in os.listdir(UNIT_DIR) if f.startswith("test_")
                  and os.access(os.path.join(UNIT_DIR, f), os.X_OK)) if os.path.isdir(UNIT_DIR) else []


def test_unit_binaries_were_built():
    assert {"test_record", "test_tls13", "test_allow"} <= set(BINARIES), BINARIES


@pytest.mark.parametrize("binary", BINARIES)
def test_unit(binary):
    r = subprocess.run([os.path.join(UNIT_DIR, binary)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout.splitlines()[-1]


def test_record_layer_with_libgcrypt_in_fips_mode():
    """libgcrypt in FIPS mode refuses TLS 1.3's GCM nonces: the record layer must use OpenSSL."""
    env = dict(os.environ, LIBGCRYPT_FORCE_FIPS_MODE="1")
    r = subprocess.run([os.path.join(UNIT_DIR, "test_record")], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout.splitlines()[-1], r.stdout + r.stderr
    assert "AEADs from OpenSSL" in r.stderr, r.stderr
