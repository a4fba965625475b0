"""budget_sweep: what each thinking setting buys in accuracy and costs in tokens, on a real chat model.

Every question of the eval set (bench/data) is asked as a new conversation with
an empty KV cache, greedily, at Off, 128, 256, 512, 1024 and Auto. Printed per
set (word problems, easy questions, both mixed in equal numbers): accuracy,
mean thinking / answer / total tokens, Auto's probe tokens, seconds per
question, empty answers and overshoot (thinking past the budget). Per-question
results go to a JSON-lines file, the curve to a PNG.

The shortcut: with greedy decoding, the budget only acts once `used` reaches
it, so a run at budget L whose model closed its thinking on its own is, token
for token, the run at any smaller budget B the span never reached. While the
model writes the closing delimiter, its pieces count as thinking (and are
taken back once it is complete), so the span reached `used` plus the
delimiter's tokens: a run is reused for B only when closed_by is "model" and
used + END_TOKENS <= B. Fixed budgets therefore run from the largest down.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TextIO

from bench.evalset import EvalQuestion, easy_questions, word_problems
from bench.scoring import is_correct, is_empty
from engine import AskOptions, Engine, History, LoadSettings, SamplingSettings, ThinkingRequest

SETTINGS = (("off", 0), ("128", 128), ("256", 256), ("512", 512), ("1024", 1024), ("auto", None))
FIXED = tuple(label for label, budget in SETTINGS if budget)  # the positive fixed budgets
N_CTX = 4096
ANSWER_TOKENS = 512
END_TOKENS = 16  # most tokens a span end can take as the model writes it (every delimiter is <= 16 bytes)
GREEDY = SamplingSettings(temperature=0, repeat_penalty=1.0)


@dataclass(frozen=True, slots=True)
class SweepOptions:
    model: str | None = None  # a name from `ponder models` or a .gguf path; None: the default model
    split: str = "tuning"
    limit: int | None = None  # questions per set
    plot: Path | None = None  # None: docs/budget_sweep_<model>.png; the .jsonl goes beside it
    shortcut: bool = True
    resume: bool = False  # keep the questions the results file already holds at every setting
    redo: tuple[str, ...] = ()  # with resume: settings asked again even for kept questions (after changing Auto)
    out: TextIO | None = None  # where the tables go (None: stdout); stderr under --json


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question at one setting."""

    setting: str
    id: str
    kind: str
    expected: str
    answer: str
    reasoning: str
    correct: bool
    empty: bool
    thinking_tokens: int
    answer_tokens: int
    probe_tokens: int
    seconds: float
    budget: int  # the setting's budget; for Auto, the budget it chose
    used: int
    closed_by: str
    explanation: str
    reused_from: str = ""  # the larger budget whose identical run this is
    stop_reason: str = ""  # how the answer ended: eos, stop, length, cancelled

    @property
    def total_tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens

    @property
    def overshoot(self) -> int:
        return max(0, self.used - self.budget)


def is_reusable(larger: Outcome | None, budget: int) -> bool:
    """Whether `larger` (a greedy run at a larger budget) is token for token the run at `budget`."""
    return larger is not None and larger.closed_by == "model" and larger.used + END_TOKENS <= budget


def ask(engine: Engine, question: EvalQuestion, label: str, budget: int | None) -> Outcome:
    """Ask one question as a new conversation on an empty KV cache."""
    engine.session.clear()
    options = AskOptions(max_tokens=ANSWER_TOKENS, sampling=GREEDY, thinking=ThinkingRequest(budget))
    start = time.perf_counter()
    answer = engine.ask(question.question, options=options)
    seconds = time.perf_counter() - start
    t = answer.thinking
    return Outcome(label, question.id, question.kind, question.answer, answer.text, answer.reasoning,
                   is_correct(question, answer.text), is_empty(answer.text), answer.usage.thinking_tokens,
                   answer.usage.answer_tokens, t.probe_tokens if t else 0, round(seconds, 3),
                   t.budget if t and budget is None else (budget or 0), t.used if t else 0,
                   t.closed_by if t else "off", t.explanation if t else "", stop_reason=answer.stop_reason)


