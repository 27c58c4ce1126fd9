"""Asterisk's ``queue_log``, written by ``acd serve`` for tools built for app_queue.

:class:`QueueLogWriter` is a projection: it sees every durable journal record
with its decisions and turns them into the lines app_queue would have
written for the same calls (the format and the ``ACD...`` events of our own
are in :mod:`acd.adapters.asterisk.queue_log`).  It keeps only what the lines
need: each open call's queue, entry time, position at entry, offer and answer
times, and which agents are paused.  Times come from the journal's ``clock``
notes; records before the first of them (a journal older than the notes)
change the state but write nothing.

:class:`QueueLogFile` appends the lines to a file **exactly once** across
restarts and crashes.  The journal is the source: beside the file, a cursor
(``PATH.acd-cursor``) says which journal (its id), up to which record and to
which file size the lines are written.  At start the writer replays the
journal with everyone else and writes only what comes after the cursor;
lines written after the cursor was last saved (it is saved at most once a
second) are found again in the file and not repeated, because the lines of a
record are a pure function of the journal.  A rotated file (moved away by
logrotate) is noticed within a second and a new one is started.

Positions are counted per queue in arrival order, as app_queue counts
callers of one priority; ``acd``'s priorities and routing steps may take
callers out of that order.  Completions are logged ``COMPLETECALLER``: the
journal does not say which side hung up.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ..._core import Assign, DialBack, Exit, OfferCallback, Overflow
from ...adapters.asterisk.queue_log import format_line
from ...journal.calls import WallClock
from ...journal.engine import NOW_AT as _NOW_AT
from ..callbacks import NOTE_NUMBER
from ..logs import event

__all__ = ("QueueLogWriter", "QueueLogFile", "CURSOR_SUFFIX")

log = logging.getLogger("acd.service.queue_log")

CURSOR_SUFFIX = ".acd-cursor"
_SAVE_EVERY = 1.0            # seconds between cursor saves (and rotation checks)
_MAX_TAIL = 16 << 20         # bytes of an unconfirmed tail compared at start; beyond, it is left as is
_MAX_PENDING = 100_000       # lines kept while the file cannot be written; beyond, the oldest are lost


class _Open:
    __slots__ = ("queue", "entered", "origpos", "offered", "agent", "answered")

    def __init__(self, queue: str, entered: float, origpos: int) -> None:
        self.queue = queue
        self.entered = entered          # unix time it entered its current queue
        self.origpos = origpos
        self.offered = entered          # when its current agent was offered it
        self.agent: Any = None
        self.answered = math.nan


def _secs(a: float, b: float) -> int:
    """Whole seconds between two times, as the difference of the times written."""
    return int(math.floor(b)) - int(math.floor(a))


class QueueLogWriter:
    """Projection ``apply(seq, op, args, decisions)`` -> ``sink.line(seq, text)`` calls,
    then ``sink.done(seq)`` after each record."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self._clock = WallClock()
        self._calls: Dict[Any, _Open] = {}
        self._line: Dict[str, Dict[Any, None]] = {}             # queue -> its waiting calls, in arrival order
        self._numbers: Dict[Any, str] = {}
        self._paused: Set[Any] = set()
        self._login: Dict[Any, float] = {}
        self._queues: List[str] = []                            # in the order the journal declared them
        self._serves: Dict[Any, Optional[List[str]]] = {}       # agent -> its queues (None: all)
        self.unplaced = 0                                        # records before any clock note

    # ------------------------------------------------------------------ the projection
    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        self._seq = seq
        if op == "note":
            self._note(args)
        elif op == "add_queue":
            self._queues.append(args[0]["name"])
        else:
            at = _NOW_AT.get(op)
            if at is not None:
                placed = self._clock.unix(float(args[at]))
                t = math.nan if placed is None else placed
                if placed is None:
                    self.unplaced += 1
                self._command(op, args, t)
                for d in decisions:
                    self._decision(d, t)
        self.sink.done(seq)

    __call__ = apply       # also an observer of acd.journal.calls.replay_journal

    def _emit(self, t: float, call: Any, queue: Any, agent: Any, ev: str, *data: Any) -> None:
        if not math.isnan(t):
            self.sink.line(self._seq, format_line(t, call, queue, agent, ev, *data))

    def _note(self, args: Tuple[Any, ...]) -> None:
        kind, data = args[0], args[1] if len(args) > 1 else None
        if not isinstance(data, dict):
            return
        if kind == "clock":
            self._clock.note(data)
        elif kind == NOTE_NUMBER and "call" in data:
            self._numbers[data["call"]] = str(data.get("number", ""))

    # ------------------------------------------------------------------ positions
    def _join(self, call: Any, queue: str) -> int:
        line = self._line.setdefault(queue, {})
        line[call] = None
        return len(line)

    def _position(self, call: Any, queue: str) -> int:
        """1-based place among the queue's waiting calls (0: not in the line, e.g. a call-back)."""
        for i, c in enumerate(self._line.get(queue, ()), 1):
            if c == call:
                return i
        return 0

    def _leave(self, call: Any, queue: str) -> None:
        self._line.get(queue, {}).pop(call, None)

    def _left(self, c: _Open, call: Any, t: float, ev: str, *more: Any) -> None:
        """A line ``ev|position|origposition|wait`` for a call leaving its queue unanswered."""
        self._emit(t, call, c.queue, None, ev, self._position(call, c.queue), c.origpos, _secs(c.entered, t),
                   *more)
        self._leave(call, c.queue)

    def _close(self, call: Any) -> None:
        c = self._calls.pop(call, None)
        if c is not None:
            self._leave(call, c.queue)
        self._numbers.pop(call, None)

    # ------------------------------------------------------------------ records
    def _command(self, op: str, args: Tuple[Any, ...], t: float) -> None:
        if op in ("login", "logout", "pause", "ready"):
            self._agent(op, args, t)
            return
        if op in ("advance", "set_agent", "update_queue", "remove_queue"):
            return                      # no line of their own (their decisions follow)
        call = args[0]
        if op == "enqueue":
            queue = args[1]
            pos = self._join(call, queue)
            self._calls[call] = _Open(queue, t, pos)
            self._emit(t, call, queue, None, "ENTERQUEUE", "", self._numbers.get(call, ""), pos)
            return
        if op == "schedule_callback":
            queue, at = args[1], float(args[2])
            self._calls[call] = _Open(queue, t, 0)
            slot = self._clock.unix(at)
            self._emit(t, call, queue, None, "ENTERQUEUE", "", self._numbers.get(call, ""), 0)
            self._emit(t, call, queue, None, "ACDCALLBACKSCHEDULED", int(math.floor(slot)) if slot is not None else "")
            return
        c = self._calls.get(call)
        if c is None:
            return
        if op == "answer":
            self._connect(c, call, t)
        elif op == "callback_answered":
            self._emit(t, call, c.queue, c.agent, "ACDCALLBACKREACHED")
            self._connect(c, call, t)
        elif op in ("ring_no_answer", "reject"):
            if c.agent is not None:
                self._emit(t, call, c.queue, c.agent, "RINGNOANSWER", max(0, int(round((t - c.offered) * 1000))))
            c.agent = None
        elif op == "complete":
            if not math.isnan(c.answered):
                self._emit(t, call, c.queue, c.agent, "COMPLETECALLER", _secs(c.entered, c.answered),
                           _secs(c.answered, t), c.origpos)
            self._close(call)
        elif op == "abandon":
            self._left(c, call, t, "ABANDON")
            self._close(call)
        elif op == "withdraw":
            self._left(c, call, t, "WITHDRAW", "")
            self._close(call)
        elif op == "accept_callback":
            self._left(c, call, t, "ACDCALLBACKACCEPTED")

    def _connect(self, c: _Open, call: Any, t: float) -> None:
        c.answered = t
        self._leave(call, c.queue)
        self._emit(t, call, c.queue, c.agent, "CONNECT", _secs(c.entered, t), "", _secs(c.offered, t))

    def _decision(self, d: Any, t: float) -> None:
        c = self._calls.get(d.call)
        if c is None:
            return
        if isinstance(d, Assign):
            c.agent, c.offered = d.agent, t
        elif isinstance(d, DialBack):
            c.agent, c.offered = d.agent, t
            self._emit(t, d.call, c.queue, d.agent, "ACDCALLBACKDIALLED", d.attempt)
        elif isinstance(d, Overflow):
            self._left(c, d.call, t, "EXITWITHTIMEOUT")
            pos = self._join(d.call, d.to_queue)
            c.queue, c.entered, c.origpos = d.to_queue, t, pos
            self._emit(t, d.call, d.to_queue, None, "ENTERQUEUE", "", self._numbers.get(d.call, ""), pos)
        elif isinstance(d, Exit):
            if d.reason == "callback_failed":
                self._emit(t, d.call, c.queue, None, "ACDCALLBACKFAILED")
            else:   # Asterisk's names: EXITEMPTY (joinempty / leavewhenempty); max_wait, full, wait_too_long
                self._left(c, d.call, t, "EXITEMPTY" if d.reason == "no_agents" else "EXITWITHTIMEOUT")
            self._close(d.call)
        elif isinstance(d, OfferCallback):
            self._emit(t, d.call, c.queue, None, "ACDCALLBACKOFFERED", int(round(d.ewt)) if math.isfinite(d.ewt)
                       else "")

    def _agent(self, op: str, args: Tuple[Any, ...], t: float) -> None:
        agent = args[0]
        if op == "login":
            self._login[agent] = t
            queues = args[3] if len(args) > 3 else None
            self._serves[agent] = list(queues) if queues is not None else None
            self._emit(t, "NONE", "NONE", agent, "AGENTLOGIN", "")
            paused = args[4] if len(args) > 4 else None
            if paused is not None:
                self._pause_all(agent, t, "PAUSE", paused)
        elif op == "logout":
            since = self._login.pop(agent, t)
            self._paused.discard(agent)
            self._emit(t, "NONE", "NONE", agent, "AGENTLOGOFF", "", _secs(since, t) if not math.isnan(since) else 0)
            self._serves.pop(agent, None)
        elif op == "pause":
            self._pause_all(agent, t, "PAUSE", args[2] if len(args) > 2 else "")
        elif op == "ready" and agent in self._paused:
            self._pause_all(agent, t, "UNPAUSE", "")

    def _pause_all(self, agent: Any, t: float, ev: str, reason: str) -> None:
        """As Asterisk 22 logs a pause in every queue: ``PAUSEALL`` (queue NONE), then ``PAUSE`` per queue."""
        if ev == "PAUSE":
            self._paused.add(agent)
        else:
            self._paused.discard(agent)
        self._emit(t, "NONE", "NONE", agent, ev + "ALL", reason)
        queues = self._serves.get(agent)
        for q in self._queues if queues is None else queues:
            self._emit(t, "NONE", q, agent, ev, reason)


