"""LaTeX a chat model wrote, as readable text, for every place an answer is shown: the window's Markdown
(app/widgets/markdown.py) and the terminal (`ponder ask`, `ponder chat`). No Qt here."""
from __future__ import annotations

import re

# Chat models write math as LaTeX (Qwen2.5 boxes its results: "\\(\\boxed{31}\\)"), which Qt's Markdown shows as
# source. The common commands become plain text; a boxed result becomes bold. Innermost braces first, again until
# nothing changes, so nested commands unwrap ("\\boxed{5 \\, \\text{pm}}" -> "**5 pm**"); spacing commands become a
# space (Markdown would eat the backslash of "\\," and show a stray comma).
_LATEX = (
    (re.compile(r"\\(?:text|mathrm|textrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"\1/\2"),
    (re.compile(r"\\sqrt\s*\{([^{}]*)\}"), r"√(\1)"),
    (re.compile(r"\^\s*\{?\\circ\}?"), "°"),
    (re.compile(r"\\boxed\s*\{([^{}]*)\}"), r"**\1**"),
)
_SYMBOLS = (
    # $...$ and $$...$$ around LaTeX commands (not prices: the inside must hold a command)
    (re.compile(r"(?<!\\)\$\$?([^$\n]*?\\[A-Za-z][^$\n]*?)(?<!\\)\$\$?"), r"\1"),
    (re.compile(r"[ \t]*(?:\\(?:,|;|:|!|quad\b|qquad\b)|\\ )[ \t]*"), " "),
    (re.compile(r"\\[()]"), ""),
    (re.compile(r"\\[\[\]]"), ""),
    (re.compile(r"\\left\b\s*|\\right\b\s*"), ""),
    (re.compile(r"\\times\b"), "×"),
    (re.compile(r"\\div\b"), "÷"),
    (re.compile(r"\\cdot\b"), "·"),
    (re.compile(r"\\approx\b"), "≈"),
    (re.compile(r"\\(?:leq|le)\b"), "≤"),
    (re.compile(r"\\(?:geq|ge)\b"), "≥"),
    (re.compile(r"\\(?:neq|ne)\b"), "≠"),
    (re.compile(r"\\pm\b"), "±"),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$"), "$"),
)


def plain_math(text: str) -> str:
    """LaTeX a chat model wrote, as readable text: \\(\\boxed{31}\\) -> **31**, 3 \\times 4 -> 3 × 4."""
    if "\\" not in text:
        return text
    for pattern, replacement in _SYMBOLS:
        text = pattern.sub(replacement, text)
    while True:
        before = text
        for pattern, replacement in _LATEX:
            text = pattern.sub(replacement, text)
        if text == before:
            return text


class MathStream:
    """plain_math over streamed pieces: text before the first backslash or dollar sign goes out at once; from
    there on it is held until the line ends (or HOLD characters pile up), so a command split across tokens
    ("\\bo" "xed{") is converted whole. Most answers have neither and stream as they come."""

    HOLD = 400

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        """What can be shown now of everything fed so far."""
        text = self._held + piece
        mark = min((i for i in (text.find("\\"), text.find("$")) if i >= 0), default=-1)
        if mark < 0:  # trailing spaces wait for the next piece: they may be a "\\," command's to eat
            shown = text.rstrip(" \t")
            self._held = text[len(shown):]
            return shown
        line_end = text.rfind("\n")
        if line_end > mark or len(text) >= self.HOLD:  # the held commands' line is complete (or too long)
            cut = line_end + 1 if line_end > mark else len(text)
            self._held = ""
            return plain_math(text[:cut]) + self.feed(text[cut:])
        start = len(text[:mark].rstrip(" \t"))  # the spaces before "\\," are the command's to eat
        self._held = text[start:]
        return text[:start]

    def flush(self) -> str:
        """The rest, at the end of the answer."""
        text, self._held = self._held, ""
        return plain_math(text)
