"""The batched runtime on real models: each slot answers as the single-sequence engine does (greedy, token for
token, thinking budget included), requests decode together, and a cancelled request frees its slot."""
from __future__ import annotations

import threading

import pytest

from engine import AskOptions, SamplingSettings, ThinkingRequest
from engine.chat.prompt import answer_reserve
from engine.runtime.batch import COPY_GAIN, BatchRuntime, choose_slots, measure_parallel
from engine.runtime.loop import GenerationSettings, generate
from engine.runtime.slot import SlotJob, ThinkingPlan, common_prefix

GREEDY = SamplingSettings(temperature=0.0)
QUESTIONS = ["What is the capital of France?", "Write a story about a dragon.", "Why is the sky blue?"]
SHORT = 10


@pytest.fixture
def runtime(engine):
    rt = BatchRuntime(engine.session, 2)
    yield rt
    rt.close()


def _job(engine, question: str, max_tokens: int = SHORT) -> SlotJob:
    packed = engine.prepare_prompt(question, [], AskOptions(max_tokens=max_tokens, sampling=GREEDY))
    return SlotJob(packed.tokens, GenerationSettings(max_tokens, packed.stop, GREEDY))


def test_a_slot_answers_as_the_single_sequence_loop_does(engine, runtime):
    """Same prompts in the same order: the same cached prefixes are reused, the same tokens come out."""
    engine.session.clear()
    single = []
    for q in QUESTIONS[:2]:
        job = _job(engine, q)
        single.append(generate(engine.session, job.prompt, job.settings))
    for q, expected in zip(QUESTIONS, single):
        result = runtime.run(_job(engine, q))
        assert result.text == expected.text.strip()
        assert (result.answer_tokens, result.reused_tokens) == (expected.n_tokens, expected.reused_tokens)
        assert result.stop_reason == expected.stop_reason


def test_requests_decode_together_and_new_ones_join_between_steps(engine, runtime):
    """Two copies of one prompt start in the same step on the two slots and decode together: the same answer.
    Two more wait in the queue and take the slots as they free up; each ends as its own settings say."""
    jobs = [_job(engine, QUESTIONS[1], 8), _job(engine, QUESTIONS[1], 8), _job(engine, QUESTIONS[0], 8),
            _job(engine, QUESTIONS[2], 3)]
    results: dict[int, object] = {}
    pieces = [[] for _ in jobs]
    all_done = threading.Event()

    def finished(i):
        def done(result):
            results[i] = result
            if len(results) == len(jobs):
                all_done.set()
        return done
    runtime.submit_all([(SlotJob(job.prompt, job.settings, on_piece=lambda k, t, i=i: pieces[i].append(t)),
                         finished(i)) for i, job in enumerate(jobs)])
    assert all_done.wait(1200)
    assert results[0].text == results[1].text and results[0].answer_tokens == 8
    assert results[2].started >= min(results[0].end, results[1].end)  # it waited for a free slot
    assert results[3].answer_tokens <= 3
    for i, r in results.items():
        assert r.text and r.text == "".join(pieces[i]).strip() and r.stop_reason in ("eos", "stop", "length")
    assert runtime.stats().requests == len(jobs) and runtime.stats().active == 0


class _EmptiestSlot(BatchRuntime):
    """Sends each request to the slot that shares the least with it, so the other slot's cache is copied."""

    def _choose(self, free, prompt):
        return min(free, key=lambda s: common_prefix(s.tokens, prompt))


def test_a_slot_takes_the_prompt_start_another_slot_holds_instead_of_reading_it(engine, runtime):
    """The second question goes to the empty slot, which copies the first slot's cached start of it (a memory
    copy of the KV stream) and reads only the rest: the same answer, token for token, as asking it on the slot
    that holds that start."""
    first, second = _job(engine, QUESTIONS[0], 1), _job(engine, QUESTIONS[2], 8)
    shared = next(i for i, (a, b) in enumerate(zip(first.prompt, second.prompt)) if a != b)
    assert shared >= COPY_GAIN  # the few-shot start every question shares
    runtime.run(first)
    in_place = runtime.run(second)  # the slot holding the first prompt: its own cache, no copy
    assert in_place.reused_tokens == shared and runtime.copied == 0
    copying = _EmptiestSlot(engine.session, 2)
    try:
        copying.run(first)
        copied = copying.run(second)
    finally:
        copying.close()
    assert copied.reused_tokens == shared and copying.copied == shared
    assert copied.text == in_place.text and copied.answer_tokens == in_place.answer_tokens


