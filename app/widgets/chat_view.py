"""The conversation: questions, streamed Markdown answers, their reasoning, sources and the context sent."""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextOption
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QScrollArea, QSizePolicy, QTextBrowser, QToolButton, QVBoxLayout, QWidget)

from engine import Answer, StoredMessage, ThinkingReport

RENDER_EVERY_MS = 50  # streamed Markdown is re-rendered at most this often, not per token
MAX_REASONING_LINES = 12  # the open reasoning box grows to this many lines, then scrolls
CLOSED_BY = {"model": "closed by the model", "budget": "forced close at the budget", "early": "Auto stopped early",
             "off": "thinking off"}


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


class QuestionWidget(QFrame):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.setObjectName("question")
        self.setStyleSheet("#question { background: palette(alternate-base); border-radius: 8px; }")
        self.text = text
        view = MarkdownView()
        view.setPlainText(text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(view)


class ReasoningSection(QWidget):
    """Collapsed by default: the thinking text (live while it streams), used / budget, how it ended, time."""

    def __init__(self) -> None:
        super().__init__()
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setVisible(False)
        self.text.setStyleSheet("QPlainTextEdit { color: palette(dark); background: palette(base); }")
        self.text.document().documentLayout().documentSizeChanged.connect(self._fit)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toggle, alignment=Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.text)
        self.toggle.toggled.connect(self._toggled)
        self.tokens, self.budget = 0, None
        self.set_summary("Thinking…")
        self.setVisible(False)

    def _fit(self) -> None:
        lines = self.text.document().documentLayout().documentSize().height()  # in lines for a plain text edit
        line = self.text.fontMetrics().lineSpacing()
        self.text.setFixedHeight(int(min(MAX_REASONING_LINES, max(1, lines)) * line) + 12)

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
        if reasoning and self.text.toPlainText() != reasoning:
            self.text.setPlainText(reasoning)
        if report is None or (report.closed_by == "off" and not reasoning):
            self.setVisible(bool(reasoning))
            self.set_summary("Reasoning")
            return
        self.setVisible(True)
        budget = "Auto" if report.auto else f"{report.budget:,}"
        parts = [f"Reasoning · {report.used:,} / {budget} tokens", CLOSED_BY.get(report.closed_by, report.closed_by)]
        if report.thinking_s:
            parts.append(f"{report.thinking_s:.1f} s")
        self.set_summary(" · ".join(parts))


def source_html(sources) -> str:
    rows = []
    for s in sources:
        page = f", page {s['page']}" if s.get("page") is not None else ""
        url = QUrl.fromLocalFile(s["path"])
        if s.get("page") is not None and s["path"].lower().endswith(".pdf"):
            url.setFragment(f"page={s['page']}")  # PDF viewers that take open parameters go to the page
        rows.append(f"<a href=\"{html.escape(url.toString())}\">[{s['n']}] {html.escape(Path(s['path']).name)}"
                    f"{page}</a> — <span style='color: palette(mid)'>{html.escape(s.get('snippet', '')[:160])}</span>")
    return "<br>".join(rows)


