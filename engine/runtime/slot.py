"""One sequence of a batched context: a request's thinking span and answer, a token at a time.

The single-sequence engine runs a request as `generate()` with a `ThinkingRun` before the answer; here the same
steps are cut at every `llama_decode`, because the decode is shared with other requests. A slot says which tokens
it needs evaluated next (`pending`), and when the batch has evaluated them it reads its logits (`on_logits`) and
decides the next tokens: the thinking span is the same `ThinkingController` the engine drives, and the answer
follows `generate()` rule for rule (end-of-generation forbidden until something is said, banned openers, stop
strings, the result line, max_tokens, a full context). Greedy output is the single-sequence engine's, token for
token (tests/engine/runtime/test_batch.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from engine.budget.auto import AUTO_CEILING, choose_budget
from engine.budget.controller import Phase, ThinkingController
from engine.budget.driver import CLOSE_MARGIN, ThinkingRequest
from engine.budget.formats import ThinkingFormat
from engine.runtime.loop import GenerationSettings, ResultLine, SamplingSettings, TextStream, build_sampler

PieceFn = Callable[[str, str], None]  # (kind "thinking" | "answer", text)


@dataclass(frozen=True, slots=True)
class ThinkingPlan:
    """A thinking span to run before the answer. `room`: the tokens the context leaves for it (the ceiling is
    that less CLOSE_MARGIN, as in ThinkingRun)."""

    format: ThinkingFormat
    request: ThinkingRequest
    question: str
    room: int
    sampling: SamplingSettings = SamplingSettings()


@dataclass(frozen=True, slots=True)
class SlotJob:
    """What one request asks of the batch: a prompt, how to answer it, where its text goes."""

    prompt: list[int]
    settings: GenerationSettings
    thinking: ThinkingPlan | None = None
    on_piece: PieceFn | None = None
    is_cancelled: Callable[[], bool] | None = None


@dataclass
class SlotResult:
    """What a request produced. stop_reason as Generated's: eos, stop, length, context, cancelled, error."""

    text: str = ""
    reasoning: str = ""
    stop_reason: str = ""
    answer_tokens: int = 0
    thinking_tokens: int = 0
    budget: int = 0
    closed_by: str = "off"
    auto_reason: str = ""
    close_tokens: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    submitted: float = 0.0  # perf_counter() stamps
    started: float = 0.0  # given a slot
    first: float = 0.0  # first token sampled (thinking or answer)
    end: float = 0.0
    error: str = ""


@dataclass
class _Probe:
    """Auto's zero-thought probe: the span's close evaluated after the prompt, its first token's entropy read,
    then taken back out; it rides in the same decode as the prompt's last token, whose logits are kept."""

    tokens: list[int]
    prompt_end: int  # index in `pending` of the prompt's last token


