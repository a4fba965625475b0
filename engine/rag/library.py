"""Collections of documents: index them, search them, and build the numbered context an answer cites."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.events import Progress, Source
from engine.models.convert_bert import ensure_default_embedder
from engine.paths import data_dir, models_dir
from engine.rag.embed import Embedder
from engine.rag.index import Indexer, IndexReport, pending_changes
from engine.rag.search import Hit, merge_rows, search
from engine.rag.store import ChunkRow, CollectionSummary, Store

MAX_CHARS_PER_TOKEN = 10  # no tokenizer packs more into a token on ordinary text
CHARS_PER_TOKEN = 4  # what ordinary English text averages
ESTIMATE_MARGIN = 1.25  # an estimate without the tokenizer errs high: too many tokens only sends fewer passages
INSTRUCTION = ("Answer the question using only the numbered sources below. Cite the sources you use as [1], [2]. "
               "If the sources do not contain the answer, say so.")


@dataclass(frozen=True, slots=True)
class DocumentContext:
    """What an answer about documents was given: the text, its numbered sources, and how it was chosen."""

    text: str
    sources: tuple[Source, ...]
    note: str = ""  # why not all of the collection was sent, when it was not


class Library:
    """The document side of the engine. The embedder loads on first use (a second or two)."""

    def __init__(self, path: Path | None = None, embedder: Embedder | None = None) -> None:
        self.store = Store(path or data_dir() / "collections.sqlite3")
        self._embedder = embedder

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
                k: int = 5) -> DocumentContext:
        """The whole collection when it fits in `budget` tokens, else the k best passages (and a note)."""
        cid = self.store.collection_id(name)
        chars = self.store.text_length(cid)
        if chars > budget * MAX_CHARS_PER_TOKEN:  # too big for sure: don't load and tokenize all of it
            size = f"about {chars // CHARS_PER_TOKEN:,}"
        else:
            pages: dict[tuple[str, int | None], list[ChunkRow]] = {}
            for row in self.store.file_chunks(cid):
                pages.setdefault((row.path, row.page), []).append(row)
            text, sources = _numbered([(path, page, merge_rows(rows), 1.0) for (path, page), rows in pages.items()])
            tokens = count_tokens(text)
            if tokens <= budget:
                return DocumentContext(text, sources)
            size = f"{tokens:,}"
        hits = search(self.store, self.embedder, cid, question, k)
        while hits:
            text, sources = _numbered([(h.path, h.page, h.text, h.score) for h in hits])
            if count_tokens(text) <= budget:
                break
            hits = hits[:-1]
        note = (f"The collection is too large to send whole ({size} tokens; {budget:,} fit with this question), "
                f"so the answer uses the {len(hits)} most relevant passages.")
        return DocumentContext(text if hits else "", sources if hits else (), note)


def estimated_tokens(text: str) -> int:
    """Tokens `text` takes where the model's tokenizer is out of reach (a remote server), erring high."""
    return math.ceil(len(text) / CHARS_PER_TOKEN * ESTIMATE_MARGIN)


def _numbered(parts: list[tuple[str, int | None, str, float]]) -> tuple[str, tuple[Source, ...]]:
    blocks, sources = [], []
    for n, (path, page, text, score) in enumerate(parts, start=1):
        where = Path(path).name + (f", page {page}" if page is not None else "")
        blocks.append(f"[{n}] {where}\n{text.strip()}")
        sources.append(Source(n, path, page, " ".join(text.split())[:220], score))
    return "\n\n".join(blocks), tuple(sources)
