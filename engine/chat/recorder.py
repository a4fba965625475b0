"""Streams an answer out as Token events and into history as it grows, so a crash loses almost nothing."""
from __future__ import annotations

import time
from typing import Callable

from engine.chat.history import History
from engine.events import Progress, Token

SAVE_EVERY_S = 0.5  # how often a streaming answer is written: at most this much is lost in a crash


class AnswerRecorder:
    """The answer row appears with the first text (thinking or answer) and is saved every SAVE_EVERY_S."""

    def __init__(self, history: History, conversation_id: int, on_event: Callable[[object], None] | None,
                 reading: str = "Reading the question") -> None:
        self.history, self.conversation_id = history, conversation_id
        self.on_event = on_event or (lambda _e: None)
        self.reading = reading  # what a Progress event says while the prompt is read ("Reading 3 passages")
        self._read_from = 0.0
        self.text = ""
        self.reasoning = ""
        self.message_id: int | None = None
        self.saved_at = 0.0

    def on_read(self, done: int, total: int, tok_s: float | None = None) -> None:
        """The prompt is being read: `done` of `total` tokens. The time left comes from the rate so far, and
        before the first chunk from `tok_s` (how fast the last prompt was read) when it is known."""
        now = time.perf_counter()
        if done == 0:
            self._read_from = now
        elapsed = now - self._read_from
        if done and elapsed > 0:
            left = round((total - done) * elapsed / done, 1)
        else:
            left = round(total / tok_s, 1) if tok_s else None
        self.on_event(Progress(done, total, self.reading, left))

    def on_thinking(self, text: str) -> None:
        if not self.reasoning:
            text = text.lstrip()
            if not text:
                return
        self.reasoning += text
        self.on_event(Token(text, "thinking"))
        self._save()

    def on_text(self, text: str) -> None:
        if not self.text:
            text = text.lstrip()  # base models answer " Paris": the space belongs to the prompt's "Answer:"
            if not text:
                return
        self.text += text
        self.on_event(Token(text, "answer"))
        self._save()

    def _save(self) -> None:
        now = time.monotonic()
        if self.message_id is None:
            self.message_id = self.history.add_message(self.conversation_id, "assistant", self.text,
                                                       reasoning=self.reasoning, state="streaming")
            self.saved_at = now
        elif now - self.saved_at >= SAVE_EVERY_S:
            self.history.update_message(self.message_id, content=self.text, reasoning=self.reasoning)
            self.saved_at = now

    def finish(self, state: str, meta: dict, final_text: str | None = None) -> None:
        text = self.text.strip() if final_text is None else final_text
        reasoning = self.reasoning.strip()
        if self.message_id is None:
            self.message_id = self.history.add_message(self.conversation_id, "assistant", text, reasoning=reasoning,
                                                       state=state, meta=meta)
        else:
            self.history.update_message(self.message_id, content=text, reasoning=reasoning, state=state, meta=meta)
