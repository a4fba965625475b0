"""The eval set is sound: every solution computes its answer, ids and questions are unique, the splits are fair."""
from __future__ import annotations

import ast
import collections
import json
import operator
import re
from importlib import resources

import pytest

from bench.evalset import easy_questions, word_problems

OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def arithmetic(node: ast.AST) -> float:
    """Evaluate + - * / on number literals and nothing else (no names, calls or attributes)."""
    if isinstance(node, ast.Expression):
        return arithmetic(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](arithmetic(node.left), arithmetic(node.right))
    raise ValueError(f"not plain arithmetic: {ast.dump(node)}")


def rows(name: str) -> list[dict]:
    text = resources.files("bench").joinpath("data", name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_arithmetic_refuses_anything_else():
    for source in ("__import__('os').system('true')", "len('abc')", "2**8", "x + 1", "[1][0]"):
        with pytest.raises(ValueError):
            arithmetic(ast.parse(source, mode="eval"))
    assert arithmetic(ast.parse("(12 - 7) * 150 - 200", mode="eval")) == 550


def test_every_solution_computes_its_integer_answer():
    problems = rows("word_problems.jsonl")
    assert len(problems) >= 240
    for p in problems:
        assert set(p) == {"id", "question", "answer", "solution", "steps", "split"}, p["id"]
        assert isinstance(p["answer"], int) and p["answer"] > 0, p["id"]
        tree = ast.parse(p["solution"], mode="eval")
        assert abs(arithmetic(tree) - p["answer"]) < 1e-6, (p["id"], p["solution"], p["answer"])
        assert p["steps"] == sum(isinstance(n, ast.BinOp) for n in ast.walk(tree)), p["id"]
        assert 2 <= p["steps"] <= 6, p["id"]


def test_answers_are_not_numbers_written_in_the_question():
    for p in rows("word_problems.jsonl"):
        given = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", p["question"].replace(",", ""))}
        assert p["answer"] not in given, (p["id"], p["question"])


def test_difficulty_spread():
    steps = collections.Counter(min(p.steps, 4) for p in word_problems())
    total = sum(steps.values())
    assert 0.2 <= steps[2] / total <= 0.3
    assert 0.35 <= steps[3] / total <= 0.45
    assert 0.3 <= steps[4] / total <= 0.4


def test_ids_and_questions_are_unique():
    everything = word_problems() + easy_questions()
    assert len({q.id for q in everything}) == len(everything)
    texts = [" ".join(q.question.lower().split()) for q in everything]
    assert len(set(texts)) == len(texts)


def test_easy_questions():
    easy = rows("easy.jsonl")
    assert len(easy) >= 60
    numeric = [q for q in easy if q["answer"].isdigit()]
    assert 0.4 <= len(numeric) / len(easy) <= 0.6
    for q in easy:
        assert set(q) == {"id", "question", "answer", "accept", "split"}, q["id"]
        assert q["accept"] and all(a == a.lower() for a in q["accept"]), q["id"]
        assert q["answer"].lower() in q["accept"] or q["answer"].lower().removeprefix("the ") in q["accept"], q["id"]


def test_splits_are_halves_balanced_by_steps_and_kind():
    for questions, key in ((word_problems(), lambda q: q.steps), (easy_questions(), lambda q: q.is_numeric)):
        by_group = collections.defaultdict(collections.Counter)
        for q in questions:
            by_group[key(q)][q.split] += 1
        for group, counts in by_group.items():
            assert set(counts) <= {"tuning", "heldout"}
            assert abs(counts["tuning"] - counts["heldout"]) <= 1, group
    assert {q.id for q in word_problems("tuning")}.isdisjoint({q.id for q in word_problems("heldout")})
