"""Speculative decoding on real models: the very same tokens as one-at-a-time decoding, with every draft verified
(the cost model is overruled so that drafts are tried everywhere), and every stop still where it was."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine import AskOptions, SamplingSettings, ThinkingRequest, Token
from engine.rag.library import Library
from engine.runtime import speculate
from tests.engine.runtime import same_answers
from tests.engine.runtime.same_answers import ask_both

GREEDY = SamplingSettings(temperature=0, seed=7)
OFF = ThinkingRequest(0)  # chatml on the base model would otherwise think first (Auto): the answer is what drafts


def chatml(max_tokens: int, sampling: SamplingSettings = GREEDY) -> AskOptions:
    return AskOptions(max_tokens=max_tokens, sampling=sampling, prompt_format="chatml", thinking=OFF)
LIST = ("Repeat this list exactly: apple, banana, cherry, date, elderberry, fig, grape, honeydew, kiwi, lemon, "
        "mango, nectarine, orange, papaya, quince, raspberry.")


@pytest.fixture
def always_draft(monkeypatch):
    """Verify a full draft whenever the prompt or the answer offers one, whatever it costs."""
    monkeypatch.setattr(speculate, "choose_length", lambda rate, cost, limit: min(limit, speculate.MAX_DRAFT))


def assert_same(plain, drafted):
    same_answers.assert_same(plain, drafted)
    assert plain.usage.drafted_tokens == 0


def test_verify_batches_give_the_logits_of_one_at_a_time_decoding(engine):
    """Drafts stop at EXACT_BATCH tokens because longer batches change the logits on the CPU; if a llama.cpp
    update changes that either way, this fails."""
    s = engine.session
    s.clear()
    s.prepare(s.tokenize("The history of the Roman Empire spans many centuries, from the founding of", add_bos=True))
    n0 = len(s.tokens)
    tokens, rows = [], []
    for _ in range(speculate.EXACT_BATCH):
        rows.append(s.logits().copy())
        tokens.append(int(np.argmax(rows[-1])))
        s.evaluate([tokens[-1]])
    rows.append(s.logits().copy())
    s.rewind(n0)
    s.verify(tokens)
    for i in range(len(tokens)):
        assert np.array_equal(s.logits_at(i), rows[i + 1])
    s.clear()


def test_long_greedy_answer_across_the_sliding_window_is_unchanged(engine, always_draft):
    """Gemma 3 attends to 512 tokens in most layers: drafts verified and taken back past that point."""
    options = chatml(560, replace(GREEDY, repeat_penalty=1.0))
    plain, drafted = ask_both(engine, "Write a long essay about the history of Rome.", options)
    assert_same(plain, drafted)
    assert plain.usage.prompt_tokens + plain.usage.answer_tokens > 512 + 64
    assert drafted.usage.drafted_tokens > 50 and 0 < drafted.usage.accepted_tokens < drafted.usage.drafted_tokens


def test_quoting_answer_is_unchanged_and_drafts_are_accepted(engine, always_draft):
    plain, drafted = ask_both(engine, LIST, chatml(60))
    assert_same(plain, drafted)
    assert drafted.usage.accepted_tokens > 0


def test_sampled_answer_with_a_seed_is_unchanged(engine, always_draft):
    """Each position is sampled once, in order, by the same sampler chain: the same seed, the same text."""
    options = chatml(80, SamplingSettings(temperature=0.8, seed=11))
    plain, drafted = ask_both(engine, LIST, options)
    assert_same(plain, drafted)
    assert drafted.usage.drafted_tokens > 0


@pytest.mark.parametrize("max_tokens", [1, 2, 3, 7])
def test_max_tokens_lands_where_it_did(engine, always_draft, max_tokens):
    plain, drafted = ask_both(engine, LIST, chatml(max_tokens))
    assert_same(plain, drafted)
    assert drafted.usage.answer_tokens == max_tokens and drafted.stop_reason == "length"


def test_stop_string_lands_where_it_did(engine, always_draft):
    """The completion format stops at the next "Question:", which the few-shot prompt offers as a draft."""
    options = AskOptions(max_tokens=120, sampling=GREEDY, prompt_format="completion")
    plain, drafted = ask_both(engine, "Name the first five letters of the alphabet.", options)
    assert_same(plain, drafted)
    assert plain.stop_reason == "stop"


def test_end_of_turn_inside_a_draft_ends_the_answer_there(chat_engine, always_draft):
    """The second time a question is asked in a conversation, the first answer and its end-of-turn token are
    in the prompt: the draft carries the end of turn, and the answer still ends exactly there."""
    options = AskOptions(max_tokens=60, sampling=GREEDY, thinking=ThinkingRequest(0))
    question = "In one sentence: what does a compiler do?"
    results = []
    for on in (False, True):
        chat_engine.session.clear()
        first = chat_engine.ask(question, options=replace(options, speculate=on))
        second = chat_engine.ask(question, conversation_id=first.conversation_id,
                                 options=replace(options, speculate=on))
        results.append((first, second, list(chat_engine.session.tokens)))
    (f0, s0, cache0), (f1, s1, cache1) = results
    assert_same(f0, f1)
    assert_same(s0, s1)
    assert cache0 == cache1
    assert s1.stop_reason == "eos" and s1.usage.accepted_tokens > 0


def test_answer_from_documents_is_unchanged(chat_engine, always_draft, tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ships.md").write_text(
        "# Harbour register\n\nThe schooner Maribel Quist was launched in 1887 at Port Adelric and carried "
        "salt cod to Lisbon. The brig Tolliver Anne was launched in 1902 at Granmouth and carried coal.\n")
    chat_engine.library = Library(tmp_path / "index.sqlite3", embedder)
    try:
        chat_engine.library.index("ships", [str(folder)])
        options = AskOptions(max_tokens=60, sampling=GREEDY, thinking=ThinkingRequest(0), collection="ships")
        plain, drafted = ask_both(chat_engine, "Where and when was the Maribel Quist launched, and what did it "
                                               "carry? Quote the register.", options)
    finally:
        chat_engine.library.store.close()  # not close(): that would close the session's shared embedder
        chat_engine.library = None
    assert_same(plain, drafted)
    assert "Maribel Quist" in plain.text and drafted.usage.accepted_tokens > 0


def test_thinking_budget_is_kept_and_the_answer_unchanged(chat_engine, always_draft):
    """The span runs one token at a time under its controller (the close is injected at the budget); drafts
    start with the answer."""
    options = AskOptions(max_tokens=60, sampling=GREEDY, thinking=ThinkingRequest(24))
    plain, drafted = ask_both(chat_engine, "A shop sells pens at 3 dollars each. How much do 7 pens cost?", options)
    assert_same(plain, drafted)
    assert drafted.reasoning == plain.reasoning
    assert drafted.thinking.used == plain.thinking.used <= 24
    assert drafted.thinking.closed_by == plain.thinking.closed_by


def test_cancel_stops_within_one_verify_batch(engine, always_draft):
    seen = []
    answer = engine.ask(LIST, options=replace(chatml(200), speculate=True),
                        on_event=seen.append, is_cancelled=lambda: len(seen) >= 4)
    assert answer.stop_reason == "cancelled"
    assert answer.usage.answer_tokens <= 4 + speculate.EXACT_BATCH


def test_every_accepted_token_is_streamed_in_order(engine, always_draft):
    events = []
    answer = engine.ask(LIST, options=replace(chatml(60), speculate=True),
                        on_event=events.append)
    tokens = [e for e in events if isinstance(e, Token)]
    assert answer.usage.accepted_tokens > 0
    assert len(tokens) >= answer.usage.answer_tokens - 2  # one event per token, but UTF-8 or stop-string holds
    assert "".join(t.text for t in tokens).strip() == answer.text
