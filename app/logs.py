"""Ponder's log files, for a failure on someone else's machine: a windowed app has no terminal to print to.

ponder.log: Python logging at INFO and above, rotated (1 MB, three old files kept). crash.log: what faulthandler
writes when the process dies in native code (llama.cpp, Qt): every thread's Python stack. Both live in the
platform's user log folder (Linux ~/.local/state/Ponder/log, macOS ~/Library/Logs/Ponder, Windows
%LOCALAPPDATA%\\Ponder\\Logs), or PONDER_HOME/logs. Help › Show log opens that folder.
"""
from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import os
import platform
import sys
import threading
import time
from pathlib import Path

import platformdirs

LOG_NAME = "ponder.log"
CRASH_NAME = "crash.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("ponder")
_crash_file = None  # open for the life of the process: faulthandler writes to its descriptor


def log_dir() -> Path:
    home = os.environ.get("PONDER_HOME")
    path = Path(home) / "logs" if home else platformdirs.user_log_path("Ponder", appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_handler(path: Path) -> logging.Handler | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)
                 and Path(h.baseFilename) == path), None)


def start_file_logging(level: int = logging.INFO) -> Path:
    """Log to ponder.log and send fatal-error stacks to crash.log; once per process (later calls return the path)."""
    global _crash_file
    path = log_dir() / LOG_NAME
    if _file_handler(path):
        return path
    root = logging.getLogger()
    if root.level > level:
        # The file gets INFO; handlers already there (stderr) keep the level they had through the root.
        for handler in root.handlers:
            if handler.level == logging.NOTSET:
                handler.setLevel(root.level)
        root.setLevel(level)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)

    crash = path.with_name(CRASH_NAME)
    if crash.exists() and crash.stat().st_size > MAX_BYTES:
        crash.unlink()
    _crash_file = open(crash, "a", encoding="utf-8")
    _crash_file.write(f"--- Ponder started, process {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    _crash_file.flush()
    faulthandler.enable(file=_crash_file, all_threads=True)
    _log_uncaught()
    log.info("Ponder starting: %s, Python %s, %s %s, %s", sys.executable, platform.python_version(),
             platform.system(), platform.release(), "frozen" if getattr(sys, "frozen", False) else "from source")
    return path


def _log_uncaught() -> None:
    """Exceptions nobody caught (a Qt slot's included: PySide6 hands them to sys.excepthook) go to the log too."""
    previous, previous_thread = sys.excepthook, threading.excepthook

    def hook(kind, value, traceback):
        log.critical("uncaught exception", exc_info=(kind, value, traceback))
        previous(kind, value, traceback)

    def thread_hook(args):
        if args.exc_type is not SystemExit:
            log.critical("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        previous_thread(args)

    sys.excepthook, threading.excepthook = hook, thread_hook


def add_help_menu(window) -> None:
    """The main window's Help menu: Show log (opens the log folder in the file manager)."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QAction, QDesktopServices

    menu = window.menuBar().addMenu("&Help")
    action = QAction("Show log", window)
    action.setToolTip(f"Open the folder with {LOG_NAME} and {CRASH_NAME}")
    action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir()))))
    menu.addAction(action)
