"""Secrets go to the keychain (an in-memory one in tests) and nowhere else."""
from __future__ import annotations

import os
import subprocess
import sys

from engine.secrets import HUB_TOKEN, delete_secret, get_secret, set_secret


def test_set_get_delete(memory_keyring):
    set_secret(HUB_TOKEN, "hf_abc")
    assert get_secret(HUB_TOKEN) == "hf_abc"
    delete_secret(HUB_TOKEN)
    delete_secret(HUB_TOKEN)  # twice is fine
    assert get_secret(HUB_TOKEN) is None


def test_no_keychain_reads_as_no_secret(monkeypatch):
    import keyring
    from keyring.errors import NoKeyringError

    def fail(*_a):
        raise NoKeyringError("no backend")
    monkeypatch.setattr(keyring, "get_password", fail)
    assert get_secret(HUB_TOKEN) is None


def test_cli_token_never_lands_in_a_file(tmp_path):
    """A child process has no in-memory keychain: keyring's file-free 'fail' backend refuses, and the token
    must not be written anywhere under the Ponder home as a fallback."""
    env = dict(os.environ, PONDER_HOME=str(tmp_path), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    out = subprocess.run([sys.executable, "-m", "app.main", "models", "token"], input="hf_secret_value\n", env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "keychain refused" in out.stderr
    assert "hf_secret_value" not in out.stderr + out.stdout
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"hf_secret_value" not in path.read_bytes()
