"""The log files a windowed app leaves behind, written for real by separate Python processes: a log line, an
uncaught exception, rotation, and a faulthandler dump from a segmentation fault; and the Help › Show log entry."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PONDER_HOME=str(home))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_a_log_line_and_a_segfaults_stacks_land_in_the_files(tmp_path):
    done = python("""
        import logging
        from app.logs import start_file_logging

        logging.basicConfig(level=logging.WARNING)  # as `ponder` sets up stderr
        start_file_logging()
        logging.getLogger("engine.test").info("loading the model")
        logging.getLogger("engine.test").warning("low on memory")

        def crash_in_native_code():
            import faulthandler
            faulthandler._sigsegv()

        crash_in_native_code()
    """, tmp_path)
    assert done.returncode in (-signal.SIGSEGV, 128 + signal.SIGSEGV), done
    log = (tmp_path / "logs" / "ponder.log").read_text()
    assert "INFO engine.test: loading the model" in log and "WARNING engine.test: low on memory" in log
    assert "INFO ponder: Ponder starting" in log
    assert "loading the model" not in done.stderr and "low on memory" in done.stderr  # stderr keeps WARNING
    crash = (tmp_path / "logs" / "crash.log").read_text()
    assert "Fatal Python error: Segmentation fault" in crash
    assert 'line 12 in crash_in_native_code' in crash and "--- Ponder started, process" in crash


def test_an_uncaught_exception_is_logged(tmp_path):
    done = python("""
        from app.logs import start_file_logging

        start_file_logging()
        raise ValueError("the tokenizer said no")
    """, tmp_path)
    assert done.returncode == 1 and "ValueError" in done.stderr  # Python's own report still happens
    log = (tmp_path / "logs" / "ponder.log").read_text()
    assert "CRITICAL ponder: uncaught exception" in log and "ValueError: the tokenizer said no" in log


def test_the_log_rotates_and_a_second_start_adds_no_second_handler(tmp_path):
    done = python("""
        import logging
        import app.logs

        app.logs.MAX_BYTES = 2_000
        first = app.logs.start_file_logging()
        assert app.logs.start_file_logging() == first
        assert sum(h.__class__.__name__ == "RotatingFileHandler" for h in logging.getLogger().handlers) == 1
        for i in range(200):
            logging.getLogger("bench").info("line %d of a long run", i)
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    logs = tmp_path / "logs"
    assert (logs / "ponder.log.1").exists() and (logs / "ponder.log.3").exists()
    assert not (logs / "ponder.log.4").exists()
    assert "line 199 of a long run" in (logs / "ponder.log").read_text()


def test_the_log_folder_is_the_platforms_user_log_folder_without_ponder_home(monkeypatch, tmp_path):
    import platformdirs

    from app import logs

    monkeypatch.delenv("PONDER_HOME", raising=False)
    monkeypatch.setattr(platformdirs, "user_log_path", lambda name, appauthor: tmp_path / name / "log")
    assert logs.log_dir() == tmp_path / "Ponder" / "log" and logs.log_dir().is_dir()


def test_help_show_log_opens_the_log_folder(qtbot, monkeypatch):
    from PySide6.QtGui import QAction, QDesktopServices
    from PySide6.QtWidgets import QMenu

    from app import logs
    from app.window import MainWindow
    from engine import Settings

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    window = MainWindow(settings=Settings(), persist=False)
    qtbot.addWidget(window)
    try:
        help_menu = next(m for m in window.menuBar().findChildren(QMenu) if m.title() == "&Help")
        (show,) = [a for a in help_menu.actions() if a.text() == "Show log"]
        assert isinstance(show, QAction)
        show.trigger()
        assert opened == [str(logs.log_dir())]
    finally:
        window.close()
