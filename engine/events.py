"""Plain, frozen data that crosses threads: the engine emits these, the GUI and CLI render them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """A long job moved: `done` of `total` units (total 0 when unknown); `seconds_left` when the job can tell."""

    done: float
    total: float
    label: str
    seconds_left: float | None = None


@dataclass(frozen=True, slots=True)
class ConversationStarted:
    """A question without a conversation started this one (emitted before its first Token)."""

    conversation_id: int


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of streamed text; `kind` is "thinking" or "answer"."""

    text: str
    kind: str = "answer"


@dataclass(frozen=True, slots=True)
class Timings:
    load_s: float = 0.0
    ttft_s: float = 0.0
    prefill_tok_s: float = 0.0
    decode_tok_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens already in the KV cache from an earlier turn
    evaluated_tokens: int = 0  # prompt tokens that had to be evaluated for this answer
    thinking_tokens: int = 0
    answer_tokens: int = 0
    dropped_turns: int = 0  # oldest turns left out so the prompt fits the context
    drafted_tokens: int = 0  # answer tokens guessed ahead by speculative decoding and verified in a batch
    accepted_tokens: int = 0  # of those, the ones the model agreed with (they cost no step of their own)
    draft_model: str = ""  # the model that drafted them; "" for prompt lookup (or no drafts)


@dataclass(frozen=True, slots=True)
class ThinkingReport:
    """How an answer's thinking went. closed_by: model, budget (forced), early (Auto), repeat (looping), off
    (no thinking), cancelled (stopped while thinking)."""

    format: str
    budget: int
    used: int
    closed_by: str
    auto: bool = False
    auto_reason: str = ""
    extensions: int = 0
    probes: int = 0
    probe_tokens: int = 0  # tokens evaluated by Auto's probes, rollbacks included
    close_tokens: int = 0  # tokens injected to close the span
    thinking_s: float = 0.0
    answer_s: float = 0.0
    explanation: str = ""  # for the person, in words: what Auto chose and why, where and why thinking stopped


@dataclass(frozen=True, slots=True)
class Source:
    """A numbered passage an answer from documents was given, as the answer cites it: [n]."""

    n: int
    path: str
    page: int | None  # None: the file has no pages
    snippet: str  # the passage's start, on one line
    score: float  # its search score; 1.0 when the whole collection was sent


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished (or stopped) answer. `stop_reason`: eos, stop (a stop string or the result line), length
    (max_tokens), context (the context window is full), cancelled (the person stopped it, at any point)."""

    text: str
    stop_reason: str
    usage: Usage
    timings: Timings
    reasoning: str = ""
    model: str = ""
    backend: str = ""
    budget: int | None = None
    sources: tuple[Source, ...] = ()
    conversation_id: int | None = None
    thinking: ThinkingReport | None = None
    context: str = ""  # the documents text the model was given (with numbered sources)
    notice: str = ""  # something the person should know about how the answer was made
    prompt: str = ""  # the exact prompt the model was given, as text ("What the model saw")


@dataclass(frozen=True, slots=True)
class ReadAhead:
    """What reading ahead a question still being typed did: the passages it chose for the draft (`context`, as an
    answer's), how many tokens its prompt starts with before the question's own words (`start`), how many of those
    it read now (`evaluated`) and how many the cache holds at the end (`cached`). `stopped`: a stop came first
    (what was read stays); `skipped`: why nothing was read, in words ("" when it read)."""

    sources: tuple[Source, ...] = ()
    context: str = ""
    start: int = 0
    evaluated: int = 0
    cached: int = 0
    stopped: bool = False
    skipped: str = ""


@dataclass(frozen=True, slots=True)
class Failure:
    """A job failed; `message` is for the person, `detail` for a bug report. `kind`: "error", or "cancelled"
    when the person stopped it (a paused download, a load called off)."""

    message: str
    detail: str = ""
    kind: str = "error"
