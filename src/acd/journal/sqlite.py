"""SQLite command journal: the embedded default (stdlib sqlite3, WAL, fsync on commit).

The journal is an append-only table of commands.  Each row holds the
command's name and its arguments as JSON (ids are str or int, times are
floats, which JSON carries exactly).  Configuration (engine options, skills,
queues) is journaled the same way, so a file alone rebuilds the engine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any, Iterator, List, Tuple

from ..errors import JournalError

__all__ = ("SqliteJournal",)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    seq  INTEGER PRIMARY KEY,
    op   TEXT NOT NULL,
    args TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_VERSION = "1"


class SqliteJournal:
    """Append-only journal of engine commands in one SQLite file.

    ``sync="full"`` (default) makes every commit reach the disk (WAL +
    ``synchronous=FULL``): a power cut loses nothing acknowledged.
    ``sync="normal"`` survives a crash of the process, not of the machine,
    and is several times faster.
    """

    def __init__(self, path: str, *, sync: str = "full") -> None:
        if sync not in ("full", "normal"):
            raise JournalError(f"sync must be 'full' or 'normal', got {sync!r}")
        self.path = os.fspath(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('version', ?)", (_VERSION,))
            elif row[0] != _VERSION:
                raise JournalError(f"journal {self.path!r} has version {row[0]!r}, this acd reads {_VERSION!r}")
        except sqlite3.Error as e:
            raise JournalError(f"cannot open journal {self.path!r}: {e}") from e
        self._lock = threading.Lock()
        self._in_batch = 0
        self._buffer: List[Tuple[str, str]] = []

    # -- writing
    def append(self, op: str, args: Tuple[Any, ...]) -> None:
        """Record one command; durable when this returns (unless inside :meth:`batch`)."""
        try:
            payload = json.dumps(args, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise JournalError(f"command {op!r} has arguments JSON cannot hold: {e}") from e
        with self._lock:
            self._buffer.append((op, payload))
            if not self._in_batch:
                self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO commands (op, args) VALUES (?, ?)", self._buffer)
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass   # the connection itself is gone; the error below says why
            raise JournalError(f"cannot write journal {self.path!r}: {e}") from e
        self._buffer.clear()

    def batch(self) -> "_Batch":
        """``with journal.batch():`` commits the commands of the block together (group commit)."""
        return _Batch(self)

    def set_meta(self, key: str, value: Any) -> None:
        try:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        except sqlite3.Error as e:
            raise JournalError(f"cannot write journal {self.path!r}: {e}") from e

    # -- reading
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def commands(self) -> Iterator[Tuple[Any, ...]]:
        """Every journaled command as ``(op, *args)``, in order."""
        for op, args in self._db.execute("SELECT op, args FROM commands ORDER BY seq"):
            yield (op, *json.loads(args))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM commands").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._db.close()

    def __enter__(self) -> "SqliteJournal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Batch:
    def __init__(self, journal: SqliteJournal) -> None:
        self.journal = journal

    def __enter__(self) -> SqliteJournal:
        with self.journal._lock:
            self.journal._in_batch += 1
        return self.journal

    def __exit__(self, *exc: object) -> None:
        with self.journal._lock:
            self.journal._in_batch -= 1
            if not self.journal._in_batch:
                self.journal._flush()
