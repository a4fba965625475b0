"""Speculative decoding: decode speed with prompt-lookup drafts against plain decoding of the same prompts in the
same run (greedy, so both write the same tokens), what a verify batch costs, and what a draft model gives: the
engine's own decision and, forced on, its speed, acceptance and costs.

Runs alternate plain and drafted answers, REPEATS times, and compare the sums of decode seconds, because these
shared machines are noisy and an interleaved pair sees the same disturbance.
"""
from __future__ import annotations

import functools
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import core
from bench.runner import Result
from engine import AskOptions, Engine, ModelError, PonderError, ThinkingRequest
from engine.models.builtin import QWEN_CODER_05B
from engine.rag.library import Library
from engine.runtime import speculate
from engine.runtime.session import ModelSession

REPEATS = 2
VERIFY_SIZES = (1, 2, 3, 4, 5, 9, 17)
VERIFY_REPEATS = 5
REGISTER = """# Harbour register of Port Adelric

| ship | rig | launched | builder | cargo |
|---|---|---|---|---|
| Maribel Quist | schooner | 14 March 1887 | Hollis & Wren, Port Adelric | salt cod to Lisbon |
| Tolliver Anne | brig | 2 June 1902 | Granmouth Yard | coal from Cardiff |
| Saint Oduna | barque | 30 October 1871 | Pellam Brothers, Saltings | grain from Odessa |
| Hester Vane | ketch | 9 January 1913 | Adelric Co-operative Yard | slate from Porthmadog |

Harbour rule 7: "No vessel shall discharge ballast within the inner basin between sunset and sunrise, on pain
of a fine of five pounds and the master's licence being suspended for one month."

Harbour rule 12: "Every master shall report his draught, cargo and port of departure to the harbour office
within two hours of mooring, and shall keep his papers aboard for inspection."
"""
QUESTIONS = ("Quote harbour rule 7 exactly.",
             "Quote harbour rule 12 exactly.",
             "List every ship in the register with its rig, launch date, builder and cargo, one per line.")
ESSAY = "Write a long essay about the history of Rome."
CODE = "Write a Python function that checks whether a string is a palindrome, with a docstring and three tests."
DRAFT_QUESTIONS = (ESSAY, CODE)  # prose and code: the coder models agree most on code
ANSWER_TOKENS = 120


@functools.cache
def documents_engine() -> Engine:
    e = core.engine()
    folder = Path(tempfile.mkdtemp(prefix="ponder-bench-"))
    (folder / "register.md").write_text(REGISTER)
    e.library = Library(folder / "index.sqlite3")
    e.library.index("register", [str(folder / "register.md")])
    return e


def _pair(e: Engine, questions, options: AskOptions, costs: dict[int, float] | None = None) -> dict:
    """Interleaved plain and drafted answers: decode seconds, tokens, drafts; the texts must agree. With `costs`,
    prompt lookup's decisions are also replayed at those fixed verify costs."""
    totals = {"plain_s": 0.0, "spec_s": 0.0, "tokens": 0, "drafted": 0, "accepted": 0}
    streams: list[tuple[list[int], list[int]]] = []
    for _ in range(REPEATS):
        for q in questions:
            answers = {}
            for on in (False, True):
                e.session.clear()
                began = time.perf_counter()
                a = e.ask(q, options=replace(options, speculate=on))
                # From the first token to the end (Timings rounds tok/s to 0.1, too coarse on a busy machine).
                totals["spec_s" if on else "plain_s"] += max(1e-9, time.perf_counter() - began - a.timings.ttft_s)
                answers[on] = a
            if answers[True].text != answers[False].text:
                raise AssertionError(f"drafted answer differs from plain decoding for {q!r}")
            stream = list(e.session.tokens)
            p = answers[True].usage.prompt_tokens
            streams.append((stream[:p], stream[p:]))
            totals["tokens"] += answers[True].usage.answer_tokens - 1
            totals["drafted"] += answers[True].usage.drafted_tokens
            totals["accepted"] += answers[True].usage.accepted_tokens
    if costs is None:
        return totals
    replays = [replay(c, a, speculate.CostModel(costs)) for c, a in streams[:len(questions)]]
    totals["model"] = {k: sum(r[k] for r in replays) for k in ("plain", "spec", "batches", "accepted")}
    totals["model"]["mean_accepted"] = totals["model"]["accepted"] / max(1, totals["model"]["batches"])
    totals["model"]["costs"] = replays[0]["costs"]
    return totals


