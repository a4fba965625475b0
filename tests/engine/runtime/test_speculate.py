"""Prompt-lookup drafting, the cost model and the speculative-sampling rule, on scripted tokens and distributions."""
from __future__ import annotations

import numpy as np
import pytest

from engine.runtime.speculate import (MAX_DRAFT, CostModel, Drafter, Speculator, choose_length, draft_cost_to_pay,
                                      draft_model_plan, expected_tokens, speculative_accept)


def test_drafter_proposes_what_followed_the_longest_latest_match():
    d = Drafter([5, 6, 7, 8, 9, 1, 6, 7, 2])
    d.append(6)
    d.append(7)  # ... 6 7 was followed by 8 first, then by 2: the latest wins
    assert d.propose(2) == ([2, 6], 2)
    d.append(8)  # 6 7 8 stands once, earlier
    assert d.propose(3) == ([9, 1, 6], 3)


def test_drafter_prefers_the_longer_ngram():
    d = Drafter([1, 2, 3, 4, 9, 3, 5])
    d.append(2)
    d.append(3)  # "3" alone was last followed by 5, "2 3" by 4
    assert d.propose(1) == ([4], 2)


def test_drafter_with_no_match_proposes_nothing():
    d = Drafter([1, 2, 3])
    d.append(4)
    assert d.propose(2) == ([], 0)
    assert Drafter([]).propose(2) == ([], 0)


def test_expected_tokens_is_a_geometric_sum():
    assert expected_tokens(0.0, 2) == 1.0
    assert expected_tokens(1.0, 2) == 3.0
    assert expected_tokens(0.5, 2) == pytest.approx(1.75)


def test_choose_length_drafts_only_where_it_pays():
    cost = CostModel({1: 1.0, 2: 1.9, 3: 2.3})
    assert choose_length(0.3, cost, MAX_DRAFT) == 0  # prose: 1.39 tokens for 2.3 of cost
    assert choose_length(0.95, cost, MAX_DRAFT) == 2  # a quote: 2.85 tokens for 2.3
    assert choose_length(0.95, cost, 0) == 0  # no room left
    assert choose_length(0.9, CostModel({1: 1.0, 2: 1.02, 3: 1.05}), MAX_DRAFT) == 2  # a GPU: cheap batches


def test_cost_model_uses_measured_seconds_and_keeps_one_spike_in_bounds():
    cost = CostModel({1: 1.0, 2: 1.9, 3: 2.3})
    assert cost.cost(3) == 2.3  # nothing measured: the prior
    cost.observe(1, 0.1)
    cost.observe(3, 0.15)
    assert cost.cost(3) == pytest.approx(1.5)
    cost.observe(3, 10.0)  # a disturbed timing
    assert cost.cost(3) <= 4.6


def test_speculator_stays_off_in_prose_and_turns_on_for_a_quote():
    quote = list(range(100, 160))
    s = Speculator([1, 2, 3, *quote, 4])
    for t in (7, 8, 9, 10, 11):  # prose: nothing matches
        s.append(t)
        assert s.plan(MAX_DRAFT) == ([], 0)
    drafts = []
    for t in quote[:20]:  # the answer starts quoting: the shadow drafts are right, so real drafts follow
        s.append(t)
        drafts.append(s.plan(MAX_DRAFT)[0])
    assert drafts[0] == [] and drafts[-1] == quote[20:22]


def test_speculator_backs_off_after_misses():
    s = Speculator([1, 2, 3, 4, 5, 6] * 10)
    s.append(1)
    for _ in range(20):
        draft, n = s.plan(MAX_DRAFT)
        if draft:
            s.settle(n, len(draft), 0)  # every draft rejected
    assert s.plan(MAX_DRAFT) == ([], 0)


def test_a_draft_model_at_0_6_of_the_target_cannot_pay_on_two_cores():
    cost = CostModel({1: 1.0, 2: 1.9, 3: 2.3})
    assert draft_model_plan(0.8, 0.6, cost)[0] == 0
    need = draft_cost_to_pay(0.8, cost)
    assert 0 <= need < 0.6
    assert draft_model_plan(0.8, need * 0.9, cost)[0] > 0 if need > 0 else True
    gpu = CostModel({1: 1.0, 2: 1.02, 3: 1.04})
    assert draft_model_plan(0.8, 0.1, gpu)[0] == 2  # cheap batches and a cheap draft: it pays


SCRIPTED = np.array([0.5, 0.2, 0.15, 0.1, 0.05])


@pytest.mark.parametrize("draft", [0, 3])
def test_acceptance_rule_keeps_the_distribution_for_a_deterministic_draft(draft):
    rng = np.random.default_rng(13)
    n = 20_000
    counts = np.zeros(len(SCRIPTED))
    kept = 0
    for _ in range(n):
        token, accepted = speculative_accept(SCRIPTED, draft, rng)
        counts[token] += 1
        kept += accepted
    assert kept / n == pytest.approx(SCRIPTED[draft], abs=0.015)  # accepted with probability p(draft)
    assert np.abs(counts / n - SCRIPTED).max() < 0.015


def test_acceptance_rule_keeps_the_distribution_for_a_draft_model():
    rng = np.random.default_rng(7)
    q = np.array([0.1, 0.6, 0.1, 0.1, 0.1])
    n = 20_000
    counts = np.zeros(len(SCRIPTED))
    for _ in range(n):
        draft = int(rng.choice(len(q), p=q))  # the draft model samples from q
        token, _ = speculative_accept(SCRIPTED, draft, rng, q)
        counts[token] += 1
    assert np.abs(counts / n - SCRIPTED).max() < 0.015


def test_sample_and_compare_is_the_same_rule_for_a_deterministic_draft():
    """The token loop samples x ~ p with the model's sampler and keeps the draft when x equals it: the same
    acceptance probability and the same residual as speculative_accept with q = 1 on the draft."""
    rng = np.random.default_rng(3)
    draft, n = 1, 20_000
    rule = np.zeros(len(SCRIPTED))
    compare = np.zeros(len(SCRIPTED))
    for _ in range(n):
        rule[speculative_accept(SCRIPTED, draft, rng)[0]] += 1
        compare[int(rng.choice(len(SCRIPTED), p=SCRIPTED))] += 1
    assert np.abs(rule / n - compare / n).max() < 0.02
