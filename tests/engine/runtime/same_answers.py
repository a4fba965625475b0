"""Asking one question with and without drafts (prompt lookup or a draft model) and comparing the answers."""
from __future__ import annotations

from dataclasses import replace


def ask_both(engine, question, options, **kw):
    """The same question with and without drafts, each from an empty cache; returns (plain, drafted) answers
    and checks that the caches they left end alike."""
    answers, caches = [], []
    for on in (False, True):
        engine.session.clear()
        answers.append(engine.ask(question, options=replace(options, speculate=on), **kw))
        caches.append(list(engine.session.tokens))
    assert caches[0] == caches[1]
    return answers


def assert_same(plain, drafted):
    assert drafted.text == plain.text
    assert drafted.stop_reason == plain.stop_reason
    assert drafted.usage.answer_tokens == plain.usage.answer_tokens
