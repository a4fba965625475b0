"""packaging/build.py's pure parts, run on any OS: re-launching under the project's environment, artifact names,
the Mach-O minimum-macOS reader, the Windows version resource."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.packaging import load_build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def build():
    return load_build()


@contextmanager
def on_windows():
    """The Windows branch: os.name and sys.platform as CPython sets them there (only around the call: pathlib
    would build WindowsPaths), and os.execv forbidden (on Windows it spawns the new process and the caller exits 0
    at once, CPython issue 101191)."""
    saved = os.name, sys.platform, os.execv

    def execv(*_args):
        raise AssertionError("os.execv must not be used to re-launch the build")

    os.name, sys.platform, os.execv = "nt", "win32", execv
    try:
        yield
    finally:
        os.name, sys.platform, os.execv = saved


@pytest.mark.parametrize("code", [0, 3])
def test_relaunch_waits_for_the_child_and_leaves_with_its_exit_code(build, tmp_path, code):
    marker = tmp_path / "ran"
    child = f"import pathlib, sys, time; time.sleep(0.3); pathlib.Path({str(marker)!r}).write_text('yes'); sys.exit({code})"
    python = Path(sys.executable)
    with pytest.raises(SystemExit) as leaving, on_windows():
        build.relaunch(python, ["-c", child])
    assert leaving.value.code == code
    assert marker.read_text() == "yes"  # the child had finished when relaunch left


def test_in_project_env_on_windows_runs_the_venvs_python_exe_and_returns_its_failure(build, tmp_path,
                                                                                  monkeypatch):
    venv = tmp_path / "venv"
    (venv / "Scripts").mkdir(parents=True)
    python = venv / "Scripts" / "python.exe"  # the path dev.py's venv has on Windows; here, a wrapper
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    ran = []
    real_run = subprocess.run

    def run(cmd, **kwargs):
        if str(ROOT / "dev.py") in map(str, cmd):
            ran.append(cmd)  # `dev.py setup`: the environment is already there
            return subprocess.CompletedProcess(cmd, 0)
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(build, "has_build_tools", lambda: False)
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(sys, "argv", ["-c", "import sys; sys.exit(7)"])
    with pytest.raises(SystemExit) as leaving, on_windows():
        build.in_project_env(venv)
    assert ran and ran[0][-1] == "setup"
    assert leaving.value.code == 7  # a failed build fails the step; it does not exit 0 early


def test_in_project_env_does_nothing_when_the_tools_are_here(build, monkeypatch):
    monkeypatch.setattr(build, "has_build_tools", lambda: True)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("nothing to set up"))
    build.in_project_env()


def test_in_project_env_stops_with_a_message_when_the_venv_itself_lacks_pyinstaller(build, tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    os.symlink(sys.executable, venv / "bin" / "python")
    monkeypatch.setattr(build, "has_build_tools", lambda: False)
    with pytest.raises(SystemExit, match="dev.py setup"):
        build.in_project_env(venv)
