"""The document index: SQLite with FTS5 (BM25) for text and float32 vectors beside it.

Each file is written in one transaction with its chunks, so a killed process
leaves every file either fully indexed or not at all; vectors are filled in by
later transactions and found missing again after a restart.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.database import describe, open_database
from engine.errors import CollectionError
from engine.rag import vectors
from engine.rag.vectors import VectorIndex

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS roots (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path TEXT NOT NULL, PRIMARY KEY (collection_id, path));
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    skipped TEXT NOT NULL DEFAULT '', indexed REAL NOT NULL,
    UNIQUE (collection_id, path));
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL, page INTEGER, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_id, ord);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    model TEXT NOT NULL, vec BLOB NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    """A collection as the documents panel and `ponder collections` list it."""

    name: str
    created: float
    files: int  # indexed files
    skipped: int  # files that could not be read
    chunks: int  # passages
    embedded: int  # passages with a vector (fewer than chunks while vectors are still being made)
    roots: tuple[str, ...] = ()  # the folders and files it was made from


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    skipped: str


@dataclass(frozen=True, slots=True)
class ChunkRow:
    id: int
    path: str
    page: int | None
    start: int
    end: int
    text: str
    ord: int
    file_id: int


class Store:
    """Thread-safe (one connection, one lock). `version` changes whenever vectors or chunks change."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            # Damaged: the collections and their folders are kept; their files are read again on the next index.
            self._db = open_database(self.path, SCHEMA, salvage=("collections", "roots"))
        except sqlite3.DatabaseError as e:
            raise CollectionError(f"The document index {self.path} cannot be opened: {describe(e)}.", str(e)) from None
        self.repair = self._db.recovery
        self._matrix_cache: dict[tuple, VectorIndex] = {}
        self._lexical: dict = {}
        self._generation = 0  # bumped by every write from this process (ids can be reused after a delete)

    def q(self, sql: str, args: tuple = ()) -> list:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise CollectionError(f"The document index failed: {describe(e)}.", str(e)) from None

    @contextlib.contextmanager
    def transaction(self):
        """`with store.transaction():` — BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as e:  # a full disk or read-only folder: the transaction left nothing behind
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise CollectionError(f"The document index could not be saved: {describe(e)}.", str(e)) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- collections ----------------------------------------------------------------------------
    def collection_id(self, name: str, create: bool = False) -> int:
        rows = self.q("SELECT id FROM collections WHERE name=?", (name,))
        if rows:
            return rows[0][0]
        if not create:
            raise CollectionError(f"There is no collection called '{name}'; `ponder collections` lists them.")
        self.q("INSERT INTO collections (name, created) VALUES (?, ?)", (name, time.time()))
        return self.collection_id(name)

    def collections(self) -> list[CollectionSummary]:
        rows = self.q("""SELECT c.name, c.created,
            (SELECT count(*) FROM files f WHERE f.collection_id=c.id AND f.skipped=''),
            (SELECT count(*) FROM files f WHERE f.collection_id=c.id AND f.skipped!=''),
            (SELECT count(*) FROM chunks k JOIN files f ON k.file_id=f.id WHERE f.collection_id=c.id),
            (SELECT count(*) FROM vectors v JOIN chunks k ON v.chunk_id=k.id JOIN files f ON k.file_id=f.id
             WHERE f.collection_id=c.id)
            FROM collections c ORDER BY c.name""")
        return [CollectionSummary(*r, roots=tuple(p for (p,) in self.q(
            "SELECT path FROM roots r JOIN collections c ON r.collection_id=c.id WHERE c.name=? ORDER BY path",
            (r[0],)))) for r in rows]

    def rename(self, old: str, new: str) -> None:
        cid = self.collection_id(old)
        if self.q("SELECT 1 FROM collections WHERE name=?", (new,)):
            raise CollectionError(f"There is already a collection called '{new}'.")
        self.q("UPDATE collections SET name=? WHERE id=?", (new, cid))

    def remove(self, name: str) -> None:
        self.q("DELETE FROM collections WHERE id=?", (self.collection_id(name),))
        self._matrix_cache.clear()

    def add_root(self, collection_id: int, path: str) -> None:
        self.q("INSERT OR IGNORE INTO roots (collection_id, path) VALUES (?, ?)", (collection_id, path))

    def roots(self, collection_id: int) -> list[str]:
        return [p for (p,) in self.q("SELECT path FROM roots WHERE collection_id=? ORDER BY path", (collection_id,))]

    # -- files and chunks -----------------------------------------------------------------------
    def files(self, collection_id: int) -> dict[str, StoredFile]:
        rows = self.q("SELECT id, path, size, mtime_ns, sha256, skipped FROM files WHERE collection_id=?",
                      (collection_id,))
        return {r[1]: StoredFile(*r) for r in rows}

    def put_file(self, collection_id: int, path: str, size: int, mtime_ns: int, sha256: str, skipped: str,
                 chunks: list) -> int:
        """Replace a file and its chunks in one transaction."""
        self._generation += 1
        with self.transaction():
            self._db.execute("DELETE FROM files WHERE collection_id=? AND path=?", (collection_id, path))
            cur = self._db.execute(
                "INSERT INTO files (collection_id, path, size, mtime_ns, sha256, skipped, indexed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (collection_id, path, size, mtime_ns, sha256, skipped, time.time()))
            file_id = cur.lastrowid
            self._db.executemany(
                "INSERT INTO chunks (file_id, ord, page, start, end, text) VALUES (?, ?, ?, ?, ?, ?)",
                [(file_id, i, c.page, c.start, c.end, c.text) for i, c in enumerate(chunks)])
        return file_id

    def touch_file(self, file_id: int, mtime_ns: int) -> None:
        self.q("UPDATE files SET mtime_ns=? WHERE id=?", (mtime_ns, file_id))

    def delete_file(self, file_id: int) -> None:
        self._generation += 1
        self.q("DELETE FROM files WHERE id=?", (file_id,))

    def chunks_missing_vectors(self, collection_id: int, model: str, limit: int) -> list[tuple[int, str]]:
        return self.q("""SELECT k.id, k.text FROM chunks k JOIN files f ON k.file_id=f.id
            LEFT JOIN vectors v ON v.chunk_id=k.id AND v.model=?
            WHERE f.collection_id=? AND v.chunk_id IS NULL ORDER BY k.id LIMIT ?""", (model, collection_id, limit))

    def put_vectors(self, model: str, ids: list[int], vectors: np.ndarray) -> None:
        self._generation += 1
        with self.transaction():
            self._db.executemany("INSERT OR REPLACE INTO vectors (chunk_id, model, vec) VALUES (?, ?, ?)",
                                 [(i, model, v.astype(np.float32).tobytes()) for i, v in zip(ids, vectors)])

    def chunks(self, ids: list[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.q(f"""SELECT k.id, f.path, k.page, k.start, k.end, k.text, k.ord, k.file_id
            FROM chunks k JOIN files f ON k.file_id=f.id WHERE k.id IN ({marks})""", tuple(ids))
        return {r[0]: ChunkRow(*r) for r in rows}

    def file_chunks(self, collection_id: int) -> list[ChunkRow]:
        return [ChunkRow(*r) for r in self.q("""SELECT k.id, f.path, k.page, k.start, k.end, k.text, k.ord, k.file_id
            FROM chunks k JOIN files f ON k.file_id=f.id WHERE f.collection_id=? ORDER BY f.path, k.ord""",
                                             (collection_id,))]

    def text_length(self, collection_id: int) -> int:
        """Characters of chunk text in a collection (overlaps counted twice): sizes it without loading it."""
        return self.q("""SELECT coalesce(sum(length(k.text)), 0) FROM chunks k JOIN files f ON k.file_id=f.id
            WHERE f.collection_id=?""", (collection_id,))[0][0]

    # -- search ---------------------------------------------------------------------------------
    def bm25(self, collection_id: int, match: str, limit: int) -> list[tuple[int, float]]:
        """Best chunks by BM25. FTS5 ranks fastest on its own (ORDER BY rank with a LIMIT), so rank over all
        collections first and keep this one's; only when other collections crowd it out, rank with the join."""
        wide = limit * 4
        rows = self.q("""SELECT k.id, r.rank FROM
            (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) r
            JOIN chunks k ON k.id=r.rowid JOIN files f ON k.file_id=f.id
            WHERE f.collection_id=? ORDER BY r.rank LIMIT ?""", (match, wide, collection_id, limit))
        if len(rows) == limit or not self.q("SELECT 1 FROM collections WHERE id!=? LIMIT 1", (collection_id,)):
            return rows
        return self.q("""SELECT k.id, bm25(chunks_fts) AS score FROM chunks_fts
            JOIN chunks k ON k.id=chunks_fts.rowid JOIN files f ON k.file_id=f.id
            WHERE chunks_fts MATCH ? AND f.collection_id=? ORDER BY score LIMIT ?""", (match, collection_id, limit))

    def matrix(self, collection_id: int, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, vectors) of a collection, in the vector index's order."""
        index = self.vector_index(collection_id, model)
        return index.ids, index.matrix

    def vector_index(self, collection_id: int, model: str) -> VectorIndex:
        """The collection's vectors, indexed; cached until anything is written: by this process (its
        generation counter) or by another one (SQLite's data_version), so checking costs no scan."""
        key = (collection_id, model, *self._version(), vectors.EXACT_BELOW)
        if key not in self._matrix_cache:
            rows = self.q("""SELECT v.chunk_id, v.vec FROM vectors v JOIN chunks k ON v.chunk_id=k.id
                JOIN files f ON k.file_id=f.id WHERE f.collection_id=? AND v.model=?""", (collection_id, model))
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1) \
                if rows else np.zeros((0, 0), np.float32)
            self._matrix_cache = {k: v for k, v in self._matrix_cache.items() if k[:2] != key[:2]}
            self._matrix_cache[key] = VectorIndex(ids, vecs)
        return self._matrix_cache[key]

    def _version(self) -> tuple[int, int]:
        return self._generation, self.q("PRAGMA data_version")[0][0]

    def lexical_stats(self) -> dict:
        """Chunks in the full-text index and a per-term document-frequency cache, valid until the next write."""
        version = self._version()
        if self._lexical.get("version") != version:
            self._lexical = {"version": version, "chunks": self.q("SELECT count(*) FROM chunks")[0][0], "df": {}}
        return self._lexical

    def document_frequency(self, term: str) -> int:
        """Chunks (in all collections) that contain `term` (one quoted FTS5 phrase)."""
        stats = self.lexical_stats()
        if term not in stats["df"]:
            stats["df"][term] = self.q("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (term,))[0][0]
        return stats["df"][term]

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database (after a big indexing run, reads get faster)."""
        self.q("PRAGMA wal_checkpoint(TRUNCATE)")
