"""The token loop: sample, evaluate, stream text; stop on end-of-generation, stop strings, length or cancel."""
from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import llama_cpp
from llama_cpp import _internals as internals

from engine.errors import Cancelled, GenerationError
from engine.runtime.session import CancelFn, ModelSession, ReadFn
from engine.runtime.speculate import Speculator

if TYPE_CHECKING:
    from engine.runtime.draft import DraftModel


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
    speculate: bool = False  # verify prompt-lookup drafts where they pay (speculate.py); the text is unchanged


def build_sampler(session: ModelSession, s: SamplingSettings, banned: Sequence[int] = (),
                  draw: bool = True) -> internals.LlamaSampler:
    """One sampler chain per answer (llama-cpp-python's sample() would rebuild and re-seed it per token).
    `draw` False leaves out the final draw (sampling only): the chain then shapes the distribution a draft
    model's drafts are weighed against (draft.py)."""
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
    if draw:
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
# A line that starts the working after a result line written with no blank line after it ("40\nExplanation:\n…",
# "10\nTo determine how many days…", as Qwen2.5-Coder 0.5B writes when asked for the answer alone).
WORKING = ("Explanation", "To ", "Step ", "Steps", "First,", "Let's", "Let us", "Here's how", "Here is how",
           "We need", "We can", "Solution", "Reasoning", "Working", "Calculation")


_CITATIONS = re.compile(r"(?:\[\d+\][\s,;]*)+")


def _second_line(body: str) -> str | None:
    """The text after the first line break of a one-paragraph start, up to the next line break (None: no break yet,
    or the first line is followed by a blank line)."""
    at = body.find("\n")
    if at < 0 or body[at + 1:at + 2] == "\n":
        return None
    return body[at + 1:].split("\n", 1)[0]


def ends_result_line(text: str) -> bool | None:
    """For answers that follow "Final answer:": True when a short first paragraph has just ended (chat models
    asked for a direct answer give it, then go on to work it out: "230\n\nTo find the total cost, ...", or
    "40\nExplanation: ..."), None when the answer is no result line — it starts on a line of its own, or its
    first paragraph is too long (a story, a poem, code: never cut) — and False while that is not known yet."""
    body = text.lstrip()
    if "\n" in text[:len(text) - len(body)]:
        return None
    first = body.split("\n", 1)[0]
    if "\n" in body and first.rstrip().endswith(":"):  # "…we need to follow these steps:" introduces the answer
        return None
    if "\n" in body and _CITATIONS.fullmatch(first.strip()):  # "[1]\n\nThe command is …": sources, then the answer
        return None
    second = _second_line(body)
    if second is not None and len(first) <= RESULT_CHARS and second.startswith(WORKING):
        return True
    at = body.find("\n\n", 0, RESULT_CHARS + 2)
    if at > 0:
        return None if body[:at].rstrip().endswith(":") else True
    return None if len(body) > RESULT_CHARS else False


def result_end(text: str) -> int:
    """Where the result line that ends_result_line found ends in `text` (the working after it is not the answer)."""
    body = text.lstrip()
    lead = len(text) - len(body)
    second = _second_line(body)
    if second is not None and second.startswith(WORKING):
        return lead + body.find("\n")
    return lead + body.find("\n\n")


class ResultLine:
    """Watches an answer that should be a result line (see ends_result_line) as its text streams out. Text that
    may be the start of a working line ("40\nExpl…") is held back until it is known, so a cut shows nothing of
    the working; `end` is where the answer's text ends once cut."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.held = ""
        self.end: int | None = None

    def push(self, new: str, text: str) -> tuple[str, bool]:
        """`new` is what the text stream just let out, `text` all it has let out: (text to show now, ended)."""
        if not self.active:
            return new, False
        self.held += new
        ended = ends_result_line(text)
        if ended:
            self.active, self.end = False, result_end(text)
            shown = len(text) - len(self.held)
            self.held = ""
            return text[shown:max(shown, self.end)], True
        second = _second_line(text.lstrip()) if ended is False else None
        if second is not None and any(w.startswith(second) for w in WORKING):
            return "", False  # "40\nExp" may become "40\nExplanation": hold it
        self.active = ended is False
        out, self.held = self.held, ""
        return out, False

    def release(self) -> str:
        """The answer ended without a cut: what was held back."""
        out, self.held = self.held, ""
        return out


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
    drafted: int = 0  # tokens proposed by speculative decoding and verified
    accepted: int = 0  # of those, the ones the model's sampler agreed with

    @property
    def decode_tok_s(self) -> float:
        return (self.n_tokens - 1) / (self.last - self.first) if self.n_tokens > 1 and self.last > self.first else 0.0


class _Answer:
    """The answer's tokens, taken one at a time in order with every stop check, however they were sampled."""

    def __init__(self, session: ModelSession, settings: GenerationSettings, emit: Callable[[str], None],
                 speculator: Speculator | None) -> None:
        self.session, self.settings, self.emit, self.speculator = session, settings, emit, speculator
        self.base = len(session.tokens)  # the cache before the answer
        self.stream = TextStream(settings.stop)
        self.n, self.first, self.last, self.reason = 0, 0.0, 0.0, "length"
        self.has_said = False  # it may not end before it has said something (a model that closes its turn at once)
        self.result = ResultLine(settings.result_line)

    def take(self, token: int) -> bool:
        """Account for a sampled token; False when the answer ends with it (reason set)."""
        if self.session.is_eog(token):
            self.reason = "eos"
            return False
        self.last = time.perf_counter()
        self.first = self.first or self.last
        self.n += 1
        if self.speculator is not None:
            self.speculator.append(token)
        piece = self.session.piece(token)
        self.has_said = self.has_said or bool(piece.strip())
        text, ended = self.result.push(self.stream.push(piece), self.stream.text)
        if text:
            self.emit(text)
        if ended:
            self.reason = "stop"
            return False
        if self.stream.stopped:
            self.reason = "stop"
            return False
        if self.base + self.n - 1 >= self.session.n_ctx:  # the cache is full: this token has no cell
            self.reason = "context"
            return False
        return True

    @property
    def evaluated(self) -> int:
        """Answer tokens that one-at-a-time decoding leaves in the cache: the last one only when it was not cut."""
        return self.n if self.reason in ("eos", "length", "cancelled") else max(0, self.n - 1)


