"""Scoring a model's answer text against an eval question: pure functions, no model.

Numeric answers: the number in \\boxed{...} if there is one, else the number after
the last "answer is" / "answer:", else the last number in the text ("$1,250",
"1250.00" and "31 apples" all read as numbers); number words ("twelve",
"forty-two") count only when the text has no digits, so "each one" does not
override "31". Word answers: any accepted string, as whole words, in the
lower-cased text with punctuation removed.
"""
from __future__ import annotations

import re

from bench.evalset import EvalQuestion

_DIGITS = r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
WORD_VALUES = {**{w: i for i, w in enumerate(_UNITS)}, **{w: 20 + 10 * i for i, w in enumerate(_TENS)}}
_WORD = rf"\b(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_UNITS[1:10])}))?\b|\b(?:{'|'.join(_UNITS)})\b"
_NUMBER = re.compile(_DIGITS)
_NUMBER_WORD = re.compile(_WORD, re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)\s*(?:about\s+|approximately\s+)?", re.IGNORECASE)


def _clean(text: str) -> str:
    return text.replace("$", "").replace("*", "").replace("\u2212", "-")


def _number_from_word(word: str) -> int:
    parts = re.split(r"[- ]", word.lower())
    return sum(WORD_VALUES[p] for p in parts)


def _first_number(text: str) -> float | None:
    found = _NUMBER.search(text)
    if found:
        return float(found.group().replace(",", ""))
    word = _NUMBER_WORD.match(text.lstrip())
    return float(_number_from_word(word.group())) if word else None


def extract_number(text: str) -> float | None:
    """The number an answer text gives as its answer, or None when it gives none."""
    text = _clean(text)
    boxed = _BOXED.findall(text)
    if boxed and (value := _first_number(boxed[-1])) is not None:
        return value
    stated = list(_ANSWER_IS.finditer(text))
    if stated and (value := _first_number(text[stated[-1].end():])) is not None:
        return value
    numbers = _NUMBER.findall(text)
    if numbers:
        return float(numbers[-1].replace(",", ""))
    words = _NUMBER_WORD.findall(text)
    return float(_number_from_word(words[-1])) if words else None


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def is_empty(text: str) -> bool:
    return not text.strip()


def is_correct(question: EvalQuestion, text: str) -> bool:
    """Whether `text` answers `question` (an empty text never does)."""
    if is_empty(text):
        return False
    if question.is_numeric:
        value = extract_number(text)
        return value is not None and abs(value - float(question.answer)) < 1e-6
    words = f" {normalise(text)} "
    return any(f" {normalise(accepted)} " in words for accepted in question.accept)
