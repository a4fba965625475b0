"""Prompt formats: the GGUF's own template in a sandbox, few-shot completion for base models, packing."""
from __future__ import annotations

import pytest

from engine import ModelError
from engine.chat.prompt import CUT_ROOM, pack_prompt
from engine.chat.templates import Message, render, render_template, resolve_format

QWEN_LIKE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}")


def test_renders_a_real_style_template_with_kwargs():
    msgs = [Message("system", "Be brief."), Message("user", "Hi")]
    text = render_template(QWEN_LIKE, msgs)
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert render_template(QWEN_LIKE, msgs, enable_thinking=False).endswith("<think>\n\n</think>\n\n")


def test_template_cannot_escape_the_sandbox():
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ModelError, match="chat template failed"):
        render_template(evil, [Message("user", "x")])


def test_template_raise_exception_becomes_model_error():
    with pytest.raises(ModelError, match="roles must alternate"):
        render_template("{{ raise_exception('roles must alternate') }}", [Message("user", "x")])


def test_completion_format_for_base_models():
    r = render("completion", [Message("user", "Capital of France?"), Message("assistant", "Paris."),
                              Message("user", "And Spain?")], template="", bos_token="<bos>", eos_token="")
    assert r.text.endswith("Question: Capital of France?\nAnswer: Paris.\n\nQuestion: And Spain?\nAnswer:")
    assert r.text.startswith("Question: What is the capital of Italy?\nAnswer: Rome.")
    assert r.stop == ("\nQuestion:",) and r.add_bos


def test_bos_not_added_twice_when_the_template_writes_it():
    r = render("gemma", [Message("user", "Hi")], template="", bos_token="<bos>", eos_token="")
    assert r.text.startswith("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
    assert not r.add_bos


def test_format_resolution():
    assert resolve_format("auto", has_template=False) == "completion"
    assert resolve_format("auto", has_template=True) == "template"
    with pytest.raises(ModelError, match="no chat template"):
        resolve_format("template", has_template=False)
    with pytest.raises(ModelError, match="Unknown prompt format"):
        resolve_format("klingon", has_template=True)


def test_packing_drops_oldest_turns_keeps_system_prompt():
    words = lambda text, bos: text.split()  # one token per word
    turns = [(f"q{i} " * 10, f"a{i} " * 10) for i in range(10)]
    packed = pack_prompt(fmt="chatml", system="SYSTEM RULES", turns=turns, question="final?", tokenize=words,
                         n_ctx=120, reserve=20)
    assert packed.dropped_turns > 0
    assert "SYSTEM RULES" in packed.text and "final?" in packed.text
    assert "q0" not in packed.text and "a9" in packed.text
    # A block goes: a quarter of the room is left free, and dropping one turn fewer would not have left it.
    assert len(packed.tokens) <= 100 * (1 - CUT_ROOM)
    fits_one_more = pack_prompt(fmt="chatml", system="SYSTEM RULES", turns=turns[packed.dropped_turns - 1:],
                                question="final?", tokenize=words, n_ctx=10_000, reserve=0)
    assert len(fits_one_more.tokens) > 100 * (1 - CUT_ROOM)


def test_the_cut_stays_where_it_was_while_the_prompt_fits():
    """Moving the cut changes everything after the system prompt (all of it read again): the next turn keeps the
    last one's cut until it no longer fits, then moves it by a block."""
    words = lambda text, bos: text.split()
    turns = [(f"q{i} " * 10, f"a{i} " * 10) for i in range(30)]
    pack = lambda n, before: pack_prompt(fmt="chatml", system="SYSTEM RULES", turns=turns[:n], question="next?",
                                         tokenize=words, n_ctx=220, reserve=20, dropped_before=before)
    cuts, dropped = [], 0
    for n in range(1, 31):
        packed = pack(n, dropped)
        assert len(packed.tokens) <= 200 and packed.dropped_turns >= dropped
        if packed.dropped_turns != dropped:
            cuts.append(n)
        dropped = packed.dropped_turns
    # Each turn takes ~22 tokens here and a cut frees 50: the prompt is rebuilt every second or third turn, where
    # dropping the fewest turns rebuilt it at every turn once full.
    assert len(cuts) >= 5 and all(b - a >= 2 for a, b in zip(cuts, cuts[1:]))
