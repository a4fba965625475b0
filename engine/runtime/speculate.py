"""Speculative decoding by prompt lookup: guess the next tokens from what the prompt and the answer already say,
verify the guesses in one batch, keep what the model's own sampler agrees with.

Pure Python, no llama.cpp: the token loop (loop.py) asks a `Speculator` for a draft before each step and tells it
what was accepted; the tests drive it with scripted tokens.

Why drafts are at most two tokens long (a verify batch of three): on the CPU backend llama.cpp multiplies a batch
of four or more tokens with a different kernel (the repacked Q4_K gemm) whose logits differ from one-at-a-time
decoding by up to ~1.5, so a greedy answer would change; batches of one to three tokens give bit-identical logits
(checked on Gemma 3 270M and Qwen2.5-Coder 0.5B, llama-cpp-python 0.3.36; tests/engine/runtime/test_speculate.py
keeps checking it). Exactness first: the ceiling is then 3 / verify_cost(3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

EXACT_BATCH = 3  # the longest verify batch whose logits equal one-token decoding bit for bit (see above)
MAX_DRAFT = EXACT_BATCH - 1
N_MAX = 3  # the longest n-gram matched; a longer match is tried first
# Verify cost of a batch of n tokens relative to one token, before this answer has measured its own: the
# 1.5B on 2 AVX2 cores (issue figures, confirmed by `ponder bench --only verify_cost`). The loop replaces them
# with what it measures, so a machine where batches are cheap (a GPU) soon drafts more.
PRIOR_COST = {1: 1.0, 2: 1.9, 3: 2.3}
MARGIN = 0.05  # draft only when the expected speed-up beats this: timing noise and Python overhead
DECAY = 0.8  # weight of older acceptance evidence at each new observation: a quote starts and ends quickly
COST_EMA = 0.2


class Drafter:
    """The latest earlier occurrence of the last n tokens (n = N_MAX..1) proposes what followed it."""

    def __init__(self, tokens: Sequence[int], n_max: int = N_MAX) -> None:
        self.tokens: list[int] = []
        self.n_max = n_max
        self._after: dict[tuple[int, ...], int] = {}  # n-gram -> index of the token that followed it last
        for t in tokens:
            self.append(t)

    def append(self, token: int) -> None:
        end = len(self.tokens)
        for n in range(1, min(self.n_max, end) + 1):
            self._after[tuple(self.tokens[end - n:end])] = end
        self.tokens.append(token)

    def propose(self, k: int) -> tuple[list[int], int]:
        """Up to k tokens and the n-gram length that found them ([], 0 when nothing matches)."""
        if k <= 0:
            return [], 0
        for n in range(min(self.n_max, len(self.tokens)), 0, -1):
            at = self._after.get(tuple(self.tokens[-n:]))
            if at is not None:
                return self.tokens[at:at + k], n
        return [], 0


@dataclass(slots=True)
class Acceptance:
    """How often drafted tokens were accepted lately, per n-gram length: decayed counts of the token that
    followed an accepted one (or the first) being accepted (hit) or not (miss)."""

    hits: dict[int, float] = field(default_factory=lambda: {n: 0.5 for n in range(1, N_MAX + 1)})
    misses: dict[int, float] = field(default_factory=lambda: {n: 1.0 for n in range(1, N_MAX + 1)})

    def rate(self, n: int) -> float:
        return self.hits[n] / (self.hits[n] + self.misses[n])

    def record(self, n: int, accepted: int, drafted: int) -> None:
        self.hits[n] = self.hits[n] * DECAY + accepted
        self.misses[n] = self.misses[n] * DECAY + (1 if accepted < drafted else 0)


def expected_tokens(rate: float, k: int) -> float:
    """Tokens one verify step yields with k drafted, when each is accepted with probability `rate` after the last."""
    return 1.0 + sum(rate ** j for j in range(1, k + 1))


class CostModel:
    """Seconds per evaluate call by batch size, smoothed; relative costs fall back on PRIOR_COST."""

    def __init__(self, prior: dict[int, float] | None = None) -> None:
        self.prior = dict(prior or PRIOR_COST)
        self.seconds: dict[int, float] = {}

    def observe(self, size: int, seconds: float) -> None:
        old = self.seconds.get(size)
        self.seconds[size] = seconds if old is None else old + COST_EMA * (seconds - old)

    def cost(self, size: int) -> float:
        """A batch of `size` tokens relative to one token."""
        one, many = self.seconds.get(1), self.seconds.get(size)
        prior = self.prior.get(size, float(size))
        if not one or many is None:
            return prior
        return min(max(many / one, 1.0), 2.0 * prior)  # one disturbed timing must not switch drafting for good


def choose_length(rate: float, cost: CostModel, limit: int) -> int:
    """The draft length (0: none) that maximises tokens per unit of time, when that beats plain decoding."""
    best_k, best = 0, 1.0 + MARGIN
    for k in range(1, min(limit, MAX_DRAFT) + 1):
        gain = expected_tokens(rate, k) / cost.cost(k + 1)
        if gain > best:
            best_k, best = k, gain
    return best_k


class Speculator:
    """One answer's drafting: proposes drafts where the measured acceptance and costs say they pay; drafts it
    does not verify are still checked against the tokens that come (a shadow), so it notices a quote starting."""

    is_sampled = False  # drafts are deterministic: the loop keeps a draft while its own sample equals it

    def __init__(self, context: Sequence[int], cost: CostModel | None = None) -> None:
        self.drafter = Drafter(context)
        self.acceptance = Acceptance()
        self.cost = cost or CostModel()
        self.drafted = 0
        self.accepted = 0
        self._shadow: tuple[list[int], int, int] | None = None  # draft, n-gram length, tokens matched so far

    def plan(self, limit: int) -> tuple[list[int], int]:
        """A draft to verify after the last appended token ([] for a plain step), and its n-gram length."""
        limit = min(limit, MAX_DRAFT)
        draft, n = self.drafter.propose(MAX_DRAFT)
        if not draft:
            return [], 0
        k = choose_length(self.acceptance.rate(n), self.cost, min(limit, len(draft)))
        if k == 0:
            if self._shadow is None:
                self._shadow = (draft, n, 0)
            return [], 0
        self._shadow = None  # a real draft is evidence enough
        return draft[:k], n

    def settle(self, n: int, drafted: int, accepted: int) -> None:
        """A verified draft of `drafted` tokens (n-gram length n) had its first `accepted` accepted."""
        self.drafted += drafted
        self.accepted += accepted
        self.acceptance.record(n, accepted, drafted)

    def append(self, token: int) -> None:
        """A token joined the answer (accepted or sampled)."""
        if self._shadow is not None:
            draft, n, matched = self._shadow
            if token == draft[matched]:
                matched += 1
                self._shadow = None if matched == len(draft) else (draft, n, matched)
                if matched == len(draft):
                    self.acceptance.record(n, matched, len(draft))
            else:
                self._shadow = None
                self.acceptance.record(n, matched, len(draft))
        self.drafter.append(token)

    def close(self) -> None:
        """Nothing to free (a draft model's speculator frees its sampler chains)."""


def speculative_accept(p: np.ndarray, draft: int, rng: np.random.Generator,
                       q: np.ndarray | None = None) -> tuple[int, bool]:
    """The speculative-sampling rule (Leviathan et al. 2023; Chen et al. 2023): keep the drafted token with
    probability min(1, p/q), else sample from the residual max(0, p - q), renormalised. The output is then
    distributed exactly as p. `q` None is a deterministic draft (prompt lookup): q = 1 on `draft`, so the draft
    is kept with probability p[draft], else the token comes from p with `draft` removed.

    Sampling x ~ p and keeping the draft when x == draft is the same rule for a deterministic draft (same
    acceptance probability, same residual), which is how the token loop applies it with the model's own sampler
    chain: each position is sampled once, in order, so a fixed seed gives the same text with or without drafts.
    Returns (token, whether the draft was kept)."""
    p = np.asarray(p, dtype=np.float64)
    q_draft = 1.0 if q is None else float(q[draft])
    if q_draft > 0 and rng.random() < min(1.0, p[draft] / q_draft):
        return draft, True
    if q is None:
        residual = p.copy()
        residual[draft] = 0.0
    else:
        residual = np.maximum(p - np.asarray(q, dtype=np.float64), 0.0)
    total = residual.sum()
    if total <= 0:  # p == q: the draft is always kept above; nothing else to give
        return draft, True
    return int(rng.choice(len(p), p=residual / total)), False


def draft_model_plan(rate: float, draft_cost: float, cost: CostModel) -> tuple[int, float]:
    """A smaller model drafting for this one: (draft length, expected speed-up), length 0 where none beats plain
    decoding. Each drafted token costs `draft_cost` target tokens (measured), then the batch is verified;
    `rate` is how often the draft's token is the target's."""
    gains = {k: expected_tokens(rate, k) / (k * draft_cost + cost.cost(k + 1)) for k in range(1, MAX_DRAFT + 1)}
    best_k = max(gains, key=gains.get)
    return (best_k, gains[best_k]) if gains[best_k] > 1.0 + MARGIN else (0, gains[best_k])


def draft_cost_to_pay(rate: float, cost: CostModel) -> float:
    """The dearest draft token (in target tokens) that would still pay at this agreement rate."""
    return max(0.0, max((expected_tokens(rate, k) / (1.0 + MARGIN) - cost.cost(k + 1)) / k
                        for k in range(1, MAX_DRAFT + 1)))