def _step(session: ModelSession, sampler: internals.LlamaSampler, a: _Answer, last: int | None) -> list[int]:
    """Evaluate the last taken token (with a draft when one pays) and return the tokens sampled after it."""
    spec = a.speculator
    if last is None:  # the first token: the prompt's logits are waiting
        draft: list[int] = []
    elif spec is None or not a.has_said:
        draft = []
        session.evaluate([last])
    else:
        room = max(0, min(a.settings.max_tokens - a.n - 1, session.n_ctx - len(session.tokens) - 1))
        draft, n_gram = spec.plan(room)
        began = time.perf_counter()
        if draft:
            session.verify([last, *draft])
        else:
            session.evaluate([last])
        spec.cost.observe(1 + len(draft), time.perf_counter() - began)
    if not draft:
        if not a.has_said:
            session.forbid_end()
        return [session.sample(sampler)]
    out = spec.verify_sampled(session, sampler, draft) if spec.is_sampled else _agreeing(session, sampler, draft)
    accepted = len(out) - 1
    spec.settle(n_gram, len(draft), accepted)
    if accepted < len(draft) and not session.rewind(len(session.tokens) - (len(draft) - accepted)):
        raise GenerationError("Could not take back a rejected draft: this model's memory cannot be rewound.")
    return out


def _agreeing(session: ModelSession, sampler: internals.LlamaSampler, draft: list[int]) -> list[int]:
    """The answer's sampler chain samples each position of a verify batch in order; a draft token is kept while
    the sample equals it (for a deterministic draft, the speculative-sampling rule itself: see speculate.py)."""
    out: list[int] = []
    for i in range(len(draft) + 1):
        token = session.sample_at(sampler, i)
        out.append(token)
        if i == len(draft) or token != draft[i] or session.is_eog(token):
            break
    return out


def generate(session: ModelSession, prompt: Sequence[int], settings: GenerationSettings,
             on_text: Callable[[str], None] | None = None, is_cancelled: CancelFn | None = None,
             before_answer: Callable[[CancelFn], None] | None = None, on_read: ReadFn | None = None,
             draft: DraftModel | None = None) -> Generated:
    """Evaluate `prompt` (reusing the cached prefix) and sample until a stop; stream text to on_text.
    `before_answer` runs between the prompt and the answer (the thinking span lives there); `on_read` hears
    how far the prompt is read.
    A stop, whenever it comes, returns with stop_reason "cancelled": the one way an answer reports it.
    With settings.speculate, prompt-lookup drafts are verified where they pay (speculate.py), or a draft model's
    (draft.py) when `draft` is given; the text is the same token for token (greedy, or with a seed for prompt
    lookup; a draft model's sampled drafts keep the distribution)."""
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
    speculator = None
    if settings.speculate and session.can_roll_back:
        speculator = draft.speculator(session, settings, cancelled) if draft else Speculator(session.tokens)
    a = _Answer(session, settings, on_text or (lambda _t: None), speculator)
    last: int | None = None
    sampled: list[int] = []  # sampled after `last`, not yet taken
    try:
        while a.n < settings.max_tokens:
            if cancelled():
                a.reason = "cancelled"
                break
            if not sampled:
                sampled = _step(session, sampler, a, last)
            last = sampled.pop(0)
            if not a.take(last):
                break
        _settle_cache(session, a, last)
    except Cancelled:
        a.reason = "cancelled"
    finally:
        sampler.close()
        if speculator is not None:
            speculator.close()
    cut = a.result.end
    tail = "" if cut is not None else a.result.release() + ("" if a.stream.stopped else a.stream.flush())
    if tail:
        a.emit(tail)
    end = time.perf_counter()
    drafted, accepted = (speculator.drafted, speculator.accepted) if speculator else (0, 0)
    return Generated(a.stream.text[:cut], a.reason, a.n, reused, start, prefilled, a.first or end, a.last or end,
                     drafted, accepted)


def _settle_cache(session: ModelSession, a: _Answer, last: int | None) -> None:
    """Leave the cache as one-at-a-time decoding does (drafts past a stop out, the last token in), so the next
    turn reuses the same prefix and evaluates the same batch."""
    want = a.base + a.evaluated
    if len(session.tokens) > want:
        session.rewind(want)
    elif len(session.tokens) < want and last is not None:
        session.evaluate([last])
