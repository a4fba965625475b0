"""The desktop app's start: QApplication, the main window, the event loop."""
from __future__ import annotations

import logging
import os
import signal
import sys

from PySide6.QtCore import QTimer, QtMsgType, Qt, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app import style
from app.resources import app_icon


def has_display() -> bool:
    """False on a Linux box with no X or Wayland server (where Qt would abort), unless a platform is forced."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


log = logging.getLogger("qt")
QUIET = ("This plugin does not support propagateSizeHints()",)  # the offscreen platform says this per window


def _qt_message(kind: QtMsgType, _context, message: str) -> None:
    """Qt's own warnings go to logging (stderr with -v), not straight to the terminal."""
    if message in QUIET:
        return
    level = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
             QtMsgType.QtWarningMsg: logging.WARNING}.get(kind, logging.ERROR)
    log.log(level, "%s", message)


def application(argv: list[str] | None = None) -> QApplication:
    """The one QApplication (created on first call)."""
    app = QApplication.instance()
    if app is None:
        qInstallMessageHandler(_qt_message)
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv or [sys.argv[0]])
        app.setApplicationName("Ponder")
        app.setOrganizationName("Ponder")
        app.setDesktopFileName("ponder")
        app.setWindowIcon(app_icon())
        style.apply(app)  # light or dark as the OS is (PONDER_THEME=light|dark overrides)
    return app


def run_app() -> int:
    """`ponder` with no command: open the window (light or dark as the OS is) and run until it closes."""
    if not has_display():
        print("ponder: no display found (DISPLAY is not set). Use `ponder chat` in a terminal, or run the app "
              "on a desktop.", file=sys.stderr)
        return 2
    from app.system_libs import check, xcb_plugin

    advice = check(xcb_plugin())  # before QApplication: a missing library would abort inside Qt with no hint what to do
    if advice:
        print(advice, file=sys.stderr)
        return 3
    app = application()
    from app.window import MainWindow

    window = MainWindow()
    window.show()
    window.start()
    # Ctrl-C in the terminal or a logout's SIGTERM close the window the normal way (state saved, threads
    # joined). Python runs signal handlers only between bytecodes, so a timer gives it a moment now and then.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: window.close())
    ticker = QTimer()
    ticker.timeout.connect(lambda: None)
    ticker.start(250)
    return app.exec()