def _results(name: str, t: dict, goal: str) -> list[Result]:
    plain, spec = t["tokens"] / t["plain_s"], t["tokens"] / t["spec_s"]
    rate = t["accepted"] / t["drafted"] if t["drafted"] else 0.0
    m = t["model"]
    print(f"{name}: {t['tokens']} tokens, drafted {t['drafted']}, accepted {t['accepted']} (acceptance {rate:.2f}); "
          f"replayed at the verify costs {m['costs']}: {m['plain']:.0f} token steps plainly, {m['spec']:.1f} with "
          f"drafts, {m['batches']} verify batches, {m['mean_accepted']:.2f} accepted per batch", flush=True)
    return [Result(name, "tok/s", round(spec, 2), round(plain, 2), goal),
            Result(f"{name}_replayed", "x plain", round(m["plain"] / m["spec"], 3) if m["spec"] else 1.0, 1.0, goal),
            Result(f"{name}_acceptance", "accepted/drafted", round(rate, 3), 1.0, ">=0.0"),
            Result(f"{name}_accepted_per_batch", "tokens", round(m["mean_accepted"], 3), float(speculate.MAX_DRAFT),
                   ">=0.0")]


def replay(context: list[int], answer: list[int], cost: speculate.CostModel) -> dict:
    """The loop's drafting decisions on a known answer (greedy: the same tokens either way), with fixed verify
    costs instead of timings: what the answer costs in one-token steps, free of the machine's noise."""
    spec = speculate.Speculator(context, cost)
    spent, batches, i = 0.0, 0, 1
    if answer:
        spec.append(answer[0])  # the first token comes from the prompt's logits
    while i < len(answer):
        draft, n = spec.plan(len(answer) - i - 1)
        spent += cost.cost(1 + len(draft))
        kept = 0
        while kept < len(draft) and answer[i + kept] == draft[kept]:
            kept += 1
        if draft:
            spec.settle(n, len(draft), kept)
            batches += 1
        for t in answer[i:i + kept + 1]:
            spec.append(t)
        i += kept + 1
    return {"plain": max(0, len(answer) - 1), "spec": spent, "batches": batches, "drafted": spec.drafted,
            "accepted": spec.accepted, "mean_accepted": spec.accepted / batches if batches else 0.0,
            "costs": {k: round(v, 2) for k, v in cost.prior.items()}}


def _verify_seconds(session: ModelSession, sizes=VERIFY_SIZES) -> dict[int, float]:
    """Best-of seconds of one llama_decode of n consecutive tokens of one sequence, after a short prompt."""
    prompt = session.tokenize(core.LONG_TEXT[:400], add_bos=session.adds_bos)
    session.clear()
    session.prepare(prompt)
    n0 = len(session.tokens)
    filler = session.tokenize(core.LONG_TEXT[400:800])[:max(sizes)]
    best = {n: float("inf") for n in sizes}
    for _ in range(VERIFY_REPEATS):
        for n in sizes:  # interleaved: a disturbance hits every size alike
            session.rewind(n0)
            start = time.perf_counter()
            session.verify(filler[:n])
            best[n] = min(best[n], time.perf_counter() - start)
    session.clear()
    return best


def bench_verify_cost() -> list[Result]:
    """Seconds to verify n tokens in one batch against one token: the cost every draft is weighed against."""
    seconds = _verify_seconds(core.engine().session)
    return [Result(f"verify_cost_{n}", "s", round(seconds[n], 5), round(seconds[1], 5), f"<={n}")
            for n in VERIFY_SIZES if n > 1]


def _ceiling(session: ModelSession) -> float:
    """The best ratio drafts of the exact length allow here: every draft accepted."""
    seconds = _verify_seconds(session, (1, speculate.EXACT_BATCH))
    return speculate.EXACT_BATCH * seconds[1] / seconds[speculate.EXACT_BATCH]


def bench_spec_documents() -> list[Result]:
    e = documents_engine()
    ceiling = _ceiling(e.session)
    options = AskOptions(max_tokens=ANSWER_TOKENS, sampling=core.GREEDY, thinking=ThinkingRequest(0),
                         collection="register")
    results = _results("spec_documents", _pair(e, QUESTIONS, options, speculate.PRIOR_COST), ">=1.3")
    print(f"spec_documents ceiling (every draft of {speculate.MAX_DRAFT} accepted, measured verify cost): "
          f"{ceiling:.2f}", flush=True)
    return [*results, Result("spec_documents_ceiling", "x plain", round(ceiling, 3), 1.0, ">=0.0")]


def bench_spec_prose() -> list[Result]:
    options = AskOptions(max_tokens=ANSWER_TOKENS, sampling=core.GREEDY, thinking=ThinkingRequest(0))
    return _results("spec_prose", _pair(core.engine(), (ESSAY,), options, speculate.PRIOR_COST), ">=0.97")


