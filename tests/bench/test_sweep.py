"""budget_sweep's bookkeeping on scripted results: the reuse shortcut, the summaries, the goals, the plot."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from bench.evalset import EvalQuestion
from bench.sweep import END_TOKENS, Outcome, is_reusable, sweep_question
from bench.sweep_report import best_fixed, contract_rows, split_sets, summarise
from engine import Answer, ThinkingReport, Timings, Usage

RUN = Outcome("1024", "wp-001", "word", "17", "17", "", True, False, 100, 20, 0, 3.0, 1024, 100, "model", "")


def test_reuse_only_a_run_the_smaller_budget_never_touched():
    assert is_reusable(RUN, 512) and is_reusable(RUN, 100 + END_TOKENS)
    # the model was writing its closing delimiter (pieces counted as thinking) up to END_TOKENS past `used`
    assert not is_reusable(RUN, 100 + END_TOKENS - 1) and not is_reusable(RUN, 100)
    assert not is_reusable(replace(RUN, closed_by="budget", used=1024), 512)
    assert not is_reusable(replace(RUN, closed_by="early"), 512)
    assert not is_reusable(None, 512)


class ScriptedEngine:
    """Answers as a model would that closes its thinking by itself after `natural` tokens (greedy)."""

    def __init__(self, natural: int) -> None:
        self.natural, self.asked = natural, []
        self.session = SimpleNamespace(clear=lambda: None)

    def ask(self, question, *, options):
        budget = options.thinking.budget
        self.asked.append(budget)
        chosen = 256 if budget is None else budget
        used, closed_by = (self.natural, "model") if self.natural < chosen else (chosen, "budget")
        if chosen == 0:
            used, closed_by = 0, "off"
        text = "17" if used >= 200 else "12"
        return Answer(text, "eos", Usage(thinking_tokens=used, answer_tokens=5), Timings(),
                      thinking=ThinkingReport("think", chosen, used, closed_by, auto=budget is None))


QUESTION = EvalQuestion("wp-001", "word", "Seven and ten?", "17", steps=2)


def test_sweep_runs_fixed_budgets_from_the_largest_down_and_reuses_what_it_may():
    engine = ScriptedEngine(natural=300)
    outcomes = {o.setting: o for o in sweep_question(engine, QUESTION)}
    # 1024 closes by itself at 300: 512 is the same run; 256 is not (300 + END_TOKENS > 256), nor 128 below it
    assert engine.asked == [1024, 256, 128, 0, None]
    assert outcomes["512"].reused_from == "1024" and outcomes["512"].budget == 512
    assert outcomes["256"].reused_from == "" and outcomes["256"].closed_by == "budget"
    assert outcomes["128"].reused_from == "" and outcomes["128"].used == 128
    assert [o.setting for o in sweep_question(ScriptedEngine(300), QUESTION)] == \
        ["off", "128", "256", "512", "1024", "auto"]
    assert outcomes["1024"].correct and not outcomes["128"].correct


def test_a_short_thinker_runs_once_for_every_fixed_budget():
    engine = ScriptedEngine(natural=40)
    outcomes = {o.setting: o for o in sweep_question(engine, QUESTION)}
    assert engine.asked == [1024, 0, None]
    assert {outcomes[s].reused_from for s in ("512", "256", "128")} == {"1024"}
    assert all(o.overshoot == 0 for o in outcomes.values())


def test_without_the_shortcut_every_setting_runs():
    engine = ScriptedEngine(natural=40)
    sweep_question(engine, QUESTION, shortcut=False)
    assert sorted(engine.asked, key=str) == sorted([1024, 512, 256, 128, 0, None], key=str)


def _outcome(setting, qid, kind, correct, thinking, answer=10):
    return replace(RUN, setting=setting, id=qid, kind=kind, correct=correct, thinking_tokens=thinking,
                   answer_tokens=answer, used=thinking, budget={"off": 0, "auto": 64}.get(setting, 1024))


def scripted_sweep():
    words = [EvalQuestion(f"wp-{i}", "word", "q", "1") for i in range(4)]
    easy = [EvalQuestion(f"easy-{i}", "easy", "q", "1") for i in range(2)]
    right = {"off": 1, "128": 2, "256": 3, "512": 4, "1024": 4, "auto": 4}  # word problems answered right
    thinking = {"off": 0, "128": 100, "256": 200, "512": 300, "1024": 400, "auto": 40}
    outcomes = [_outcome(s, q.id, "word", i < right[s], thinking[s]) for s in right for i, q in enumerate(words)]
    outcomes += [_outcome(s, q.id, "easy", True, 0 if s in ("off", "auto") else thinking[s] // 10)
                 for s in right for q in easy]
    return outcomes, words, easy


def test_summaries_and_the_best_fixed_budget():
    outcomes, words, easy = scripted_sweep()
    sets = split_sets(outcomes, words, easy)
    assert {o.id for o in sets["mixed"]} == {"wp-0", "wp-1", "easy-0", "easy-1"}  # equal numbers of each
    rows = summarise(sets["word"])
    assert list(rows) == ["off", "128", "256", "512", "1024", "auto"]
    assert rows["off"].accuracy == 0.25 and rows["512"].accuracy == 1.0 and rows["512"].total == 310
    assert best_fixed(rows).setting == "512"  # as accurate as 1024, fewer tokens


def test_contract_rows_express_the_goals():
    outcomes, words, easy = scripted_sweep()
    tables = {k: summarise(v) for k, v in split_sets(outcomes, words, easy).items()}
    rows = {r.name: r for r in contract_rows(tables, outcomes)}
    assert rows["budget_sweep_word_best_minus_off"].value == 0.75 and rows["budget_sweep_word_best_minus_off"].met
    assert rows["budget_sweep_mixed_auto_minus_best"].met
    assert rows["budget_sweep_mixed_auto_tokens"].met and rows["budget_sweep_easy_auto_thinking"].value == 0
    assert rows["budget_sweep_empty_answers"].value == 0 and rows["budget_sweep_empty_answers"].met
    assert rows["budget_sweep_overshoot"].met
    assert rows["budget_sweep_word_off"].baseline == 0.25 and rows["budget_sweep_word_1024_tokens"].baseline == 310
    broke = [replace(outcomes[0], used=2000, answer="", empty=True)] + outcomes[1:]
    rows = {r.name: r for r in contract_rows(tables, broke)}
    assert not rows["budget_sweep_overshoot"].met and not rows["budget_sweep_empty_answers"].met


def test_plot_writes_a_png(tmp_path, qapp):
    from PySide6.QtGui import QImage

    from bench.plot import WIDTH, Point, draw_sweep

    series = {"word problems": [Point("off", 150, 0.2), Point("128", 260, 0.35), Point("1024", 900, 0.6),
                                Point("auto", 400, 0.55, is_auto=True)],
              "easy questions": [Point("off", 8, 0.9), Point("1024", 60, 0.92), Point("auto", 9, 0.9, True)]}
    path = draw_sweep(series, tmp_path / "sub" / "sweep.png", "made-up numbers")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(path))
    assert image.width() == WIDTH
    colours = {image.pixelColor(x, y).name() for x in range(0, WIDTH, 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 5  # axes, grid, series and text, not a blank picture


def test_json_output_stays_alone_on_stdout(tmp_path, monkeypatch, capsys, qapp):
    import json

    from bench import sweep
    from bench.runner import run_benchmarks

    engine = ScriptedEngine(natural=40)
    engine.model_path = tmp_path / "scripted.gguf"
    engine.unload = lambda: None
    engine.history = SimpleNamespace(close=lambda: None)
    monkeypatch.setattr(sweep, "sweep_engine", lambda model, folder: engine)
    plot = tmp_path / "sweep.png"
    assert run_benchmarks(["budget_sweep"], as_json=True, sweep=sweep.SweepOptions(limit=2, plot=plot)) == 0
    out, err = capsys.readouterr()
    rows = {r["name"]: r for r in json.loads(out)["results"]}
    assert rows["budget_sweep_overshoot"]["met"] and rows["budget_sweep_word_auto"]["unit"] == "accuracy"
    assert "budget_sweep: word problems, 2 questions, tuning half, scripted" in err and "shortcut used: 12 of 16" in err
    lines = [json.loads(line) for line in plot.with_suffix(".jsonl").read_text().splitlines()]
    assert len(lines) == 4 * 6
    assert {"setting", "id", "answer", "correct", "seconds", "closed_by", "stop_reason"} <= set(lines[0])
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_resume_keeps_finished_questions_and_asks_the_rest(tmp_path):
    from bench.sweep import run_sweep

    questions = [QUESTION, replace(QUESTION, id="wp-002"), replace(QUESTION, id="wp-003")]
    results, header = tmp_path / "sweep.jsonl", {"model": "scripted", "split": "tuning"}
    first = run_sweep(ScriptedEngine(natural=300), questions, results, header)
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:-2]) + "\n")  # killed while sweeping the last question
    engine = ScriptedEngine(natural=300)
    again = run_sweep(engine, questions, results, header, resume=True)
    assert engine.asked == [1024, 256, 128, 0, None]  # the last question only
    timeless = lambda outcomes: [replace(o, seconds=0) for o in outcomes]  # noqa: E731
    assert timeless(again) == timeless(first) and len(results.read_text().splitlines()) == len(lines)
    other = ScriptedEngine(natural=300)
    run_sweep(other, questions[:1], results, {**header, "model": "another"}, resume=True)
    assert other.asked  # another model's results are not this model's


def test_redo_asks_the_named_settings_again_and_keeps_the_rest(tmp_path):
    from bench.sweep import run_sweep

    questions = [QUESTION, replace(QUESTION, id="wp-002")]
    results, header = tmp_path / "sweep.jsonl", {"model": "scripted", "split": "tuning"}
    first = run_sweep(ScriptedEngine(natural=300), questions, results, header)
    engine = ScriptedEngine(natural=300)
    again = run_sweep(engine, questions, results, header, resume=True, redo=("auto",))
    assert engine.asked == [None, None]  # Auto, once per question; the fixed budgets and Off were kept
    timeless = lambda outcomes: [replace(o, seconds=0) for o in outcomes]  # noqa: E731
    assert timeless(again) == timeless(first)  # the same scripted model answers the same
    assert [o.setting for o in again] == [o.setting for o in first]
