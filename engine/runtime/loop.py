"""The token loop: sample, evaluate, stream text; stop on end-of-generation, stop strings, length or cancel."""
from __future__ import annotations

import codecs
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import llama_cpp
from llama_cpp import _internals as internals

from engine.errors import Cancelled
from engine.runtime.session import CancelFn, ModelSession, ReadFn


@dataclass(frozen=True, slots=True)
class SamplingSettings:
    """temperature 0 is greedy; seed None draws a fresh one per answer."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    max_tokens: int = 512  # answer tokens; thinking is limited by its budget
    stop: tuple[str, ...] = ()
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    banned: tuple[int, ...] = ()  # tokens the answer may not contain (e.g. a thinking span's opener)
    result_line: bool = False  # end the answer at a blank line after a short first paragraph (ends_result_line)


def build_sampler(session: ModelSession, s: SamplingSettings, banned: Sequence[int] = ()) -> internals.LlamaSampler:
    """One sampler chain per answer (llama-cpp-python's sample() would rebuild and re-seed it per token)."""
    sampler = session.new_sampler()
    if banned:
        sampler.add_logit_bias(session.n_vocab, {t: float("-inf") for t in banned})
    if s.repeat_penalty != 1.0:
        sampler.add_penalties(session.n_vocab, s.repeat_last_n, s.repeat_penalty, 0.0, 0.0)
    if s.temperature <= 0:
        sampler.add_greedy()
        return sampler
    sampler.add_top_k(s.top_k)
    sampler.add_top_p(s.top_p, 1)
    sampler.add_min_p(s.min_p, 1)
    sampler.add_temp(s.temperature)
    sampler.add_dist(llama_cpp.LLAMA_DEFAULT_SEED if s.seed is None else s.seed & 0xFFFFFFFF)
    return sampler


class TextStream:
    """Token bytes in, text out: UTF-8 split across tokens is reassembled, stop strings are cut,
    and text that may be the start of a stop string is held back until it is known not to be."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.text = ""  # everything emitted so far
        self.stopped = False

    def push(self, data: bytes) -> str:
        """Add a token's bytes; return the text that is now safe to show ("" once a stop string was seen)."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(data)
        for stop in self._stops:
            at = self._held.find(stop)
            if at >= 0:
                self._held, self.stopped = self._held[:at], True
        if self.stopped:
            return self._emit(len(self._held))
        keep = max((self._partial(stop) for stop in self._stops), default=0)
        return self._emit(len(self._held) - keep)

    def _partial(self, stop: str) -> int:
        for n in range(min(len(stop) - 1, len(self._held)), 0, -1):
            if self._held.endswith(stop[:n]):
                return n
        return 0

    def _emit(self, n: int) -> str:
        out, self._held = self._held[:n], self._held[n:]
        self.text += out
        return out

    def flush(self) -> str:
        """The end: release what was held back."""
        self._held += self._decoder.decode(b"", final=True)
        return self._emit(len(self._held))


RESULT_CHARS = 160  # a first paragraph this short, then a blank line, was the result: what follows is not


def ends_result_line(text: str) -> bool | None:
    """For answers that follow "Final answer:": True when a short first paragraph has just ended (chat models
    asked for a direct answer give it, then go on to work it out: "230\n\nTo find the total cost, ..."),
    None when the answer is no result line — it starts on a line of its own, or its first paragraph is too
    long (a story, a poem, code: never cut) — and False while that is not known yet."""
    body = text.lstrip()
    if "\n" in text[:len(text) - len(body)]:
        return None
    at = body.find("\n\n", 0, RESULT_CHARS + 2)
    if at > 0:  # "…we need to follow these steps:" introduces the answer rather than giving it
        return None if body[:at].rstrip().endswith(":") else True
    return None if len(body) > RESULT_CHARS else False


@dataclass(frozen=True, slots=True)
class Generated:
    """What one generation produced, with perf_counter() timestamps of its phases."""

    text: str
    stop_reason: str  # eos, stop, length, context, cancelled
    n_tokens: int
    reused_tokens: int  # prompt tokens found already in the KV cache
    started: float
    prefilled: float  # prompt evaluated
    first: float  # first token sampled
    last: float  # last counted token sampled

    @property
    def decode_tok_s(self) -> float:
        return (self.n_tokens - 1) / (self.last - self.first) if self.n_tokens > 1 and self.last > self.first else 0.0


def generate(session: ModelSession, prompt: Sequence[int], settings: GenerationSettings,
             on_text: Callable[[str], None] | None = None, is_cancelled: CancelFn | None = None,
             before_answer: Callable[[CancelFn], None] | None = None, on_read: ReadFn | None = None) -> Generated:
    """Evaluate `prompt` (reusing the cached prefix) and sample until a stop; stream text to on_text.
    `before_answer` runs between the prompt and the answer (the thinking span lives there); `on_read` hears
    how far the prompt is read.
    A stop, whenever it comes, returns with stop_reason "cancelled": the one way an answer reports it."""
    cancelled = is_cancelled or (lambda: False)
    start = time.perf_counter()
    try:
        reused = session.prepare(prompt, cancelled, on_read)
    except Cancelled:  # stopped while the prompt was evaluated: nothing sampled
        now = time.perf_counter()
        return Generated("", "cancelled", 0, 0, start, now, now, now)
    prefilled = time.perf_counter()
    if before_answer is not None:
        before_answer(cancelled)
    sampler = build_sampler(session, settings.sampling, settings.banned)
    stream = TextStream(settings.stop)
    emit = on_text or (lambda _t: None)
    n, first, last, reason = 0, 0.0, 0.0, "length"
    has_said = False  # the answer may not end before it has said something (a model that closes its turn at once)
    watch_result = settings.result_line
    try:
        while n < settings.max_tokens:
            if cancelled():
                reason = "cancelled"
                break
            if not has_said:
                session.forbid_end()
            token = session.sample(sampler)
            if session.is_eog(token):
                reason = "eos"
                break
            last = time.perf_counter()
            first = first or last
            n += 1
            piece = session.piece(token)
            has_said = has_said or bool(piece.strip())
            text = stream.push(piece)
            if text:
                emit(text)
            if watch_result:
                ended = ends_result_line(stream.text)
                watch_result = ended is False
                if ended:
                    reason = "stop"
                    break
            if stream.stopped:
                reason = "stop"
                break
            if len(session.tokens) >= session.n_ctx:
                reason = "context"
                break
            session.evaluate([token])
    except Cancelled:
        reason = "cancelled"
    finally:
        sampler.close()
    tail = stream.flush() if not stream.stopped else ""
    if tail:
        emit(tail)
    end = time.perf_counter()
    return Generated(stream.text, reason, n, reused, start, prefilled, first or end, last or end)
