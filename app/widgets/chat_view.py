"""The conversation: questions, streamed Markdown answers, their reasoning, sources and the context sent."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QScrollArea,
                               QVBoxLayout, QWidget)

from app.style import MAX_LINE_PX

from app.widgets.answer import AnswerWidget, ComparisonRow
from app.widgets.composer import BUDGET_STOPS, budget_label
from app.widgets.markdown import MarkdownView
from app.widgets.welcome import Welcome
from engine import StoredMessage

RENDER_EVERY_MS = 50  # streamed Markdown is re-rendered at most this often, not per token
THINK_MORE_KEYS = "Ctrl+T"


QUESTION_INDENT = 56  # the question's bubble starts this far right of the answers: whose turn is whose at a glance


class QuestionWidget(QWidget):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        bubble = QFrame()
        bubble.setObjectName("questionBubble")
        view = MarkdownView()
        view.setPlainText(text)
        view.setAccessibleName("Question")
        inside = QVBoxLayout(bubble)
        inside.setContentsMargins(12, 8, 12, 8)
        inside.addWidget(view)
        row = QHBoxLayout(self)
        row.setContentsMargins(QUESTION_INDENT, 6, 0, 0)
        row.addWidget(bubble)


class ContextDialog(QDialog):
    """The exact prompt the model was given for an answer (documents, earlier turns, template)."""

    def __init__(self, prompt: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("What the model saw")
        self.resize(760, 560)
        text = QPlainTextEdit(prompt)
        text.setReadOnly(True)
        text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(prompt):,} characters, exactly as sent:"))
        layout.addWidget(text)
        layout.addWidget(buttons)


class ChatView(QScrollArea):
    """The transcript; follows the newest text unless the person has scrolled up."""

    show_context = Signal(object)  # AnswerWidget
    think_more = Signal(object)  # AnswerWidget

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setObjectName("chat")
        self.inner = QWidget()
        page = QWidget()  # the turns in one column of readable width, centred
        page.setMaximumWidth(MAX_LINE_PX)
        centred = QHBoxLayout(self.inner)
        centred.setContentsMargins(0, 0, 0, 0)
        centred.addWidget(page)
        self.column = QVBoxLayout(page)
        self.column.setContentsMargins(20, 16, 20, 16)
        self.column.setSpacing(14)
        self.empty = Welcome()  # the first start's teaching screen; the window connects its examples
        self.column.addStretch(1)
        self.column.addWidget(self.empty)
        self.column.addStretch(1)
        self.setWidget(self.inner)
        self.answers: list[AnswerWidget] = []
        self.kept: AnswerWidget | None = None  # the answer the conversation goes on from: Think more's answer
        self._answering = False
        self.timer = QTimer(self)
        self.timer.setInterval(RENDER_EVERY_MS)
        self.timer.timeout.connect(self._render)
        self._follow = True
        self.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.verticalScrollBar().rangeChanged.connect(self._range_changed)

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def _scrolled(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - 24

    def _range_changed(self, _lo: int, hi: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(hi)

    def clear(self) -> None:
        while self.column.count() > 3:  # stretch, the empty-state label, messages…, stretch
            self.column.takeAt(2).widget().deleteLater()
        self.answers.clear()
        self.kept = None
        self._set_empty(True)

    def _set_empty(self, empty: bool) -> None:
        self.empty.setVisible(empty)
        self.column.setStretch(0, 1 if empty else 0)  # messages start at the top, the empty state centred

    def _add(self, widget: QWidget) -> None:
        self._set_empty(False)
        self.column.insertWidget(self.column.count() - 1, widget)

    def add_question(self, text: str) -> QuestionWidget:
        w = QuestionWidget(text)
        self._add(w)
        self._follow = True
        return w

    def _new_answer(self, budget: int | None) -> AnswerWidget:
        w = AnswerWidget(budget)
        w.show_context.connect(self.show_context)
        w.think_more.connect(self.think_more)
        w.ended.connect(self._refresh_actions)
        self.answers.append(w)
        self.kept = w
        self.timer.start()
        return w

    def add_answer(self, budget: int | None = 0) -> AnswerWidget:
        w = self._new_answer(budget)
        self._add(w)
        self._refresh_actions()
        return w

    def compare(self, first: AnswerWidget, budget: int | None) -> AnswerWidget:
        """Think more: a new answer beside `first` in its turn (the answer `first` was compared with before
        leaves); returns the new one, to stream into."""
        holder = first.parentWidget() if isinstance(first.parentWidget(), ComparisonRow) else first
        index = self.column.indexOf(holder)
        self.column.removeWidget(holder)
        if holder is not first:
            self.answers = [w for w in self.answers if w is first or w not in holder.answers]
        second = self._new_answer(budget)
        self.column.insertWidget(index, ComparisonRow(first, second))
        if holder is not first:
            holder.deleteLater()
        self._follow = True
        self._refresh_actions()
        return second

    def keep(self, answer: AnswerWidget) -> None:
        """The conversation goes on from `answer` (a stopped Think more leaves the first answer in place)."""
        self.kept = answer
        self._refresh_actions()

    def set_answering(self, answering: bool) -> None:
        self._answering = answering
        self._refresh_actions()

    def _refresh_actions(self) -> None:
        for w in self.answers:
            w.set_think_more(*self.think_more_state(w))

    def think_more_state(self, w: AnswerWidget) -> tuple[bool, str]:
        budget = w.next_budget()
        if w is not self.kept:
            return False, "Think more works on the answer the conversation goes on from (the last one)"
        if budget is None:
            return False, f"This answer already had the largest budget ({budget_label(BUDGET_STOPS[-2])})"
        if self._answering:
            return False, "Think more waits until the answer being written is finished or stopped"
        return True, f"Ask again with {budget_label(budget)} thinking tokens and compare ({THINK_MORE_KEYS})"

    def show_messages(self, messages: list[StoredMessage]) -> None:
        self.clear()
        for m in messages:
            if m.role == "user":
                self.add_question(m.content)
            elif m.role == "assistant":
                self.add_answer().show_stored(m)
        self.timer.stop()
        self._refresh_actions()

    def stop_streaming(self) -> None:
        self._render()
        self.timer.stop()

    def _render(self) -> None:
        for w in self.answers[-2:]:
            w.render()

    def remove_last_turn(self) -> None:
        """Drop the last question and its answer (or answers side by side) from the view (regenerate, edit and
        resend)."""
        for _ in range(2):
            if self.column.count() > 3:
                widget = self.column.takeAt(self.column.count() - 2).widget()
                self.answers = [w for w in self.answers if w is not widget and not widget.isAncestorOf(w)]
                widget.deleteLater()
        self.kept = self.answers[-1] if self.answers else None
        self._set_empty(self.column.count() <= 3)
        self._refresh_actions()
