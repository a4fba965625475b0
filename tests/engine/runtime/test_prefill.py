"""Reading a long prompt on the real engine: progress as it goes, a stop within one chunk, and nothing read twice
after a stop. On the tiny generated model, since these count chunks, not words: its prompts read in milliseconds
even on cores busy with other work (Gemma 3 270M took minutes there)."""
from __future__ import annotations

import pytest

from engine import AskOptions, Engine, LoadSettings, Progress, SamplingSettings, ThinkingRequest, Token
from engine.runtime.session import PREFILL_CHUNK

GREEDY = AskOptions(max_tokens=4, sampling=SamplingSettings(temperature=0, repeat_penalty=1.0),
                    thinking=ThinkingRequest(0))
LONG = "the capital of France is Paris . " * 16 + "the answer ?"


@pytest.fixture(scope="module")
def engine(tiny_model):
    e = Engine()
    e.load(tiny_model, LoadSettings(n_ctx=2048, n_threads=1))
    yield e
    e.unload()


def test_progress_while_the_prompt_is_read_then_tokens(engine):
    engine.session.clear()
    events = []
    answer = engine.ask(LONG, options=GREEDY, on_event=events.append)
    reading = [e for e in events if isinstance(e, Progress)]
    evaluated = answer.usage.evaluated_tokens
    assert evaluated > 3 * PREFILL_CHUNK
    assert [p.done for p in reading] == list(range(0, evaluated, PREFILL_CHUNK)) + [evaluated]
    assert {p.total for p in reading} == {evaluated} and {p.label for p in reading} == {"Reading the question"}
    assert reading[0].seconds_left is None and all(p.seconds_left is not None for p in reading[1:])
    tokens = [i for i, e in enumerate(events) if isinstance(e, Token)]
    assert all(events.index(reading[-1]) < i for i in tokens)  # all of it before the answer


def test_a_short_prompt_reports_no_progress(engine):
    events = []
    engine.ask("the capital of France ?", options=GREEDY, on_event=events.append)
    assert not any(isinstance(e, Progress) for e in events)


def test_a_stop_while_reading_takes_effect_within_one_chunk_and_keeps_what_was_read(engine):
    engine.session.clear()
    events = []
    stop_at = 2 * PREFILL_CHUNK
    stopped = engine.ask(LONG, options=GREEDY, on_event=events.append,
                         is_cancelled=lambda: any(isinstance(e, Progress) and e.done >= stop_at for e in events))
    assert stopped.stop_reason == "cancelled" and stopped.text == ""
    assert max(e.done for e in events if isinstance(e, Progress)) == stop_at
    assert len(engine.session.tokens) == stop_at  # the chunk under way when Stop came was the last one read
    again = engine.ask(LONG, options=GREEDY)
    assert again.usage.reused_tokens == stop_at  # asking again reads only the rest
    assert again.usage.evaluated_tokens == again.usage.prompt_tokens - stop_at
