"""Reading a long prompt on the real engine (Gemma 3 270M): progress as it goes, a stop within one chunk, and
nothing read twice after a stop."""
from __future__ import annotations

import pytest

from engine import AskOptions, Engine, LoadSettings, Progress, SamplingSettings, Token
from engine.runtime.session import PREFILL_CHUNK

GREEDY = AskOptions(max_tokens=4, sampling=SamplingSettings(temperature=0))
LONG = ("Lighthouse keepers once trimmed wicks every night, polished lenses every morning and logged the weather "
        "for the coast guard. ") * 22 + "What did lighthouse keepers polish?"


@pytest.fixture(scope="module")
def engine(gemma_model):
    """Its own engine on one thread: these tests count chunks, not seconds, and one thread keeps them quick on
    a machine whose cores are busy with other work (two threads then wait on each other at every step)."""
    e = Engine()
    e.load(gemma_model, LoadSettings(n_ctx=2048, n_threads=1))
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
    first_token = next(i for i, e in enumerate(events) if isinstance(e, Token))
    assert events.index(reading[-1]) < first_token  # all of it before the answer


def test_a_short_prompt_reports_no_progress(engine):
    events = []
    engine.ask("What is the capital of Italy?", options=GREEDY, on_event=events.append)
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
