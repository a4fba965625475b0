"""A small disk that fills up, and a read-only one (a real tmpfs, mounted and removed by the test): indexing, a
download, history and settings give a sentence, corrupt nothing, and work again once there is room."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from bench.disk import Words, can_mount, fill, read_only, small_disk
from bench.disk import write_docs as _docs
from bench.hub import Hub
from engine import ModelError, PonderError
from engine.chat.history import History
from engine.errors import CollectionError, HistoryError
from engine.models import download as d
from engine.models.download import download, resolve
from engine.rag.index import Indexer
from engine.rag.store import Store
from engine.settings import Settings

pytestmark = pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root or CAP_SYS_ADMIN")


def _intact(path: Path) -> bool:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_indexing_on_a_full_disk_stops_with_a_sentence_and_resumes(tmp_path):
    docs = _docs(tmp_path / "docs")
    with small_disk(16 << 20) as disk:  # room for the whole index, its WAL and the checkpoint
        store = Store(disk / "index.sqlite3")
        filler = fill(disk, leave_bytes=300_000)
        with pytest.raises(CollectionError, match="the disk is full"):
            Indexer(store, Words()).index("docs", [str(docs)], embed=False)
        filler.unlink()
        report = Indexer(store, Words()).index("docs", [], embed=False)
        assert report.indexed + report.unchanged == 30 and not report.skipped
        store.close()
        assert _intact(disk / "index.sqlite3")


def test_history_on_a_full_disk_says_so_and_keeps_what_was_saved(tmp_path):
    with small_disk(1 << 20) as disk:
        history = History(disk / "history.sqlite3")
        cid = history.create_conversation("kept")
        history.add_message(cid, "user", "saved before the disk filled")
        filler = fill(disk, leave_bytes=0)
        with pytest.raises(HistoryError, match="the disk is full"):
            for _ in range(200):
                history.add_message(cid, "assistant", "x" * 10_000)
        filler.unlink()
        history.add_message(cid, "user", "after")
        assert history.messages(cid)[0].content == "saved before the disk filled"
        history.close()
        assert _intact(disk / "history.sqlite3")


def test_a_download_onto_a_full_disk_keeps_its_part_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(d, "DISK_MARGIN", 0)
    data = bytes(range(256)) * 4096  # 1 MiB
    with small_disk(4 << 20) as disk, Hub({"org/x-GGUF/x.gguf": data}) as hub:
        filler = fill(disk, leave_bytes=400_000)
        target = resolve("org/x-GGUF/x.gguf", hub.url)
        with pytest.raises(ModelError, match="(Not enough disk space|No space left on device.*free some space)"):
            download(target, disk / "models")
        target = type(target)(target.url, target.filename, target.sha256, None, target.commit, target.auth_host)
        with pytest.raises(ModelError, match="No space left on device.*free some space"):
            download(target, disk / "models")  # size unknown: it runs into the full disk
        filler.unlink()
        path = download(target, disk / "models")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_settings_on_a_full_disk_keep_the_old_file(tmp_path):
    with small_disk(1 << 20) as disk:
        Settings(n_ctx=2048).save(disk / "settings.json")
        filler = fill(disk, leave_bytes=0)
        with pytest.raises(PonderError, match="could not be saved.*previous version is kept"):
            Settings(n_ctx=8192, system_prompt="x" * 100_000).save(disk / "settings.json")
        assert Settings.load(disk / "settings.json").n_ctx == 2048
        filler.unlink()
        Settings(n_ctx=8192).save(disk / "settings.json")
        assert Settings.load(disk / "settings.json").n_ctx == 8192


def test_a_read_only_data_folder_gives_sentences_not_damage(tmp_path):
    docs = _docs(tmp_path / "docs", 3)
    with small_disk(4 << 20) as disk:
        History(disk / "history.sqlite3").close()
        read_only(disk)
        try:
            with pytest.raises(PonderError, match="could not be saved.*read-only|Read-only"):
                Settings().save(disk / "settings.json")
            with pytest.raises((HistoryError, CollectionError)):
                history = History(disk / "history.sqlite3")
                history.create_conversation("x")
            with pytest.raises(CollectionError):
                Indexer(Store(disk / "new-index.sqlite3"), Words()).index("docs", [str(docs)], embed=False)
            with pytest.raises(ModelError):
                download(resolve("org/x-GGUF/x.gguf", "http://127.0.0.1:9"), disk / "models")
        finally:
            read_only(disk, False)
        assert not [p for p in disk.iterdir() if "damaged" in p.name]
        history = History(disk / "history.sqlite3")
        history.create_conversation("writable again")
        history.close()
