"""`ponder serve` from the command line: refusals said before a model loads, the API key kept in the keychain,
and a real server process answering a real `ponder ask --remote` process."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from app.cli import main
from bench.hub import free_port
from engine import SERVER_API_KEY, delete_secret, get_secret


def test_another_host_without_a_key_is_refused_before_loading(capsys, ponder_home):
    assert main(["serve", "--host", "0.0.0.0", "--model", "no-such-model"]) == 1
    assert "API key" in capsys.readouterr().err


def test_the_key_comes_from_the_keychain_only(capsys, monkeypatch, ponder_home):
    delete_secret(SERVER_API_KEY)
    assert main(["serve", "--api-key-from-keychain"]) == 1
    assert "--set-api-key" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("k3y\n"))
    assert main(["serve", "--set-api-key"]) == 0
    assert get_secret(SERVER_API_KEY) == "k3y" and "k3y" not in capsys.readouterr().out
    delete_secret(SERVER_API_KEY)


@pytest.mark.slow
def test_ponder_ask_remote_against_ponder_serve(gemma_model, ponder_home):
    port = free_port()
    env = dict(os.environ, PONDER_HOME=str(ponder_home))
    server = subprocess.Popen([sys.executable, "-m", "app.main", "serve", "--model", "gemma-3-270m", "--port",
                               str(port), "--parallel", "1", "--ctx", "1024"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600  # a limit for a hang, not a speed test
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=5) as r:
                    assert json.loads(r.read())["status"] == "ok"
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.5)
        asked = subprocess.run([sys.executable, "-m", "app.main", "ask", "What is the capital of France?",
                                "--remote", url, "--temperature", "0", "--max-tokens", "12", "--json"],
                               env=env, capture_output=True, text=True, timeout=600)
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        assert "Paris" in answer["answer"] and answer["backend"] == f"remote {url}"
    finally:
        server.send_signal(signal.SIGINT)
        out, _err = server.communicate(timeout=120)
    assert server.returncode == 0 and f"serving gemma-3-270m at {url}" in out


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_ctrl_c_or_sigterm_even_started_with_sigint_ignored(sent):
    """A shell's background job (`ponder serve &`) starts with SIGINT ignored; the server still stops on it."""
    code = "from app.cli_serve import wait_for_stop\nprint('waiting', flush=True)\nwait_for_stop()\nprint('stopped')"
    waiter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert waiter.stdout.readline() == "waiting\n"
        waiter.send_signal(sent)
        out, _ = waiter.communicate(timeout=60)
    finally:
        waiter.kill()
    assert waiter.returncode == 0 and out == "stopped\n"
