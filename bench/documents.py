"""Documents: indexing throughput against raw llama-cpp-python embedding, search latency at 10k and 100k
chunks, and retrieval quality (recall@1, recall@5) for BM25, dense and hybrid on real documents."""
from __future__ import annotations

import functools
import random
import tempfile
import time
from pathlib import Path

import llama_cpp
import numpy as np

from bench import retrieval_eval
from bench.runner import Result
from engine.models.convert_bert import ensure_default_embedder
from engine.paths import models_dir
from engine.rag.chunk import Chunk
from engine.rag.embed import Embedder
from engine.rag.library import Library
from engine.rag import vectors
from engine.rag.search import fts_query
from engine.rag.store import Store
from engine.runtime.backend import default_threads

QUERIES = 60


@functools.cache
def embedder() -> Embedder:
    return Embedder(ensure_default_embedder(models_dir() / "embedding"))


def _fresh_library() -> Library:
    return Library(Path(tempfile.mkdtemp(prefix="ponder-bench-")) / "index.sqlite3", embedder())


@functools.cache
def eval_library() -> tuple[Library, float]:
    """The eval corpus indexed once: (library, seconds it took end to end)."""
    library = _fresh_library()
    start = time.perf_counter()
    library.index("eval", [str(p) for p in retrieval_eval.corpus_paths()])
    return library, time.perf_counter() - start


def bench_index_throughput() -> list[Result]:
    """Chunks/s through parse + chunk + embed + store vs raw Llama.embed() of the very same chunk texts."""
    library, seconds = eval_library()
    texts = [row.text for row in library.store.file_chunks(library.store.collection_id("eval"))]
    threads = default_threads()
    raw = llama_cpp.Llama(str(embedder().path), embedding=True, n_ctx=512, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    start = time.perf_counter()
    raw.embed(texts)
    raw_seconds = time.perf_counter() - start
    return [Result("index_throughput", "chunks/s", round(len(texts) / seconds, 2),
                   round(len(texts) / raw_seconds, 2), ">=0.90")]


VOCABULARY = 20_000


@functools.cache
def _vocabulary() -> tuple[list[str], list[float]]:
    """Pseudo-words with Zipf frequencies (exponent 1.07, as in English text), so term statistics are realistic."""
    rng = random.Random(0)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    words = sorted({"".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(VOCABULARY * 2)})
    words = words[:VOCABULARY]
    rng.shuffle(words)
    return words, [1 / (rank + 1) ** 1.07 for rank in range(len(words))]


def _synthetic_store(n_chunks: int, dim: int) -> tuple[Store, int]:
    rng = random.Random(n_chunks)
    words, weights = _vocabulary()
    store = Store(Path(tempfile.mkdtemp(prefix="ponder-bench-")) / "synthetic.sqlite3")
    cid = store.collection_id("synthetic", create=True)
    vectors = np.random.default_rng(0).standard_normal((n_chunks, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    per_file = 200
    for f in range(n_chunks // per_file):
        chunks = [Chunk(None, 0, 0, " ".join(rng.choices(words, weights, k=180))) for _ in range(per_file)]
        store.put_file(cid, f"/synthetic/{f}.txt", 0, 0, str(f), "", chunks)
    ids = [r[0] for r in store.q("SELECT id FROM chunks ORDER BY id")]
    for i in range(0, len(ids), 5000):
        store.put_vectors(embedder().path.name, ids[i:i + 5000], vectors[i:i + 5000])
    store.checkpoint()
    return store, cid


def _latency(n_chunks: int) -> Result:
    """search() p95 vs the raw parts it is made of (query embedding + FTS5 query + one matrix product)."""
    from engine.rag.search import search

    store, cid = _synthetic_store(n_chunks, embedder().dim)
    rng = random.Random(1)
    words, _ = _vocabulary()
    queries = [" ".join(rng.choices(words[50:5000], k=4)) for _ in range(QUERIES)]  # content words
    search(store, embedder(), cid, queries[0])  # loads the vector matrix once, as a running app has
    ours, raw = [], []
    ids, matrix = store.matrix(cid, embedder().path.name)
    for q in queries:
        start = time.perf_counter()
        search(store, embedder(), cid, q, k=5)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        vector = embedder().embed_query(q)
        store.bm25(cid, fts_query(q), 50)
        scores = matrix @ vector
        np.argpartition(-scores, 50)[:50]
        raw.append(time.perf_counter() - start)
    store.close()
    p95 = lambda xs: float(np.percentile(np.array(xs) * 1000, 95))
    return Result(f"search_p95_{n_chunks // 1000}k", "ms", round(p95(ours), 2), round(p95(raw), 2), "<=1.5")


def bench_search_latency() -> list[Result]:
    return [_latency(10_000), _latency(100_000)]


def bench_retrieval_quality() -> list[Result]:
    library, _ = eval_library()
    bm25 = retrieval_eval.recall(library, "eval", "bm25")
    rows = []
    for mode in ("bm25", "dense", "hybrid"):
        at1, at5 = bm25 if mode == "bm25" else retrieval_eval.recall(library, "eval", mode)
        goal = ">=1.0" if mode == "hybrid" else ">=0"  # hybrid must not lose to BM25 alone
        rows.append(Result(f"recall@1_{mode}", "fraction", round(at1, 3), round(bm25[0], 3), goal))
        rows.append(Result(f"recall@5_{mode}", "fraction", round(at5, 3), round(bm25[1], 3), goal))
    exact = retrieval_eval.recall(library, "eval", "hybrid")
    saved, vectors.EXACT_BELOW = vectors.EXACT_BELOW, 0  # the IVF index that collections over 20k chunks use
    try:
        at1, at5 = retrieval_eval.recall(library, "eval", "hybrid")
    finally:
        vectors.EXACT_BELOW = saved
    rows.append(Result("recall@1_hybrid_ivf", "fraction", round(at1, 3), round(exact[0], 3), ">=0.95"))
    rows.append(Result("recall@5_hybrid_ivf", "fraction", round(at5, 3), round(exact[1], 3), ">=0.95"))
    return rows
