"""Incremental indexing: only new or changed files are read; text is searchable (BM25) as soon as a file is
parsed, and vectors fill in behind. Every file and every vector batch is its own transaction, so a run
killed at any point resumes where it stopped."""
from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.errors import Cancelled, DocumentError
from engine.events import Progress
from engine.rag.chunk import chunk_pages
from engine.rag.embed import Embedder
from engine.rag.ingest import is_supported, parse
from engine.rag.store import Store

IGNORED_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}
EMBED_BATCH = 32


@dataclass
class IndexReport:
    collection: str
    files_seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    embedded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False


def walk(roots: list[str], problems: list[tuple[str, str]] | None = None) -> dict[str, os.stat_result]:
    """Every regular file under the roots (a root may be a file), hidden and tool folders left out; what cannot
    be read (a folder without permission, a symlink loop, a pipe) goes to `problems` with the reason."""
    found: dict[str, os.stat_result] = {}
    problems = problems if problems is not None else []

    def note(e: OSError) -> None:
        problems.append((str(e.filename), f"cannot be read: {e.strerror or e}."))

    for root in roots:
        base = Path(root)
        if base.is_file():
            found[str(base)] = base.stat()
            continue
        for folder, dirs, names in os.walk(base, onerror=note):  # symlinked folders are not followed: no loops
            dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not d.startswith("."))
            for name in sorted(names):
                if not name.startswith("."):
                    path = Path(folder) / name
                    try:
                        st = path.stat()
                    except OSError as e:
                        note(e)
                        continue
                    if stat.S_ISREG(st.st_mode):
                        found[str(path)] = st
                    elif not stat.S_ISDIR(st.st_mode):
                        problems.append((str(path), "not a regular file (a device, pipe or socket)."))
    return found


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _compare(store: Store, cid: int, problems: list | None = None):
    """(files on disk, files indexed, added or changed by size/mtime, deleted): a stat per file, no reading."""
    on_disk = walk(store.roots(cid), problems)
    stored = store.files(cid)
    changed = [p for p, st in on_disk.items()
               if p not in stored or (stored[p].size, stored[p].mtime_ns) != (st.st_size, st.st_mtime_ns)]
    return on_disk, stored, changed, sorted(set(stored) - set(on_disk))


def pending_changes(store: Store, cid: int) -> list[str]:
    """Paths added, changed or deleted since they were indexed; cheap enough to poll while the app runs."""
    _, _, changed, deleted = _compare(store, cid)
    return sorted(changed + deleted)


class Indexer:
    def __init__(self, store: Store, embedder: Embedder, max_file_bytes: int | None = None) -> None:
        self.store, self.embedder = store, embedder
        self.model = embedder.path.name
        self.max_file_bytes = max_file_bytes

    def index(self, name: str, paths: list[str] | None = None, on_progress: Callable[[Progress], None] | None = None,
              is_cancelled: Callable[[], bool] | None = None, embed: bool = True) -> IndexReport:
        """Add `paths` to collection `name` (created if new) and bring its index up to date."""
        start = time.perf_counter()
        report = IndexReport(name)
        progress = on_progress or (lambda _p: None)
        cancelled = is_cancelled or (lambda: False)
        roots = [Path(p).expanduser() for p in paths or []]
        for path in roots:
            if not path.exists():
                raise DocumentError(f"{path} does not exist.")
        cid = self.store.collection_id(name, create=True)
        for path in roots:
            self.store.add_root(cid, str(path.resolve()))
        problems: list[tuple[str, str]] = []
        on_disk, stored, todo, deleted = _compare(self.store, cid, problems)
        report.files_seen = len(on_disk)
        unreadable = tuple(p for p, _ in problems)
        for path in deleted:
            if path in unreadable or path.startswith(tuple(p + os.sep for p in unreadable)):
                continue  # there, but unreadable for now: its passages stay until it is readable or gone
            self.store.delete_file(stored[path].id)
            report.deleted += 1
        report.unchanged = len(on_disk) - len(todo)
        try:
            for i, path in enumerate(todo):
                if cancelled():
                    raise Cancelled()
                progress(Progress(i, len(todo), f"Reading {Path(path).name}"))
                try:
                    self._index_file(cid, path, on_disk[path], stored.get(path), report)
                except OSError as e:  # gone or unreadable between the walk and the read: the rest goes on
                    problems.append((path, f"cannot be read: {e.strerror or e}."))
            if embed:
                self._embed(cid, report, progress, cancelled)
        except Cancelled:
            report.cancelled = True
        if report.chunks > 1000:
            self.store.checkpoint()
        report.skipped = [(p, f.skipped) for p, f in self.store.files(cid).items() if f.skipped] + problems
        report.seconds = round(time.perf_counter() - start, 3)
        return report

    def _index_file(self, cid: int, path: str, st: os.stat_result, old, report: IndexReport) -> None:
        digest = _sha256(path)
        if old is not None and old.sha256 == digest:
            self.store.touch_file(old.id, st.st_mtime_ns)  # touched, not changed: nothing to re-embed
            report.unchanged += 1
            return
        chunks, skipped = [], ""
        if not is_supported(Path(path)):
            skipped = f"{Path(path).suffix or 'files without an extension'} is not a supported document type."
        else:
            try:
                doc = parse(Path(path), self.max_file_bytes) if self.max_file_bytes else parse(Path(path))
                chunks = chunk_pages(doc.pages, self.embedder.count_tokens)
                if not chunks:
                    skipped = "no text found (a scanned PDF needs OCR first)."
            except DocumentError as e:
                skipped = e.message
        self.store.put_file(cid, path, st.st_size, st.st_mtime_ns, digest, skipped, chunks)
        report.indexed += 0 if skipped else 1
        report.chunks += len(chunks)

    def _embed(self, cid: int, report: IndexReport, progress, cancelled) -> None:
        missing = self.store.q("""SELECT count(*) FROM chunks k JOIN files f ON k.file_id=f.id
            LEFT JOIN vectors v ON v.chunk_id=k.id AND v.model=? WHERE f.collection_id=? AND v.chunk_id IS NULL""",
                               (self.model, cid))[0][0]
        done = 0
        while rows := self.store.chunks_missing_vectors(cid, self.model, EMBED_BATCH):
            if cancelled():
                raise Cancelled()
            progress(Progress(done, missing, "Embedding"))
            vectors = self.embedder.embed_documents([text for _, text in rows])
            self.store.put_vectors(self.model, [i for i, _ in rows], vectors)
            done += len(rows)
            report.embedded += len(rows)
        progress(Progress(missing, missing, "Embedding"))