class AnswerWidget(QFrame):
    """One answer. Streamed text is buffered and rendered by the chat view's timer."""

    show_context = Signal(object)  # self

    def __init__(self, budget: int | None = None) -> None:
        super().__init__()
        self.text = ""
        self.prompt = ""  # the exact prompt (from history) for "What the model saw"
        self.context = ""
        self.dirty = False
        self.reasoning = ReasoningSection()
        self.reasoning.budget = budget
        self.body = MarkdownView()
        self.sources = QLabel()
        self.sources.setWordWrap(True)
        self.sources.setTextFormat(Qt.TextFormat.RichText)
        self.sources.setOpenExternalLinks(False)
        self.sources.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))
        self.sources.setVisible(False)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: palette(mid); font-style: italic;")
        self.notice.setVisible(False)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setFlat(True)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text))
        self.context_button = QPushButton("What the model saw")
        self.context_button.setFlat(True)
        self.context_button.setVisible(False)
        self.context_button.clicked.connect(lambda: self.show_context.emit(self))
        self.status = QLabel()
        self.status.setStyleSheet("color: palette(mid);")
        actions = QHBoxLayout()
        actions.addWidget(self.status)
        actions.addStretch(1)
        actions.addWidget(self.context_button)
        actions.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        layout.addWidget(self.reasoning)
        layout.addWidget(self.body)
        layout.addWidget(self.notice)
        layout.addWidget(self.sources)
        layout.addLayout(actions)

    def add_token(self, text: str, kind: str) -> None:
        if kind == "thinking":
            self.reasoning.append(text)
        else:
            if not self.text and self.reasoning.isVisible():
                budget = "Auto" if self.reasoning.budget is None else f"{self.reasoning.budget:,}"
                self.reasoning.set_summary(f"Reasoning · {self.reasoning.tokens:,} / {budget} tokens")
            self.text += text
            self.dirty = True

    def render(self) -> None:
        if self.dirty:
            self.dirty = False
            self.body.setMarkdown(self.text)

    def finish(self, answer: Answer) -> None:
        self.text = answer.text
        self.dirty = True
        self.render()
        self.reasoning.show_report(answer.reasoning, answer.thinking)
        self._extras(answer.sources, answer.notice, answer.context)
        t, u = answer.timings, answer.usage
        ended = {"cancelled": " · stopped", "length": " · hit the answer limit",
                 "context": " · the context window is full"}.get(answer.stop_reason, "")
        self.status.setText(f"{answer.model} · {u.answer_tokens} tokens · {t.decode_tok_s:.0f} tok/s{ended}")

    def _extras(self, sources, notice: str, context: str) -> None:
        if sources:
            self.sources.setText(source_html(sources))
            self.sources.setVisible(True)
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        self.context = context
        self.context_button.setVisible(True)

    def fail(self, message: str) -> None:
        self.dirty = True
        self.render()
        self.status.setText(message)
        self.status.setStyleSheet("color: #c0392b;")

    def show_stored(self, m: StoredMessage) -> None:
        self.text = m.content
        self.dirty = True
        self.render()
        report = m.meta.get("thinking")
        self.reasoning.show_report(m.reasoning, ThinkingReport(**report) if isinstance(report, dict) else None)
        self.prompt = m.meta.get("prompt", "")
        self._extras(m.meta.get("sources", []), m.meta.get("notice", ""), "")
        self.context_button.setVisible(bool(self.prompt))
        label = {"partial": "cut off when Ponder stopped", "cancelled": "stopped", "error": "failed"}.get(m.state, "")
        self.status.setText(" · ".join(p for p in (m.meta.get("model", ""), label) if p))


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

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.inner = QWidget()
        self.column = QVBoxLayout(self.inner)
        self.column.setContentsMargins(16, 12, 16, 12)
        self.column.setSpacing(10)
        self.empty = QLabel("<h2>Ask Ponder anything</h2><p>Answers are made on this computer. Slide <b>Thinking</b> "
                            "to let the model reason before it answers, or pick a document collection to ask about "
                            "your files.</p>")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: palette(mid);")
        self.column.addStretch(1)
        self.column.addWidget(self.empty)
        self.column.addStretch(1)
        self.setWidget(self.inner)
        self.answers: list[AnswerWidget] = []
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

    def add_answer(self, budget: int | None = None) -> AnswerWidget:
        w = AnswerWidget(budget)
        w.show_context.connect(self.show_context)
        self._add(w)
        self.answers.append(w)
        self.timer.start()
        return w

    def show_messages(self, messages: list[StoredMessage]) -> None:
        self.clear()
        for m in messages:
            if m.role == "user":
                self.add_question(m.content)
            elif m.role == "assistant":
                self.add_answer().show_stored(m)
        self.timer.stop()

    def stop_streaming(self) -> None:
        self._render()
        self.timer.stop()

    def _render(self) -> None:
        for w in self.answers[-2:]:
            w.render()

    def remove_last_turn(self) -> None:
        """Drop the last question and its answer from the view (regenerate, edit and resend)."""
        for _ in range(2):
            if self.column.count() > 3:
                item = self.column.takeAt(self.column.count() - 2)
                if isinstance(item.widget(), AnswerWidget):
                    self.answers.remove(item.widget())
                item.widget().deleteLater()
        self._set_empty(self.column.count() <= 3)
