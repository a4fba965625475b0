"""Read-only Markdown that grows to fit its text: questions and answers in the chat view."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextOption
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser


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
        self.setOpenExternalLinks(True)
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
