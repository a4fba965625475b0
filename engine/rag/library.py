"""Collections of documents: index them, search them, and build the numbered context an answer cites."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from engine.events import Progress, Source
from engine.models.convert_bert import ensure_default_embedder
from engine.paths import data_dir, models_dir
from engine.rag.embed import Embedder
from engine.rag.index import Indexer, IndexReport, pending_changes
from engine.rag.search import STOPWORDS, Hit, merge_rows, search
from engine.rag.store import ChunkRow, CollectionSummary, Store

MAX_CHARS_PER_TOKEN = 10  # no tokenizer packs more into a token on ordinary text
CHARS_PER_TOKEN = 4  # what ordinary English text averages
ESTIMATE_MARGIN = 1.25  # an estimate without the tokenizer errs high: too many tokens only sends fewer passages
INSTRUCTION = ("Answer the question using only the numbered sources below. Cite the sources you use as [1], [2]. "
               "If the sources do not contain the answer, say so.")
MORE_SOURCES = "More numbered sources:"  # heads the passages a follow-up adds, in its own turn


@dataclass(frozen=True, slots=True)
class Passages:
    """How a question's passages are chosen when the collection is not sent whole."""

    k: int = 5  # passages retrieved (neighbouring chunks of a page merged into one)
    tokens: int | None = None  # what a question's new passages may take at most; None: what the context has room for
    trim_chars: int | None = None  # each cut to this many characters around its best-matching sentence; None: whole


# Chosen by `ponder bench --only documents_budget` (bench/document_answers.py) with the default model answering
# (greedy, thinking Off): on the 20 tuning questions 1, 2 and 3 passages got 17, 17 and 15 answers right in 347,
# 587 and 829 prompt tokens; the best passage alone holds the answer as often as the 5 best (0.95) there, but on
# the held-out 32 it holds it less often (0.906 against 0.938 for 2 and 0.969 for 3), so of the two that tie
# on the tuning answers, 2: one passage of margin. The held-out 32 then got 26, 29 and 26 right with 1, 2 and 3
# (322, 606 and 947 tokens): a third passage, read in full before the first token, more often distracted the
# model than it brought the answer. Cutting passages to the sentences around their match lost answers on both
# sets at every size tried, so passages stay whole.
PASSAGES = Passages(k=2)


@dataclass(frozen=True, slots=True)
class DocumentContext:
    """What an answer about documents was given: the text, its numbered sources, and how it was chosen."""

    text: str  # every passage the conversation has been given so far, numbered
    sources: tuple[Source, ...]
    note: str = ""  # why not all of the collection was sent, when it was not
    # A follow-up that keeps its conversation's passages: `base`, the passages of the system prompt (the first
    # ones, byte for byte), and `added`, the new ones this question brings, sent in its own turn. The text is
    # base, the earlier follow-ups' additions, then `added`. Both empty: `text` is the system prompt's.
    base: str = ""
    added: str = ""

    @property
    def in_system(self) -> str:
        """The passages that belong in the system prompt."""
        return self.base or self.text


