"""One answer: streamed Markdown, its reasoning, sources and actions; two answers to one question side by side."""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app import style
from app.progress import progress_text
from app.widgets.composer import BUDGET_STOPS, budget_label, next_budget
from app.widgets.markdown import AnswerBody, open_link
from app.widgets.reasoning import ReasoningSection
from engine import Answer, Progress, Source, StoredMessage, ThinkingReport, Usage


def source_html(sources: tuple[Source, ...]) -> str:
    rows = []
    for s in sources:
        page = f", page {s.page}" if s.page is not None else ""
        url = QUrl.fromLocalFile(s.path)
        if s.page is not None and s.path.lower().endswith(".pdf"):
            url.setFragment(f"page={s.page}")  # PDF viewers that take open parameters go to the page
        rows.append(f"<a href=\"{html.escape(url.toString())}\">[{s.n}] {html.escape(Path(s.path).name)}"
                    f"{page}</a> — {style.muted_html(html.escape(s.snippet[:160]), style.current())}")
    return "<br>".join(rows)


def asked_budget(report: ThinkingReport | None) -> int | None:
    """The slider stop a stored answer was asked with, from its report (the engine may have capped the budget to
    what the context had room for, so it is rounded up to a stop)."""
    if report is None:
        return 0
    if report.auto:
        return None
    return next((b for b in BUDGET_STOPS if b is not None and b >= report.budget), BUDGET_STOPS[-2])


def drafts_text(usage: Usage) -> str:
    """The footer's word on speculative decoding, when it drafted at all."""
    if not usage.drafted_tokens:
        return ""
    return f" ({usage.accepted_tokens} of {usage.drafted_tokens} drafted accepted)"


def seconds_of(report: ThinkingReport | None, ttft_s: float, decode_tok_s: float, answer_tokens: int) -> float:
    """Thinking plus answering time; from the timings when there was no thinking run."""
    if report is not None and (report.thinking_s or report.answer_s):
        return report.thinking_s + report.answer_s
    return ttft_s + (answer_tokens / decode_tok_s if decode_tok_s else 0.0)


def chips_html(sources: tuple[Source, ...]) -> str:
    """One compact chip per source: [n] file · p. N; a click opens its snippet below."""
    t = style.current()
    chips = []
    for s in sources:
        page = f" · p.{s.page}" if s.page is not None else ""
        name = Path(s.path).name
        name = name if len(name) <= 28 else name[:26] + "…"
        chips.append(style.chip_html(f"[{s.n}] {html.escape(name)}{page}", f"source:{s.n}", t))
    return "Sources&nbsp;&nbsp;" + "&nbsp; ".join(chips)


