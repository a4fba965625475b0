"""Thinking spans per model family: their delimiters, how to close one early, how to switch one off.

Native formats are detected from the chat template (research/budget.md §5):
`<think>…</think>` (Qwen3, QwQ, DeepSeek-R1 distills, SmolLM3, Phi-4-reasoning),
gpt-oss's harmony channels, Magistral's `[THINK]…[/THINK]`. Models without one
get a *scaffold*: Ponder opens the span in the prompt and closes it the same
way, so the budget controls work on any model, the default base model included.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# The Qwen3 report's wrap-up (§4.3), shortened: the model answers from its partial reasoning.
LEAD_IN = "\n\nConsidering the limited time, I have to give the answer based on the thinking directly now.\n"


@dataclass(frozen=True, slots=True)
class ThinkingFormat:
    """`start` opens a span, `end` closes it; `close` is injected to close it at the budget,
    `extension` replaces an early close while a minimum is unmet; `other_ends` also end a span
    (a base model that skips straight to the next question) and are replaced by `close`."""

    name: str
    start: str = ""
    end: str = ""
    close: str = ""
    extension: str = "\nWait,"
    other_ends: tuple[str, ...] = ()
    native: bool = False

    @property
    def ends(self) -> tuple[str, ...]:
        return (self.end, *self.other_ends)


NONE = ThinkingFormat("none")
THINK_TAGS = ThinkingFormat("think", "<think>", "</think>", LEAD_IN + "</think>\n\n", native=True)
HARMONY = ThinkingFormat(
    "harmony", "<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>",
    LEAD_IN + "<|end|><|start|>assistant<|channel|>final<|message|>", native=True)
MISTRAL = ThinkingFormat("mistral", "[THINK]", "[/THINK]", LEAD_IN + "[/THINK]", native=True)
# Base models (few-shot completion prompt): the span is a "Reasoning:" line, closed by "Answer:".
SCAFFOLD_COMPLETION = ThinkingFormat(
    "scaffold", "\nReasoning:", "\nAnswer:", "\nAnswer:", extension=" Wait,", other_ends=("\nQuestion:", "\n Answer:"))
# Chat models that were never taught to think: asked to, with the span opened in their turn.
SCAFFOLD_TAGS = ThinkingFormat("scaffold-tags", "<think>\n", "</think>", "\nI have to answer now.\n</think>\n\n")
SCAFFOLD_INSTRUCTION = ("Before answering, think step by step inside <think> and </think>, "
                        "then give the answer after </think>.")

_BY_MARKER = (
    ("<|channel|>", HARMONY),
    ("[THINK]", MISTRAL),
    ("<think>", THINK_TAGS),
    ("</think>", THINK_TAGS),
)


def detect_format(chat_template: str) -> ThinkingFormat:
    """The native thinking format a chat template uses, or NONE."""
    for marker, fmt in _BY_MARKER:
        if marker in chat_template:
            return fmt
    return NONE


@dataclass(frozen=True, slots=True)
class ThinkingSupport:
    """How to think with one model: its format and how its template treats the span."""

    format: ThinkingFormat
    has_switch: bool = False  # the template takes enable_thinking
    opens_in_prompt: bool = False  # the generation prompt already ends inside the span
    template_kwargs_on: dict = field(default_factory=dict)
    template_kwargs_off: dict = field(default_factory=dict)


def thinking_support(chat_template: str, prompt_format: str, render_probe=None) -> ThinkingSupport:
    """Work out how a model thinks. `render_probe(**kwargs)` renders a one-question prompt with the
    model's template (used to see whether the generation prompt opens the span itself)."""
    if prompt_format == "completion":
        return ThinkingSupport(SCAFFOLD_COMPLETION)
    fmt = detect_format(chat_template) if prompt_format == "template" else NONE
    if fmt is NONE:
        return ThinkingSupport(SCAFFOLD_TAGS)
    has_switch = "enable_thinking" in chat_template
    on = {"enable_thinking": True} if has_switch else {}
    opens = False
    if render_probe is not None:
        opens = render_probe(**on).rstrip().endswith(fmt.start.rstrip())
    return ThinkingSupport(fmt, has_switch, opens, on, {"enable_thinking": False} if has_switch else {})
