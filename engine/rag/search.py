"""Hybrid retrieval: BM25 and dense cosine ranks fused (reciprocal rank fusion), neighbouring chunks merged."""
from __future__ import annotations

import functools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from threadpoolctl import threadpool_limits

from engine.rag.embed import Embedder
from engine.rag.store import ChunkRow, Store

CANDIDATES = 50
_LEXICAL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bm25")
# Chosen by `python -m bench.tune_fusion` on its own question set (the Libtasn1 manual), best of k in {5, 20,
# 60} x dense weight in {0.25 … 1}: tuning recall@1/@5 0.90/1.00; on the held-out eval 0.875/1.00, where
# Cormack's k=60 with equal weights gave 0.844/1.00.
RRF_K = 5
LEXICAL_WEIGHT = 1.0
DENSE_WEIGHT = 0.5
COMMON_DF = 5_000
COMMON_FRACTION = 0.05
STOPWORDS = frozenset(
    "a an and are as at be by do does for from has have how i in is it of on or that the this to was what when "
    "where which who why will with you your can into about there their they them than then these those".split())


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    page: int | None
    score: float
    snippet: str
    text: str
    chunk_ids: tuple[int, ...]


def query_terms(text: str) -> list[str]:
    """The query's words as quoted FTS5 phrases (syntax characters in user text cannot break the query)."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS]
    return [f'"{w}"' for w in dict.fromkeys(words)]


def fts_query(text: str) -> str:
    """Any of the query's words."""
    return " OR ".join(query_terms(text))


def ranked_terms(store: Store, terms: list[str]) -> list[str]:
    """Leave out of the ranking the terms that are both expensive and weak, when rarer ones remain: found in
    more than COMMON_DF chunks and in more than COMMON_FRACTION of them. FTS5 scores every chunk that
    matches (about 2 us each): one word in 30 % of 100k chunks cost 65 ms, while its BM25 weight (idf ~0.8)
    is a tenth of a rare word's. Below COMMON_DF matches a term costs under 10 ms and always counts."""
    chunks = store.lexical_stats()["chunks"]
    if len(terms) < 2 or chunks <= COMMON_DF:
        return terms
    limit = max(COMMON_DF, COMMON_FRACTION * chunks)
    rare = [t for t in terms if store.document_frequency(t) <= limit]
    return rare or terms


def snippet(text: str, query: str, width: int = 220) -> str:
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS and len(w) > 2]
    low = text.lower()
    at = min((low.find(w) for w in words if w in low), default=0)
    start = max(0, at - width // 3)
    piece = " ".join(text[start:start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def lexical_ranks(store: Store, cid: int, query: str) -> list[int]:
    terms = ranked_terms(store, query_terms(query))
    return [row[0] for row in store.bm25(cid, " OR ".join(terms), CANDIDATES)] if terms else []


@functools.cache
def _quiet_blas() -> None:
    """One BLAS thread for the whole process. OpenBLAS threads keep spinning after a matrix product and
    fight llama.cpp's threads for the cores: measured on 2 cores, a 5 ms query embedding took 36 ms when
    it followed a 10k-vector product. The products here are small; llama.cpp does the heavy work."""
    threadpool_limits(limits=1, user_api="blas")


def dense_ranks(store: Store, embedder: Embedder | None, cid: int, query: str) -> list[int]:
    if embedder is None:
        return []
    _quiet_blas()
    vector = embedder.embed_query(query)  # first: it needs no lock on the store, which BM25 may hold
    return store.vector_index(cid, embedder.path.name).search(vector, CANDIDATES)


def fuse(lexical: list[int], dense: list[int]) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of the two rankings."""
    scores: dict[int, float] = {}
    for ranking, weight in ((lexical, LEXICAL_WEIGHT), (dense, DENSE_WEIGHT)):
        for rank, chunk_id in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def merge_rows(rows: list[ChunkRow]) -> str:
    """Text of neighbouring chunks of one page, overlap removed, from their character offsets."""
    rows = sorted(rows, key=lambda r: r.ord)
    text, end = rows[0].text, rows[0].end
    for r in rows[1:]:
        text += r.text[max(0, end - r.start):] if r.page == rows[0].page else "\n" + r.text
        end = r.end
    return text


def search(store: Store, embedder: Embedder | None, cid: int, query: str, k: int = 5,
           mode: str = "hybrid") -> list[Hit]:
    """The k best passages for `query`; mode is hybrid, bm25 or dense."""
    # SQLite and llama.cpp both release the GIL: BM25 runs while the query is embedded and scored.
    lexical_job = _LEXICAL.submit(lexical_ranks, store, cid, query) if mode in ("hybrid", "bm25") else None
    dense = dense_ranks(store, embedder, cid, query) if mode in ("hybrid", "dense") else []
    lexical = lexical_job.result() if lexical_job is not None else []
    fused = fuse(lexical, dense)[:k * 2]
    rows = store.chunks([chunk_id for chunk_id, _ in fused])
    groups: list[list[ChunkRow]] = []
    scores: list[float] = []
    for chunk_id, score in fused:
        row = rows.get(chunk_id)
        if row is None:
            continue
        near = next((g for g in groups if g[0].file_id == row.file_id and g[0].page == row.page
                     and any(abs(r.ord - row.ord) == 1 for r in g)), None)
        if near is not None:
            near.append(row)
            continue
        if len(groups) < k:
            groups.append([row])
            scores.append(score)
    return [Hit(g[0].path, g[0].page, round(s, 5), snippet(merge_rows(g), query), merge_rows(g),
                tuple(r.id for r in sorted(g, key=lambda r: r.ord))) for g, s in zip(groups, scores)]
