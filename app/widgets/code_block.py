"""An answer's fenced code: highlighted, in its own scrolling box, with the language and a Copy button."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from app import style

MAX_CODE_LINES = 30  # a longer block scrolls inside its box

# One rule set for the languages small models write most (Python, JavaScript/TypeScript, C-family, Rust, Go, shell,
# SQL): keywords, strings, comments, numbers. Not a parser: a line comment inside a string may be coloured wrongly.
KEYWORDS = frozenset("""
and as assert async await break case catch class const continue def default del do elif else enum except export
extends false False finally fn for from func function go if impl import in interface is lambda let loop match mod
module mut new nil None not null or package pass private protected pub public raise return self select static
struct super switch this throw true True try type typedef union unsafe use var void where while with yield
int float double char bool string str long short unsigned signed auto echo fi then done esac local
SELECT FROM WHERE INSERT UPDATE DELETE JOIN GROUP ORDER BY CREATE TABLE INTO VALUES AND OR NOT NULL AS ON LIMIT
""".split())
_TOKEN = re.compile(r"""(?P<comment>\#(?!include|define|!).*$|//.*$|--\s.*$)
                       |(?P<string>"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)
                       |(?P<number>\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b|\b0x[0-9a-fA-F]+\b)
                       |(?P<word>\b[A-Za-z_]\w*\b)""", re.VERBOSE)


def spans(line: str) -> list[tuple[int, int, str]]:
    """(start, length, kind) of what to colour in one line of code."""
    out = []
    for m in _TOKEN.finditer(line):
        kind = m.lastgroup
        if kind == "word":
            if m.group() not in KEYWORDS:
                continue
            kind = "keyword"
        out.append((m.start(), m.end() - m.start(), kind))
    return out


class CodeHighlighter(QSyntaxHighlighter):
    def __init__(self, document) -> None:
        super().__init__(document)
        t = style.current()
        self.formats = {}
        for kind in style.CODE_KINDS:
            f = QTextCharFormat()
            f.setForeground(QColor(getattr(t, kind)))
            if kind == "comment":
                f.setFontItalic(True)
            self.formats[kind] = f

    def highlightBlock(self, text: str) -> None:
        for start, length, kind in spans(text):
            self.setFormat(start, length, self.formats[kind])


class CodeBlock(QFrame):
    """One fenced block. `set_code` while it streams appends what is new, so only new lines are highlighted."""

    def __init__(self, language: str = "") -> None:
        super().__init__()
        self.setObjectName("codeBlock")
        self.code = ""
        self.language = QLabel(language or "code")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setFlat(True)
        self.copy_button.setAccessibleName(f"Copy {language or 'code'} block")
        self.copy_button.setToolTip("Copy this code")
        self.copy_button.clicked.connect(self.copy)
        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setAccessibleName(f"{language or 'Code'} block")
        self.view.setTabChangesFocus(True)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.view.setFont(font)
        self.view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.highlighter = CodeHighlighter(self.view.document())
        header = QHBoxLayout()
        header.setContentsMargins(10, 2, 4, 0)
        header.addWidget(self.language)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.view)

    def set_code(self, code: str) -> None:
        if code == self.code:
            return
        if self.code and code.startswith(self.code):
            cursor = self.view.textCursor()
            cursor.movePosition(cursor.MoveOperation.End)
            cursor.insertText(code[len(self.code):])
        else:
            self.view.setPlainText(code)
        self.code = code
        self._fit()

    def _fit(self) -> None:
        lines = min(MAX_CODE_LINES, max(1, self.code.count("\n") + 1))
        scroll = self.view.horizontalScrollBar().sizeHint().height()
        self.view.setFixedHeight(lines * self.view.fontMetrics().lineSpacing() + 12 + scroll)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code)
        self.copy_button.setText("Copied")
