"""A failure said as a sentence above the chat, with Copy details and Dismiss: not a modal box, the app keeps
working."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget


class ErrorBar(QWidget):
    """Hidden until `show_error`; the details (a traceback, the server's reply) go to the clipboard, not the eye."""

    def __init__(self) -> None:
        super().__init__()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setObjectName("errorBar")
        self.detail = ""
        self.copy_details = QPushButton("Copy details")
        self.copy_details.setFlat(True)
        self.copy_details.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.detail))
        dismiss = QPushButton("Dismiss")
        dismiss.setFlat(True)
        dismiss.clicked.connect(lambda: self.setVisible(False))
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 0)
        row.addWidget(self.message, 1)
        row.addWidget(self.copy_details)
        row.addWidget(dismiss)
        self.setVisible(False)

    def show_error(self, message: str, detail: str = "") -> None:
        self.message.setText(message)
        self.detail = detail
        self.copy_details.setVisible(bool(detail))
        self.setVisible(True)
