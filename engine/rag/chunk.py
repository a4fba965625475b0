"""Token-aware, structure-aware chunks: paragraphs and headings kept whole where they fit, pages never
crossed, neighbours overlapping; every chunk is a span [start, end) of its page's text."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from engine.rag.ingest import Page

MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on 256-token inputs
OVERLAP_TOKENS = 32
_BLOCK = re.compile(r"\S(?:.*?)(?=\n\s*\n|\n#{1,6} |\Z)", re.S)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")


@dataclass(frozen=True, slots=True)
class Chunk:
    page: int | None
    start: int
    end: int
    text: str


def _spans(text: str, pattern: re.Pattern) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in pattern.finditer(text) if m.group().strip()]


def _pieces(text: str, count: Callable[[str], int], limit: int) -> list[tuple[int, int, int]]:
    """(start, end, tokens) for each block; a block over the limit is split at sentences, then words."""
    out = []
    for start, end in _spans(text, _BLOCK):
        n = count(text[start:end])
        if n <= limit:
            out.append((start, end, n))
            continue
        for s, e in _spans(text[start:end], _SENTENCE):
            s, e = start + s, start + e
            n = count(text[s:e])
            if n <= limit:
                out.append((s, e, n))
                continue
            words = [(m.start() + s, m.end() + s) for m in re.finditer(r"\S+\s*", text[s:e])]
            step = max(1, len(words) * limit // (n + 1))
            for i in range(0, len(words), step):
                ws, we = words[i][0], words[min(i + step, len(words)) - 1][1]
                out.append((ws, we, count(text[ws:we])))
    return out


def chunk_page(page: Page, count: Callable[[str], int], max_tokens: int = MAX_TOKENS,
               overlap: int = OVERLAP_TOKENS) -> list[Chunk]:
    """Pack a page's blocks into chunks of at most max_tokens; each chunk starts with up to `overlap`
    tokens of whole blocks from the end of the one before, and a heading always starts a new chunk."""
    text = page.text
    pieces = _pieces(text, count, max_tokens)
    chunks: list[Chunk] = []
    current: list[tuple[int, int, int]] = []
    tokens = 0
    for piece in pieces:
        is_heading = text[piece[0]] == "#"
        if current and (tokens + piece[2] > max_tokens or is_heading):
            chunks.append(Chunk(page.number, current[0][0], current[-1][1], text[current[0][0]:current[-1][1]]))
            carried: list[tuple[int, int, int]] = []
            if not is_heading:
                for prev in reversed(current):
                    if sum(p[2] for p in carried) + prev[2] > overlap or prev is current[0]:
                        break
                    carried.insert(0, prev)
            current, tokens = carried, sum(p[2] for p in carried)
        current.append(piece)
        tokens += piece[2]
    if current:
        chunks.append(Chunk(page.number, current[0][0], current[-1][1], text[current[0][0]:current[-1][1]]))
    return chunks


def chunk_pages(pages: Iterable[Page], count: Callable[[str], int], max_tokens: int = MAX_TOKENS,
                overlap: int = OVERLAP_TOKENS) -> list[Chunk]:
    return [c for p in pages for c in chunk_page(p, count, max_tokens, overlap)]
