"""The real engine on Gemma 3 270M: determinism, streaming, cancel, KV reuse, context overflow."""
from __future__ import annotations

import pytest

from engine import (AskOptions, ConversationStarted, Engine, GenerationError, LoadSettings, SamplingSettings,
                    ThinkingRequest, Token)

GREEDY = AskOptions(max_tokens=24, sampling=SamplingSettings(temperature=0, seed=7))


def test_answers_the_capital_of_france(engine):
    answer = engine.ask("What is the capital of France?", options=GREEDY)
    assert answer.text.startswith("Paris")
    assert answer.stop_reason in ("stop", "eos")
    assert answer.model == "Gemma 3 270m" and answer.backend == "CPU"


def test_deterministic_at_temperature_zero(engine):
    q = "Name three colours of the rainbow."
    assert engine.ask(q, options=GREEDY).text == engine.ask(q, options=GREEDY).text


def test_same_seed_same_sample(engine):
    opts = AskOptions(max_tokens=20, sampling=SamplingSettings(temperature=1.0, seed=1234))
    q = "Write a word that rhymes with cat."
    assert engine.ask(q, options=opts).text == engine.ask(q, options=opts).text


def test_streamed_tokens_add_up_to_the_answer_in_order(engine):
    events = []
    answer = engine.ask("Why is the sky blue?", options=AskOptions(max_tokens=40, sampling=SamplingSettings(
        temperature=0)), on_event=events.append)
    tokens = [e for e in events if isinstance(e, Token)]
    assert len(tokens) >= 2
    assert "".join(t.text for t in tokens).strip() == answer.text
    assert all(t.kind == "answer" for t in tokens)


def test_cancel_takes_effect_within_one_token(engine):
    seen = []
    answer = engine.ask("Tell me a long story about a dragon.",
                        options=AskOptions(max_tokens=200, sampling=SamplingSettings(temperature=0.8, seed=1),
                                           prompt_format="completion"),
                        on_event=seen.append, is_cancelled=lambda: len(seen) >= 3)
    assert answer.stop_reason == "cancelled"
    assert answer.usage.answer_tokens <= 4
    stored = engine.history.messages(answer.conversation_id)[-1]
    assert stored.state == "cancelled" and stored.content == answer.text


def test_a_stop_before_the_first_token_is_a_stopped_answer(engine):
    """One way to report a stop: even while the prompt is evaluated, the answer returns marked cancelled."""
    events = []
    answer = engine.ask("Describe, in a sentence never asked before, the colour of a heron's egg.", options=GREEDY,
                        on_event=events.append, is_cancelled=lambda: True)
    assert answer.stop_reason == "cancelled" and answer.text == "" and answer.usage.answer_tokens == 0
    assert events == [ConversationStarted(answer.conversation_id)]  # announced, then nothing streamed
    assert [m.state for m in engine.history.messages(answer.conversation_id)] == ["complete", "cancelled"]


def test_second_turn_evaluates_only_new_tokens(engine):
    first = engine.ask("What is the capital of France?", options=GREEDY)
    second = engine.ask("What is the capital of Spain?", conversation_id=first.conversation_id, options=GREEDY)
    new_tokens = second.usage.prompt_tokens - first.usage.prompt_tokens - first.usage.answer_tokens
    assert second.usage.reused_tokens >= first.usage.prompt_tokens
    # The re-tokenized end of the first answer may differ by a token or two from what was sampled.
    assert second.usage.evaluated_tokens <= new_tokens + 3
    assert engine.session.evaluated > 0


def test_long_conversation_drops_oldest_turns_instead_of_failing(gemma_model):
    engine = Engine()
    engine.load(gemma_model, LoadSettings(n_ctx=256))
    opts = AskOptions(max_tokens=16, sampling=SamplingSettings(temperature=0))
    conversation = None
    for i in range(12):
        answer = engine.ask(f"Question number {i}: what is {i} plus {i}? Please answer with a number.",
                            conversation_id=conversation, options=opts)
        conversation = answer.conversation_id
    assert answer.usage.dropped_turns > 0
    assert answer.usage.prompt_tokens + 16 <= 256
    engine.unload()


def test_question_longer_than_the_context_is_a_clear_error(gemma_model):
    engine = Engine()
    engine.load(gemma_model, LoadSettings(n_ctx=128))
    with pytest.raises(GenerationError, match="too long"):
        engine.ask("word " * 400, options=GREEDY)
    engine.unload()


def test_answer_stops_when_context_is_full(tiny_model):
    # Greedy decoding of random weights loops on ordinary tokens for some prompts, into the end of the context.
    engine = Engine()
    engine.load(tiny_model, LoadSettings(n_ctx=128))
    reasons = []
    for question in ("hello", "a b c", "what"):
        answer = engine.ask(question, options=AskOptions(
            max_tokens=500, sampling=SamplingSettings(temperature=0, repeat_penalty=1.0), thinking=ThinkingRequest(0)))
        reasons.append(answer.stop_reason)
        # llama.cpp pads the context to 256; the last sampled token is shown but never needs a cache cell.
        assert answer.usage.prompt_tokens + answer.usage.answer_tokens <= engine.session.n_ctx + 1
        if answer.stop_reason == "context":
            assert answer.usage.prompt_tokens + answer.usage.answer_tokens == engine.session.n_ctx + 1
    assert "context" in reasons and set(reasons) <= {"context", "eos"}
    engine.unload()


def test_tiny_generated_model_with_a_chat_template(tiny_model):
    engine = Engine()
    engine.load(tiny_model, LoadSettings(n_ctx=512))
    answer = engine.ask("hello", options=AskOptions(max_tokens=20, sampling=SamplingSettings(temperature=1.0, seed=2)))
    assert answer.usage.answer_tokens > 0 and answer.stop_reason in ("length", "eos")
    engine.unload()