def _agreement(target: Engine, draft: ModelSession, question: str) -> float:
    """How often the draft model's greedy token equals the target's along the target's own answer."""
    options = AskOptions(max_tokens=ANSWER_TOKENS, sampling=core.GREEDY, thinking=ThinkingRequest(0),
                         speculate=False)
    target.session.clear()
    target.ask(question, options=options)
    stream = list(target.session.tokens)
    prompt_len = len(target.prepare_prompt(question, [], options).tokens)
    draft.clear()
    draft.prepare(stream[:prompt_len])
    hits = 0
    for token in stream[prompt_len:]:
        hits += int(np.argmax(draft.logits())) == token
        draft.evaluate([token])
    return hits / max(1, len(stream) - prompt_len)


def _load_draft(target: Engine, is_forced: bool):
    try:
        return target.load_draft(QWEN_CODER_05B.name, is_forced)
    except ModelError as e:
        raise PonderError(f"spec_draft drafts with Qwen2.5-Coder 0.5B ({e.message}): run it on the default model "
                          "(Qwen2.5-Coder 1.5B).") from None


def bench_spec_draft() -> list[Result]:
    """Qwen2.5-Coder 0.5B drafting for the 1.5B. First the engine's own decision from the costs it measures (where
    it cannot pay it does not load the draft, and answers decode as without it: `spec_draft` is that speed against
    plain decoding). Then the draft forced on, interleaved with plain decoding of the same questions: what drafting
    would give here, its acceptance and tokens accepted per verify batch, and the 0.5B's measured cost per token
    and greedy agreement with the 1.5B, from which the cost model's expected gain and the dearest draft token that
    would pay."""
    target = core.engine()
    options = AskOptions(max_tokens=ANSWER_TOKENS, sampling=core.GREEDY, thinking=ThinkingRequest(0))
    decision = _load_draft(target, False)
    print(f"spec_draft decision: {decision.reason}", flush=True)
    decided = _pair(target, DRAFT_QUESTIONS, options)
    forced = _load_draft(target, True)
    draft = target.draft
    try:
        before = (draft.batches, draft.drafted_total, draft.accepted_total)
        t = _pair(target, DRAFT_QUESTIONS, options)
        batches, drafted, accepted = (now - then for now, then in
                                      zip((draft.batches, draft.drafted_total, draft.accepted_total), before))
        rate = float(np.mean([_agreement(target, draft.session, q) for q in DRAFT_QUESTIONS]))
        draft_cost, costs = draft.draft_cost, draft.cost
    finally:
        target.unload_draft()
    k, gain = speculate.draft_model_plan(rate, draft_cost, costs)
    need = speculate.draft_cost_to_pay(rate, costs)
    acceptance, per_batch = accepted / max(1, drafted), accepted / max(1, batches)
    print(f"spec_draft forced: draft token costs {draft_cost:.2f} of a target token in the loop "
          f"({forced.draft_cost:.2f} timed at load; verify costs {forced.verify_costs}), greedy agreement {rate:.2f}; {drafted} drafted, {accepted} accepted "
          f"({acceptance:.2f}), {per_batch:.2f} per verify batch; the cost model expects {gain:.2f}x at draft length "
          f"{k or 'none'}; it would pay with a draft token under {need:.2f} of a target token", flush=True)
    return [Result("spec_draft", "tok/s", _speed(decided, "spec_s"), _speed(decided, "plain_s"), ">=0.97"),
            Result("spec_draft_drafts", "0 off, 1 on", float(decision.is_on), 1.0, ">=0.0"),
            Result("spec_draft_forced", "tok/s", _speed(t, "spec_s"), _speed(t, "plain_s"), ">=0.0"),
            Result("spec_draft_forced_acceptance", "accepted/drafted", round(acceptance, 3), 1.0, ">=0.0"),
            Result("spec_draft_forced_accepted_per_batch", "tokens", round(per_batch, 3),
                   float(speculate.MAX_DRAFT), ">=0.0"),
            Result("spec_draft_cost", "draft/target token", round(draft_cost, 3), 1.0, ">=0.0"),
            Result("spec_draft_agreement", "greedy agreement", round(rate, 3), 1.0, ">=0.0"),
            Result("spec_draft_expected_gain", "x plain", round(gain, 3), 1.0, ">=0.0"),
            Result("spec_draft_cost_needed", "draft/target token", round(need, 3), 1.0, ">=0.0")]


def _speed(t: dict, key: str) -> float:
    return round(t["tokens"] / t[key], 2) if t[key] else 0.0
