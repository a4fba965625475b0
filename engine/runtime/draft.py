"""Draft-model speculation: a smaller model with the target's vocabulary proposes the next tokens, and the target
verifies them in one batch exactly as it verifies prompt-lookup drafts (loop.py `_step`): the same sampler chain,
the same take-one-token-at-a-time checks, so greedy answers are unchanged token for token.

The draft's KV cache follows the target's. Before each proposal it is rolled back to the longest prefix it shares
with the target's tokens and fed the rest: the target's correction token after a rejection, or the last accepted
draft and the bonus token after a full acceptance (the first time in an answer, the prompt and the thinking span).
So the draft reads exactly what the target has read, and proposes k greedy tokens (k <= MAX_DRAFT, because longer
verify batches change the target's logits on the CPU; see speculate.py). With sampling, the draft samples from
its own distribution q and the target keeps each draft with the standard rule, `speculative_accept` with its
distribution p — taken from the answer's own sampler chain without its final draw, so p is what the answer
samples from.

Whether drafting pays is measured on this machine, not assumed: a draft token costs `draft_cost` target tokens
and k drafts are verified in one batch costing cost(k + 1), so k drafts that agree at rate r yield
1 + r + ... + r^k tokens for k * draft_cost + cost(k + 1) (`draft_model_plan`). `attach_draft` measures the
target's batch costs, estimates the draft's from the file sizes (small models use the machine less well, so the
estimate is optimistic) and does not even load the draft when it could not pay if 9 drafts in 10 were accepted; it
then loads it, times its token against the target's in alternation (on a shared machine, timings taken apart
disagree: one such run put the 0.5B at 0.26 of the 1.5B), and unloads it when the measured cost cannot pay
either. On 2 AVX2 cores the
Qwen2.5-Coder 0.5B costs ~0.6 of a 1.5B token against a 3-token verify of ~2.3 tokens, so it stays off there.
"""
from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import llama_cpp
import numpy as np

from engine.errors import ModelError
from engine.runtime.loop import GenerationSettings, build_sampler
from engine.runtime.session import CancelFn, LoadSettings, ModelSession
from engine.runtime.speculate import (EXACT_BATCH, MAX_DRAFT, CostModel, draft_cost_to_pay, draft_model_plan,
                                      speculative_accept)

log = logging.getLogger(__name__)

FILLER = ("The history of the Roman Empire spans many centuries, from the founding of the city to the fall of "
          "Constantinople. Its institutions, roads and laws shaped Europe for a thousand years.")
TIMING_REPEATS = 3  # best of: a disturbed timing is too slow, never too fast
# The load-time decision assumes the pair agrees this often (better than most pairs do): a draft that would not pay
# even then is not kept. At every draft accepted it would keep drafts that gain nothing at any real agreement.
HOPED_AGREEMENT = 0.9
PRIOR_AGREEMENT = (3.0, 1.0)  # (hits, misses) before a pair has drafted: 0.75, replaced within a few batches
DECAY = 0.9  # weight of older acceptance evidence per verified draft
DRAFT_EMA = 0.2


def batch_seconds(session: ModelSession, sizes=(1, 2, EXACT_BATCH)) -> dict[int, float]:
    """Best-of seconds of one decode of n tokens (1 as a plain step, more as a verify batch), on top of a short
    context; the session's cache keeps what it held (its last logits aside: the next prompt re-reads them)."""
    n0 = len(session.tokens)
    filler = session.tokenize(FILLER, add_bos=n0 == 0 and session.adds_bos)
    if n0 + len(filler) > session.n_ctx:
        session.clear()
        n0 = 0
    context = len(filler) - max(sizes)
    session.evaluate(filler[:context])
    n1 = len(session.tokens)
    best = {n: float("inf") for n in sizes}
    for round_ in range(TIMING_REPEATS + 1):  # the first round warms up (buffers are allocated on first use)
        for n in sizes:
            session.rewind(n1)
            start = time.perf_counter()
            if n == 1:
                session.evaluate(filler[context:context + 1])
            else:
                session.verify(filler[context:context + n])
            if round_ > 0:
                best[n] = min(best[n], time.perf_counter() - start)
    session.rewind(n0)
    return best


