"""The budget sweep's summary: a table per question set, the contract's Result rows, the plot.

"Best fixed" is the positive fixed budget (128 … 1024) with the highest
accuracy on that set, the fewer tokens breaking a tie. The goals:
word problems: best fixed − Off >= 0.25; mixed: Auto >= best fixed − 0.03 with
Auto's total tokens <= 0.6 x best fixed's; easy: Auto thinks <= 16 tokens and
is no less accurate than Off; no empty answers and no overshoot anywhere.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bench.evalset import EvalQuestion
from bench.plot import Point, draw_sweep
from bench.runner import Result
from bench.sweep import END_TOKENS, FIXED, SETTINGS, Outcome, SweepOptions

SETS = (("word", "word problems"), ("easy", "easy questions"), ("mixed", "mixed, equal numbers"))


@dataclass(frozen=True, slots=True)
class Row:
    setting: str
    questions: int
    accuracy: float
    thinking: float
    answer: float
    total: float
    probes: float
    seconds: float
    empty: int
    overshoot: int
    reused: int


def summarise(outcomes: list[Outcome]) -> dict[str, Row]:
    """One row per setting, in SETTINGS order (settings with no outcomes left out)."""
    rows = {}
    for label, _ in SETTINGS:
        mine = [o for o in outcomes if o.setting == label]
        if not mine:
            continue
        n = len(mine)
        mean = lambda f: round(sum(f(o) for o in mine) / n, 3)  # noqa: E731
        rows[label] = Row(label, n, mean(lambda o: o.correct), mean(lambda o: o.thinking_tokens),
                          mean(lambda o: o.answer_tokens), mean(lambda o: o.total_tokens),
                          mean(lambda o: o.probe_tokens), mean(lambda o: o.seconds),
                          sum(o.empty for o in mine), sum(o.overshoot for o in mine),
                          sum(bool(o.reused_from) for o in mine))
    return rows


def best_fixed(rows: dict[str, Row]) -> Row:
    return max((rows[s] for s in FIXED), key=lambda r: (r.accuracy, -r.total))


def split_sets(outcomes: list[Outcome], words: list[EvalQuestion], easy: list[EvalQuestion]) -> dict[str, list]:
    """Word problems, easy questions, and the first k of each mixed (k = the smaller set's size)."""
    k = min(len(words), len(easy))
    mixed = {q.id for q in words[:k]} | {q.id for q in easy[:k]}
    return {"word": [o for o in outcomes if o.kind == "word"], "easy": [o for o in outcomes if o.kind == "easy"],
            "mixed": [o for o in outcomes if o.id in mixed]}


def contract_rows(tables: dict[str, dict[str, Row]], outcomes: list[Outcome]) -> list[Result]:
    out = []
    for key, rows in tables.items():
        off, best = rows["off"], best_fixed(rows)
        for label, r in rows.items():
            out.append(Result(f"budget_sweep_{key}_{label}", "accuracy", r.accuracy, off.accuracy, ">=0"))
            out.append(Result(f"budget_sweep_{key}_{label}_tokens", "tok/question", r.total, best.total, ">=0"))
    word, mixed, easy = tables["word"], tables["mixed"], tables["easy"]
    wbest, mbest, ebest = best_fixed(word), best_fixed(mixed), best_fixed(easy)
    gap = lambda a, b: round(a - b, 3)  # noqa: E731
    out += [
        Result("budget_sweep_word_best_minus_off", "accuracy", gap(wbest.accuracy, word["off"].accuracy),
               word["off"].accuracy, "value>=0.25"),
        Result("budget_sweep_mixed_auto_minus_best", "accuracy", gap(mixed["auto"].accuracy, mbest.accuracy),
               mbest.accuracy, "value>=-0.03"),
        Result("budget_sweep_mixed_auto_tokens", "tok/question", mixed["auto"].total, mbest.total, "<=0.6"),
        Result("budget_sweep_easy_auto_thinking", "tok/question", easy["auto"].thinking, ebest.thinking,
               "value<=16"),
        Result("budget_sweep_easy_auto_minus_off", "accuracy", gap(easy["auto"].accuracy, easy["off"].accuracy),
               easy["off"].accuracy, "value>=0"),
        Result("budget_sweep_empty_answers", "answers", sum(o.empty for o in outcomes), len(outcomes), "value<=0"),
        Result("budget_sweep_overshoot", "tokens", sum(o.overshoot for o in outcomes),
               sum(o.budget for o in outcomes), "value<=0"),
    ]
    return out


def print_table(title: str, rows: dict[str, Row], out) -> None:
    print(title, file=out)
    print(f"  {'setting':8} {'accuracy':>8} {'thinking':>9} {'answer':>8} {'total':>8} {'probes':>7} "
          f"{'s/question':>10} {'empty':>6} {'overshoot':>9} {'reused':>6}", file=out)
    for r in rows.values():
        print(f"  {r.setting:8} {r.accuracy:8.3f} {r.thinking:9.1f} {r.answer:8.1f} {r.total:8.1f} {r.probes:7.1f} "
              f"{r.seconds:10.2f} {r.empty:6d} {r.overshoot:9d} {r.reused:6d}", file=out)


def report(outcomes: list[Outcome], words: list[EvalQuestion], easy: list[EvalQuestion], model: str,
           options: SweepOptions, plot: Path, results: Path) -> list[Result]:
    """Print the tables and the shortcut's use, draw the plot; returns the contract's rows."""
    out = options.out or sys.stdout
    tables = {key: summarise(part) for key, part in split_sets(outcomes, words, easy).items()}
    for key, name in SETS:
        n = tables[key]["off"].questions
        print_table(f"budget_sweep: {name}, {n} questions, {options.split} half, {model}", tables[key], out)
    fixed = [o for o in outcomes if o.setting in FIXED]
    reused = sum(bool(o.reused_from) for o in fixed)
    if options.shortcut:
        print(f"shortcut used: {reused} of {len(fixed)} fixed-budget answers were taken from a larger budget's run "
              f"that closed its thinking by itself at least {END_TOKENS} tokens before the smaller budget "
              "(greedy decoding: the same tokens); their seconds are that run's", file=out)
    else:
        print("shortcut off: every setting was run", file=out)
    series = {name: [Point(r.setting, r.total, r.accuracy, r.setting == "auto") for r in tables[key].values()]
              for key, name in SETS}
    draw_sweep(series, plot, f"Thinking budget sweep: {model}, {options.split} half")
    print(f"plot: {plot}\nper-question results: {results}", file=out, flush=True)
    return contract_rows(tables, outcomes)
