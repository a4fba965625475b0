"""Thinking-span delimiters per model family, detected from the chat template."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThinkingFormat:
    name: str
    start: str = ""
    end: str = ""


NONE = ThinkingFormat("none")
THINK_TAGS = ThinkingFormat("think", "<think>", "</think>")
HARMONY = ThinkingFormat(
    "harmony", "<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>")
MISTRAL = ThinkingFormat("mistral", "[THINK]", "[/THINK]")

_BY_MARKER = (
    ("<|channel|>", HARMONY),
    ("[THINK]", MISTRAL),
    ("<think>", THINK_TAGS),
    ("</think>", THINK_TAGS),
)


def detect_format(chat_template: str) -> ThinkingFormat:
    """The thinking format a chat template uses, or NONE for models that do not think natively."""
    for marker, fmt in _BY_MARKER:
        if marker in chat_template:
            return fmt
    return NONE