def token_seconds_paired(target: ModelSession, draft: ModelSession) -> tuple[float, float]:
    """Seconds of one token of each model, timed in alternation (a disturbance of a shared machine hits both
    alike), the median round of TIMING_REPEATS * 2: (target, draft)."""
    starts = []
    for session in (target, draft):
        if len(session.tokens) + 32 > session.n_ctx:
            session.clear()
        starts.append(len(session.tokens))
        session.evaluate(session.tokenize(FILLER, add_bos=not session.tokens and session.adds_bos)[:24])
    n_target, n_draft = len(target.tokens), len(draft.tokens)
    rounds = []
    for _ in range(TIMING_REPEATS * 2 + 1):
        seconds = []
        for session, n in ((target, n_target), (draft, n_draft)):
            session.rewind(n)
            start = time.perf_counter()
            session.evaluate([session.tokens[-1]])
            seconds.append(time.perf_counter() - start)
        rounds.append(tuple(seconds))
    target.rewind(starts[0])
    draft.rewind(starts[1])
    rounds = sorted(rounds[1:], key=lambda r: r[1] / r[0])  # the first round warms up
    return rounds[len(rounds) // 2]


def same_vocabulary(a: ModelSession, b: ModelSession) -> bool:
    """Whether token ids mean the same text in both (sampled across the vocabulary)."""
    if a.n_vocab != b.n_vocab:
        return False
    step = max(1, a.n_vocab // 97)
    return all(a.piece(t) == b.piece(t) for t in range(0, a.n_vocab, step))


@dataclass(frozen=True, slots=True)
class DraftDecision:
    """Whether a draft model drafts for the loaded one, and the measured figures behind it, in words too."""

    model: str
    is_on: bool
    is_loaded: bool
    draft_cost: float  # one draft token in target tokens (measured when loaded, else estimated from file sizes)
    verify_costs: dict[int, float]  # a target batch of n tokens relative to one, measured
    best_gain: float  # the expected speed-up at HOPED_AGREEMENT
    cost_to_pay: float  # the dearest draft token that would still pay at HOPED_AGREEMENT
    reason: str


class DraftModel:
    """A second ModelSession drafting for the target, with the pair's measured costs and observed acceptance
    (kept across answers)."""

    def __init__(self, name: str, session: ModelSession, cost: CostModel, draft_s: float, is_forced: bool) -> None:
        self.name, self.session, self.cost, self.draft_s, self.is_forced = name, session, cost, draft_s, is_forced
        self.hits, self.misses = PRIOR_AGREEMENT
        self.batches = self.drafted_total = self.accepted_total = 0  # since loading (the bench reads them)

    @property
    def draft_cost(self) -> float:
        one = self.cost.seconds.get(1)
        return self.draft_s / one if one else 1.0

    @property
    def rate(self) -> float:
        return self.hits / (self.hits + self.misses)

    def length(self, limit: int) -> int:
        """Tokens to draft now (0: decode plainly), from the acceptance seen and the measured costs."""
        limit = min(limit, MAX_DRAFT)
        if self.is_forced or limit <= 0:
            return max(0, limit)
        k, _ = draft_model_plan(self.rate, self.draft_cost, self.cost)
        return min(k, limit)

    def record(self, drafted: int, accepted: int) -> None:
        self.batches += 1
        self.drafted_total += drafted
        self.accepted_total += accepted
        self.hits = self.hits * DECAY + accepted
        self.misses = self.misses * DECAY + (1 if accepted < drafted else 0)

    def observe_draft(self, seconds_per_token: float) -> None:
        self.draft_s += DRAFT_EMA * (seconds_per_token - self.draft_s)

    def begin_answer(self) -> None:
        """A new answer: where the last one ended drafting, old evidence fades toward the prior so that it tries
        again (the pair may agree more on this question)."""
        if self.length(MAX_DRAFT) == 0:
            self.hits = (self.hits + PRIOR_AGREEMENT[0]) / 2
            self.misses = (self.misses + PRIOR_AGREEMENT[1]) / 2

    def speculator(self, target: ModelSession, settings: GenerationSettings,
                   cancelled: CancelFn) -> "DraftSpeculator":
        self.begin_answer()
        return DraftSpeculator(self, target, settings, cancelled)

    def close(self) -> None:
        self.session.close()


def _decision(name: str, draft_cost: float, cost: CostModel, loaded: bool, forced: bool) -> DraftDecision:
    k, best = draft_model_plan(HOPED_AGREEMENT, draft_cost, cost)
    need = draft_cost_to_pay(HOPED_AGREEMENT, cost)
    verify = {n: round(cost.cost(n), 2) for n in range(1, EXACT_BATCH + 1)}
    how = "measured" if loaded else "estimated from the file sizes"
    pays = k > 0  # beats plain decoding by the margin timing noise needs
    if forced:
        reason = f"{name} drafts (forced); a draft token costs {draft_cost:.2f} of a target token ({how})."
    elif pays:
        reason = (f"{name} drafts where the acceptance seen says it pays: a draft token costs {draft_cost:.2f} of "
                  f"a target token ({how}), {best:.2f}x if 9 drafts in 10 are accepted.")
    else:
        reason = (f"{name} does not draft on this machine: a draft token costs {draft_cost:.2f} of a target token "
                  f"({how}) and a batch of {EXACT_BATCH} costs {verify[EXACT_BATCH]:.2f}, so even if 9 drafts in 10 "
                  f"were accepted answers would be {best:.2f}x as fast; it would pay under {need:.2f}.")
    return DraftDecision(name, forced or pays, loaded, round(draft_cost, 3), verify, round(best, 3), round(need, 3),
                         reason)


def estimated_cost(size: int, target: ModelSession) -> float:
    """A draft token in target tokens, before loading it: the ratio of the files (decode reads every weight once
    per token). Optimistic: the 0.5B's file is 0.44 of the 1.5B's but its token costs ~0.6 on 2 CPU cores."""
    return size / max(1, target.info.file_size)


def attach_draft(target: ModelSession, name: str, size: int, path: Callable[[], Path], settings: LoadSettings,
                 is_forced: bool = False) -> tuple[DraftModel | None, DraftDecision]:
    """Decide from measured costs whether the model `name` (a file of `size` bytes that `path()` provides, a
    built-in model being assembled only then) can draft for `target` here; load it only when it might pay (or
    `is_forced`). Returns the draft (None when it stays off) and the decision."""
    cost = CostModel()
    for n, seconds in batch_seconds(target).items():
        cost.observe(n, seconds)
    estimate = estimated_cost(size, target)
    if not is_forced and draft_model_plan(HOPED_AGREEMENT, estimate, cost)[0] == 0:
        decision = _decision(name, estimate, cost, False, False)
        log.info("%s", decision.reason)
        return None, decision
    session = ModelSession.load(path(), replace(settings, draft_model=None, force_draft=False))
    if not same_vocabulary(session, target):
        session.close()
        raise ModelError(f"{session.info.name} cannot draft for {target.info.name}: their vocabularies differ. "
                         "Choose a smaller model of the same family.")
    target_s, draft_s = token_seconds_paired(target, session)
    draft = DraftModel(name, session, cost, draft_s / target_s * cost.seconds[1], is_forced)  # the paired ratio
    decision = _decision(name, draft.draft_cost, cost, True, is_forced)
    log.info("%s", decision.reason)
    if not decision.is_on:
        draft.close()
        return None, replace(decision, is_loaded=False)
    return draft, decision


TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data


def distribution(chain, logits: np.ndarray) -> np.ndarray:
    """The probabilities a sampler chain without its final draw leaves over the vocabulary (float64)."""
    n = logits.shape[0]
    data = np.zeros(n, TOKEN_DATA)
    data["id"] = np.arange(n, dtype=np.int32)
    data["logit"] = logits
    array = llama_cpp.llama_token_data_array(data.ctypes.data_as(llama_cpp.llama_token_data_p), n, -1, False)
    llama_cpp.llama_sampler_apply(chain.sampler, ctypes.byref(array))
    at = ctypes.cast(array.data, ctypes.c_void_p).value  # a sampler may point it at its own buffer
    kept = np.frombuffer((ctypes.c_char * (array.size * TOKEN_DATA.itemsize)).from_address(at), TOKEN_DATA)
    logit = kept["logit"].astype(np.float64)
    weights = np.exp(logit - logit.max())
    p = np.zeros(n)
    p[kept["id"]] = weights / weights.sum()
    return p


class DraftSpeculator:
    """One answer's drafting by a draft model, with the interface the token loop uses for prompt lookup (plan,
    settle, append, cost, drafted, accepted)."""

    def __init__(self, model: DraftModel, target: ModelSession, settings: GenerationSettings,
                 cancelled: CancelFn) -> None:
        self.model, self.target, self.cancelled = model, target, cancelled
        self.cost = model.cost
        self.drafted = self.accepted = 0
        self.is_off = False
        self.last: int | None = None  # the latest answer token: sampled, not yet in the target's cache
        s = settings.sampling
        self.is_sampled = s.temperature > 0
        self._p = self._q = None
        if self.is_sampled:  # p: the answer's chain without the draw; q: the draft's, without penalties
            self._p = build_sampler(target, s, settings.banned, draw=False)
            self._q = build_sampler(model.session, replace(s, repeat_penalty=1.0), draw=False)
            self.rng = np.random.default_rng(s.seed)
        self.q: list[np.ndarray] = []

    def plan(self, limit: int) -> tuple[list[int], int]:
        """A draft to verify after the last appended token ([] for a plain step); the tag is always 1."""
        k = 0 if self.is_off or self.last is None else self.model.length(limit)
        if k == 0:
            self.is_off = self.is_off or limit > 0  # stays off for the rest of this answer
            return [], 0
        want = [*self.target.tokens, self.last]
        draft = self.model.session
        if len(want) + k > draft.n_ctx:
            self.is_off = True
            return [], 0
        began, before = time.perf_counter(), draft.evaluated
        draft.prepare(want, self.cancelled)  # rewinds to the shared prefix, reads the rest
        is_step = draft.evaluated - before <= EXACT_BATCH  # not the prompt read at an answer's first draft
        tokens, self.q = [], []
        for j in range(k):
            token = self._propose(draft.logits())
            tokens.append(token)
            if draft.is_eog(token):
                break
            if j + 1 < k:
                draft.evaluate([token])
        if is_step:
            self.model.observe_draft((time.perf_counter() - began) / len(tokens))
        return tokens, 1

    def _propose(self, logits: np.ndarray) -> int:
        if not self.is_sampled:
            return int(np.argmax(logits))
        q = distribution(self._q, logits)
        self.q.append(q)
        return int(self.rng.choice(q.shape[0], p=q))

    def verify_sampled(self, session: ModelSession, sampler, draft: list[int]) -> list[int]:
        """The tokens a verify batch yields under sampling: each draft kept by the speculative-sampling rule with
        p (the answer's chain on the target's logits) and q (the draft's), up to the first rejection, whose
        token comes from the residual; after a full acceptance, one more from p. The answer's sampler chain is
        told each token (its repetition penalty must see them)."""
        p_chain = self._p.clone()
        out: list[int] = []
        try:
            for i in range(len(draft) + 1):
                p = distribution(p_chain, session.logits_at(i))
                if i < len(draft):
                    token, kept = speculative_accept(p, draft[i], self.rng, self.q[i])
                else:
                    token, kept = int(self.rng.choice(p.shape[0], p=p)), False
                out.append(token)
                sampler.accept(token)
                p_chain.accept(token)
                if not kept or session.is_eog(token):
                    break
        finally:
            p_chain.close()
        return out

    def settle(self, _tag: int, drafted: int, accepted: int) -> None:
        self.drafted += drafted
        self.accepted += accepted
        self.model.record(drafted, accepted)

    def append(self, token: int) -> None:
        """A token joined the answer (accepted or sampled)."""
        self.last = token
        if self._p is not None:
            self._p.accept(token)

    def close(self) -> None:
        for chain in (self._p, self._q):
            if chain is not None:
                chain.close()
