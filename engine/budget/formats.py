"""Thinking spans per model family: their delimiters, how to close one early, how to switch one off.

Native formats are detected from the chat template: `<think>…</think>` (Qwen3,
QwQ, DeepSeek-R1 distills, SmolLM3, Phi-4-reasoning), gpt-oss's harmony
channels, Magistral's `[THINK]…[/THINK]`. Models without one get a *scaffold*
that the budget controls the same way (docs/thinking.md):
- a base model (few-shot completion prompt) reasons on a "Reasoning:" line closed by "Answer:";
- a chat model never trained to think is asked to reason in plain steps and then write
  "Final answer:"; its steps are the span and what follows that line is the answer.
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
    also_ends: tuple[str, ...] = ()  # other spellings of `end` the model may write; the answer follows them as is
    skip: str = ""  # what the prompt ends with when the span is skipped (budget 0), if not an empty span
    result_line: bool = False  # the answer is a result line: a short first paragraph ends it (see loop.py)

    @property
    def ends(self) -> tuple[str, ...]:
        return (self.end, *self.also_ends, *self.other_ends)

    def is_canonical(self, which: int) -> bool:
        """Whether ends[which] leads into the answer as written (else it is replaced by `close`)."""
        return which <= len(self.also_ends)


NONE = ThinkingFormat("none")
THINK_TAGS = ThinkingFormat("think", "<think>", "</think>", LEAD_IN + "</think>\n\n", native=True)
HARMONY = ThinkingFormat(
    "harmony", "<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>",
    LEAD_IN + "<|end|><|start|>assistant<|channel|>final<|message|>", native=True)
MISTRAL = ThinkingFormat("mistral", "[THINK]", "[/THINK]", LEAD_IN + "[/THINK]", native=True)
# Base models (few-shot completion prompt): the span is a "Reasoning:" line, closed by "Answer:".
SCAFFOLD_COMPLETION = ThinkingFormat(
    "scaffold", "\nReasoning:", "\nAnswer:", "\nAnswer:", extension=" Wait,", other_ends=("\nQuestion:", "\n Answer:"))
# Chat models never trained to think: a `<think>` span is only text to them (they wrote their whole answer
# inside it, echoed an injected close, or ended the turn there: empty answers). Asked instead to reason in
# plain steps and end with a "Final answer:" line, they do; the span is their steps, and when the budget or
# the end of their turn cuts the steps, the injected line makes them state the result from what they have
# (a continuation to complete, not an instruction to obey). What it gave on the built-in models: docs/thinking.md.
FINAL_ANSWER = "Final answer:"
SCAFFOLD_CHAT = ThinkingFormat(
    "scaffold-chat", end=FINAL_ANSWER, close="\n\n" + FINAL_ANSWER, extension="\n\nWait,",
    also_ends=("Final Answer:", "FINAL ANSWER:"), skip=FINAL_ANSWER, result_line=True)
SCAFFOLD_INSTRUCTION = f'Think step by step, then write "{FINAL_ANSWER}" followed by the answer alone.'
# Auto asks for brief steps (TALE, arXiv:2412.18547: a limit stated in the prompt shortens the reasoning that
# follows). The model does not keep to the words; it writes fewer, shorter steps. A bare limit also made it name
# steps without doing them ("Step 1: Calculate the cost of 20 apples.") and guess; asking for every calculation
# with its numbers keeps the steps short and done. Tuning half, 1.5B, greedy, budget 1024 (README, "What the
# budget buys", has the held-out figures):
#   first 30 word problems: full steps 25 right in 279 tokens; "at most 100 words" 24 in 235; "60 words" 22 in 151
#   next 30: "at most 100 words" 24 in 212; this wording 26 in 226; "…using every fact in the question" 26 in 252;
#            full steps 12 of the first 13 in 292, where this wording got 12 in 195.
SCAFFOLD_INSTRUCTION_BRIEF = (f'Think step by step in at most 100 words, writing out every calculation with its '
                              f'numbers, then write "{FINAL_ANSWER}" followed by the answer alone.')
# With documents the answer must keep its citations ("the answer alone" made the 0.5B drop them), but asked for
# "the answer with the numbers of the sources it comes from, like [1]" the 1.5B often wrote the numbers alone
# ("[1], [2]") or put them first. On 8 of the document eval's tuning questions (1.5B, greedy, Off, 3 passages):
# that wording 3 right; "…the answer in full, and after it the number of each source…" 6 (no numbers kept);
# "…the answer." 6 (none kept); this wording 6, numbers kept in 4. An example answer ("like "The file is named
# config.toml [2]."") was copied word for word.
SCAFFOLD_INSTRUCTION_CITED = (f'Think step by step, then write "{FINAL_ANSWER}" followed by the answer in words, '
                              "ending with the numbers of its sources in brackets.")

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
        return ThinkingSupport(SCAFFOLD_CHAT)
    has_switch = "enable_thinking" in chat_template
    on = {"enable_thinking": True} if has_switch else {}
    opens = False
    if render_probe is not None:
        opens = render_probe(**on).rstrip().endswith(fmt.start.rstrip())
    return ThinkingSupport(fmt, has_switch, opens, on, {"enable_thinking": False} if has_switch else {})
