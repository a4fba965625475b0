"""An answer's reasoning: one line saying in words what happened to the thinking, and the thinking text itself."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QFrame, QLabel, QPlainTextEdit, QToolButton, QVBoxLayout
from shiboken6 import isValid

from app.math_text import plain_math
from engine import ThinkingReport

MAX_REASONING_LINES = 12  # the open reasoning box grows to this many lines, then scrolls
CLOSED_BY = {"model": "closed by the model", "budget": "forced close at the budget", "early": "Auto stopped early",
             "repeat": "stopped: it was repeating itself", "off": "thinking off"}
LINE_INDENT = 22  # the words line starts under the toggle's text, not under its arrow


def summary_of(report: ThinkingReport) -> str:
    """The figures: used / budget tokens, the time, and (for reports without words) how the span ended."""
    budget = f"{report.budget:,} tokens (Auto)" if report.auto else f"{report.budget:,} tokens"
    parts = [f"Reasoning · {report.used:,} / {budget}"]
    if not report.explanation:
        parts.append(CLOSED_BY.get(report.closed_by, report.closed_by))
    if report.thinking_s:
        parts.append(f"{report.thinking_s:.1f} s")
    return " · ".join(parts)


def words_of(report: ThinkingReport) -> str:
    """The line for the person: the engine's explanation; for older answers, what Auto's reason says."""
    if report.explanation:
        return report.explanation
    if not report.auto:
        return ""  # the figures say it all
    reason = f" ({report.auto_reason})" if report.auto_reason else ""
    if report.used == 0:
        return f"Auto answered directly, without thinking{reason}."
    return f"Auto chose {report.budget:,} thinking tokens{reason}."


class ReasoningSection(QFrame):
    """Collapsed by default: what happened to the thinking in words (visible without opening it), the figures
    (used / budget, how it ended, time) and, opened, the thinking text (live while it streams)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("reasoning")  # a quiet card (app/style.py)
        self.toggle = QToolButton()
        self.toggle.setProperty("role", "disclosure")
        self.toggle.setAccessibleName("Show the reasoning")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.words = QLabel()
        self.words.setWordWrap(True)
        self.words.setTextFormat(Qt.TextFormat.PlainText)
        self.words.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.words.setVisible(False)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setVisible(False)
        self.text.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.text.installEventFilter(self)  # shown or resized: the lines wrap anew (no size signal says so)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 10, 6)
        layout.setSpacing(2)
        layout.addWidget(self.toggle, alignment=Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.words)
        layout.addWidget(self.text)
        self.toggle.toggled.connect(self._toggled)
        self.tokens, self.budget = 0, None
        self.set_summary("Thinking…")
        self.setVisible(False)

    def _fit(self) -> None:
        if not isValid(self.text):  # the card is being deleted: its document reports the size one last time
            return
        lines = self.text.document().documentLayout().documentSize().height()  # in lines for a plain text edit
        line = self.text.fontMetrics().lineSpacing()
        self.text.setFixedHeight(int(min(MAX_REASONING_LINES, max(1, lines)) * line) + 12)
        scrolls = lines > MAX_REASONING_LINES  # a box that holds every line shows no scroll bar
        self.text.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if scrolls
                                             else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.text and event.type() in (QEvent.Type.Show, QEvent.Type.Resize):
            QTimer.singleShot(0, self.text, self._fit)  # after the layout has wrapped the visible lines
        return False

    def _toggled(self, open_: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.text.setVisible(open_)

    def set_summary(self, text: str) -> None:
        self.toggle.setText(text)

    def append(self, text: str) -> None:
        self.setVisible(True)
        self.tokens += 1
        cursor = self.text.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)
        budget = "Auto" if self.budget is None else f"{self.budget:,}"
        self.set_summary(f"Thinking… {self.tokens:,} / {budget} tokens")

    def show_report(self, reasoning: str, report: ThinkingReport | None) -> None:
        if reasoning and self.text.toPlainText() != plain_math(reasoning):
            self.text.setPlainText(plain_math(reasoning))
        if report is None or (report.closed_by == "off" and not reasoning and not report.auto):
            self.setVisible(bool(reasoning))
            self.set_summary("Reasoning")
            self.words.setVisible(False)
            return
        self.setVisible(True)
        self.toggle.setVisible(bool(reasoning))  # Auto answered directly: just the line, nothing to open
        self.set_summary(summary_of(report))
        words = words_of(report)
        self.words.setText(words)
        self.words.setVisible(bool(words))
        self.words.setContentsMargins(LINE_INDENT if reasoning else 0, 0, 0, 0)
