"""Who is primary: a PostgreSQL advisory lock, an epoch, a heartbeat lease.

A node is primary while it holds the session-level advisory lock of the
journal *and* the epoch it won is the current one.  Its lock connection
renews a heartbeat (``leader.heartbeat = now()``, the database's clock, so
node clocks do not matter) every ``lease / 4`` seconds.

Taking over (:meth:`Leadership.try_take`):

1. the lock is free when the old primary's session ended (kill -9, a closed
   socket: at once; a lost machine: when TCP keepalives give up);
2. a primary that still holds the lock but has not renewed its heartbeat for
   ``lease`` seconds (paused by SIGSTOP or a long GC, cut from the network
   while its server-side session lingers) has its sessions ended by the
   standby (``pg_terminate_backend`` on the backends named ``acd-* <node>``
   it registered), which frees the lock;
3. the winner bumps the epoch in a transaction that first takes EXCLUSIVE
   locks on the journal's tables: every write of the old epoch in flight
   finishes first, every later one is refused by the fencing triggers.

What the old primary sees when it comes back: its heartbeat finds another
epoch (:meth:`renew` returns False) and its writes fail with
:class:`~acd.errors.Fenced`; it must stop acting at once.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..errors import JournalError
from .postgres import LOCK_CLASS_LEADER, _first_line, _psycopg, connect, deadline, redact_url, shut_down

__all__ = ("Leadership",)


class Leadership:
    """The lock connection of one node (see the module docstring)."""

    def __init__(self, url: str, *, schema: str = "acd", node: str, lease: float = 2.0,
                 timeout: float = 3.0) -> None:
        if not lease > 0:
            raise JournalError(f"ha.lease must be > 0 seconds, got {lease!r}")
        self.url, self.schema, self.node, self.lease, self.timeout = url, schema, node, float(lease), timeout
        self.epoch: Optional[int] = None
        self._db: Any = None
        self._released = False

    def _conn(self) -> Any:
        if self._db is None or self._db.closed or self._db.broken:
            if self.epoch is not None:
                # the session that held the lock is gone: so is the lock
                self.epoch = None
                self._close()
                raise JournalError("the lock connection was lost; this node is no longer primary")
            self._close()
            if self._released:   # a thread still running for a released lead must not reconnect
                raise JournalError("the lead was released")
            db = connect(self.url, "leader", self.node, timeout=self.timeout)
            if self._released:
                db.close()
                raise JournalError("the lead was released")
            self._db = db
            ms = int(max(self.timeout, 2 * self.lease) * 1000)
            self._db.execute(f"SET statement_timeout = {ms}")
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except Exception:
                pass
        self._db = None

    @property
    def held(self) -> bool:
        return self.epoch is not None

    def holder(self) -> Dict[str, Any]:
        """The leader row: epoch, node, pids and how old its heartbeat is (seconds, None if never)."""
        psycopg = _psycopg()
        try:
            db = self._conn()
            with deadline(db, self.timeout):
                row = db.execute(
                    f"SELECT epoch, node, lock_pid, writer_pid, EXTRACT(EPOCH FROM now() - heartbeat)::float8 "
                    f"FROM {self.schema}.leader WHERE id = 1").fetchone()
        except psycopg.Error as e:
            raise JournalError(f"cannot read the leader of {redact_url(self.url)!r}: {_first_line(e)}") from None
        if row is None:
            raise JournalError(f"journal {redact_url(self.url)!r} has no leader row; it is damaged")
        return {"epoch": int(row[0]), "node": row[1], "lock_pid": row[2], "writer_pid": row[3], "age": row[4]}

    def try_take(self, writer_pid: int) -> Optional[int]:
        """Become primary if the lock can be had (evicting a holder whose lease ran out); the new
        epoch, or None.  ``writer_pid``: the backend of the journal's writer connection."""
        psycopg = _psycopg()
        try:
            db = self._conn()
            with deadline(db, self.timeout):
                got = db.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                                 (LOCK_CLASS_LEADER, self.schema)).fetchone()[0]
            if not got:
                info = self.holder()
                if info["age"] is None or info["age"] <= self.lease:
                    return None
                with deadline(db, self.timeout):
                    self._evict(info)
                    got = db.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                                     (LOCK_CLASS_LEADER, self.schema)).fetchone()[0]
                if not got:
                    return None
            with deadline(db, self.timeout * 3):
                return self._bump(writer_pid)
        except psycopg.Error as e:
            self._close()
            raise JournalError(f"cannot take the lead of {redact_url(self.url)!r}: {_first_line(e)}") from None

    def _evict(self, info: Dict[str, Any]) -> None:
        """End the sessions of a holder whose lease ran out (only backends it named as acd's)."""
        pids = [p for p in (info["lock_pid"], info["writer_pid"]) if p]
        self._conn().execute(
            "SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity WHERE pid = ANY(%s) "
            "AND application_name LIKE 'acd-%%' AND pid <> pg_backend_pid()", (pids,))

    def _bump(self, writer_pid: int) -> int:
        db = self._conn()
        s = self.schema
        for _ in range(5):
            try:
                with db.transaction():
                    db.execute("SET LOCAL lock_timeout = '1s'")
                    db.execute(f"LOCK TABLE {s}.commands, {s}.meta IN EXCLUSIVE MODE")
                    epoch = db.execute(
                        f"UPDATE {s}.leader SET epoch = epoch + 1, node = %s, lock_pid = pg_backend_pid(), "
                        "writer_pid = %s, heartbeat = now(), since = now() WHERE id = 1 RETURNING epoch",
                        (self.node, writer_pid)).fetchone()[0]
            except _psycopg().errors.LockNotAvailable:
                # a write of the old primary holds the tables (it is paused mid-transaction): end it
                db.execute("SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity WHERE "
                           "application_name LIKE 'acd-writer %%' AND pid <> %s AND pid <> pg_backend_pid()",
                           (writer_pid,))
                continue
            self.epoch = int(epoch)
            return self.epoch
        db.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS_LEADER, s))
        raise JournalError("could not fence the old primary's writes (tables stayed locked); not taking over")

    def renew(self) -> bool:
        """Renew the heartbeat; False if another node took the epoch (this one must stop at once).
        Raises JournalError if the database cannot be reached (the lease then runs out)."""
        if self.epoch is None:
            return False
        psycopg = _psycopg()
        try:
            db = self._conn()
            # up to twice the lease, as the primary's own check: a slow commit (a loaded disk) is no
            # reason to drop the lock's session, and a standby evicts a stalled holder anyway
            with deadline(db, 2 * self.lease):
                row = db.execute(
                    f"UPDATE {self.schema}.leader SET heartbeat = now() WHERE id = 1 AND epoch = %s "
                    "AND lock_pid = pg_backend_pid() RETURNING epoch", (self.epoch,)).fetchone()
        except psycopg.Error as e:
            self._close()
            self.epoch = None
            raise JournalError(f"cannot renew the lead of {redact_url(self.url)!r}: {_first_line(e)}") from None
        except JournalError:
            raise
        if row is None:
            self.epoch = None
            return False
        return True

    def interrupt(self) -> None:
        """Make a renewal blocked in another thread fail now (before :meth:`release`)."""
        db = self._db
        try:
            fd = int(db.pgconn.socket) if db is not None and not db.closed else -1
        except Exception:
            return
        if fd >= 0:
            shut_down(fd)

    def release(self) -> None:
        """Give the lead up (a clean stop): closing the lock's session frees the lock, so the next node
        takes over without waiting for the lease.  The object cannot be used again."""
        self._released = True
        self.epoch = None
        self._close()
