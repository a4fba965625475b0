"""The thinking-span state machine: counts thinking tokens and decides, token by token, what the model sees.

It knows nothing of llama.cpp: it takes each sampled token's bytes and answers
with a `Step` (evaluate the token or not, take tokens back out of the KV cache,
inject text), so the unit tests can drive it with a scripted token stream.

    THINKING --(model writes the end delimiter)-----------------> ANSWER
    THINKING --(used == budget, Auto's probes agree, or the span repeats itself)--close--> ANSWER
    THINKING --(end or end-of-generation under min_think)--"Wait"--> THINKING  (at most max_extensions)
    THINKING --(another end, e.g. a base model's next "Question:")--close--> ANSWER

Invariant: `used` (thinking tokens sampled) never exceeds `budget`, because the
budget is checked before every sample and the close is injected, not sampled.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from engine.budget.formats import ThinkingFormat
from engine.runtime.loop import TextStream


# A span whose last REPEAT_CHARS characters already stand earlier in it is going round in circles (small
# chat models loop on a step); more of it buys nothing, so it is closed and the model answers.
REPEAT_CHARS = 120


class Phase(str, Enum):
    THINKING = "thinking"
    ANSWER = "answer"


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with a sampled token: `retract` evaluated tokens first, then either evaluate the
    token or inject `inject`; `shown` is reasoning text that became safe to display."""

    evaluate: bool
    retract: int = 0
    inject: str = ""
    shown: str = ""


class ThinkingController:
    def __init__(self, fmt: ThinkingFormat, budget: int, min_think: int = 0, max_extensions: int = 2) -> None:
        if budget < 0 or min_think < 0 or max_extensions < 0:
            raise ValueError("budget, min_think and max_extensions must not be negative")
        self.format, self.budget = fmt, budget
        self.min_think = min(min_think, budget)
        self.max_extensions = max_extensions
        self.phase = Phase.THINKING if budget > 0 else Phase.ANSWER
        self.used = 0
        self.extensions = 0
        self.closed_by = "" if budget > 0 else "off"  # model, budget, early, repeat, off
        self.reasoning = ""
        self._ends = [e.encode() for e in fmt.ends]
        self._longest_end = max((len(e) for e in self._ends), default=0)
        self._restart_segment()
        self._stop_reason = ""

    def _restart_segment(self) -> None:
        """A segment is the span since the last injection: where an end delimiter can still form."""
        self._pieces: list[bytes] = []
        self._bytes = b""
        self._display = TextStream(self.format.ends)

    def _show(self, text: str) -> str:
        self.reasoning += text
        return text

    def request_early_stop(self, reason: str = "early") -> None:
        """Close the span before the next sample: Auto decided the answer has settled ("early"), or it loops."""
        self._stop_reason = self._stop_reason or reason

    def before_sample(self) -> str:
        """Text to inject before sampling (the close), or "" to sample as usual."""
        if self.phase is not Phase.THINKING:
            return ""
        if self.used >= self.budget or self._stop_reason:
            self.closed_by = "budget" if self.used >= self.budget else self._stop_reason
            self.phase = Phase.ANSWER
            return self.format.close
        return ""

    def _is_repeating(self) -> bool:
        r = self.reasoning
        return len(r) >= 2 * REPEAT_CHARS and r.find(r[-REPEAT_CHARS:], 0, len(r) - REPEAT_CHARS) >= 0

    def observe(self, piece: bytes, is_eog: bool = False) -> Step:
        """Account for a token sampled while thinking."""
        assert self.phase is Phase.THINKING, "observe() is for tokens sampled inside the span"
        if is_eog:  # the model wants to stop without closing the span: nothing to take back
            return self._on_end(covering=0, prefix=b"", is_canonical=False)
        self.used += 1
        self._pieces.append(piece)
        # Only the tail can hold a new delimiter: keep just the pieces that cover it, so a long span
        # costs the same per token as a short one.
        window = len(piece) + self._longest_end
        kept = sum(len(p) for p in self._pieces)
        while len(self._pieces) > 1 and kept - len(self._pieces[0]) >= window:
            kept -= len(self._pieces.pop(0))
        self._bytes = b"".join(self._pieces)
        tail_from = max(0, len(self._bytes) - len(piece) - self._longest_end)
        hits = [(self._bytes.find(e, tail_from), i) for i, e in enumerate(self._ends)]
        hits = [(at, i) for at, i in hits if at >= 0]
        if not hits:
            shown = self._show(self._display.push(piece))
            if shown and self._is_repeating():
                self.request_early_stop("repeat")
            return Step(True, shown=shown)
        at, which = min(hits)
        covering, covered = 0, 0
        while covered < len(self._bytes) - at:
            covered += len(self._pieces[-1 - covering])
            covering += 1
        prefix = self._bytes[len(self._bytes) - covered:at]
        shown = self._show(self._display.push(piece))  # the display stream cuts at the delimiter
        step = self._on_end(covering, prefix, is_canonical=self.format.is_canonical(which))
        return Step(step.evaluate, step.retract, step.inject, shown + step.shown)

    def _on_end(self, covering: int, prefix: bytes, is_canonical: bool) -> Step:
        """The model ended the span (`covering` tokens, the last not yet evaluated, form the delimiter)."""
        self.used -= covering  # delimiter tokens are not thinking
        retract = max(0, covering - 1)
        text_before = prefix.decode("utf-8", errors="ignore")
        if self.used < self.min_think and self.extensions < self.max_extensions:
            self.extensions += 1
            self._restart_segment()
            return Step(False, retract, text_before + self.format.extension, self._show(self.format.extension))
        self.phase, self.closed_by = Phase.ANSWER, "model"
        if is_canonical and covering:
            return Step(True)
        return Step(False, retract, text_before + self.format.close)

    @property
    def forced_close(self) -> bool:
        return self.closed_by in ("budget", "early", "repeat")
