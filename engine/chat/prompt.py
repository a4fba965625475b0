"""Assemble a prompt that fits the context window: the system prompt always, the oldest turns dropped first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.chat.templates import Message, Rendered, render
from engine.errors import GenerationError

Tokenize = Callable[[str, bool], list[int]]  # (text, add_bos) -> tokens
# When a conversation no longer fits, its oldest turns are dropped until this share of the room is free again.
# Dropping one turn at a time, the long robustness run (300 turns, Gemma 3 270M, 2,048-token context) re-read its
# whole conversation at every turn once the context was full (15-25 s a turn on a busy 2-core machine, and it never
# finished); freeing a quarter, its 300 turns took about a minute. More would forget more of the conversation.
CUT_ROOM = 0.25


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
                template_kwargs: dict | None = None, thinking: bool = False, suffix: str = "",
                dropped_before: int = 0) -> PackedPrompt:
    """Render and tokenize, dropping whole (question, answer) turns from the oldest until it fits.

    The cut is sticky: `dropped_before` (what the conversation's last answer left out) is kept while the prompt
    still fits, since moving it changes everything after the system prompt and the whole conversation would be
    read again. When it must move, it moves by a block: enough turns go for the prompt to leave CUT_ROOM of the
    room free, so a long conversation is read again once every few turns instead of at every one."""

    def build(drop: int) -> tuple[list[int], Rendered]:
        messages = [Message("system", system)] if system else []
        for user, assistant in turns[drop:]:
            messages += [Message("user", user), Message("assistant", assistant)]
        messages.append(Message("user", question))
        rendered = render(fmt, messages, template=template, bos_token=bos_token, eos_token=eos_token,
                          thinking=thinking, suffix=suffix, **(template_kwargs or {}))
        return tokenize(rendered.text, rendered.add_bos), rendered

    def fewest_drops(first: int, limit: int) -> tuple[int, tuple[list[int], Rendered]] | None:
        """The fewest drops from `first` on that fit in `limit` (token counts fall as turns are dropped)."""
        lo, hi, best = first, len(turns), None
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = build(mid)
            if len(candidate[0]) <= limit:
                best, hi = (mid, candidate), mid - 1
            else:
                lo = mid + 1
        return best

    limit = n_ctx - reserve
    kept = min(max(dropped_before, 0), len(turns))
    tokens, rendered = build(kept)
    if len(tokens) <= limit:
        return PackedPrompt(tokens, rendered.text, rendered.stop, kept)
    best = fewest_drops(kept + 1, limit - int(limit * CUT_ROOM)) or fewest_drops(kept + 1, limit)
    if best is None:
        alone = len(build(len(turns))[0])
        raise GenerationError(
            f"The question is too long: with the system prompt it takes {alone:,} tokens, and the context holds "
            f"{n_ctx:,} with {reserve:,} kept for the answer. Shorten it, or load the model with a larger context.")
    drop, (tokens, rendered) = best
    return PackedPrompt(tokens, rendered.text, rendered.stop, drop)
