"""The budget on the real engine: the default model (scaffold) and a generated `<think>` model."""
from __future__ import annotations

import random

import numpy as np
import pytest

from engine import AskOptions, Engine, LoadSettings, SamplingSettings, ThinkingRequest
from engine.budget.driver import PromptParts, prompt_parts
from engine.budget.formats import (FINAL_ANSWER, SCAFFOLD_INSTRUCTION, SCAFFOLD_INSTRUCTION_BRIEF, SCAFFOLD_INSTRUCTION_CITED,
                                   THINK_TAGS, ThinkingSupport, thinking_support)
from engine.runtime.loop import GenerationSettings, generate


@pytest.fixture(scope="module")
def think_engine(tiny_model):
    e = Engine()
    e.load(tiny_model, LoadSettings(n_ctx=1024))
    yield e
    e.unload()


def ask(engine, question, budget, seed=0, **kw):
    return engine.ask(question, options=AskOptions(
        max_tokens=kw.pop("max_tokens", 24), sampling=SamplingSettings(temperature=kw.pop("temperature", 0.8),
                                                                       seed=seed),
        thinking=ThinkingRequest(budget, **kw)))


def test_probe_leaves_the_main_state_unchanged(engine):
    # Longer than Gemma 3's 512-token sliding window, so the rollback crosses it (research: SWA pitfall).
    session = engine.session
    story = "The caravan crossed the desert for many days, trading salt for silk at every oasis. " * 40
    prompt = engine.prepare_prompt(story + "How many legs do two spiders have?", [], AskOptions(
        thinking=ThinkingRequest(64))).tokens
    assert len(prompt) > engine.session.info.sliding_window
    greedy = GenerationSettings(max_tokens=20, sampling=SamplingSettings(temperature=0, repeat_penalty=1.0))
    session.clear()
    session.prepare(prompt)
    tokens_before, logits_before = list(session.tokens), session.logits().copy()
    probe = session.probe("\nAnswer:", 8)
    assert probe.text and probe.cost == len(session.tokenize("\nAnswer:")) + 7
    assert session.tokens == tokens_before
    assert np.array_equal(session.logits(), logits_before)
    with_probe = generate(session, prompt, greedy).text
    session.clear()
    without_probe = generate(session, prompt, greedy).text
    assert with_probe == without_probe


def test_default_model_budget_is_a_hard_cap(engine):
    for budget in (1, 8, 24):
        answer = ask(engine, "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there?", budget,
                     seed=budget)
        t = answer.thinking
        assert t.format == "scaffold" and t.budget == budget
        assert 0 <= answer.usage.thinking_tokens == t.used <= budget
        assert t.closed_by in ("model", "budget")
        if t.closed_by == "budget":
            assert t.used == budget and t.close_tokens == len(engine.session.tokenize("\nAnswer:"))


def test_budget_zero_is_no_thinking_at_all(engine):
    answer = ask(engine, "What is the capital of France?", 0, temperature=0)
    assert answer.reasoning == "" and answer.usage.thinking_tokens == 0 and answer.thinking.closed_by == "off"
    assert answer.text.startswith("Paris")


def test_reasoning_is_stored_apart_from_the_answer(engine):
    answer = ask(engine, "Why do birds fly south in winter?", 16, seed=3)
    stored = engine.history.messages(answer.conversation_id)[-1]
    assert stored.reasoning == answer.reasoning and stored.content == answer.text
    assert stored.meta["thinking"]["used"] == answer.thinking.used


def test_generated_think_model_is_detected(think_engine):
    support = think_engine.thinking_support("template")
    assert support.format is THINK_TAGS and support.opens_in_prompt and not support.has_switch
    assert think_engine.model_info.thinking_format == "think"


def test_random_budgets_never_exceeded_on_a_model_that_emits_delimiters_at_random(think_engine):
    rng = random.Random(11)
    closes = set()
    for i in range(30):
        budget = rng.choice([0, 1, 2, 5, rng.randint(3, 200)])
        answer = ask(think_engine, "think about it", budget, seed=i, min_think=rng.choice([0, 0, 3]))
        t = answer.thinking
        assert t.used <= budget, (budget, t)
        assert answer.usage.thinking_tokens == t.used
        closes.add(t.closed_by)
        if t.closed_by == "budget":
            assert t.close_tokens == len(think_engine.session.tokenize(THINK_TAGS.close))
    assert "budget" in closes


def test_minimum_thinking_extends_with_wait(think_engine):
    seen = 0
    for seed in range(12):
        answer = ask(think_engine, "go", 300, seed=seed, min_think=150, max_extensions=2)
        t = answer.thinking
        assert t.extensions <= 2
        if t.closed_by == "model" and t.extensions < 2:
            assert t.used >= 150
        seen += t.extensions
        assert "Wait" in answer.reasoning or t.extensions == 0
    assert seen > 0  # random weights close early often enough to need "Wait"


def test_auto_reports_its_choice_and_probe_cost(think_engine):
    answer = think_engine.ask("Calculate 17 * 23 and explain why.", options=AskOptions(
        max_tokens=8, sampling=SamplingSettings(temperature=0.8, seed=1), thinking=ThinkingRequest(None)))
    t = answer.thinking
    assert t.auto and "entropy" in t.auto_reason and t.budget > 0
    assert t.used <= t.budget and t.probe_tokens > 0
    assert t.probes == t.used // 64 or t.closed_by in ("early", "model")


def test_auto_is_the_default_for_native_thinking_models(think_engine):
    answer = think_engine.ask("hi", options=AskOptions(max_tokens=4, sampling=SamplingSettings(seed=1)))
    assert answer.thinking.auto


def test_template_switch_turns_thinking_off():
    qwen_like = "{% if enable_thinking is defined and enable_thinking is false %}off{% endif %}<think>"
    support = thinking_support(qwen_like, "template", lambda **kw: "<|im_start|>assistant\n")
    assert support.has_switch and not support.opens_in_prompt
    assert prompt_parts(support, ThinkingRequest(0)) == PromptParts(False, {"enable_thinking": False})
    assert prompt_parts(support, ThinkingRequest(100)) == PromptParts(True, {"enable_thinking": True}, "<think>\n")


def test_no_switch_means_an_empty_span():
    support = ThinkingSupport(THINK_TAGS, has_switch=False, opens_in_prompt=True)
    assert prompt_parts(support, ThinkingRequest(0)).suffix == "\n\n</think>\n\n"


def test_scaffolded_chat_prompts_share_one_instruction_except_auto():
    support = thinking_support("{{ messages }}", "template")
    off, fixed, auto = (prompt_parts(support, ThinkingRequest(b)) for b in (0, 512, None))
    assert off.system_extra == fixed.system_extra == SCAFFOLD_INSTRUCTION
    assert off.suffix == FINAL_ANSWER and fixed.suffix == auto.suffix == ""
    assert auto.system_extra == SCAFFOLD_INSTRUCTION_BRIEF != SCAFFOLD_INSTRUCTION
    cited = prompt_parts(support, ThinkingRequest(None), cites=True)
    assert cited.system_extra == SCAFFOLD_INSTRUCTION_CITED