class Slot:
    """A sequence id of the batched context and the request it is running (None when free)."""

    def __init__(self, seq: int, runtime) -> None:
        self.seq, self.rt = seq, runtime
        self.tokens: list[int] = []  # what the KV cache holds for this sequence
        self.job: SlotJob | None = None
        self.pending: list[int] = []
        self.probe: _Probe | None = None
        self.result = SlotResult()
        self.controller: ThinkingController | None = None
        self.done: Callable[[SlotResult], None] | None = None
        self._emit: PieceFn = lambda _k, _t: None
        self._cancelled: Callable[[], bool] = lambda: False
        self._stream: TextStream | None = None
        self._thinking_sampler = self._answer_sampler = None

    @property
    def busy(self) -> bool:
        return self.job is not None

    # -- starting -------------------------------------------------------------------------------
    def start(self, job: SlotJob, submitted: float, done: Callable[[SlotResult], None]) -> None:
        """Take `job`: keep the cached prefix it shares with what this sequence holds, evaluate the rest."""
        keep = min(common_prefix(self.tokens, job.prompt), len(job.prompt) - 1)  # the last prompt token's logits are read: it is re-evaluated
        self.tokens = self.tokens[:self.rt.remove(self.seq, keep)]
        self.job, self.done = job, done
        self.pending = list(job.prompt[len(self.tokens):])
        self.result = SlotResult(prompt_tokens=len(job.prompt), reused_tokens=len(self.tokens), submitted=submitted,
                                 started=time.perf_counter())
        self._emit = job.on_piece or (lambda _k, _t: None)
        self._cancelled = job.is_cancelled or (lambda: False)
        self.controller, self._thinking_sampler, self.probe = None, None, None
        self._answer_sampler, self._stream = None, TextStream(job.settings.stop)
        self._has_said, self._result = False, ResultLine(job.settings.result_line)
        plan = job.thinking
        if plan is None:
            return
        ceiling = max(0, plan.room - CLOSE_MARGIN)
        if plan.request.auto:  # the budget waits for the probe's entropy
            close = plan.format.skip or plan.format.close
            self.probe = _Probe(self.rt.tokenize(close), len(self.pending) - 1)
            self.pending += self.probe.tokens
            self._ceiling = min(ceiling, AUTO_CEILING)
        else:
            self._begin_span(min(plan.request.budget or 0, ceiling))

    def _begin_span(self, budget: int) -> None:
        plan = self.job.thinking
        self.controller = ThinkingController(plan.format, budget, plan.request.min_think, plan.request.max_extensions)
        self.result.budget = budget
        if budget == 0:  # nothing to spend: the prompt opened the span, close it at once
            self._inject(plan.format.skip or plan.format.close, closing=True)
        else:
            self._thinking_sampler = build_sampler(self.rt, plan.sampling)

    # -- the batch's side ----------------------------------------------------------------------
    def logit_rows(self, n: int) -> list[int]:
        """Which of the first n pending tokens need logits when n of them go in this decode."""
        if self.probe is not None and n == len(self.pending):
            return [self.probe.prompt_end, n - 1]
        return [n - 1] if n == len(self.pending) else []

    def take(self, room: int) -> int:
        """How many pending tokens go in a decode with `room` places left (a probe never splits from the
        prompt's last token)."""
        n = min(room, len(self.pending))
        if self.probe is not None and n < len(self.pending):
            n = min(n, self.probe.prompt_end)
        return n

    def evaluated(self, n: int) -> None:
        self.tokens += self.pending[:n]
        self.pending = self.pending[n:]
        if self.probe is not None and self.pending:  # a chunk of the prompt before the probe went in
            self.probe.prompt_end -= n

    def on_logits(self, rows: dict[int, int]) -> None:
        """The decode gave logits for this slot's evaluated tokens (pending index -> batch row): go on."""
        if self.probe is not None:
            prompt_row, probe_row = rows[min(rows)], rows[max(rows)]
            entropy = self.rt.entropy(probe_row)
            n_probe = len(self.probe.tokens)
            self.tokens = self.tokens[:self.rt.remove(self.seq, len(self.tokens) - n_probe)]
            self.probe = None
            plan = self.job.thinking
            choice = choose_budget(plan.question, entropy, self._ceiling)
            self.result.auto_reason = choice.reason
            self._begin_span(choice.budget)
            if self.pending:  # budget 0: the close is queued
                return
            return self._next(prompt_row)
        self._next(max(rows.values()))

    def _next(self, row: int) -> None:
        if self._cancelled():
            return self.finish("cancelled")
        c = self.controller
        if c is not None and c.phase is Phase.THINKING:
            return self._think(row)
        self._answer(row)

    def _think(self, row: int) -> None:
        c = self.controller
        close = c.before_sample()
        if c.phase is Phase.ANSWER:
            self._thinking_done()
            if close:
                return self._inject(close, closing=True)
            return self._answer(row)
        token = self._thinking_sampler.sample(self.rt.ctx, row)
        self.result.first = self.result.first or time.perf_counter()
        step = c.observe(self.rt.piece(token), self.rt.is_eog(token))
        if step.retract:
            self.tokens = self.tokens[:self.rt.remove(self.seq, len(self.tokens) - step.retract)]
        if step.shown:
            self._emit("thinking", step.shown)
        if c.phase is Phase.ANSWER:
            self._thinking_done()
        if step.inject:
            self._inject(step.inject, closing=c.phase is Phase.ANSWER)
        elif step.evaluate:
            self.pending = [token]
        if not self.pending:  # the span closed on a token that is not evaluated (cannot happen today)
            self._answer(row)

    def _thinking_done(self) -> None:
        if self._thinking_sampler is not None:
            self._thinking_sampler.close()
            self._thinking_sampler = None

    def _inject(self, text: str, closing: bool) -> None:
        """Queue `text` after what is pending (after the prompt, when the span is closed before it began)."""
        tokens = self.rt.tokenize(text)
        if closing:
            self.result.close_tokens += len(tokens)
        self.pending = self.pending + tokens

    def _answer(self, row: int) -> None:
        s, r = self.job.settings, self.result
        if self._answer_sampler is None:
            self._answer_sampler = build_sampler(self.rt, s.sampling, s.banned)
        if r.answer_tokens >= s.max_tokens:
            return self.finish("length")
        if not self._has_said:
            self.rt.forbid_end(row)
        token = self._answer_sampler.sample(self.rt.ctx, row)
        if self.rt.is_eog(token):
            return self.finish("eos")
        r.first = r.first or time.perf_counter()
        r.answer_tokens += 1
        piece = self.rt.piece(token)
        self._has_said = self._has_said or bool(piece.strip())
        text, ended = self._result.push(self._stream.push(piece), self._stream.text)
        if text:
            self._emit("answer", text)
        if ended:
            return self.finish("stop")
        if self._stream.stopped:
            return self.finish("stop")
        if r.answer_tokens >= s.max_tokens:
            return self.finish("length")
        if len(self.tokens) >= self.rt.n_ctx_slot:
            return self.finish("context")
        self.pending = [token]

    def finish(self, reason: str, error: str = "") -> None:
        """The request is over: report it and free the slot (the KV cache stays for the next prompt's prefix)."""
        r, c = self.result, self.controller
        cut = self._result.end if self._stream is not None else None
        if self._stream is not None and cut is None:  # what was held back is the answer's (a stop string or not)
            tail = self._result.release() + ("" if self._stream.stopped else self._stream.flush())
            if tail:
                self._emit("answer", tail)
        r.text = self._stream.text[:cut].strip() if self._stream is not None else ""
        r.stop_reason, r.error, r.end = reason, error, time.perf_counter()
        if c is not None:
            r.thinking_tokens, r.reasoning = c.used, c.reasoning.strip()
            r.closed_by = c.closed_by or "cancelled"
        for sampler in (self._thinking_sampler, self._answer_sampler):
            if sampler is not None:
                sampler.close()
        self._thinking_sampler = self._answer_sampler = None
        self.pending, self.probe = [], None
        done, self.job, self.done = self.done, None, None
        if done is not None:
            done(r)


def entropy_of(logits: np.ndarray) -> float:
    """Entropy in nats of the distribution `logits` make (as ModelSession.probe computes it)."""
    x = logits.astype(np.float64)
    p = np.exp(x - x.max())
    p /= p.sum()
    return float(-(p[p > 0] * np.log(p[p > 0])).sum())


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` share from their start."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
