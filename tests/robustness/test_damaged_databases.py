"""A history or index file that is truncated or overwritten: Ponder starts, says what happened, keeps the damaged
file, recovers what SQLite can still read, and never silently starts empty."""
from __future__ import annotations

import json
import os
import subprocess
import sys


from bench.fuzz import history_seed
from engine.chat.history import History
from engine.database import open_database
from engine.rag.store import Store
from engine.settings import Settings


def _history_file(path):
    path.write_bytes(history_seed())  # three conversations, question and answer each
    return path


def test_garbage_history_is_kept_aside_and_reported(tmp_path):
    path = _history_file(tmp_path / "history.sqlite3")
    path.write_bytes(os.urandom(path.stat().st_size))
    history = History(path)
    assert history.repair is not None and history.conversations() == []
    damaged = history.repair.damaged
    assert damaged.exists() and damaged.name.startswith("history.sqlite3.damaged-")
    assert "was damaged" in history.repair.message and str(damaged) in history.repair.message
    history.create_conversation("works again")
    assert [c.title for c in history.conversations()] == ["works again"]
    assert history.take_repair() is not None and history.take_repair() is None
    history.close()


def test_a_truncated_history_keeps_what_sqlite_can_read(tmp_path):
    path = _history_file(tmp_path / "history.sqlite3")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 4096)  # the last page gone
    history = History(path)
    assert history.repair is not None
    recovered = history.repair.rows
    assert recovered.get("conversations") == 3, history.repair.message
    kept = [m for c in history.conversations() for m in history.messages(c.id)]
    assert len(kept) == recovered.get("messages", 0) and kept, history.repair.message
    history.close()


def test_a_schema_damaged_into_bytes_that_are_not_text_is_damage_not_a_crash(tmp_path):
    """Found by the long fuzzing profile: SQLite's error message quoted the damaged schema's bytes, Python's sqlite3
    could not decode it and raised UnicodeDecodeError instead of an sqlite3 error."""
    import sqlite3

    import pytest

    seed = history_seed()
    start = seed.index(b"CREATE TABLE")
    for offset in range(start, start + 3000):  # the first schema byte whose damage SQLite quotes back
        data = bytearray(seed)
        data[offset] = 0x87  # never valid UTF-8 on its own
        path = tmp_path / f"h{offset}.sqlite3"
        path.write_bytes(bytes(data))
        raw = sqlite3.connect(path)
        try:
            raw.execute("PRAGMA journal_mode=WAL")
        except UnicodeDecodeError:
            break
        except sqlite3.Error:
            pass
        finally:
            raw.close()
    else:
        pytest.skip("no byte of this schema made SQLite quote it back")
    history = History(path)
    assert history.repair is not None and "malformed" in history.repair.message
    history.create_conversation("works again")
    assert "works again" in [c.title for c in history.conversations()]
    history.close()


def test_an_intact_history_is_not_touched(tmp_path):
    path = _history_file(tmp_path / "history.sqlite3")
    history = History(path)
    assert history.repair is None and len(history.conversations()) == 3
    history.close()
    assert [p.name for p in tmp_path.iterdir() if "damaged" in p.name] == []


def test_a_damaged_index_keeps_its_collections_for_reindexing(tmp_path):
    path = tmp_path / "index.sqlite3"
    store = Store(path)
    cid = store.collection_id("papers", create=True)
    store.add_root(cid, str(tmp_path / "papers"))
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = os.urandom(3996)  # the schema page overwritten
    path.write_bytes(bytes(data))
    store = Store(path)
    assert store.repair is not None and store.repair.damaged.exists()
    # schema page lost: nothing readable, but Ponder starts and says so
    assert "was damaged" in store.repair.message
    store.close()


def test_a_locked_or_read_only_database_is_not_mistaken_for_damage(tmp_path):
    import sqlite3

    path = tmp_path / "x.sqlite3"
    open_database(path, "CREATE TABLE IF NOT EXISTS t (a);").close()
    os.chmod(tmp_path, 0o555)
    try:
        db = open_database(path, "CREATE TABLE IF NOT EXISTS t (a);", salvage=("t",))
        assert db.recovery is None
        db.close()
    except sqlite3.OperationalError:
        pass  # refused, not "repaired"
    finally:
        os.chmod(tmp_path, 0o755)
    assert [p for p in tmp_path.iterdir() if "damaged" in p.name] == []


def test_damaged_settings_are_kept_aside_and_bad_values_fall_back(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"n_ctx": 8192, "temperature": ')
    assert Settings.load(path) == Settings()
    assert [p.name.split(".damaged-")[0] for p in tmp_path.iterdir() if "damaged" in p.name] == ["settings.json"]
    path.write_text(json.dumps({"n_ctx": "lots", "temperature": 1, "max_tokens": 99, "model": None}))
    loaded = Settings.load(path)
    assert loaded.n_ctx == Settings().n_ctx and loaded.temperature == 1 and loaded.max_tokens == 99
    assert loaded.model == ""


def test_a_fresh_process_on_a_damaged_history_starts_and_says_so_on_stderr(tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, PONDER_HOME=str(home))
    code = ("from engine.chat.history import History; from engine.paths import data_dir; "
            "path = data_dir() / 'history.sqlite3'; path.parent.mkdir(parents=True, exist_ok=True); "
            "path.write_bytes(b'garbage' * 1000); print(len(History(path).conversations()))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
    assert "was damaged" in out.stderr and "a copy is kept" in out.stderr


def test_a_message_whose_bytes_are_not_utf8_is_shown_not_raised(tmp_path):
    # Found by fuzzing: a flipped byte inside a stored message made reading the conversation raise sqlite3's
    # "Could not decode to UTF-8" past HistoryError.
    import sqlite3

    path = tmp_path / "history.sqlite3"
    history = History(path)
    cid = history.create_conversation("t")
    history.add_message(cid, "user", "hello", meta={"a": 1})
    history.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE messages SET content=CAST(X'68C3' AS TEXT), meta='{not json'")
    db.commit()
    db.close()
    history = History(path)
    [message] = history.messages(cid)
    assert message.content == "h\ufffd" and message.meta == {}
    history.close()
