"""The controller's state machine, driven by scripted token streams (no model)."""
from __future__ import annotations

import random

import pytest

from engine.budget.controller import REPEAT_CHARS, Phase, ThinkingController
from engine.budget.formats import SCAFFOLD_CHAT, SCAFFOLD_COMPLETION, THINK_TAGS


def run(controller: ThinkingController, pieces: list[str], eog_at: int | None = None) -> list:
    """Feed pieces as a model would: check before each sample, stop at the answer. Returns (what, step)."""
    log = []
    for i, piece in enumerate(pieces):
        close = controller.before_sample()
        if close:
            log.append(("close", close))
            return log
        step = controller.observe(piece.encode(), is_eog=(i == eog_at))
        log.append((piece, step))
        if controller.phase is Phase.ANSWER:
            return log
    close = controller.before_sample()
    if close:
        log.append(("close", close))
    return log


def test_budget_hit_exactly_at_n():
    c = ThinkingController(THINK_TAGS, budget=5)
    log = run(c, ["a"] * 20)
    assert c.used == 5 and c.phase is Phase.ANSWER and c.closed_by == "budget" and c.forced_close
    assert log[-1] == ("close", THINK_TAGS.close)
    assert all(step.evaluate for _, step in log[:-1])


def test_natural_close_single_token():
    c = ThinkingController(THINK_TAGS, budget=10)
    log = run(c, ["x", " y", "</think>", "never"])
    assert c.used == 2 and c.closed_by == "model" and not c.forced_close
    assert log[-1][1].evaluate and not log[-1][1].inject  # the model's own close is kept as sampled
    assert c.reasoning == "x y"


def test_close_delimiter_split_across_tokens():
    c = ThinkingController(THINK_TAGS, budget=10)
    log = run(c, ["x", "</", "th", "ink", ">", "more"])
    assert c.phase is Phase.ANSWER and c.closed_by == "model" and c.used == 1
    assert [s.shown for _, s in log] == ["x", "", "", "", ""]  # the delimiter is never shown as reasoning
    assert log[-1][1].evaluate


def test_early_close_under_minimum_becomes_wait():
    c = ThinkingController(THINK_TAGS, budget=50, min_think=4)
    log = run(c, ["a", "b", "</", "think>", "c", "d", "e", "</think>"])
    ext = log[3][1]
    assert not ext.evaluate and ext.retract == 1 and ext.inject == THINK_TAGS.extension  # "</" taken back
    assert c.extensions == 1 and c.closed_by == "model" and c.used == 5
    assert c.reasoning == "ab" + THINK_TAGS.extension + "cde"


def test_extensions_are_limited():
    c = ThinkingController(THINK_TAGS, budget=50, min_think=40, max_extensions=2)
    run(c, ["a", "</think>", "b", "</think>", "c", "</think>", "d"])
    assert c.extensions == 2 and c.phase is Phase.ANSWER and c.used == 3


def test_text_before_a_delimiter_in_the_same_token_is_kept():
    c = ThinkingController(THINK_TAGS, budget=50, min_think=10)
    log = run(c, ["so", " ok</think>"])
    step = log[-1][1]
    assert step.retract == 0 and step.inject == " ok" + THINK_TAGS.extension and not step.evaluate
    assert c.reasoning == "so ok" + THINK_TAGS.extension


def test_model_that_never_closes_is_closed_at_the_budget():
    c = ThinkingController(THINK_TAGS, budget=64)
    run(c, [f"step {i} " for i in range(1000)])
    assert c.used == 64 and c.closed_by == "budget"


def test_a_span_going_round_in_circles_is_closed():
    c = ThinkingController(SCAFFOLD_CHAT, budget=2000)
    loop = ["Step", " 2", ":", " Subtract", " the", " apples", " eaten", ".", "\n"] * 60
    log = run(c, ["First", " count", " the", " boxes", ".\n", *loop])
    assert log[-1] == ("close", SCAFFOLD_CHAT.close) and c.closed_by == "repeat" and c.forced_close
    assert c.used < 2 * REPEAT_CHARS  # closed once the loop was plain, long before the budget


def test_varied_reasoning_is_not_taken_for_a_loop():
    c = ThinkingController(SCAFFOLD_CHAT, budget=400)
    run(c, [f"Box {i} holds {i * 12} apples, so far {i * (i + 1) * 6} in all.\n" for i in range(1, 500)])
    assert c.closed_by == "budget" and c.used == 400


def test_chat_scaffold_final_answer_line_leads_into_the_answer():
    for spelling in ("Final answer:", "Final Answer:"):
        c = ThinkingController(SCAFFOLD_CHAT, budget=100)
        head, tail = spelling.split(" ")
        log = run(c, ["3", " x", " 12", " =", " 36", ".\n\n", head, " " + tail])
        assert log[-1][1].evaluate and not log[-1][1].inject and c.closed_by == "model" and c.used == 6
        assert c.reasoning.strip() == "3 x 12 = 36."


