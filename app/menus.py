"""The main window's menus: every command with its shortcut, in one table a reader can scan."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

from app.logs import add_help_menu
from app.widgets.chat_view import THINK_MORE_KEYS


def add_menus(window) -> None:
    """File, Conversation, View and Help on `window` (a MainWindow), each action wired to its slot."""
    def action(menu, text, slot, keys=None) -> QAction:
        a = QAction(text, window)
        if keys is not None:
            a.setShortcut(QKeySequence(keys))
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    m = window.menuBar().addMenu("&File")
    action(m, "New conversation", window.new_conversation, QKeySequence.StandardKey.New)
    action(m, "Models…", window.open_models, "Ctrl+M")
    action(m, "Server…", window.open_server)
    action(m, "Preferences…", window.open_preferences, QKeySequence.StandardKey.Preferences)
    m.addSeparator()
    action(m, "Quit", window.close, QKeySequence.StandardKey.Quit)
    m = window.menuBar().addMenu("&Conversation")
    action(m, "Stop answer", window.stop, "Ctrl+.")
    action(m, "Regenerate last answer", window.regenerate, "Ctrl+R")
    action(m, "Edit and resend last question", window.edit_last, "Ctrl+E")
    action(m, "Think more on the last answer", window.think_more_on_last, THINK_MORE_KEYS)
    action(m, "Focus question", lambda: window.composer.edit.setFocus(), "Ctrl+L")
    m = window.menuBar().addMenu("&View")
    toggle = window.documents_dock.toggleViewAction()
    toggle.setShortcut(QKeySequence("Ctrl+D"))
    toggle.triggered.connect(lambda shown: setattr(window, "documents_chosen", shown))
    m.addAction(toggle)
    add_help_menu(window)  # Help › Show log (app/logs.py)