def test_a_request_that_cannot_start_ends_with_its_error_and_frees_the_slot(engine):
    class Failing(BatchRuntime):
        def _share_prefix(self, slot, prompt):
            raise RuntimeError("no room to copy")
    rt = Failing(engine.session, 2)
    try:
        for _ in range(3):  # more requests than slots: each slot is free again after its failure
            result = rt.run(_job(engine, QUESTIONS[0], 4))
            assert (result.stop_reason, result.error) == ("error", "no room to copy")
        assert rt.stats().active == 0
    finally:
        rt.close()


def test_a_cancelled_request_frees_its_slot_at_once(engine):
    rt = BatchRuntime(engine.session, 1)
    try:
        stop = threading.Event()
        seen = []

        def on_piece(_kind, text):
            seen.append(text)
            if len(seen) == 2:
                stop.set()
        long = _job(engine, "Write a very long story about the sea.", 400)
        done = threading.Event()
        out = []
        rt.submit(SlotJob(long.prompt, long.settings, on_piece=on_piece, is_cancelled=stop.is_set),
                  lambda r: (out.append(r), done.set()))
        assert done.wait(300)
        assert out[0].stop_reason == "cancelled" and out[0].answer_tokens <= 3
        after = rt.run(_job(engine, QUESTIONS[0], 4))  # the one slot took the next request
        assert after.text
    finally:
        rt.close()


def test_a_queued_request_whose_client_left_never_runs(engine):
    rt = BatchRuntime(engine.session, 1)
    try:
        first = _job(engine, QUESTIONS[1], 30)
        gate = threading.Event()
        results = []
        rt.submit(SlotJob(first.prompt, first.settings, on_piece=lambda k, t: gate.wait(60)), results.append)
        queued = _job(engine, QUESTIONS[0], 4)
        left = threading.Event()
        rt.submit(SlotJob(queued.prompt, queued.settings, is_cancelled=left.is_set), results.append)
        left.set()
        gate.set()
        rt.run(_job(engine, QUESTIONS[2], 1))
        by_reason = sorted(r.stop_reason for r in results)
        assert "cancelled" in by_reason and [r for r in results if r.stop_reason == "cancelled"][0].answer_tokens == 0
    finally:
        rt.close()


def test_slots_are_chosen_from_the_measurement():
    # the ceilings on 2 cores: the 0.5B gains up to 8 sequences, the 1.5B peaks at 4
    assert choose_slots({1: 46.0, 2: 45.1, 4: 68.1, 8: 81.0}) == 8
    assert choose_slots({1: 18.0, 2: 20.7, 4: 24.5, 8: 17.8}) == 4
    assert choose_slots({1: 30.0, 2: 30.5, 4: 29.0}) == 1  # within 5%: one slot, each client at full speed


def test_measuring_batching_gives_every_candidate_a_rate(engine):
    rates = measure_parallel(engine.session, (1, 2, 4), steps=2, rounds=2)
    assert list(rates) == [1, 2, 4] and all(rate > 0 for rate in rates.values())


@pytest.mark.slow
@pytest.mark.parametrize("budget", [0, 10])
def test_a_slots_thinking_budget_is_the_engines(chat_engine, budget):
    """A fixed budget on the 0.5B chat model (scaffolded thinking): the same reasoning, answer and count."""
    question = "A shop sells pens at 3 dollars each. How much do 7 pens cost?"
    options = AskOptions(max_tokens=12, sampling=GREEDY, thinking=ThinkingRequest(budget))
    chat_engine.session.clear()
    prepared = chat_engine._prepare(question, [], options, cites=False)
    answer = chat_engine.ask(question, options=options)
    n_ctx = chat_engine.session.n_ctx
    tokens = prepared.packed.tokens
    plan = ThinkingPlan(prepared.support.format, prepared.request, question,
                        n_ctx - len(tokens) - answer_reserve(12, n_ctx), GREEDY) if prepared.parts.thinking else None
    settings = GenerationSettings(12, prepared.packed.stop, GREEDY, (), prepared.support.format.result_line)
    rt = BatchRuntime(chat_engine.session, 2)
    try:
        result = rt.run(SlotJob(tokens, settings, plan))
    finally:
        rt.close()
    assert (result.text, result.reasoning) == (answer.text, answer.reasoning)
    assert result.thinking_tokens == answer.thinking.used <= budget
    assert result.closed_by == answer.thinking.closed_by