class Library:
    """The document side of the engine. The embedder loads on first use (a second or two)."""

    def __init__(self, path: Path | None = None, embedder: Embedder | None = None) -> None:
        self.store = Store(path or data_dir() / "collections.sqlite3")
        self._embedder = embedder
        self.passages = PASSAGES

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(ensure_default_embedder(models_dir() / "embedding"))
        return self._embedder

    def close(self) -> None:
        self.store.close()
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None

    def index(self, name: str, paths: list[str] | None = None, on_progress: Callable[[Progress], None] | None = None,
              is_cancelled: Callable[[], bool] | None = None, embed: bool = True) -> IndexReport:
        return Indexer(self.store, self.embedder).index(name, paths, on_progress, is_cancelled, embed)

    def pending(self, name: str) -> list[str]:
        """Files of the collection that changed on disk since its last indexing (for watching folders)."""
        return pending_changes(self.store, self.store.collection_id(name))

    def problems(self, name: str) -> list[tuple[str, str]]:
        """The collection's files that were skipped, with the reason for each."""
        return sorted((p, f.skipped) for p, f in self.store.files(self.store.collection_id(name)).items() if f.skipped)

    def search(self, name: str, query: str, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        cid = self.store.collection_id(name)
        return search(self.store, self.embedder if mode != "bm25" else None, cid, query, k, mode)

    def collections(self) -> list[CollectionSummary]:
        return self.store.collections()

    def rename(self, old: str, new: str) -> None:
        self.store.rename(old, new)

    def remove(self, name: str) -> None:
        self.store.remove(name)

    def context(self, name: str, question: str, count_tokens: Callable[[str], int], budget: int,
                kept: DocumentContext | None = None, passages: Passages | None = None,
                read_within: tuple[float | None, float | None] = (None, None)) -> DocumentContext:
        """The whole collection when it fits in `budget` tokens, else the k best passages (and a note).

        `kept`: what this conversation's last answer was given. Its passages stay as they were, byte for byte,
        so the model's cache still holds them (a follow-up reads only what is new); passages it already has are
        not sent again, and new ones follow with the next numbers, as the `added` of the result (they go in the
        question's own turn). When they no longer fit, the passages start afresh. `passages` says how many and
        how long (this library's `passages` unless given).
        `read_within`: (seconds, tokens per second): a whole collection the model would take longer than that to
        read is searched instead, and the note says so."""
        choice = passages or self.passages
        cid = self.store.collection_id(name)
        chars = self.store.text_length(cid)
        if chars > budget * MAX_CHARS_PER_TOKEN:  # too big for sure: don't load and tokenize all of it
            why = f"The collection is too large to send whole (about {chars // CHARS_PER_TOKEN:,} tokens; " \
                  f"{budget:,} fit with this question)"
        else:
            pages: dict[tuple[str, int | None], list[ChunkRow]] = {}
            for row in self.store.file_chunks(cid):
                pages.setdefault((row.path, row.page), []).append(row)
            text, sources = _numbered([(path, page, merge_rows(rows), 1.0) for (path, page), rows in pages.items()])
            tokens = count_tokens(text)
            limit_s, tok_s = read_within
            if tokens > budget:
                why = (f"The collection is too large to send whole ({tokens:,} tokens; {budget:,} fit with this "
                       f"question)")
            elif limit_s and tok_s and tokens / tok_s > limit_s:
                why = (f"Reading the whole collection ({tokens:,} tokens) would take about {tokens / tok_s:.0f} s, "
                       f"more than the {limit_s:.0f} s set in Preferences")
            else:
                return DocumentContext(text, sources)
        note = lambda n: f"{why}, so the answer uses the {n} most relevant passage{'s' if n != 1 else ''}."
        hits = distinct(search(self.store, self.embedder, cid, question, choice.k))
        if choice.trim_chars:
            hits = [replace(h, text=around_match(h.text, question, choice.trim_chars)) for h in hits]
        if kept is not None and kept.sources:
            kept_tokens = count_tokens(kept.text)
            new = [h for h in hits if not _already_in(h.text, kept.text)]
            cap = budget if choice.tokens is None else min(budget, kept_tokens + choice.tokens)
            grown = _grow(kept, new, count_tokens, cap)
            if grown is not None:
                text, sources = grown
                added = text[len(kept.text):].lstrip("\n")
                return DocumentContext(text, sources, note(len(sources)), base=kept.in_system, added=added)
        cap = budget if choice.tokens is None else min(budget, choice.tokens)
        while hits:
            text, sources = _numbered([(h.path, h.page, h.text, h.score) for h in hits])
            if count_tokens(text) <= cap:
                break
            hits = hits[:-1]
        return DocumentContext(text if hits else "", sources if hits else (), note(len(hits)))


_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z0-9`*•(\"'])|\n\s*\n")


def around_match(text: str, question: str, max_chars: int) -> str:
    """The sentences of `text` around the one that shares most of the question's words, at most `max_chars`
    (whole sentences; the best one alone if it is longer). Text that fits is returned as it is."""
    if len(text) <= max_chars:
        return text
    sentences = [x for x in _SENTENCE_END.split(text) if x.strip()]
    words = {w for w in re.findall(r"\w+", question.lower()) if w not in STOPWORDS and len(w) > 2}
    score = [len(words & set(re.findall(r"\w+", x.lower()))) for x in sentences]
    best = max(range(len(sentences)), key=lambda i: (score[i], -i))
    lo = hi = best
    size = len(sentences[best])
    while True:  # grow one sentence at a time, the better-scoring side first
        sides = [i for i in (lo - 1, hi + 1) if 0 <= i < len(sentences) and size + len(sentences[i]) + 1 <= max_chars]
        if not sides:
            break
        i = max(sides, key=lambda j: (score[j], -abs(j - best)))
        lo, hi = min(lo, i), max(hi, i)
        size += len(sentences[i]) + 1
    return " ".join(s.strip() for s in sentences[lo:hi + 1])


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _already_in(text: str, sent: str) -> bool:
    """Whether `text` was sent already, whitespace aside (a neighbour merged in, or the same page)."""
    return _normal(text) in _normal(sent)


def distinct(hits: list[Hit]) -> list[Hit]:
    """Hits whose text no better hit already holds: a file copied into two folders is sent once."""
    out: list[Hit] = []
    for h in hits:
        if not any(_already_in(h.text, o.text) for o in out):
            out.append(h)
    return out


def _grow(kept: DocumentContext, new: list[Hit], count_tokens: Callable[[str], int],
          cap: int) -> tuple[str, tuple[Source, ...]] | None:
    """`kept` unchanged, then as many of the `new` hits as fit in `cap`, numbered on; None if `kept` alone
    does not fit."""
    while True:
        text, sources = _numbered([(h.path, h.page, h.text, h.score) for h in new], start=len(kept.sources) + 1)
        whole = kept.text + ("\n\n" + text if new else "")
        if count_tokens(whole) <= cap:
            return whole, kept.sources + sources
        if not new:
            return None
        new = new[:-1]


def estimated_tokens(text: str) -> int:
    """Tokens `text` takes where the model's tokenizer is out of reach (a remote server), erring high."""
    return math.ceil(len(text) / CHARS_PER_TOKEN * ESTIMATE_MARGIN)


def _numbered(parts: list[tuple[str, int | None, str, float]],
              start: int = 1) -> tuple[str, tuple[Source, ...]]:
    blocks, sources = [], []
    for n, (path, page, text, score) in enumerate(parts, start=start):
        where = Path(path).name + (f", page {page}" if page is not None else "")
        blocks.append(f"[{n}] {where}\n{text.strip()}")
        sources.append(Source(n, path, page, " ".join(text.split())[:220], score))
    return "\n\n".join(blocks), tuple(sources)
