"""PostgreSQL command journal: the same log as SQLite, shared by a primary and its standbys.

Needs psycopg 3 (``pip install 'acd[postgres]'``); ``import acd`` never loads it.

Tables live in their own schema (``acd`` by default, so one database can hold
several journals): ``commands (seq, epoch, op, args, at)``, ``meta (key,
value, epoch)`` and ``leader`` (one row: the current epoch, who holds it, its
heartbeat).

**Fencing is the database's job.**  Every write carries the epoch of the
node that makes it, and triggers refuse a write whose epoch is not the
current one (SQLSTATE ``AE001``, raised as :class:`~acd.errors.Fenced`).
A node becomes primary by bumping the epoch inside a transaction that holds
``EXCLUSIVE`` locks on both tables (:mod:`.leadership`): the bump waits for
every write in flight and every later write sees the new epoch, so a primary
that was paused or cut off and comes back cannot add a single record.  The
log is append-only (updates and deletes of ``commands`` are refused too).

**Group commit.**  :meth:`PostgresJournal.append` is durable when it returns,
and safe to call from many threads: appends that arrive while a commit is in
flight are written together by the next one (one ``INSERT ... unnest`` and
one commit for the group).  Only the appenders of the group just written are
woken, and one appender of the next group (it writes that one): no thread
wakes up to find its record not durable yet.  :meth:`batch` groups
explicitly, as with SQLite.

**Following.**  Each committed insert notifies ``acd_journal_<schema>`` with
the last seq; a standby listens (:meth:`wait_for_change`) and reads
``records(after=...)``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import socket
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from ..errors import Fenced, InvalidInput, JournalError
from .base import Record

__all__ = ("PostgresJournal", "FENCED_SQLSTATE", "redact_url", "connect")

#: SQLSTATE of a write refused for its stale epoch
FENCED_SQLSTATE = "AE001"
_VERSION = "1"
_PAGE = 5000
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}\Z")
# advisory lock keys: (this constant, hashtext(schema)); one key to create the schema, one to lead
LOCK_CLASS_LEADER = 0x61636401
LOCK_CLASS_SCHEMA = 0x61636402


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise JournalError("a postgresql:// journal needs psycopg 3: pip install 'acd[postgres]'") from None
    return psycopg


def connect(url: str, role: str, node: str, *, timeout: float = 3.0) -> Any:
    """An autocommit connection named ``acd-<role> <node>`` (the name lets a new primary find and
    end the connections of the one it replaces), with TCP keepalives on both ends so that a dead
    peer is noticed in seconds, not hours."""
    psycopg = _psycopg()
    ms = int(max(timeout, 1.0) * 1000)
    try:
        return psycopg.connect(
            url, autocommit=True, application_name=f"acd-{role} {node}"[:63], connect_timeout=max(1, round(timeout)),
            keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=2, tcp_user_timeout=ms,
            options=f"-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2 "
                    f"-c tcp_user_timeout={ms} -c idle_in_transaction_session_timeout={ms * 2}")
    except psycopg.Error as e:
        raise JournalError(f"cannot connect to journal database {redact_url(url)!r}: {_first_line(e)}") from None


def shut_down(fd: int) -> None:
    """Make any call blocked on this connection's socket fail now, as a lost connection would
    (the connection object itself stays valid, to be closed by its owner)."""
    try:
        s = socket.socket(fileno=os.dup(fd))
        try:
            s.shutdown(socket.SHUT_RDWR)
        finally:
            s.close()
    except OSError:
        pass


class _Deadlines:
    """A hard client-side time limit on database calls.

    TCP timeouts end a call whose packets are lost, but not one whose peer
    keeps acknowledging and never answers (a hung server, a middlebox that
    blackholes): the process would wait for ever -- and a primary blocked
    in a write cannot notice it lost its lease.  One daemon thread shuts
    down the socket of any call that outlives its deadline; the call then
    fails like a lost connection (JournalError), and the next one
    reconnects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: Dict[int, Tuple[float, int]] = {}
        self._ids = itertools.count()
        self._thread: Optional[threading.Thread] = None

    @contextlib.contextmanager
    def __call__(self, conn: Any, seconds: float) -> Iterator[None]:
        try:
            fd = int(conn.pgconn.socket)
        except Exception:            # closed or broken: the call itself will say so
            yield
            return
        key = next(self._ids)
        with self._lock:
            self._active[key] = (time.monotonic() + seconds, fd)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="acd-pg-deadlines", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:   # under the lock: the call cannot return and free its fd meanwhile
                for key in [k for k, (d, _) in self._active.items() if d <= now]:
                    _, fd = self._active.pop(key)
                    shut_down(fd)


