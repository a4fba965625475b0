"""Reading the answer out of a model's text."""
from __future__ import annotations

import pytest

from bench.evalset import EvalQuestion
from bench.scoring import extract_number, is_correct, is_empty

WORD = EvalQuestion("w", "word", "How many?", "1250")
CAPITAL = EvalQuestion("e", "easy", "What is the capital of France?", "Paris", ("paris",))
LEGS = EvalQuestion("n", "easy", "How many legs does a cat have?", "4", ("4", "four"))


@pytest.mark.parametrize("text, number", [
    ("31 apples", 31), ("$1,250", 1250), ("1250.00", 1250), ("It costs $1,250.", 1250),
    ("First 12, then 5 more: 17", 17), ("The answer is 42. Check: 40 + 2 = 42, and 6 * 7 too.", 42),
    ("So the answer is $31, because each one costs 3.", 31), ("Answer: 8", 8), ("**Answer:** 96 minutes", 96),
    ("We get 3 + 4 = \\boxed{7}, as 10 - 3 = 7 too. 99", 7), ("\\boxed{1,250}", 1250),
    ("She has twelve left.", 12), ("forty-two", 42), ("The temperature falls to -3 degrees.", -3),
    ("Paris", None), ("", None),
])
def test_extract_number(text, number):
    assert extract_number(text) == number


def test_numeric_answers():
    assert is_correct(WORD, "The total is $1,250.")
    assert is_correct(WORD, "5 x 250 = 1250")
    assert not is_correct(WORD, "1250 apples minus 5 = 1245")
    assert is_correct(LEGS, "A cat has four legs.") and is_correct(LEGS, "4")
    assert not is_correct(LEGS, "A cat has 4 legs and 1 tail.")  # the last number decides


def test_word_answers_are_whole_words():
    assert is_correct(CAPITAL, "The capital of France is Paris.")
    assert is_correct(CAPITAL, "PARIS!")
    assert not is_correct(CAPITAL, "Parisian cafés are nice.")
    assert not is_correct(CAPITAL, "Lyon")


def test_empty_answers_are_wrong():
    assert is_empty("  \n") and not is_correct(CAPITAL, "") and not is_correct(WORD, " ")
