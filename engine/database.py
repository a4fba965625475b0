"""SQLite as Ponder uses it: WAL (readers never wait for the writer), foreign keys on, autocommit."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating if needed) with `schema` applied; sqlite3.DatabaseError is left to the caller to
    turn into a message about its own kind of data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode a crash loses no committed transaction
    db.executescript(schema)
    return db
