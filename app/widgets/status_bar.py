"""The status bar: the model loading, then the model and backend; the running answer's token counts and speed."""
from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from engine import Answer, Progress


@dataclass(slots=True)
class Streamed:
    """What the running answer has streamed so far: the status bar's counts and speed."""

    thinking: int = 0
    answer: int = 0
    first: float = 0.0  # perf_counter() of the first and the last token
    last: float = 0.0

    @property
    def tokens(self) -> int:
        return self.thinking + self.answer

    def add(self, kind: str) -> None:
        if kind == "thinking":
            self.thinking += 1
        else:
            self.answer += 1
        self.last = time.perf_counter()
        self.first = self.first or self.last


class StatusBar(QStatusBar):
    def __init__(self) -> None:
        super().__init__()
        self.load_progress = QProgressBar()
        self.load_progress.setMaximumWidth(180)
        self.load_progress.setVisible(False)
        self.model_label = QLabel("No model loaded")
        self.speed_label = QLabel()
        self.tokens_label = QLabel()
        self.addWidget(self.load_progress)
        for label in (self.tokens_label, self.speed_label, self.model_label):
            self.addPermanentWidget(label)

    def loading(self) -> None:
        self.load_progress.setRange(0, 0)
        self.load_progress.setVisible(True)
        self.model_label.setText("Loading model…")

    def load_progressed(self, p: Progress) -> None:
        if p.total > 0:
            self.load_progress.setRange(0, 1000)
            self.load_progress.setValue(int(1000 * p.done / p.total))
            self.load_progress.setFormat("%p%")  # the words beside it: "Preparing NAME" overflows a narrow bar
            self.model_label.setText(f"{p.label}…")

    def loaded(self, model: str | None) -> None:
        """`model`: what now answers ("name · backend"); None keeps what answered before (a load that failed)."""
        self.load_progress.setVisible(False)
        if model is not None:
            self.model_label.setText(model)

    def streamed(self, s: Streamed) -> None:
        if s.tokens > 1 and s.last > s.first:
            self.speed_label.setText(f"{(s.tokens - 1) / (s.last - s.first):.1f} tok/s")
        self.tokens_label.setText(f"thinking {s.thinking} · answer {s.answer}")

    def answered(self, answer: Answer) -> None:
        u = answer.usage
        self.tokens_label.setText(f"thinking {u.thinking_tokens} · answer {u.answer_tokens}")
        self.speed_label.setText(f"{answer.timings.decode_tok_s:.1f} tok/s")