def sweep_question(engine: Engine, question: EvalQuestion, shortcut: bool = True) -> list[Outcome]:
    """Every setting for one question: fixed budgets from the largest down (reusing runs), then Off and Auto."""
    budgets = dict(SETTINGS)
    outcomes, larger = [], None
    for label in sorted(FIXED, key=lambda s: -budgets[s]):
        if shortcut and is_reusable(larger, budgets[label]):
            larger = replace(larger, setting=label, budget=budgets[label],
                             reused_from=larger.reused_from or larger.setting)
        else:
            larger = ask(engine, question, label, budgets[label])
        outcomes.append(larger)
    outcomes += [ask(engine, question, "off", 0), ask(engine, question, "auto", None)]
    order = [label for label, _ in SETTINGS]
    return sorted(outcomes, key=lambda o: order.index(o.setting))


def finished_questions(results: Path, header: dict) -> dict[str, list[Outcome]]:
    """Questions `results` already holds at every setting, for the same model and split (resuming a sweep)."""
    found: dict[str, list[Outcome]] = {}
    if results.exists():
        names = set(Outcome.__dataclass_fields__)
        for line in results.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if all(row.get(k) == v for k, v in header.items()):
                found.setdefault(row["id"], []).append(Outcome(**{k: v for k, v in row.items() if k in names}))
    return {qid: done for qid, done in found.items() if len(done) == len(SETTINGS)}


def redo_settings(engine: Engine, question: EvalQuestion, kept: list[Outcome], redo: tuple[str, ...]) -> list[Outcome]:
    """A kept question's outcomes with the settings in `redo` asked again."""
    budgets = dict(SETTINGS)
    return [ask(engine, question, o.setting, budgets[o.setting]) if o.setting in redo else o for o in kept]


def run_sweep(engine: Engine, questions: list[EvalQuestion], results: Path, header: dict,
              shortcut: bool = True, resume: bool = False, redo: tuple[str, ...] = ()) -> list[Outcome]:
    """Sweep every question, writing each outcome to `results` (JSON lines) as soon as it is known.

    With `resume`, questions the file already holds at every setting are kept and not asked again,
    except at the settings in `redo`.
    """
    kept = finished_questions(results, header) if resume else {}
    outcomes = []
    with open(results, "w", encoding="utf-8") as f:
        for n, q in enumerate(questions, 1):
            done = (redo_settings(engine, q, kept[q.id], redo) if q.id in kept
                    else sweep_question(engine, q, shortcut))
            for o in done:
                f.write(json.dumps({**header, **asdict(o)}) + "\n")
            f.flush()
            outcomes += done
            marks = " ".join(f"{o.setting}:{'ok' if o.correct else 'x'}{'*' if o.reused_from else ''}" for o in done)
            print(f"  [{n}/{len(questions)}] {q.id} {marks}{' (kept)' if q.id in kept else ''}", file=sys.stderr,
                  flush=True)
    return outcomes


def sweep_engine(model: str | None, folder: Path) -> Engine:
    """An engine whose conversations go to a throwaway history, not the person's."""
    engine = Engine(history=History(folder / "history.sqlite3"))
    engine.load(model, LoadSettings(n_ctx=N_CTX))
    return engine


def bench_budget_sweep(options: SweepOptions = SweepOptions()) -> list:
    from bench.sweep_report import report

    words, easy = word_problems(options.split), easy_questions(options.split)
    if options.limit:
        words, easy = words[:options.limit], easy[:options.limit]
    with tempfile.TemporaryDirectory(prefix="ponder-sweep-") as folder:
        engine = sweep_engine(options.model, Path(folder))
        try:
            name = engine.model_path.stem
            plot = Path(options.plot or f"docs/budget_sweep_{name}.png")
            results = plot.with_suffix(".jsonl")
            plot.parent.mkdir(parents=True, exist_ok=True)
            print(f"  {len(words)} word problems and {len(easy)} easy questions ({options.split} half) on {name}; "
                  f"per-question results: {results}", file=sys.stderr, flush=True)
            header = {"model": name, "split": options.split}
            outcomes = run_sweep(engine, words + easy, results, header, options.shortcut, options.resume,
                                 options.redo)
        finally:
            engine.unload()
            engine.history.close()
    return report(outcomes, words, easy, name, options, plot, results)
