"""SQLite command journal: the embedded default (stdlib sqlite3, WAL, fsync on commit).

The journal is an append-only table of records.  Each row holds its seq, the
command's name and its arguments as JSON (ids are str or int, times are
floats, which JSON carries exactly).  Configuration (engine options, skills,
queues) is journaled the same way, so a file alone rebuilds the engine.

Every SQLite failure -- a full disk, a corrupted page, a file that is not a
database, a journal whose table was dropped -- is a
:class:`~acd.errors.JournalError` naming the file and what went wrong.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.parse
import uuid
from typing import Any, Iterator, List, Tuple

from ..errors import JournalError
from .base import Record

__all__ = ("SqliteJournal",)

_SCHEMA = """
CREATE TABLE commands (
    seq  INTEGER PRIMARY KEY,
    op   TEXT NOT NULL,
    args TEXT NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_VERSION = "1"
_TABLES = ("commands", "meta")


class SqliteJournal:
    """Append-only journal of engine commands in one SQLite file.

    ``sync="full"`` (default) makes every commit reach the disk (WAL +
    ``synchronous=FULL``): a power cut loses nothing acknowledged.
    ``sync="normal"`` survives a crash of the process, not of the machine,
    and is several times faster.  A missing or empty file is created; an
    existing file must be an acd journal.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: str = "full", read_only: bool = False) -> None:
        """``read_only``: open an existing journal to read it (a report), beside a running service
        if need be; nothing is created or written, and :meth:`append` fails."""
        if sync not in ("full", "normal"):
            raise JournalError(f"sync must be 'full' or 'normal', got {sync!r}")
        self.path = os.fspath(path)
        self._read_only = read_only
        fresh = self.path == ":memory:" or not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if read_only and fresh:
            raise JournalError(f"no journal at {self.path!r}" + ("" if not os.path.exists(self.path) else
                                                                 " (the file is empty)"))
        self._db: sqlite3.Connection | None = None
        try:
            if read_only:
                uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            if fresh:
                self._create()
            else:
                self._check()
            self._id = str(self._meta_raw("journal_id"))
            self._seq = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM commands").fetchone()[0])
        except sqlite3.Error as e:
            self._abandon()
            raise JournalError(f"cannot open journal {self.path!r}: {e}") from e
        except JournalError:
            self._abandon()
            raise
        self._durable = self._seq
        self._lock = threading.Lock()
        self._in_batch = 0
        self._buffer: List[Tuple[int, str, str]] = []

    def _create(self) -> None:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                self._db.execute(stmt)
        self._db.execute("INSERT INTO meta VALUES ('version', ?)", (_VERSION,))
        self._db.execute("INSERT INTO meta VALUES ('journal_id', ?)", (json.dumps(uuid.uuid4().hex[:12]),))
        self._db.execute("COMMIT")

    def _check(self) -> None:
        assert self._db is not None
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise JournalError(f"{self.path!r} is not an acd journal: table(s) {missing!r} missing "
                               f"(found {sorted(tables)!r}); refusing to start from an empty journal")
        row = self._db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        version = None if row is None else row[0]
        if version != _VERSION:
            raise JournalError(f"journal {self.path!r} has version {version!r}, this acd reads {_VERSION!r}")
        if self._meta_raw("journal_id") is None and not self._read_only:  # journals written before ids existed
            self._db.execute("INSERT INTO meta VALUES ('journal_id', ?)", (json.dumps(uuid.uuid4().hex[:12]),))

    def _meta_raw(self, key: str) -> Any:
        assert self._db is not None
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError as e:
            raise JournalError(f"journal {self.path!r}: meta {key!r} is not JSON ({e})") from None

    def _abandon(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"journal {self.path!r} is closed")
        return self._db

    # -- identity
    @property
    def journal_id(self) -> str:
        return self._id

    @property
    def last_seq(self) -> int:
        return self._seq

    # -- writing
    def append(self, op: str, args: Tuple[Any, ...]) -> int:
        """Record one command; durable when this returns (unless inside :meth:`batch`)."""
        try:
            payload = json.dumps(args, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise JournalError(f"command {op!r} has arguments JSON cannot hold: {e}") from e
        with self._lock:
            self._seq += 1
            self._buffer.append((self._seq, op, payload))
            if not self._in_batch:
                self._flush()
            return self._seq

    def _flush(self) -> None:
        if not self._buffer:
            return
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO commands (seq, op, args) VALUES (?, ?, ?)", self._buffer)
            db.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                if db.in_transaction:
                    db.execute("ROLLBACK")
            except sqlite3.Error:
                pass   # the connection itself is gone; the error below says why
            # nothing of the buffer is durable: forget it (the caller rolls its engine back)
            self._buffer.clear()
            self._seq = self._durable
            raise JournalError(f"cannot write journal {self.path!r}: {e}") from e
        self._durable = self._seq
        self._buffer.clear()

    def batch(self) -> "_Batch":
        """``with journal.batch():`` commits the commands of the block together (group commit)."""
        return _Batch(self)

    def set_meta(self, key: str, value: Any) -> None:
        try:
            self._conn().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        except sqlite3.Error as e:
            raise JournalError(f"cannot write journal {self.path!r}: {e}") from e

    # -- reading
    def get_meta(self, key: str, default: Any = None) -> Any:
        try:
            value = self._meta_raw(key)
        except sqlite3.Error as e:
            raise JournalError(f"cannot read journal {self.path!r}: {e}") from e
        return default if value is None else value

    def records(self, after: int = 0) -> Iterator[Record]:
        """Durable records with ``seq > after``, in order, as ``(seq, op, args)``."""
        try:
            cursor = self._conn().execute("SELECT seq, op, args FROM commands WHERE seq > ? ORDER BY seq", (after,))
            for seq, op, args in cursor:
                try:
                    values = json.loads(args)
                except ValueError as e:
                    raise JournalError(f"journal {self.path!r}: record {seq} ({op!r}) has unreadable "
                                       f"arguments ({e})") from None
                if not isinstance(op, str) or not isinstance(values, list):
                    raise JournalError(f"journal {self.path!r}: record {seq} is malformed ({op!r}, {args!r})")
                yield seq, op, tuple(values)
        except sqlite3.Error as e:
            raise JournalError(f"cannot read journal {self.path!r}: {e}") from e

    def commands(self) -> Iterator[Tuple[Any, ...]]:
        """Every journaled command as ``(op, *args)``, in order."""
        for _, op, args in self.records():
            yield (op, *args)

    def __len__(self) -> int:
        try:
            return int(self._conn().execute("SELECT COUNT(*) FROM commands").fetchone()[0])
        except sqlite3.Error as e:
            raise JournalError(f"cannot read journal {self.path!r}: {e}") from e

    def close(self) -> None:
        with self._lock:
            try:
                if self._db is not None:
                    self._flush()
            finally:
                self._abandon()

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
