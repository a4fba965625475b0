"""In a large index, terms that match very many chunks are left out of the BM25 ranking when rarer ones remain."""
from __future__ import annotations

from engine.rag import search
from engine.rag.chunk import Chunk
from engine.rag.store import Store


def test_common_terms_are_left_out_only_when_large_and_rarer_terms_remain(tmp_path, monkeypatch):
    store = Store(tmp_path / "i.sqlite3")
    cid = store.collection_id("c", create=True)
    chunks = [Chunk(None, 0, 0, f"common word number {i}" + (" rare" if i == 3 else "")) for i in range(60)]
    store.put_file(cid, "/f.txt", 0, 0, "x", "", chunks)
    terms = search.query_terms("common rare")
    assert search.ranked_terms(store, terms) == terms  # 60 chunks: every term is cheap, every term counts
    monkeypatch.setattr(search, "COMMON_DF", 10)
    assert store.document_frequency('"common"') == 60
    assert search.ranked_terms(store, terms) == ['"rare"']
    assert search.ranked_terms(store, search.query_terms("common word")) == ['"common"', '"word"']  # none rarer
    assert search.lexical_ranks(store, cid, "common rare")[0] == store.q(
        "SELECT id FROM chunks WHERE text LIKE '%rare'")[0][0]


def test_document_frequencies_are_forgotten_after_a_write(tmp_path):
    store = Store(tmp_path / "i.sqlite3")
    cid = store.collection_id("c", create=True)
    store.put_file(cid, "/a.txt", 0, 0, "a", "", [Chunk(None, 0, 0, "apple")])
    assert store.document_frequency('"apple"') == 1
    store.put_file(cid, "/b.txt", 0, 0, "b", "", [Chunk(None, 0, 0, "apple pie")])
    assert store.document_frequency('"apple"') == 2
