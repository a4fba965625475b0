"""The vector index: exact for small collections, IVF lists above EXACT_BELOW that find what exact search finds
on clustered vectors (as real embeddings are)."""
from __future__ import annotations

import numpy as np

from engine.rag.vectors import VectorIndex


def clustered(n: int, dim: int = 64, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_small_collections_are_searched_exactly():
    m = clustered(500)
    ids = np.arange(1000, 1500)
    index = VectorIndex(ids, m)
    assert index.exact
    q = m[7]
    assert index.search(q, 3)[0] == 1007
    assert index.search(q, 3) == [int(ids[i]) for i in np.argsort(-(m @ q))[:3]]
    assert VectorIndex(np.zeros(0, np.int64), np.zeros((0, 0), np.float32)).search(q, 5) == []


def test_ivf_finds_what_exact_search_finds():
    m = clustered(30_000)
    ids = np.arange(30_000) * 3  # ids are not row numbers
    index = VectorIndex(ids.copy(), m.copy(), exact_below=1000)
    assert not index.exact and len(index) == 30_000
    assert sorted(index.ids.tolist()) == ids.tolist()  # reordered by list, nothing lost
    rng = np.random.default_rng(1)
    found = 0
    for row in rng.choice(30_000, 50, replace=False):
        q = m[row] + 0.05 * rng.standard_normal(m.shape[1]).astype(np.float32)
        q /= np.linalg.norm(q)
        exact = {int(ids[i]) for i in np.argsort(-(m @ q))[:10]}
        got = index.search(q, 10)
        assert len(got) == 10 and len(set(got)) == 10
        found += len(exact & set(got))
    assert found / 500 >= 0.9


def test_ivf_results_come_nearest_first():
    m = clustered(5000)
    index = VectorIndex(np.arange(5000), m, exact_below=100)
    q = m[42]
    got = index.search(q, 20)
    scores = [float(m[i] @ q) for i in got]
    assert got[0] == 42 and scores == sorted(scores, reverse=True)