class QueueLogFile:
    """The sink of :class:`QueueLogWriter`: appends to ``path``, exactly once per journal record."""

    def __init__(self, path: str, journal_id: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.cursor_path = path + CURSOR_SUFFIX
        self.journal_id = journal_id
        self._clock = clock
        self._fd: Optional[int] = None
        self._inode = 0
        self.size = 0                   # bytes of the file that are confirmed ours or foreign, up to the cursor
        self.after = 0                  # records up to this seq were written before (by the cursor)
        self.seq = 0                    # the last record whose lines are all in the file
        self._tail = b""                # unconfirmed bytes after the cursor, compared with what comes
        self._pending: List[Tuple[int, bytes]] = []
        self._saved_at = -math.inf
        self._failing = False
        self._retry_at = -math.inf
        self.lines = 0                  # written by this process
        self.lost = 0
        self._open()

    # ------------------------------------------------------------------ file
    def _open(self) -> None:
        cursor = self._read_cursor()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        st = os.fstat(fd)
        self._fd, self._inode = fd, st.st_ino
        if cursor is not None and cursor.get("journal") == self.journal_id:
            self.after = self.seq = int(cursor.get("seq", 0))
            same = cursor.get("inode") == st.st_ino and st.st_size >= int(cursor.get("size", 0))
            if same and 0 < st.st_size - int(cursor["size"]) <= _MAX_TAIL:
                with open(self.path, "rb") as f:
                    f.seek(int(cursor["size"]))
                    self._tail = f.read()
        self.size = st.st_size - len(self._tail)

    def _read_cursor(self) -> Optional[Dict[str, Any]]:
        try:
            with open(self.cursor_path, encoding="utf-8") as f:
                got = json.load(f)
            return got if isinstance(got, dict) else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            event(log, logging.WARNING, "queue_log_cursor_unreadable", f"queue_log cursor {self.cursor_path!r} "
                  f"is unreadable ({exc}); writing every record of the journal again", path=self.cursor_path)
            return None

    def _save_cursor(self) -> None:
        data = {"journal": self.journal_id, "seq": self.seq, "size": self.size, "inode": self._inode}
        tmp = self.cursor_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.cursor_path)

    def _reopen_if_rotated(self) -> None:
        try:
            moved = os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            moved = True
        if moved:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._inode, self.size, self._tail = os.fstat(self._fd).st_ino, 0, b""
            event(log, logging.INFO, "queue_log_reopened", f"queue_log {self.path!r} was moved away: a new file "
                  "is started", path=self.path)

    # ------------------------------------------------------------------ the sink
    def line(self, seq: int, text: str) -> None:
        if seq <= self.after:
            return                                      # written before the cursor was saved
        data = text.encode("utf-8", "replace")
        if self._tail:
            if self._tail.startswith(data):             # written before a crash, after the last save
                self._tail = self._tail[len(data):]
                self.size += len(data)
                return
            event(log, logging.WARNING, "queue_log_tail_foreign", f"queue_log {self.path!r} holds {len(self._tail)} "
                  "byte(s) after acd's cursor that acd would not write; appending after them", path=self.path)
            self.size += len(self._tail)
            self._tail = b""
        self._pending.append((seq, data))
        if len(self._pending) > _MAX_PENDING:
            self._pending.pop(0)
            self.lost += 1
        self._flush()

    def done(self, seq: int) -> None:
        if seq <= self.after:
            return
        if self._pending:
            self._flush()
        if self._pending:
            return          # the cursor stays where the file and the journal agree
        self.seq = seq
        now = self._clock()
        if now - self._saved_at >= _SAVE_EVERY:
            self._saved_at = now
            try:
                self._reopen_if_rotated()
                self._save_cursor()
            except OSError as exc:
                self._failed(exc)

    def _flush(self) -> None:
        if self._failing and self._clock() < self._retry_at:
            return                                      # retried once a second while the disk refuses
        try:
            assert self._fd is not None
            while self._pending:
                seq, data = self._pending[0]
                written = os.write(self._fd, data)
                if written != len(data):               # a short write: a full disk; the rest is lost if not retried
                    self._pending[0] = (seq, data[written:])
                    self.size += written
                    raise OSError(28, "short write")
                self.size += written
                self._pending.pop(0)
                self.lines += 1
            if self._failing:
                self._failing = False
                event(log, logging.INFO, "queue_log_recovered", f"queue_log {self.path!r} is written again",
                      path=self.path)
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self._retry_at = self._clock() + _SAVE_EVERY
        if not self._failing:
            self._failing = True
            event(log, logging.ERROR, "queue_log_failed", f"cannot write queue_log {self.path!r}: "
                  f"{exc.strerror or exc}; lines are kept (up to {_MAX_PENDING:,}) and retried",
                  path=self.path)

    def close(self) -> None:
        """Write what is pending and save the cursor (the service's stop)."""
        self._failing = False
        self._flush()
        if not self._pending:          # else the saved cursor stays valid: what follows it is found again
            try:
                self._save_cursor()
            except OSError as exc:
                self._failed(exc)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
