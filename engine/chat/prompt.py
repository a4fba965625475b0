"""Assemble a prompt that fits the context window: the system prompt always, the oldest turns dropped first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.chat.templates import Message, Rendered, render
from engine.errors import GenerationError

Tokenize = Callable[[str, bool], list[int]]  # (text, add_bos) -> tokens


@dataclass(frozen=True, slots=True)
class PackedPrompt:
    tokens: list[int]
    text: str
    stop: tuple[str, ...]
    dropped_turns: int


def answer_reserve(max_tokens: int, n_ctx: int) -> int:
    """Room kept free for the answer: all of max_tokens when it is small, else a quarter of the context
    (a longer answer still runs until the context is full, then stops with reason "context")."""
    return min(max_tokens, max(n_ctx // 4, 64))


def pack_prompt(*, fmt: str, system: str, turns: list[tuple[str, str]], question: str, tokenize: Tokenize,
                n_ctx: int, reserve: int, template: str = "", bos_token: str = "", eos_token: str = "",
                template_kwargs: dict | None = None, thinking: bool = False, suffix: str = "") -> PackedPrompt:
    """Render and tokenize, dropping whole (question, answer) turns from the oldest until it fits."""

    def build(drop: int) -> tuple[list[int], Rendered]:
        messages = [Message("system", system)] if system else []
        for user, assistant in turns[drop:]:
            messages += [Message("user", user), Message("assistant", assistant)]
        messages.append(Message("user", question))
        rendered = render(fmt, messages, template=template, bos_token=bos_token, eos_token=eos_token,
                          thinking=thinking, suffix=suffix, **(template_kwargs or {}))
        return tokenize(rendered.text, rendered.add_bos), rendered

    limit = n_ctx - reserve
    tokens, rendered = build(0)
    if len(tokens) <= limit:
        return PackedPrompt(tokens, rendered.text, rendered.stop, 0)
    # Token count falls as turns are dropped: binary search for the fewest drops that fit.
    lo, hi = 1, len(turns)
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = build(mid)
        if len(candidate[0]) <= limit:
            best, hi = (mid, candidate), mid - 1
        else:
            lo = mid + 1
    if best is None:
        alone = len(build(len(turns))[0])
        raise GenerationError(
            f"The question is too long: with the system prompt it takes {alone:,} tokens, and the context holds "
            f"{n_ctx:,} with {reserve:,} kept for the answer. Shorten it, or load the model with a larger context.")
    drop, (tokens, rendered) = best
    return PackedPrompt(tokens, rendered.text, rendered.stop, drop)
