"""Read-only Markdown that grows to fit its text (questions and answers in the chat view), and an answer's body:
Markdown with its fenced code in highlighted blocks."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QTextOption
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QVBoxLayout, QWidget

from app.math_text import plain_math
from engine import is_safe_link

LINK_ROOTS: list[str] = []  # the indexed folders: the only places a file: link may open (the window keeps it)


def open_link(url: QUrl | str) -> bool:
    """Open a clicked link if it is safe (engine/links.py); links in answers come from the model and documents."""
    text = url.toString() if isinstance(url, QUrl) else url
    if not is_safe_link(text, LINK_ROOTS):
        return False
    return QDesktopServices.openUrl(QUrl(text))


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
        self.setStyleSheet("QTextBrowser { background: transparent; }")  # the turn's own background shows through
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)

    def _fit(self) -> None:
        self.setFixedHeight(int(self.document().size().height()) + 4)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit()


_FENCE = re.compile(r"^ {0,3}(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)


def split_fences(text: str) -> list[tuple[str, str, str]]:
    """The answer as ("markdown", "", text) and ("code", language, code) pieces; a fence still open (the answer
    is streaming) runs to the end."""
    pieces: list[tuple[str, str, str]] = []
    pos = 0
    while (opening := _FENCE.search(text, pos)) is not None:
        if prose := text[pos:opening.start()].strip("\n"):
            pieces.append(("markdown", "", prose))
        fence = opening.group(1)
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        start = opening.end() + 1
        end = closing.search(text, start)
        code = text[start:end.start() if end else len(text)]
        pieces.append(("code", opening.group(2), code.rstrip("\n")))
        if end is None:
            return pieces
        pos = end.end()
    if prose := text[pos:].strip("\n"):
        pieces.append(("markdown", "", prose))
    return pieces


class AnswerBody(QWidget):
    """An answer's text: Markdown, with each fenced code block in a CodeBlock (highlighted, with Copy). Re-set
    while it streams, it updates only the pieces that changed."""

    def __init__(self) -> None:
        super().__init__()
        self.column = QVBoxLayout(self)
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.setSpacing(6)
        self.pieces: list[tuple[str, str, str]] = []
        self.views: list[QWidget] = []

    def setMarkdown(self, text: str) -> None:
        from app.widgets.code_block import CodeBlock

        pieces = split_fences(text)
        for i, piece in enumerate(pieces):
            kind, language, content = piece
            if i < len(self.views) and (self.pieces[i][:2] != piece[:2]):
                for view in self.views[i:]:
                    view.deleteLater()
                del self.views[i:], self.pieces[i:]
            if i == len(self.views):
                view = CodeBlock(language) if kind == "code" else MarkdownView()
                self.column.addWidget(view)
                self.views.append(view)
                self.pieces.append(("", "", ""))
            if self.pieces[i] != piece:
                # LaTeX becomes text in prose only: code keeps every backslash (a regex's "\\(" is not math).
                self.views[i].set_code(content) if kind == "code" else self.views[i].setMarkdown(plain_math(content))
                self.pieces[i] = piece
        for view in self.views[len(pieces):]:
            view.deleteLater()
        del self.views[len(pieces):], self.pieces[len(pieces):]

    def toPlainText(self) -> str:
        return "\n\n".join(v.code if k == "code" else v.toPlainText() for (k, _l, _c), v in zip(self.pieces, self.views))

    def code_blocks(self) -> list:
        return [v for (k, _l, _c), v in zip(self.pieces, self.views) if k == "code"]

    def markdown_views(self) -> list[MarkdownView]:
        return [v for (k, _l, _c), v in zip(self.pieces, self.views) if k == "markdown"]
