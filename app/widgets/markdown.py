"""Read-only Markdown that grows to fit its text: questions and answers in the chat view."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QTextOption
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser

from engine import is_safe_link

LINK_ROOTS: list[str] = []  # the indexed folders: the only places a file: link may open (the window keeps it)


def open_link(url: QUrl | str) -> bool:
    """Open a clicked link if it is safe (engine/links.py); links in answers come from the model and documents."""
    text = url.toString() if isinstance(url, QUrl) else url
    if not is_safe_link(text, LINK_ROOTS):
        return False
    return QDesktopServices.openUrl(QUrl(text))


# Chat models write math as LaTeX (Qwen2.5 boxes its results: "\\(\\boxed{31}\\)"), which Qt's Markdown shows as
# source. The common commands become plain text; a boxed result becomes bold.
_LATEX = (
    (re.compile(r"\\boxed\s*\{([^{}]*)\}"), r"**\1**"),
    (re.compile(r"\\text\s*\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"\1/\2"),
    (re.compile(r"\\[()]"), ""),
    (re.compile(r"\\[\[\]]"), ""),
    (re.compile(r"\\times\b"), "×"),
    (re.compile(r"\\div\b"), "÷"),
    (re.compile(r"\\cdot\b"), "·"),
    (re.compile(r"\\approx\b"), "≈"),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$"), "$"),
)


def plain_math(text: str) -> str:
    """LaTeX a chat model wrote, as readable text: \\(\\boxed{31}\\) -> **31**, 3 \\times 4 -> 3 × 4."""
    if "\\" not in text:
        return text
    for pattern, replacement in _LATEX:
        text = pattern.sub(replacement, text)
    return text


class MarkdownView(QTextBrowser):
    """Read-only Markdown that grows to fit its text (the scroll area around the chat scrolls)."""

    def __init__(self) -> None:
        super().__init__()
        self.setOpenExternalLinks(False)  # any scheme; and internal links would load files into the view
        self.setOpenLinks(False)
        self.anchorClicked.connect(open_link)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.viewport().setAutoFillBackground(False)
        self.setStyleSheet("QTextBrowser { background: transparent; }")

    def _fit(self) -> None:
        self.setFixedHeight(int(self.document().size().height()) + 4)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit()