class SourceChips(QWidget):
    """An answer's sources as chips; a chip opens its snippet and a link to the file (the same chip closes it)."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: tuple[Source, ...] = ()
        self.open_n: int | None = None
        self.chips = QLabel()
        self.chips.setObjectName("sources")
        self.chips.setWordWrap(True)
        self.chips.setTextFormat(Qt.TextFormat.RichText)
        self.chips.setProperty("role", "muted")
        self.chips.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                           | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.chips.setAccessibleName("Sources")
        self.chips.linkActivated.connect(self._chip)
        self.detail = QLabel()
        self.detail.setObjectName("sourceDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self.detail.setOpenExternalLinks(False)
        self.detail.linkActivated.connect(open_link)  # only safe links (engine.links)
        self.detail.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.chips)
        layout.addWidget(self.detail)
        self.setVisible(False)

    def set_sources(self, sources: tuple[Source, ...]) -> None:
        self.sources = sources
        self.chips.setText(chips_html(sources))
        self.setVisible(bool(sources))

    def text(self) -> str:
        return self.chips.text()

    def _chip(self, href: str) -> None:
        n = int(href.removeprefix("source:"))
        self.open_n = None if self.open_n == n else n
        chosen = tuple(s for s in self.sources if s.n == self.open_n)
        self.detail.setText(source_html(chosen))
        self.detail.setVisible(bool(chosen))


class AnswerWidget(QFrame):
    """One answer. Streamed text is buffered and rendered by the chat view's timer. Side by side with another
    answer to the same question (Think more), its heading shows the budget and what it spent."""

    show_context = Signal(object)  # self
    think_more = Signal(object)  # self
    ended = Signal()  # finished, failed or shown from history: its actions may change

    def __init__(self, budget: int | None = 0) -> None:
        super().__init__()
        self.setObjectName("answer")
        self.text = ""
        self.prompt = ""  # the exact prompt, for "What the model saw"
        self.context = ""
        self.dirty = False
        self.budget = budget  # the slider stop it was asked with; None is Auto
        self.report: ThinkingReport | None = None
        self.figures: tuple[int, int, float] | None = None  # thinking tokens, answer tokens, seconds
        self.is_finished = False
        self.is_compared = False  # side by side with another answer to the same question
        self._status = ("", "")  # the footer's words alone, and beside another answer (the heading has the figures)
        self.heading = QLabel()
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.heading.setVisible(False)
        self.reasoning = ReasoningSection()
        self.reasoning.budget = budget
        self.body = AnswerBody()
        self.sources = SourceChips()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setProperty("role", "hint")
        self.notice.setVisible(False)
        self.think_more_button = QPushButton("Think more")
        self.think_more_button.setFlat(True)
        self.think_more_button.setAccessibleName("Think more")
        self.think_more_button.setVisible(False)
        self.think_more_button.clicked.connect(lambda: self.think_more.emit(self))
        self.copy_button = QPushButton("Copy")
        self.copy_button.setFlat(True)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text))
        self.context_button = QPushButton("What the model saw")
        self.context_button.setFlat(True)
        self.context_button.setVisible(False)
        self.context_button.clicked.connect(lambda: self.show_context.emit(self))
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        actions = QHBoxLayout()
        actions.addWidget(self.status, 1)
        actions.addWidget(self.think_more_button)
        actions.addWidget(self.context_button)
        actions.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(6)
        layout.addWidget(self.heading)
        layout.addWidget(self.reasoning)
        layout.addWidget(self.body)
        layout.addWidget(self.notice)
        layout.addWidget(self.sources)
        layout.addLayout(actions)
        self._show_heading()

    def show_reading(self, p: Progress) -> None:
        """The prompt is being read (before the first token): "Reading 3 passages… 40% · about 6 s left"."""
        if not self.is_finished:
            words = progress_text(p) if p.done < p.total else ""
            self._set_status(words, words)

    def add_token(self, text: str, kind: str) -> None:
        if self._status[0] and not self.text and not self.reasoning.tokens:
            self._set_status("", "")  # the reading line gives way to the answer
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

    def next_budget(self) -> int | None:
        """The budget Think more would ask with; None when this answer had the largest."""
        return next_budget(self.budget, self.report.used if self.report else 0)

    def set_think_more(self, enabled: bool, why: str) -> None:
        self.think_more_button.setVisible(self.is_finished)
        self.think_more_button.setEnabled(enabled)
        self.think_more_button.setToolTip(why)
        self.think_more_button.setAccessibleDescription(why)

    def finish(self, answer: Answer) -> None:
        self.text = answer.text
        self.dirty = True
        self.render()
        self.reasoning.show_report(answer.reasoning, answer.thinking)
        self.prompt = answer.prompt
        self._extras(answer.sources, answer.notice, answer.context)
        t, u = answer.timings, answer.usage
        ended = {"cancelled": " · stopped", "length": " · hit the answer limit",
                 "context": " · the context window is full"}.get(answer.stop_reason, "")
        self._set_status(f"{answer.model} · {u.answer_tokens} tokens{drafts_text(u)} · "
                         f"{t.decode_tok_s:.0f} tok/s{ended}", ended.removeprefix(" · "))
        self.report = answer.thinking
        self.figures = (u.thinking_tokens, u.answer_tokens,
                        seconds_of(answer.thinking, t.ttft_s, t.decode_tok_s, u.answer_tokens))
        self._ended()

    def _extras(self, sources: tuple[Source, ...], notice: str, context: str) -> None:
        if sources:
            self.sources.set_sources(sources)
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        self.context = context
        self.context_button.setVisible(True)

    def fail(self, message: str) -> None:
        self.dirty = True
        self.render()
        self._set_status(message, message)
        self.status.setProperty("failed", True)
        self.status.style().polish(self.status)
        self._ended()

    def show_stored(self, m: StoredMessage) -> None:
        self.text = m.content
        self.dirty = True
        self.render()
        report = m.meta.get("thinking")
        self.report = ThinkingReport(**report) if isinstance(report, dict) else None
        self.budget = self.reasoning.budget = asked_budget(self.report)
        self.reasoning.show_report(m.reasoning, self.report)
        self.prompt = m.meta.get("prompt", "")
        self._extras(tuple(Source(**s) for s in m.meta.get("sources", [])), m.meta.get("notice", ""), "")
        self.context_button.setVisible(bool(self.prompt))
        label = {"partial": "cut off when Ponder stopped", "cancelled": "stopped", "error": "failed"}.get(m.state, "")
        self._set_status(" · ".join(p for p in (m.meta.get("model", ""), label) if p), label)
        usage, timings = m.meta.get("usage") or {}, m.meta.get("timings") or {}
        if usage:
            answer_tokens = usage.get("answer_tokens", 0)
            self.figures = (usage.get("thinking_tokens", 0), answer_tokens,
                            seconds_of(self.report, timings.get("ttft_s", 0.0), timings.get("decode_tok_s", 0.0),
                                       answer_tokens))
        self._ended()

    def set_compared(self) -> None:
        """Beside another answer: the heading shows the budget and figures, the footer only how it ended."""
        self.is_compared = True
        self.heading.setVisible(True)
        self.setProperty("compared", True)
        self.style().polish(self)
        self.layout().setContentsMargins(10, 8, 10, 8)
        self._set_status(*self._status)

    def _set_status(self, alone: str, compared: str) -> None:
        self._status = (alone, compared)
        self.status.setText(compared if self.is_compared else alone)

    def _ended(self) -> None:
        self.is_finished = True
        self._show_heading()
        self.ended.emit()

    def _show_heading(self) -> None:
        label = budget_label(self.budget)
        if self.budget is None and self.report is not None and self.report.budget:
            label += f" (chose {budget_label(self.report.budget)})"
        parts = [f"Thinking <b>{html.escape(label)}</b>"]
        if self.figures is not None:
            thinking, answer, seconds = self.figures
            parts.append(f"{thinking:,} thinking + {answer:,} answer tokens · {seconds:.1f} s")
        elif not self.is_finished:
            parts.append("answering…")
        self.heading.setText(" · ".join(parts))


class ComparisonRow(QWidget):
    """One question answered twice, side by side: the first answer and the one that thought more."""

    def __init__(self, first: AnswerWidget, second: AnswerWidget) -> None:
        super().__init__()
        self.answers = (first, second)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(12)
        for w in self.answers:
            w.set_compared()
            row.addWidget(w, 1, Qt.AlignmentFlag.AlignTop)