#: every database call of the journal and of the leadership runs under a deadline
deadline = _Deadlines()


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _text_array(items: List[str]) -> str:
    """A text[] literal: each element quoted, with ``\\`` and ``"`` escaped.  psycopg adapts a list
    element by element in Python; one ``str`` parameter is several times cheaper for a group."""
    return "{" + ",".join(['"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items]) + "}"


class _Group:
    """The records buffered for one commit, and the appenders waiting for it."""

    __slots__ = ("ready", "done", "error")

    def __init__(self, lock: threading.Lock) -> None:
        self.ready = threading.Condition(lock)
        self.done = False
        self.error: Optional[JournalError] = None


def _ddl(s: str) -> str:
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.leader (
    id        int PRIMARY KEY CHECK (id = 1),
    epoch     bigint NOT NULL,
    node      text,
    lock_pid  int,
    writer_pid int,
    heartbeat timestamptz,
    since     timestamptz
);
CREATE TABLE IF NOT EXISTS {s}.commands (
    seq   bigint PRIMARY KEY CHECK (seq > 0),
    epoch bigint NOT NULL,
    op    text NOT NULL,
    args  text NOT NULL,
    at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS {s}.meta (
    key   text PRIMARY KEY,
    value text NOT NULL,
    epoch bigint NOT NULL
);
CREATE OR REPLACE FUNCTION {s}.fence_commands() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
    stale bigint;
    last bigint;
BEGIN
    SELECT epoch INTO current FROM {s}.leader WHERE id = 1;
    SELECT min(epoch), max(seq) INTO stale, last FROM new_rows WHERE epoch IS DISTINCT FROM current;
    IF stale IS NOT NULL THEN
        RAISE EXCEPTION 'journal write of epoch % refused: the current epoch is % (another node is primary)',
            stale, current USING ERRCODE = '{FENCED_SQLSTATE}';
    END IF;
    SELECT max(seq) INTO last FROM new_rows;
    PERFORM pg_notify('acd_journal_{s}', last::text);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION {s}.fence_meta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
BEGIN
    SELECT epoch INTO current FROM {s}.leader WHERE id = 1;
    IF NEW.epoch IS DISTINCT FROM current THEN
        RAISE EXCEPTION 'journal meta write of epoch % refused: the current epoch is % (another node is primary)',
            NEW.epoch, current USING ERRCODE = '{FENCED_SQLSTATE}';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION {s}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the acd journal is append-only: % on %.commands refused', TG_OP, '{s}'
        USING ERRCODE = '{FENCED_SQLSTATE}';
END $$;
"""


_TRIGGERS = (
    ("fence_commands", "AFTER INSERT ON {s}.commands REFERENCING NEW TABLE AS new_rows "
                       "FOR EACH STATEMENT EXECUTE FUNCTION {s}.fence_commands()"),
    ("fence_meta", "BEFORE INSERT OR UPDATE ON {s}.meta FOR EACH ROW EXECUTE FUNCTION {s}.fence_meta()"),
    ("append_only", "BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.commands "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {s}.append_only()"),
)


class PostgresJournal:
    """The journal in a PostgreSQL database; see the module docstring.

    A journal opens as a *follower*: it reads, and every write is refused
    until :meth:`promote` gives it the epoch won by
    :class:`~acd.journal.leadership.Leadership` (or :meth:`open_primary`
    does both, for a single node)."""

    def __init__(self, url: str, *, schema: str = "acd", node: Optional[str] = None, timeout: float = 3.0,
                 read_only: bool = False) -> None:
        """``read_only``: read an existing journal (a report, beside the running nodes) in read-only
        transactions: nothing is created, and it can never be promoted."""
        if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
            raise InvalidInput(f"journal.schema must be a lower-case SQL name (letters, digits, _), got {schema!r}")
        self.url = url
        self.path = redact_url(url) + ("" if schema == "acd" else f" (schema {schema})")
        self.schema = schema
        self.node = node or uuid.uuid4().hex[:8]
        self.timeout = timeout
        self.channel = f"acd_journal_{schema}"
        self.epoch: Optional[int] = None
        self._lock = threading.Lock()
        self._wrote = threading.Condition(self._lock)
        self._db: Any = None
        self._listener: Any = None
        self._closed = False
        self._pending_meta: Dict[str, Any] = {}
        self._buffer: List[Tuple[int, str, str]] = []
        self._in_batch = 0
        self._flushing = False
        self._group = _Group(self._lock)    # the group the buffer fills (written by the next commit)
        self._seq = 0               # last seq appended (primary) or read (follower)
        self._durable = 0
        self.read_only = read_only
        self._db = connect(url, "reader" if read_only else "writer", self.node, timeout=timeout)
        try:
            if read_only:
                self._open_existing()
            else:
                self._ensure_schema()
            self._id = str(self._meta_raw("journal_id"))
        except BaseException:
            self._abandon()
            raise

    # ------------------------------------------------------------ set-up
    def _ensure_schema(self) -> None:
        psycopg = _psycopg()
        s = self.schema
        try:
            with self._db.transaction():
                # two nodes starting together on an empty database: one creates, the other waits
                self._db.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS_SCHEMA, s))
                present = self._db.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{s}.commands",)).fetchone()[0]
                if present:
                    self._check_version()
                self._db.execute(_ddl(s))
                have = {r[0] for r in self._db.execute(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid IN (to_regclass(%s), to_regclass(%s))",
                    (f"{s}.commands", f"{s}.meta"))}
                for name, body in _TRIGGERS:
                    if name not in have:
                        self._db.execute(f"CREATE TRIGGER {name} {body.format(s=s)}")
                self._db.execute(f"INSERT INTO {s}.leader (id, epoch) VALUES (1, 0) ON CONFLICT DO NOTHING")
                # creation rows carry epoch 0, the epoch a fresh journal starts at
                if self._meta_raw("version") is None:
                    if self._db.execute(f"SELECT epoch FROM {s}.leader").fetchone()[0] != 0:
                        raise JournalError(f"journal {self.path!r} has a leader but no version: damaged")
                    self._db.execute(f"INSERT INTO {s}.meta VALUES ('version', %s, 0), ('journal_id', %s, 0)",
                                     (json.dumps(_VERSION), json.dumps(uuid.uuid4().hex[:12])))
        except psycopg.Error as e:
            raise JournalError(f"cannot open journal {self.path!r}: {_first_line(e)}") from None

    def _open_existing(self) -> None:
        psycopg = _psycopg()
        try:
            self._db.execute("SET default_transaction_read_only = on")
            present = self._db.execute("SELECT to_regclass(%s) IS NOT NULL",
                                       (f"{self.schema}.commands",)).fetchone()[0]
        except psycopg.Error as e:
            raise JournalError(f"cannot open journal {self.path!r}: {_first_line(e)}") from None
        if not present:
            raise JournalError(f"{self.path!r} holds no acd journal (no table {self.schema}.commands)")
        self._check_version()

    def _check_version(self) -> None:
        version = self._meta_raw("version")
        if version != _VERSION:
            raise JournalError(f"journal {self.path!r} has version {version!r}, this acd reads {_VERSION!r}")

    def _meta_raw(self, key: str) -> Any:
        db = self._conn()
        with deadline(db, self.timeout):
            row = db.execute(f"SELECT value FROM {self.schema}.meta WHERE key = %s", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError as e:
            raise JournalError(f"journal {self.path!r}: meta {key!r} is not JSON ({e})") from None

    def _abandon(self) -> None:
        for conn in (self._db, self._listener):
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
        self._db = self._listener = None

    def _conn(self) -> Any:
        """The writer connection; re-opened after a failure (a write still carries the epoch, so a
        reconnected node that lost its place is refused by the database)."""
        if self._db is None or self._db.closed or self._db.broken:
            if self._closed:   # a thread still running for a closed journal must not reconnect
                raise JournalError(f"journal {self.path!r} is closed")
            if self._db is not None:
                try:
                    self._db.close()
                except Exception:
                    pass
            self._db = None
            db = connect(self.url, "writer", self.node, timeout=self.timeout)
            if self._closed:
                db.close()
                raise JournalError(f"journal {self.path!r} is closed")
            self._db = db
        return self._db

    @property
    def writer_pid(self) -> int:
        return int(self._conn().info.backend_pid)

    # ------------------------------------------------------------ identity and roles
    @property
    def journal_id(self) -> str:
        return self._id

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def primary(self) -> bool:
        return self.epoch is not None

    def promote(self, epoch: int) -> None:
        """Write from now on with ``epoch`` (won by :class:`~.leadership.Leadership`); the records
        of earlier epochs are all durable by then: the next seq follows the last one."""
        if self.read_only:
            raise JournalError(f"journal {self.path!r} was opened read-only: it cannot lead")
        with self._lock:
            self.epoch = int(epoch)
            self._seq = self._durable = self.head()
            pending, self._pending_meta = self._pending_meta, {}
        for key, value in pending.items():
            if self.get_meta(key) is None:
                self.set_meta(key, value)

    def demote(self) -> None:
        with self._lock:
            self.epoch = None
            self._buffer.clear()
            self._fail_group(self._group, JournalError(f"journal {self.path!r}: this node was demoted"))

    def head(self) -> int:
        """The last durable seq in the database."""
        psycopg = _psycopg()
        try:
            db = self._conn()
            with deadline(db, self.timeout):
                return int(db.execute(f"SELECT COALESCE(max(seq), 0) FROM {self.schema}.commands").fetchone()[0])
        except psycopg.Error as e:
            raise JournalError(f"cannot read journal {self.path!r}: {_first_line(e)}") from None

    # ------------------------------------------------------------ writing
    def append(self, op: str, args: Tuple[Any, ...]) -> int:
        """Record one command; durable when this returns (unless inside :meth:`batch`)."""
        try:
            payload = json.dumps(args, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise JournalError(f"command {op!r} has arguments JSON cannot hold: {e}") from e
        with self._lock:
            if self.epoch is None:
                raise JournalError(f"journal {self.path!r}: this node is a standby; it does not write")
            self._seq += 1
            seq = self._seq
            self._buffer.append((seq, op, payload))
            if self._in_batch:
                return seq
            group = self._group
            while not group.done:
                if not self._flushing:
                    self._flush_locked()        # our record is in the buffer: we write the group
                    continue
                group.ready.wait()              # woken when our group is done, or to write it
            if group.error is not None:
                raise group.error
            return seq

    def _fail_group(self, group: _Group, error: JournalError) -> None:
        if not group.done:
            group.done, group.error = True, error
            group.ready.notify_all()
        if group is self._group:
            self._group = _Group(self._lock)

    def _flush_locked(self) -> None:
        """Write the buffer as one transaction; called with the lock held, releases it meanwhile
        so that appends of other threads join the next group."""
        if not self._buffer:
            return
        group, self._buffer = self._buffer, []
        waiters, self._group = self._group, _Group(self._lock)
        epoch = self.epoch
        self._flushing = True
        self._lock.release()
        error: Optional[JournalError] = None
        try:
            self._write(group, epoch)
        except JournalError as e:
            error = e
        finally:
            self._lock.acquire()
            self._flushing = False
        if error is None:
            self._durable = group[-1][0]
            waiters.done = True
            waiters.ready.notify_all()
            if self._buffer:
                self._group.ready.notify()      # one appender of the next group writes it
        else:
            # nothing of this group is durable, nor anything queued behind it (seqs must not skip)
            self._buffer.clear()
            self._seq = self._durable
            self._fail_group(waiters, error)
            self._fail_group(self._group, error)
        self._wrote.notify_all()                # batch() and close() waiting for the flush
        if error is not None:
            raise error

    def _write(self, group: List[Tuple[int, str, str]], epoch: Optional[int]) -> None:
        psycopg = _psycopg()
        s = self.schema
        try:
            # one statement in autocommit: atomic, and one round trip per group
            db = self._conn()
            # the seqs of a group follow each other: the first one is enough
            with deadline(db, self.timeout):
                db.execute(f"INSERT INTO {s}.commands (seq, epoch, op, args) SELECT %s::bigint + n - 1, %s, o, a "
                           "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS g(o, a, n)",
                           (group[0][0], epoch, _text_array([g[1] for g in group]), _text_array([g[2] for g in group])))
        except psycopg.Error as e:
            raise self._error("write", e) from None

    def _error(self, what: str, e: BaseException) -> JournalError:
        if getattr(e, "sqlstate", None) == FENCED_SQLSTATE:
            return Fenced(f"journal {self.path!r}: {_first_line(e)}")
        return JournalError(f"cannot {what} journal {self.path!r}: {_first_line(e)}")

    def batch(self) -> "_Batch":
        """``with journal.batch():`` commits the block's commands together (group commit)."""
        return _Batch(self)

    def set_meta(self, key: str, value: Any) -> None:
        """Set a meta value; on a standby, kept until it becomes primary (then written if unset)."""
        psycopg = _psycopg()
        if self.epoch is None:
            self._pending_meta[key] = value
            return
        try:
            db = self._conn()
            with deadline(db, self.timeout):
                db.execute(f"INSERT INTO {self.schema}.meta (key, value, epoch) VALUES (%s, %s, %s) "
                           "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, epoch = EXCLUDED.epoch",
                           (key, json.dumps(value), self.epoch))
        except psycopg.Error as e:
            raise self._error("write", e) from None

    # ------------------------------------------------------------ reading
    def get_meta(self, key: str, default: Any = None) -> Any:
        psycopg = _psycopg()
        if self.epoch is None and key in self._pending_meta:
            return self._pending_meta[key]
        try:
            value = self._meta_raw(key)
        except psycopg.Error as e:
            raise JournalError(f"cannot read journal {self.path!r}: {_first_line(e)}") from None
        return default if value is None else value

    def records(self, after: int = 0, *, upto: Optional[int] = None) -> Iterator[Record]:
        """Durable records with ``after < seq`` (``<= upto`` if given), in order; a primary reads
        only what it made durable."""
        psycopg = _psycopg()
        if upto is None and self.epoch is not None:
            upto = self._durable
        limit = 1 << 62 if upto is None else upto
        expected = after + 1
        while expected <= limit:
            # pages of rows, so that replaying a long journal does not hold it all in memory
            try:
                db = self._conn()
                with deadline(db, max(self.timeout, 30.0)):   # a page of a long journal may take a while
                    rows = db.execute(f"SELECT seq, op, args FROM {self.schema}.commands WHERE seq >= %s AND "
                                      "seq <= %s ORDER BY seq LIMIT %s", (expected, limit, _PAGE)).fetchall()
            except psycopg.Error as e:
                raise JournalError(f"cannot read journal {self.path!r}: {_first_line(e)}") from None
            for seq, op, args in rows:
                if seq != expected:
                    raise JournalError(f"journal {self.path!r}: record {expected} is missing (found {seq} after "
                                       f"{expected - 1}); the journal is damaged")
                expected += 1
                try:
                    values = json.loads(args)
                except ValueError as e:
                    raise JournalError(f"journal {self.path!r}: record {seq} ({op!r}) has unreadable arguments "
                                       f"({e})") from None
                if not isinstance(values, list):
                    raise JournalError(f"journal {self.path!r}: record {seq} is malformed ({op!r}, {args!r})")
                if self.epoch is None and seq > self._seq:
                    self._seq = seq
                yield int(seq), op, tuple(values)
            if len(rows) < _PAGE:
                return

    def epochs(self) -> List[Tuple[int, int, int]]:
        """``(epoch, first seq, last seq)`` runs in log order: who wrote what (for audits and tests)."""
        psycopg = _psycopg()
        try:
            rows = self._conn().execute(
                f"SELECT epoch, min(seq), max(seq) FROM (SELECT seq, epoch, seq - row_number() OVER "
                f"(PARTITION BY epoch ORDER BY seq) AS run FROM {self.schema}.commands) r "
                "GROUP BY epoch, run ORDER BY min(seq)").fetchall()
        except psycopg.Error as e:
            raise JournalError(f"cannot read journal {self.path!r}: {_first_line(e)}") from None
        return [(int(a), int(b), int(c)) for a, b, c in rows]

    def wait_for_change(self, timeout: float) -> Optional[int]:
        """Block up to ``timeout`` s for a commit notification; the seq it names, or None.
        Uses its own connection (opened on first use)."""
        psycopg = _psycopg()
        try:
            if self._listener is None or self._listener.closed or self._listener.broken:
                if self._closed:
                    raise JournalError(f"journal {self.path!r} is closed")
                listener = connect(self.url, "follower", self.node, timeout=self.timeout)
                if self._closed:
                    listener.close()
                    raise JournalError(f"journal {self.path!r} is closed")
                self._listener = listener
                self._listener.execute(f"LISTEN {self.channel}")
            # the first notification is enough: the caller then reads every record there is
            for n in self._listener.notifies(timeout=timeout, stop_after=1):
                return int(n.payload or 0)
            return None
        except psycopg.Error as e:
            if self._listener is not None:
                try:
                    self._listener.close()
                except Exception:
                    pass
                self._listener = None
            raise JournalError(f"cannot follow journal {self.path!r}: {_first_line(e)}") from None

    def __len__(self) -> int:
        return self.head()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            try:
                if self._db is not None and self.epoch is not None and self._buffer and not self._flushing:
                    self._flush_locked()
            finally:
                self._abandon()

    def __enter__(self) -> "PostgresJournal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Batch:
    def __init__(self, journal: PostgresJournal) -> None:
        self.journal = journal

    def __enter__(self) -> PostgresJournal:
        with self.journal._lock:
            self.journal._in_batch += 1
        return self.journal

    def __exit__(self, *exc: object) -> None:
        j = self.journal
        with j._lock:
            j._in_batch -= 1
            if j._in_batch:
                return
            while j._flushing:
                j._wrote.wait()
            j._flush_locked()
