"""SQLite as Ponder uses it: WAL (readers never wait for the writer), foreign keys on, autocommit; and what
happens when a database file is damaged (truncated, overwritten, a disk error): the file and its WAL are kept
aside as `NAME.damaged-TIME`, a new one is made, and every row SQLite can still read from the tables worth
keeping is copied in. The connection's `recovery` says what happened, so the app can tell the user; nothing is
ever silently started afresh."""
from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
QUICK_CHECK_BYTES = 256 << 20  # a full structural check on open costs ~1 s per GB: done below this size


@dataclass(frozen=True, slots=True)
class Recovery:
    """A damaged database was set aside and rebuilt."""

    damaged: Path  # the damaged file, kept
    reason: str  # what SQLite said
    rows: dict[str, int]  # rows recovered per table
    lost_tables: tuple[str, ...]  # tables that could not be read at all

    @property
    def message(self) -> str:
        kept = ", ".join(f"{n:,} {t}" for t, n in self.rows.items()) or "nothing"
        lost = f"; unreadable: {', '.join(self.lost_tables)}" if self.lost_tables else ""
        return (f"{self.damaged.name.split('.damaged-')[0]} was damaged ({self.reason}); a copy is kept at "
                f"{self.damaged} and what could be read was recovered ({kept}{lost}).")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class Connection(sqlite3.Connection):
    recovery: Recovery | None = None


def _connect(path: Path, schema: str, check: bool) -> Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, factory=Connection)
    db.text_factory = _text  # a damaged page's text is shown with replacement characters, not an exception
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode a crash loses no committed transaction
        if check:
            verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
        db.executescript(schema)
    except UnicodeDecodeError as e:
        # SQLite's message quoted bytes of a damaged schema that are not UTF-8, and Python could not decode it
        db.close()
        raise sqlite3.DatabaseError(f"database disk image is malformed (its schema is not text: {e.reason})") from None
    except BaseException:
        db.close()
        raise
    return db


def describe(e: sqlite3.Error) -> str:
    """What a failed write means for the person: a full disk, a read-only folder, or SQLite's own words."""
    code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF
    if code == 13 or "disk is full" in str(e):  # SQLITE_FULL
        return "the disk is full; free some space and try again (nothing saved before was lost)"
    if code == 8 or "readonly" in str(e) or "read-only" in str(e):  # SQLITE_READONLY
        return "its folder is read-only; make it writable and try again"
    if code == 10:  # SQLITE_IOERR
        return f"the disk failed to read or write ({e})"
    return str(e)


def is_damage(e: sqlite3.Error) -> bool:
    """The file itself is damaged (not a database, malformed), as opposed to locked, read-only or a full disk."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
    return "malformed" in str(e) or "not a database" in str(e)


def _set_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.damaged-{stamp}-{n}"), n + 1
    path.rename(aside)
    for suffix in ("-wal", "-shm"):  # a stale WAL must never be replayed onto the new file
        side = Path(str(path) + suffix)
        if side.exists():
            side.rename(Path(str(aside) + suffix))
    return aside


def _padded(damaged: Path) -> Path:
    """The damaged file, or a copy grown back to the size its header claims: SQLite refuses the whole schema of a
    truncated file (a table's root page past the end), while the pages that survived are readable."""
    with open(damaged, "rb") as f:
        header = f.read(100)
    size = damaged.stat().st_size
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return damaged
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    claimed = int.from_bytes(header[28:32], "big") * page_size
    if not 0 < size < claimed <= (1 << 36):
        return damaged
    copy = damaged.with_name(damaged.name + ".padded")
    with open(damaged, "rb") as src, open(copy, "wb") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
        dst.truncate(claimed)
    return copy


def _salvage(damaged: Path, db: sqlite3.Connection, tables: tuple[str, ...]) -> tuple[dict[str, int], tuple]:
    """Copy every readable row of `tables` from the damaged file into `db`, row by row, parents first."""
    try:
        source = _padded(damaged)
    except OSError:
        source = damaged
    try:
        return _copy_rows(source, db, tables)
    finally:
        if source != damaged:
            source.unlink(missing_ok=True)


def _copy_rows(damaged: Path, db: sqlite3.Connection, tables: tuple[str, ...]) -> tuple[dict[str, int], tuple]:
    rows: dict[str, int] = {}
    lost = []
    try:
        old = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
        old.text_factory = _text
    except sqlite3.Error:
        return rows, tables
    try:
        for table in tables:
            try:
                columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
                cursor = old.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")
            except (sqlite3.Error, UnicodeDecodeError):  # the latter: an error message quoting damaged bytes
                lost.append(table)
                continue
            insert = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            count = 0
            db.execute("BEGIN")
            try:
                while True:
                    try:
                        row = cursor.fetchone()
                    except (sqlite3.Error, UnicodeDecodeError):
                        break  # the rest of this table is past the damage
                    if row is None:
                        break
                    try:
                        count += db.execute(insert, row).rowcount
                    except sqlite3.Error:
                        continue  # a row whose parent was lost
            finally:
                db.execute("COMMIT")
            rows[table] = count
    finally:
        old.close()
    return rows, tuple(lost)


def open_database(path: Path, schema: str, salvage: tuple[str, ...] = ()) -> Connection:
    """Open (creating if needed) with `schema` applied. A damaged file is set aside and rebuilt with the rows of
    `salvage` that can still be read (the connection's `recovery` says so); with no `salvage`, or when even the
    new file cannot be made, sqlite3.DatabaseError is left to the caller to turn into a message about its data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exists = path.exists()
    try:
        return _connect(path, schema, check=exists and path.stat().st_size < QUICK_CHECK_BYTES)
    except sqlite3.DatabaseError as e:
        if not salvage or not exists or not is_damage(e):
            raise
        reason = str(e)
    damaged = _set_aside(path)
    db = _connect(path, schema, check=False)
    rows, lost = _salvage(damaged, db, salvage)  # rows whose parent was lost are dropped: no orphans
    db.recovery = Recovery(damaged, reason, rows, lost)
    log.warning("%s", db.recovery.message)
    return db
