"""Speculative decoding: decode speed with prompt-lookup drafts against plain decoding of the same prompts in the
same run (greedy, so both write the same tokens), what a verify batch costs, and whether a draft model could pay.

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
from engine import AskOptions, Engine, LoadSettings, PonderError, ThinkingRequest
from engine.models.builtin import QWEN_CODER_05B, ensure_model
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
ANSWER_TOKENS = 120


@functools.cache
def documents_engine() -> Engine:
    e = core.engine()
    folder = Path(tempfile.mkdtemp(prefix="ponder-bench-"))
    (folder / "register.md").write_text(REGISTER)
    e.library = Library(folder / "index.sqlite3")
    e.library.index("register", [str(folder / "register.md")])
    return e


def _pair(e: Engine, questions, options: AskOptions, costs: dict[int, float]) -> dict:
    """Interleaved plain and drafted answers: decode seconds, tokens, drafts; the texts must agree."""
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


def bench_spec_draft() -> list[Result]:
    """Qwen2.5-Coder 0.5B drafting for the 1.5B: measured draft cost, verify cost and agreement decide; where
    no draft length pays, the engine decodes plainly (the value is then the plain speed, measured again)."""
    target = core.engine()
    draft = ModelSession.load(ensure_model(QWEN_CODER_05B), LoadSettings(n_ctx=core.N_CTX))
    if draft.n_vocab != target.session.n_vocab:
        draft.close()
        raise PonderError(f"spec_draft drafts with Qwen2.5-Coder 0.5B, whose vocabulary {target.session.info.name} "
                          "does not share: run it on the default model (Qwen2.5-Coder 1.5B).")
    try:
        measured = _verify_seconds(target.session)
        draft_cost = _verify_seconds(draft, (1,))[1] / measured[1]
        costs = speculate.CostModel({n: s / measured[1] for n, s in measured.items()})
        rate = float(np.mean([_agreement(target, draft, q) for q in (ESSAY, *QUESTIONS[:1])]))
    finally:
        draft.close()
    k, gain = speculate.draft_model_plan(rate, draft_cost, costs)
    need = speculate.draft_cost_to_pay(rate, costs)
    print(f"spec_draft: draft token costs {draft_cost:.2f} of a target token, agreement {rate:.2f}; best draft "
          f"length {k} (expected {gain:.2f}x); it would pay with a draft token under {need:.2f} of a target token",
          flush=True)
    options = AskOptions(max_tokens=ANSWER_TOKENS, sampling=core.GREEDY, thinking=ThinkingRequest(0))
    t = _pair(target, (ESSAY,), options, speculate.PRIOR_COST) if k == 0 else None
    plain = t["tokens"] / t["plain_s"] if t else 0.0
    decided = t["tokens"] / t["spec_s"] if t else 0.0
    return [Result("spec_draft", "tok/s", round(decided, 2), round(plain, 2), ">=0.97"),
            Result("spec_draft_cost", "draft/target token", round(draft_cost, 3), 1.0, ">=0.0"),
            Result("spec_draft_agreement", "greedy agreement", round(rate, 3), 1.0, ">=0.0"),
            Result("spec_draft_expected_gain", "x plain", round(gain, 3), 1.0, ">=0.0"),
            Result("spec_draft_cost_needed", "draft/target token", round(need, 3), 1.0, ">=0.0")]
