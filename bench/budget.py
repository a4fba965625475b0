"""The reasoning budget: controller overhead, overshoot and the cost of a forced close.

Runs on the default model (scaffold format) and on a small `<think>` model this
bench writes itself, whose random weights open and close spans at random. What budgets buy on
real questions is bench/sweep.py.
"""
from __future__ import annotations

import functools
import random
import tempfile
from pathlib import Path

from bench import core
from bench.runner import Result
from bench.synthetic import write_tiny_model
from engine import AskOptions, Engine, LoadSettings, SamplingSettings, ThinkingRequest
from engine.budget.driver import ThinkingRun
from engine.budget.formats import THINK_TAGS, ThinkingFormat, ThinkingSupport
from engine.runtime.loop import GenerationSettings, generate

OVERHEAD_TOKENS = 128
NEVER_CLOSES = ThinkingFormat("bench", end="\x00never\x00")  # the same token stream as plain generation


@functools.cache
def think_engine() -> Engine:
    folder = Path(tempfile.mkdtemp(prefix="ponder-bench-"))
    e = Engine()
    e.load(write_tiny_model(folder / "think.gguf"), LoadSettings(n_ctx=1024))
    return e


def bench_budget_overhead() -> list[Result]:
    """Thinking tokens/s with the controller in the loop vs plain decoding of the very same tokens."""
    e = core.engine()
    session = e.session
    question = "Write a long essay about the history of Rome."
    prompt = e.prepare_prompt(question, [], core.RAMBLE).tokens
    best_plain = best_controlled = 0.0
    for _ in range(core.REPEATS):
        session.clear()
        plain = generate(session, prompt, GenerationSettings(OVERHEAD_TOKENS, (), core.GREEDY))
        best_plain = max(best_plain, plain.decode_tok_s)
        session.clear()
        run = ThinkingRun(session, ThinkingSupport(NEVER_CLOSES), ThinkingRequest(OVERHEAD_TOKENS), question,
                          core.GREEDY, room=session.n_ctx)
        generate(session, prompt, GenerationSettings(1, (), core.GREEDY), before_answer=run)
        used = run.controller.used
        if used > 1 and run.last_sampled > run.first_sampled:
            best_controlled = max(best_controlled, (used - 1) / (run.last_sampled - run.first_sampled))
    return [Result("budget_overhead", "tok/s", round(best_controlled, 2), round(best_plain, 2), ">=0.98")]


def bench_budget_overshoot() -> list[Result]:
    """Over 100 random budgets on a model that emits delimiters at random: tokens thought past the budget."""
    e = think_engine()
    rng = random.Random(7)
    overshoot = total = 0
    for i in range(100):
        budget = rng.randint(0, 300)
        answer = e.ask("think", options=AskOptions(max_tokens=4, sampling=SamplingSettings(temperature=1.0, seed=i),
                                                   thinking=ThinkingRequest(budget, min_think=rng.choice([0, 0, 20]))))
        overshoot += max(0, answer.thinking.used - budget)
        total += budget
    return [Result("budget_overshoot", "tokens", overshoot, total, "<=0")]


def bench_budget_close_cost() -> list[Result]:
    """Tokens evaluated when the budget closes a span vs the tokens injected: nothing before is redone."""
    e = think_engine()
    injected = len(e.session.tokenize(THINK_TAGS.close))
    for seed in range(50):
        answer = e.ask("think", options=AskOptions(max_tokens=4, sampling=SamplingSettings(temperature=1.0, seed=seed),
                                                   thinking=ThinkingRequest(24)))
        if answer.thinking.closed_by == "budget":
            return [Result("budget_close_cost", "tokens", answer.thinking.close_tokens, injected, "<=1.0")]
    raise RuntimeError("no run reached its budget")
