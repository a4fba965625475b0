"""A Progress event in words, the same in the window and on the terminal: "Reading 3 passages… 40% · about 6 s left"."""
from __future__ import annotations

from engine import Progress


def seconds_text(seconds: float) -> str:
    if seconds < 1:
        return "almost done"
    return f"about {seconds:.0f} s left" if seconds < 90 else f"about {seconds / 60:.0f} min left"


def progress_text(p: Progress) -> str:
    pct = f" {int(100 * p.done / p.total)}%" if p.total > 0 else ""
    left = f" · {seconds_text(p.seconds_left)}" if p.seconds_left is not None and p.done < p.total else ""
    return f"{p.label}…{pct}{left}"
