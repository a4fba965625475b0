"""Indexing a folder: incremental, lexical first, resumable, and citations that land on the right page."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from engine import AskOptions, CollectionError, SamplingSettings
from engine.rag.index import Indexer
from engine.rag.library import Library
from tests.engine.rag.documents import write_docx, write_epub, write_pdf

FACTS = ["The capital of Freedonia is Glimmerton.", "Freedonia exports mostly purple cabbages.",
         "The Freedonian anthem was written in 1871 by Otto Brass.", "Glimmerton has exactly seven bridges."]


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    write_pdf(root / "atlas.pdf", FACTS)
    write_docx(root / "report.docx")
    write_epub(root / "tales.epub")
    (root / "notes.md").write_text("# Notes\n\nThe tea ceremony uses matcha whisked in a chawan.\n")
    (root / "page.html").write_text("<html><body><p>Kestrels hover before they dive.</p></body></html>")
    (root / "tool.py").write_text("def greet():\n    return 'bonjour'\n")
    (root / "blob.txt").write_bytes(b"\x00\xff\x00 binary" * 50)
    (root / "bad.pdf").write_bytes(b"%PDF-1.4 not really")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    return root


@pytest.fixture
def library(tmp_path, embedder):
    lib = Library(tmp_path / "index.sqlite3", embedder)
    yield lib
    lib.store.close()


def test_index_every_format_and_skip_bad_files_with_reasons(library, folder):
    report = library.index("docs", [str(folder)])
    assert report.files_seen == 9 and report.indexed == 6
    reasons = {os.path.basename(p): r for p, r in report.skipped}
    assert set(reasons) == {"blob.txt", "bad.pdf", "photo.png"}
    assert "binary" in reasons["blob.txt"] and "PDF" in reasons["bad.pdf"] and "not a supported" in reasons["photo.png"]
    assert report.embedded == report.chunks > 0
    for query, name in [("Glimmerton bridges", "atlas.pdf"), ("lighthouse ships harbour", "report.docx"),
                        ("tailor moonlight coat", "tales.epub"), ("matcha chawan", "notes.md"),
                        ("kestrel hover", "page.html"), ("greet bonjour", "tool.py")]:
        assert os.path.basename(library.search("docs", query, k=1)[0].path) == name, query


def test_citations_map_to_the_right_pdf_page(library, folder):
    library.index("docs", [str(folder)])
    for page, fact in enumerate(FACTS, start=1):
        hit = library.search("docs", fact, k=1)[0]
        assert hit.path.endswith("atlas.pdf") and hit.page == page, fact


def test_unchanged_files_are_not_embedded_again(library, folder, embedder):
    library.index("docs", [str(folder)])
    calls = embedder.calls
    again = library.index("docs")
    assert embedder.calls == calls and again.indexed == 0 and again.unchanged == 9
    os.utime(folder / "notes.md")  # touched, same content
    assert library.index("docs").indexed == 0 and embedder.calls == calls
    (folder / "notes.md").write_text("# Notes\n\nOolong is partly oxidised.\n")
    changed = library.index("docs")
    assert changed.indexed == 1 and embedder.calls - calls == changed.chunks
    assert library.search("docs", "oolong oxidised", k=1)[0].path.endswith("notes.md")


def test_deleted_files_disappear_from_results(library, folder):
    library.index("docs", [str(folder)])
    (folder / "page.html").unlink()
    assert library.index("docs").deleted == 1
    assert all(not h.path.endswith("page.html") for h in library.search("docs", "kestrels hover dive", k=5))


def test_lexical_first_then_vectors(library, folder):
    library.index("docs", [str(folder)], embed=False)
    assert library.search("docs", "Glimmerton bridges", k=1, mode="bm25")[0].path.endswith("atlas.pdf")
    assert library.search("docs", "Glimmerton bridges", k=1, mode="dense") == []
    assert library.collections()[0].embedded == 0
    report = library.index("docs")
    assert report.embedded == library.collections()[0].chunks
    assert library.search("docs", "Glimmerton bridges", k=1, mode="dense")[0].path.endswith("atlas.pdf")


def test_huge_file_is_skipped(tmp_path, embedder):
    lib = Library(tmp_path / "i.sqlite3", embedder)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "huge.txt").write_text("word " * 10_000)
    report = Indexer(lib.store, embedder, max_file_bytes=1000).index("c", [str(tmp_path / "d")])
    assert "over the" in report.skipped[0][1]


def test_collections_rename_remove_and_bad_names(library, folder):
    library.index("docs", [str(folder)], embed=False)
    library.rename("docs", "papers")
    assert [c.name for c in library.collections()] == ["papers"]
    with pytest.raises(CollectionError, match="no collection"):
        library.search("docs", "x")
    library.remove("papers")
    assert library.collections() == []


def test_answer_cites_sources_from_a_small_collection_sent_whole(engine, folder, tmp_path, embedder):
    engine.library = Library(tmp_path / "ask.sqlite3", embedder)
    engine.library.index("docs", [str(folder / "atlas.pdf")])
    answer = engine.ask("What is the capital of Freedonia?", options=AskOptions(
        max_tokens=12, collection="docs", sampling=SamplingSettings(temperature=0)))
    assert [s.page for s in answer.sources] == [1, 2, 3, 4]
    assert "[1] atlas.pdf, page 1" in answer.context and answer.notice == ""
    assert "Glimmerton" in answer.text
    stored = engine.history.messages(answer.conversation_id)[-1]
    assert "The capital of Freedonia is Glimmerton." in stored.meta["prompt"]
    engine.library = None


def test_a_collection_stays_attached_to_its_conversation(engine, folder, tmp_path, embedder):
    engine.library = Library(tmp_path / "attach.sqlite3", embedder)
    engine.library.index("docs", [str(folder / "atlas.pdf")])
    opts = AskOptions(max_tokens=6, sampling=SamplingSettings(temperature=0))
    first = engine.ask("What is the capital of Freedonia?", options=AskOptions(
        max_tokens=6, collection="docs", sampling=SamplingSettings(temperature=0)))
    second = engine.ask("How many bridges does Glimmerton have?", conversation_id=first.conversation_id,
                        options=opts)
    assert second.sources and engine.history.conversation(first.conversation_id).settings["collection"] == "docs"
    third = engine.ask("Thanks.", conversation_id=first.conversation_id, options=AskOptions(
        max_tokens=6, collection="", sampling=SamplingSettings(temperature=0)))
    assert third.sources == () and engine.history.conversation(first.conversation_id).settings["collection"] is None
    engine.library = None


def test_large_collection_falls_back_to_retrieval_and_says_so(engine, tmp_path, embedder):
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(40):
        (docs / f"f{i}.txt").write_text(f"Record {i}: the warehouse in town {i} stores {i * 7} crates of pears. " * 8)
    engine.library = Library(tmp_path / "big.sqlite3", embedder)
    engine.library.index("big", [str(docs)])
    answer = engine.ask("How many crates does town 17 store?", options=AskOptions(
        max_tokens=8, collection="big", sampling=SamplingSettings(temperature=0)))
    assert "too large to send whole" in answer.notice
    assert 0 < len(answer.sources) <= 5 and any(s.path.endswith("f17.txt") for s in answer.sources)
    engine.library = None


def test_killed_mid_index_resumes_where_it_stopped(tmp_path, ponder_home, embedder):
    docs = tmp_path / "stack"
    docs.mkdir()
    for i in range(150):
        (docs / f"n{i:03}.md").write_text(f"# Note {i}\n\n" + f"Paragraph about topic {i}, a distinct word zq{i}. " * 30)
    env = dict(os.environ, PONDER_HOME=str(ponder_home))
    proc = subprocess.Popen([sys.executable, "-m", "app.main", "index", str(docs), "--collection", "killme"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = ponder_home / "data" / "collections.sqlite3"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            with sqlite3.connect(db) as c:
                vectors = c.execute("SELECT count(*) FROM vectors").fetchone()[0]
        except sqlite3.Error:
            continue
        if vectors > 20:
            break
    assert proc.poll() is None, "indexing finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lib = Library(db, embedder)
    named = lambda: next(c for c in lib.collections() if c.name == "killme")
    before = named()
    assert 0 < before.embedded < before.chunks or before.files < 150
    report = lib.index("killme")
    after = named()
    assert after.files == 150 and after.embedded == after.chunks
    assert report.embedded == after.chunks - before.embedded  # only what was missing
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM files GROUP BY path HAVING count(*) > 1").fetchall() == []
    assert lib.search("killme", "zq149", k=1, mode="bm25")[0].path.endswith("n149.md")
    lib.store.close()


def test_pending_changes_are_seen_without_reading_files(library, folder):
    library.index("docs", [str(folder)], embed=False)
    assert library.pending("docs") == []
    (folder / "new.md").write_text("fresh")
    (folder / "page.html").unlink()
    st = (folder / "notes.md").stat()
    os.utime(folder / "notes.md", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert [os.path.basename(p) for p in library.pending("docs")] == ["new.md", "notes.md", "page.html"]
    library.index("docs", embed=False)
    assert library.pending("docs") == []


def test_index_watch_picks_up_a_new_file(tmp_path, ponder_home, embedder):
    docs = tmp_path / "watched"
    docs.mkdir()
    (docs / "a.md").write_text("alpha")
    env = dict(os.environ, PONDER_HOME=str(ponder_home))
    proc = subprocess.Popen([sys.executable, "-m", "app.main", "index", str(docs), "--collection", "watched",
                             "--watch", "0.2", "--no-embed"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert "1 indexed" in proc.stdout.readline()
        (docs / "b.md").write_text("the zebra crossed the savanna")
        assert "1 indexed" in proc.stdout.readline()  # the second run indexed just b.md
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    lib = Library(ponder_home / "data" / "collections.sqlite3", embedder)
    assert lib.search("watched", "zebra savanna", k=1, mode="bm25")[0].path.endswith("b.md")
    lib.store.close()