def test_chat_scaffold_turn_ended_inside_the_span_is_made_to_answer():
    c = ThinkingController(SCAFFOLD_CHAT, budget=100)
    log = run(c, ["So", " 31", " apples", ".", "<|im_end|>"], eog_at=4)
    assert log[-1][1].inject == "\n\nFinal answer:" and not log[-1][1].evaluate and c.closed_by == "model"


def test_end_of_generation_inside_the_span():
    c = ThinkingController(THINK_TAGS, budget=50, min_think=3)
    log = run(c, ["a", "EOG"], eog_at=1)
    assert log[-1][1].inject == THINK_TAGS.extension and not log[-1][1].evaluate and c.used == 1
    c2 = ThinkingController(THINK_TAGS, budget=50)
    log2 = run(c2, ["a", "EOG"], eog_at=1)
    assert log2[-1][1].inject == THINK_TAGS.close and c2.phase is Phase.ANSWER and c2.closed_by == "model"


def test_scaffold_other_end_is_replaced_by_the_close():
    c = ThinkingController(SCAFFOLD_COMPLETION, budget=50)
    log = run(c, [" six", " legs", "\n", "Question", ":"])
    step = log[-1][1]
    assert step.retract == 2 and step.inject == "\nAnswer:" and not step.evaluate
    assert c.used == 2 and c.reasoning == " six legs"


def test_scaffold_natural_answer_line():
    c = ThinkingController(SCAFFOLD_COMPLETION, budget=50)
    run(c, [" 3 x 4 = 12.", "\nAnswer", ":"])
    assert c.phase is Phase.ANSWER and c.closed_by == "model" and c.used == 1


def test_budget_zero_skips_the_span():
    c = ThinkingController(THINK_TAGS, budget=0)
    assert c.phase is Phase.ANSWER and c.before_sample() == "" and c.closed_by == "off"


def test_early_stop_request_closes_before_the_next_sample():
    c = ThinkingController(THINK_TAGS, budget=100)
    run(c, ["a"] * 3)
    c.request_early_stop()
    assert c.before_sample() == THINK_TAGS.close and c.closed_by == "early" and c.used == 3


def test_negative_budget_is_rejected():
    with pytest.raises(ValueError):
        ThinkingController(THINK_TAGS, budget=-1)


@pytest.mark.parametrize("seed", range(40))
def test_used_never_exceeds_budget_on_random_streams(seed):
    rng = random.Random(seed)
    vocab = ["a", " b", "</", "think", ">", "</think>", "\n", "Wait", "ok</think>", "é".encode()[:1].decode("latin1")]
    budget = rng.randint(0, 300)
    c = ThinkingController(THINK_TAGS, budget, min_think=rng.randint(0, budget), max_extensions=rng.randint(0, 3))
    for _ in range(2000):
        if c.before_sample() or c.phase is Phase.ANSWER:
            break
        c.observe(rng.choice(vocab).encode(), is_eog=rng.random() < 0.01)
        assert 0 <= c.used <= budget
    assert c.used <= budget and c.phase is Phase.ANSWER


def test_a_result_line_ends_at_its_blank_line_but_prose_never_does():
    from engine.runtime.loop import RESULT_CHARS, ends_result_line

    assert ends_result_line(" 230") is False  # not known yet
    assert ends_result_line(" 230\n\n") is True  # "230", then the model starts working it out: cut
    assert ends_result_line(" To find it, we follow these steps:\n\n") is None  # an introduction, not a result
    assert ends_result_line("\n\nRoses are red,\n\n") is None  # an answer on lines of its own is never cut
    assert ends_result_line(" " + "word " * RESULT_CHARS) is None  # a long first paragraph is prose
    assert ends_result_line(" 40\nExplanation:") is True  # the working, with no blank line before it: cut
    assert ends_result_line(" 10\nTo determine how many days") is True
    assert ends_result_line(" 40\nExpl") is False  # may still become a working line
    assert ends_result_line(" Roses are red,\nViolets are blue,") is False  # a poem goes on
    assert ends_result_line(" Here are the steps:\nStep 1: boil water") is None  # introduced: never cut
    assert ends_result_line(" [1]\n\nThe command is update-mime-database [1].") is None  # sources, then the answer
    assert ends_result_line(" update-mime-database [1]\n\nIt rebuilds") is True


def test_a_result_line_holds_back_what_may_be_working_and_shows_none_of_it():
    from engine.runtime.loop import ResultLine

    def run(pieces):
        watch, text, shown = ResultLine(True), "", ""
        for piece in pieces:
            text += piece
            out, ended = watch.push(piece, text)
            shown += out
            if ended:
                return shown, text[:watch.end]
        return shown + watch.release(), text

    assert run([" 40", "\n", "Ex", "planation", ":", " To"]) == (" 40", " 40")
    assert run([" 230", "\n", "\n", "To find"]) == (" 230", " 230")
    assert run([" 40", "\n", "50", "\n"]) == (" 40\n50\n", " 40\n50\n")  # not working: shown, not cut
    assert run([" Roses", "\n", "V", "iolets"]) == (" Roses\nViolets", " Roses\nViolets")
    assert run([" 40", "\n", "Ex"]) == (" 40\nEx", " 40\nEx")  # ended while held: released at the end
