"""Conversations and messages in SQLite (WAL), so nothing is lost when the app crashes or is stopped.

An answer is written as `streaming` when its first token arrives and updated
as it grows; at the end it becomes `complete`, `cancelled` or `error`. A
message still `streaming` when the store is next opened was cut off by a crash
and becomes `partial`: kept and shown, never dropped.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.database import describe, open_database
from engine.errors import HistoryError

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    reasoning TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'complete',
    created REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
"""
STATES = ("complete", "streaming", "partial", "cancelled", "error")


def _json(text) -> dict:
    """A stored JSON object; {} for one damaged on disk (the message itself is still shown)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    title: str
    created: float
    updated: float
    settings: dict


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    conversation_id: int
    role: str
    content: str
    reasoning: str
    state: str
    created: float
    meta: dict


class History:
    """Thread-safe: one connection, one lock; every write is its own committed transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = open_database(self.path, SCHEMA, salvage=("conversations", "messages"))
            self.recovered = self._db.execute(
                "UPDATE messages SET state='partial' WHERE state='streaming'").rowcount
        except sqlite3.DatabaseError as e:
            raise HistoryError(f"The history file {self.path} cannot be opened: {describe(e)}.", str(e)) from None
        # A damaged file was set aside and rebuilt from what could be read: the app says so (database.Recovery).
        self.repair = self._db.recovery

    def _run(self, sql: str, args: tuple = (), fetch: bool = False):
        """Execute (and with `fetch`, read every row) under the lock; a SQLite error becomes a HistoryError."""
        with self._lock:
            try:
                cursor = self._db.execute(sql, args)
                return cursor.fetchall() if fetch else cursor
            except sqlite3.Error as e:
                raise HistoryError(f"Could not update the conversation history: {describe(e)}.", str(e)) from None

    def take_repair(self):
        """What was recovered when the file was found damaged (a database.Recovery), once; then None."""
        repair, self.repair = self.repair, None
        return repair

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- conversations --------------------------------------------------------------------------
    def create_conversation(self, title: str = "New conversation", settings: dict | None = None) -> int:
        now = time.time()
        cur = self._run("INSERT INTO conversations (title, created, updated, settings) VALUES (?, ?, ?, ?)",
                        (title, now, now, json.dumps(settings or {})))
        return int(cur.lastrowid)

    def conversations(self) -> list[Conversation]:
        rows = self._run("SELECT id, title, created, updated, settings FROM conversations ORDER BY updated DESC",
                         fetch=True)
        return [Conversation(r[0], r[1], r[2], r[3], _json(r[4])) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation:
        row = self._run("SELECT id, title, created, updated, settings FROM conversations WHERE id=?",
                        (conversation_id,), fetch=True)
        row = row[0] if row else None
        if row is None:
            raise HistoryError(f"There is no conversation {conversation_id}; `ponder chat` starts a new one.")
        return Conversation(row[0], row[1], row[2], row[3], _json(row[4]))

    def rename(self, conversation_id: int, title: str) -> None:
        self._run("UPDATE conversations SET title=? WHERE id=?", (title, conversation_id))

    def update_settings(self, conversation_id: int, settings: dict) -> None:
        self._run("UPDATE conversations SET settings=? WHERE id=?", (json.dumps(settings), conversation_id))

    def delete(self, conversation_id: int) -> None:
        self._run("DELETE FROM conversations WHERE id=?", (conversation_id,))

    # -- messages -------------------------------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, content: str, *, reasoning: str = "",
                    state: str = "complete", meta: dict | None = None) -> int:
        now = time.time()
        cur = self._run(
            "INSERT INTO messages (conversation_id, role, content, reasoning, state, created, meta) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, role, content, reasoning, state, now, json.dumps(meta or {})))
        self._run("UPDATE conversations SET updated=? WHERE id=?", (now, conversation_id))
        return int(cur.lastrowid)

    def update_message(self, message_id: int, *, content: str | None = None, reasoning: str | None = None,
                       state: str | None = None, meta: dict | None = None) -> None:
        fields, args = [], []
        for name, value in (("content", content), ("reasoning", reasoning), ("state", state)):
            if value is not None:
                fields.append(f"{name}=?")
                args.append(value)
        if meta is not None:
            fields.append("meta=?")
            args.append(json.dumps(meta))
        if fields:
            self._run(f"UPDATE messages SET {', '.join(fields)} WHERE id=?", (*args, message_id))

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._run(
            "SELECT id, conversation_id, role, content, reasoning, state, created, meta FROM messages "
            "WHERE conversation_id=? ORDER BY id", (conversation_id,), fetch=True)
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _json(r[7])) for r in rows]

    def delete_message(self, message_id: int) -> None:
        self._run("DELETE FROM messages WHERE id=?", (message_id,))

    def last_turn(self, conversation_id: int) -> list[StoredMessage]:
        """The last question and what follows it (its answer), oldest first; [] when there is no question."""
        messages = self.messages(conversation_id)
        last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
        return [] if last is None else messages[last:]

    def drop_last_turn(self, conversation_id: int) -> list[StoredMessage]:
        """Remove the last turn; returns the removed messages, oldest first ([] when there is no question), for
        `restore_messages`."""
        turn = self.last_turn(conversation_id)
        if turn:
            self._run("DELETE FROM messages WHERE conversation_id=? AND id>=?", (conversation_id, turn[0].id))
        return turn

    def restore_messages(self, conversation_id: int, messages: list[StoredMessage]) -> None:
        """Put back what `drop_last_turn` removed, ids and all, in place of anything added to the conversation
        since (one transaction)."""
        if not messages:
            return
        rows = [(m.id, conversation_id, m.role, m.content, m.reasoning, m.state, m.created, json.dumps(m.meta))
                for m in messages]
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.execute("DELETE FROM messages WHERE conversation_id=? AND id>=?",
                                 (conversation_id, messages[0].id))
                self._db.executemany("INSERT INTO messages (id, conversation_id, role, content, reasoning, state, "
                                     "created, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise HistoryError(f"Could not update the conversation history: {describe(e)}.", str(e)) from None
