"""The thinking-budget eval set: word problems and easy questions, each split into tuning and held-out halves.

The data lives in bench/data/ (see its README for how it was written and the
rule about the held-out half).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

SPLITS = ("tuning", "heldout")


@dataclass(frozen=True, slots=True)
class EvalQuestion:
    """One question. `accept` is empty for numeric answers, which are compared as numbers."""

    id: str
    kind: str  # "word" (a word problem) or "easy"
    question: str
    answer: str
    accept: tuple[str, ...] = ()
    steps: int = 1
    split: str = "tuning"

    @property
    def is_numeric(self) -> bool:
        return not self.accept or self.answer.lstrip("-").isdigit()


def _rows(name: str) -> list[dict]:
    text = resources.files("bench").joinpath("data", name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def word_problems(split: str | None = None) -> list[EvalQuestion]:
    """Grade-school word problems with integer answers, in file order (difficulties interleaved)."""
    return [EvalQuestion(r["id"], "word", r["question"], str(r["answer"]), (), r["steps"], r["split"])
            for r in _rows("word_problems.jsonl") if split in (None, r["split"])]


def easy_questions(split: str | None = None) -> list[EvalQuestion]:
    """One-step facts and sums: numeric and word answers alternate."""
    return [EvalQuestion(r["id"], "easy", r["question"], r["answer"], tuple(r["accept"]), 1, r["split"])
            for r in _rows("easy.jsonl") if split in (None, r["split"])]
