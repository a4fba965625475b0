"""The token loop's bookkeeping with drafts, on a scripted model: every stop lands on the same token, the cache ends
as one-at-a-time decoding leaves it, and no verify batch is longer than the exact length. (A script, because the
cases — an end of turn inside a draft, a full context at a draft — must happen on cue; test_speculative_generation
checks the same on real models.)"""
from __future__ import annotations

import random

import pytest

from engine.runtime import speculate
from engine.runtime.loop import GenerationSettings, SamplingSettings, generate

EOG = 0
WORDS = {i: f" w{i}".encode() for i in range(1, 200)}


class ScriptedSession:
    """A 'model' whose next token is script[i] for the i-th answer token, whatever the prompt."""

    def __init__(self, script: list[int], n_ctx: int = 512) -> None:
        self.script, self.n_ctx = script, n_ctx
        self.n_vocab, self.n_batch = 256, 64
        self.tokens: list[int] = []
        self.batches: list[int] = []
        self._base = 0
        self._rows: list[int] = []  # the token each row of the last batch predicts

    def prepare(self, prompt, is_cancelled=None, on_read=None) -> int:
        self.tokens = []
        self._base = len(prompt)
        self.evaluate(list(prompt))
        return 0

    def _predict(self, length: int) -> int:
        i = length - self._base
        return self.script[i] if 0 <= i < len(self.script) else EOG

    def evaluate(self, tokens, is_cancelled=None) -> None:
        assert len(self.tokens) + len(tokens) <= self.n_ctx
        self.tokens.extend(tokens)
        self.batches.append(len(tokens))
        self._rows = [self._predict(len(self.tokens))]

    def verify(self, tokens) -> None:
        assert len(self.tokens) + len(tokens) <= self.n_ctx
        start = len(self.tokens)
        self.tokens.extend(tokens)
        self.batches.append(len(tokens))
        self._rows = [self._predict(start + i + 1) for i in range(len(tokens))]

    def sample(self, sampler) -> int:
        return self._rows[-1]

    def sample_at(self, sampler, i: int) -> int:
        return self._rows[i]

    def rewind(self, n: int) -> bool:
        del self.tokens[n:]
        return True

    can_roll_back = True

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def piece(self, token: int) -> bytes:
        return WORDS.get(token, b"")

    def forbid_end(self) -> None:
        pass

    def new_sampler(self):
        from llama_cpp import _internals

        return _internals.LlamaSampler()


PROMPT = [150, 151, *range(10, 40), EOG, 152]
COPY = [7, 8, *range(10, 30), 9, 10, 11, 12, 13, 5, 6]  # quotes the prompt, leaves it, quotes it again


@pytest.fixture
def always_draft(monkeypatch):
    monkeypatch.setattr(speculate, "choose_length", lambda rate, cost, limit: min(limit, speculate.MAX_DRAFT))


def run(script, speculate_on, **settings):
    session = ScriptedSession(script, settings.pop("n_ctx", 512))
    texts = []
    cancel_after = settings.pop("cancel_after", None)
    cancelled = (lambda: len(texts) >= cancel_after) if cancel_after else None
    g = generate(session, PROMPT, GenerationSettings(sampling=SamplingSettings(temperature=0, repeat_penalty=1.0),
                                                     speculate=speculate_on, **settings),
                 on_text=texts.append, is_cancelled=cancelled)
    return g, session, texts


def same(script, **settings):
    plain, s0, t0 = run(script, False, **dict(settings))
    drafted, s1, t1 = run(script, True, **dict(settings))
    assert (drafted.text, drafted.stop_reason, drafted.n_tokens) == (plain.text, plain.stop_reason, plain.n_tokens)
    assert s1.tokens == s0.tokens  # the cache as one-at-a-time decoding leaves it
    assert t1 == t0  # one event per token, in order
    assert max(s1.batches[1:], default=1) <= speculate.EXACT_BATCH
    return plain, drafted, s1


def test_a_quote_is_drafted_and_the_answer_unchanged(always_draft):
    plain, drafted, session = same(COPY + [EOG], max_tokens=100)
    assert plain.stop_reason == "eos" and drafted.accepted > 10 and drafted.drafted >= drafted.accepted
    assert len(session.batches) - 1 < plain.n_tokens  # fewer decode calls than tokens


@pytest.mark.parametrize("max_tokens", range(1, 9))
def test_max_tokens(always_draft, max_tokens):
    plain, _, _ = same(COPY + [EOG], max_tokens=max_tokens)
    assert plain.n_tokens == max_tokens and plain.stop_reason == "length"


def test_end_of_turn_inside_a_draft(always_draft):
    """The prompt holds 38 39 EOG: a draft after 38 proposes 39 and the end of turn."""
    plain, drafted, _ = same([5, 37, 38, 39, EOG, 12, 13], max_tokens=50)
    assert plain.stop_reason == "eos" and plain.n_tokens == 4


def test_end_of_turn_the_draft_did_not_expect(always_draft):
    plain, _, _ = same([10, 11, 12, EOG], max_tokens=50)
    assert plain.stop_reason == "eos" and plain.n_tokens == 3


@pytest.mark.parametrize("stop", [" w14", " w15 w16", " w29 w9"])
def test_stop_string_inside_a_draft(always_draft, stop):
    plain, _, _ = same(COPY + [EOG], max_tokens=100, stop=(stop,))
    assert plain.stop_reason == "stop" and stop not in plain.text


@pytest.mark.parametrize("n_ctx", [len(PROMPT) + k for k in range(1, 8)])
def test_full_context_inside_a_draft(always_draft, n_ctx):
    plain, _, _ = same(COPY + [EOG], max_tokens=100, n_ctx=n_ctx)
    assert plain.stop_reason == "context"


@pytest.mark.parametrize("after", [1, 2, 3, 5, 8])
def test_cancel_stops_within_one_verify_batch(always_draft, after):
    drafted, _, texts = run(COPY + [EOG], True, max_tokens=100, cancel_after=after)
    assert drafted.stop_reason == "cancelled" and after <= len(texts) <= after + speculate.MAX_DRAFT


@pytest.fixture
def prior_costs(monkeypatch):
    """Verify costs stay at their priors: a scripted model's batches take microseconds, and timing them would make
    the drafting decision depend on the machine's load."""
    monkeypatch.setattr(speculate.CostModel, "observe", lambda self, size, seconds: None)


def test_without_forcing_prose_never_drafts(prior_costs):
    """Words that recur in no particular order: short n-grams match, and what they propose is wrong."""
    rng = random.Random(0)
    plain, drafted, session = same([rng.randrange(160, 180) for _ in range(120)] + [EOG], max_tokens=200)
    assert drafted.drafted == 0 and max(session.batches[1:]) == 1


def test_without_forcing_a_repeated_passage_turns_drafting_on(prior_costs):
    plain, drafted, _ = same([160 + i % 30 for i in range(90)] + [EOG], max_tokens=200)
    assert drafted.drafted > 20 and drafted.accepted / drafted.drafted > 0.9
