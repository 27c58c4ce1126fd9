"""An engine whose every accepted command is journaled first-class.

:class:`JournaledEngine` wraps :class:`acd.Engine`: each command is applied,
then appended to the journal (durably, unless batched), then its decisions
are returned.  A command the engine refuses is not journaled, but the time it
let pass is (as ``advance``), so that replay reaches exactly the same state.
:meth:`JournaledEngine.open` rebuilds the engine from a journal after a
restart: every waiting call, every pending call-back (accepted, retrying,
scheduled) comes back, once.

**A journal that cannot write** (full disk, I/O error) must not leave the
engine ahead of its journal: the command that failed to journal is rolled
back (the engine is rebuilt from the durable records, which do not hold it)
and :class:`~acd.errors.JournalError` is raised, so the caller sees a refusal
that changed nothing.  While the journal is down every command is refused
the same way, without touching the engine; every so often (``retry_after``,
doubling up to ``retry_max`` seconds) a command first tries a small write (a
``journal_recovered`` note) and, once it succeeds, commands flow again.

**Observers.**  ``observer(seq, op, args, decisions)`` is called for every
durable record, in order -- while replaying at open and live -- so that what
it derives (counters, a call-back ledger) is the same after a restart as
before it.  ``note(kind, data)`` journals a fact of the caller's own (not an
engine command) that observers see in its place in the order.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .._core import Engine
from ..errors import AcdError, Fenced, InvalidInput, JournalError
from ..policy import Queue, queue_from_dict
from .base import Journal
from .sqlite import SqliteJournal

__all__ = ("JournaledEngine", "Observer", "COMMANDS", "CALL_COMMANDS", "apply_record")

#: engine commands a journal may hold (anything else in a journal is an error, never applied)
COMMANDS = ("login", "logout", "ready", "pause", "enqueue", "answer", "ring_no_answer", "reject", "abandon",
            "withdraw", "complete", "advance", "accept_callback", "callback_answered", "callback_failed",
            "schedule_callback", "set_agent", "update_queue", "remove_queue")
_CONFIG = ("add_skill", "add_queue")
_OPTIONS = ("agent_strategy", "seed", "ring_no_answer", "no_answer_delay", "reject_delay", "call_choice",
            "patience_window")

Observer = Callable[[int, str, Tuple[Any, ...], List[Any]], None]


def _queue_to_dict(q: Queue) -> Dict[str, Any]:
    d = dataclasses.asdict(q)
    d["steps"] = [dict(s) for s in d["steps"]]
    d["service_level"] = list(d["service_level"])
    return d


class JournaledEngine:
    """Same commands and queries as :class:`acd.Engine`, with a durable command journal."""

    def __init__(self, journal: Journal, *, engine_factory: Callable[..., Any] = Engine,
                 observer: Optional[Observer] = None, clock: Callable[[], float] = time.monotonic,
                 retry_after: float = 0.5, retry_max: float = 10.0, fail_stop: bool = False,
                 **options: Any) -> None:
        self.journal = journal
        #: a failed write stops the engine instead of rolling it back and retrying (a primary on a
        #: shared journal: it cannot know whether another node leads now, so it steps down)
        self.fail_stop = fail_stop
        self._factory = engine_factory
        stored = journal.get_meta("engine_options")
        if stored is None:
            unknown = set(options) - set(_OPTIONS)
            if unknown:
                raise JournalError(f"unknown engine option(s) {sorted(unknown)!r}")
            self._options = dict(options)
            self.engine = engine_factory(**options)
            journal.set_meta("engine_options", options)
        else:
            if options and options != stored:
                raise JournalError(f"journal {journal.path!r} was written with engine options {stored!r}, "
                                   f"not {options!r}")
            self._options = dict(stored)
            self.engine = engine_factory(**stored)
        self.observer = observer
        self._clock = clock
        self._retry_after, self._retry_max = retry_after, retry_max
        #: decisions produced while replaying the journal (already acted upon before the restart,
        #: or lost in flight: reconcile with the PBX using :meth:`calls`)
        self.replayed: List[Any] = []
        self._held: List[Any] = []       # decisions of a refused command's deadlines, for the next command
        self._batch_depth = 0
        self._batch_obs: List[Tuple[int, str, Tuple[Any, ...], List[Any]]] = []
        self._batch_held = 0
        self._up = True
        self._broken: Optional[str] = None
        self.last_error: Optional[str] = None
        self.down_since: Optional[float] = None
        self._next_try = 0.0
        self._delay = retry_after
        #: seq of the last record the engine holds (replayed, followed or written)
        self.applied = 0
        #: set when the database refused a write of this node's epoch (another node is primary)
        self.fenced: Optional[str] = None
        #: writes that failed since this process opened the journal (health, for /metrics)
        self.write_failures = 0
        #: Unix time this process last made a record durable (None before its first write)
        self.last_write_unix: Optional[float] = None

    @classmethod
    def open(cls, path: str, *, sync: str = "full", engine_factory: Callable[..., Any] = Engine,
             observer: Optional[Observer] = None, **options: Any) -> "JournaledEngine":
        """Open (or create) the journal at ``path`` and rebuild the engine from it.

        ``observer`` sees every record while the journal is replayed, then every new one."""
        journal = SqliteJournal(path, sync=sync)
        try:
            self = cls(journal, engine_factory=engine_factory, observer=observer, **options)
            self.load()
        except BaseException:
            journal.close()
            raise
        return self

    def load(self) -> None:
        """Replay the journal into the engine (once, right after construction); the observer sees it all."""
        self.replayed = self._replay_records(self.engine, self.observer)

    # -- replay
    def _replay_records(self, engine: Any, observer: Optional[Observer], after: int = 0) -> List[Any]:
        out: List[Any] = []
        for seq, op, args in self.journal.records(after):
            decisions = self._apply_record(engine, seq, op, args)
            out.extend(decisions)
            if observer is not None:
                observer(seq, op, args, decisions)
            if engine is self.engine:
                self.applied = seq
        return out

    def catch_up(self) -> List[Any]:
        """A standby's step: apply the records another node made durable since the last call
        (observers see them); returns their decisions, which that node acted upon."""
        if self._batch_depth:
            raise JournalError("catch_up inside a batch")
        return self._replay_records(self.engine, self.observer, self.applied)

    def promote(self, epoch: int) -> None:
        """Become the writer with ``epoch`` (won by a :class:`~acd.journal.leadership.Leadership`,
        after which no other node can write): the last records are applied first."""
        self.catch_up()
        promote = getattr(self.journal, "promote")
        promote(epoch)
        if self.journal.last_seq != self.applied:
            raise JournalError(f"journal {self.journal.path!r}: records {self.applied + 1}..{self.journal.last_seq} "
                               "appeared after the epoch was taken; refusing to write")
        stored = self.journal.get_meta("engine_options")
        if stored is not None and stored != self._options:
            raise JournalError(f"journal {self.journal.path!r} was written with engine options {stored!r}, "
                               f"this node has {self._options!r}")

    def _apply_record(self, engine: Any, seq: int, op: str, args: Tuple[Any, ...]) -> List[Any]:
        return apply_record(engine, self.journal.path, seq, op, args)

    def _rebuild(self) -> None:
        """Roll back to the durable journal: a fresh engine replays it (observers already saw it)."""
        engine = self._factory(**self._options)
        last = 0
        for seq, op, args in self.journal.records():
            self._apply_record(engine, seq, op, args)
            last = seq
        self.engine = engine
        self.applied = last

    # -- health
    @property
    def up(self) -> bool:
        """False while journal writes fail (commands are refused then)."""
        return self._up and self._broken is None

    def _fail(self, exc: JournalError) -> None:
        self.last_error = str(exc)
        self.write_failures += 1
        if isinstance(exc, Fenced) or self.fail_stop:
            # another node writes now (or may): rolling back would replay into a node that must stop
            self._broken = str(exc)
            if isinstance(exc, Fenced):
                self.fenced = str(exc)
            self._up = False
            return
        if self._up:
            self.down_since = self._clock()
            self._delay = self._retry_after
        self._up = False
        self._next_try = self._clock() + self._delay
        self._delay = min(self._delay * 2, self._retry_max)
        try:
            self._rebuild()
        except (JournalError, AcdError) as e:
            self._broken = f"rolling back to the journal failed: {e}"

    def _ensure_up(self) -> None:
        if self.fenced is not None:
            raise Fenced(f"this node is no longer primary: {self.fenced}")
        if self._broken is not None:
            raise JournalError(f"the journal failed ({self._broken}); restart from the journal")
        if self._up:
            return
        if self._clock() < self._next_try:
            raise JournalError(f"the journal cannot write ({self.last_error}); commands are refused until it can")
        down_for = self._clock() - (self.down_since or self._clock())
        data = {"error": self.last_error, "down_for": round(down_for, 3), "now": self.engine.now}
        try:
            seq = self.journal.append("note", ("journal_recovered", data))
        except JournalError as e:
            self.last_error = str(e)
            self.write_failures += 1   # the recovery probe is a write too
            if isinstance(e, Fenced):
                self.fenced = self._broken = str(e)
                raise Fenced(f"this node is no longer primary: {e}") from None
            self._next_try = self._clock() + self._delay
            self._delay = min(self._delay * 2, self._retry_max)
            raise JournalError(f"the journal cannot write ({e}); commands are refused until it can") from None
        self._up = True
        self.down_since = None
        self._observe(seq, "note", ("journal_recovered", data), [])

    # -- configuration
    def add_skill(self, name: str) -> None:
        self._config("add_skill", (name,), lambda e: e.add_skill(name))

    def add_queue(self, queue: Queue) -> None:
        self._config("add_queue", (_queue_to_dict(queue),), lambda e: e.add_queue(queue))

    def _config(self, op: str, args: Tuple[Any, ...], apply: Callable[[Any], None]) -> None:
        self._ensure_up()
        apply(self.engine)
        seq = self._append(op, args)
        self._observe(seq, op, args, [])

    # -- commands
    def note(self, kind: str, data: Any = None) -> int:
        """Journal a fact of the service's (not applied to the engine); returns its seq."""
        if not isinstance(kind, str) or not kind:
            raise JournalError(f"note kind must be a non-empty str, got {kind!r}")
        self._ensure_up()
        args = (kind, data)
        seq = self._append("note", args)
        self._observe(seq, "note", args, [])
        return seq

    def _run(self, op: str, args: Tuple[Any, ...]) -> List[Any]:
        self._ensure_up()
        before = self.engine.now
        if op == "update_queue":
            args = _queue_args(args)   # journaled as a plain table, applied as an acd.Queue
        try:
            out = list(getattr(self.engine, op)(*_engine_args(op, args)))
        except AcdError:
            # refused: only the time it let pass is kept (deadlines may have fallen due); their
            # decisions are journaled with that advance and handed out with the next command
            if self.engine.now > before:
                now = self.engine.now
                due = list(self.engine.advance(now))
                seq = self._append("advance", (now,))
                self._observe(seq, "advance", (now,), due)
                self._held.extend(due)
                if self._batch_depth:
                    self._batch_held += len(due)
            raise
        seq = self._append(op, args)
        self._observe(seq, op, args, out)
        if self._held:
            out = self._held + out
            self._held = []
            self._batch_held = 0
        return out

    def _append(self, op: str, args: Tuple[Any, ...]) -> int:
        try:
            return self.journal.append(op, args)
        except JournalError as e:
            if not _encodable(args):   # a bad argument, not a bad journal: roll back, stay up
                self._rebuild()
                raise InvalidInput(f"{op}: arguments must be JSON values (str or int ids, finite numbers), "
                                   f"got {list(args)!r}") from None
            if self._batch_depth:
                self._batch_failed()
            self._fail(e)
            raise

    def _observe(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        self.applied = seq
        if not self._batch_depth:   # inside a batch nothing is durable before the commit
            self.last_write_unix = time.time()
        if self.observer is None:
            return
        if self._batch_depth:
            self._batch_obs.append((seq, op, args, decisions))
        else:
            self.observer(seq, op, args, decisions)

    def _batch_failed(self) -> None:
        """A group commit failed: what its commands produced is not durable."""
        self._batch_obs.clear()
        if self._batch_held:
            del self._held[-self._batch_held:]
        self._batch_held = 0

    def take_held(self) -> List[Any]:
        """Decisions of the deadlines a refused command let fall due (journaled already); they
        would otherwise come with the next command."""
        held, self._held = self._held, []
        self._batch_held = 0
        return held

    def batch(self) -> "_Batch":
        """Group commit: ``with je.batch(): ...`` makes the block's commands durable together.

        Decisions are returned as commands run; act on them only after the block ends without
        error (a failed commit rolls the engine back and raises JournalError)."""
        return _Batch(self)

    def replay(self, commands: Iterable[Tuple[Any, ...]]) -> List[Any]:
        """Apply ``(op, *args)`` tuples as journaled commands (one group commit); return all decisions."""
        out: List[Any] = []
        with self.batch():
            for cmd in commands:
                if not isinstance(cmd, (tuple, list)) or not cmd or cmd[0] not in COMMANDS:
                    raise JournalError(f"replay: {cmd!r} is not an engine command (known: {', '.join(COMMANDS)})")
                out.extend(self._run(cmd[0], _positional(cmd[0], tuple(cmd[1:]), {})))
        return out

    def close(self) -> None:
        self.journal.close()

    def __getattr__(self, name: str) -> Any:
        if name in COMMANDS:
            def command(*args: Any, **kw: Any) -> List[Any]:
                full = _positional(name, args, kw)
                return self._run(name, full)
            command.__name__ = name
            return command
        return getattr(self.engine, name)


def apply_record(engine: Any, path: str, seq: int, op: str, args: Tuple[Any, ...]) -> List[Any]:
    """Apply one journal record to ``engine`` and return its decisions (JournalError if it cannot be)."""
    where = f"journal {path!r}: record {seq}"
    if op == "note":
        return []
    if op not in COMMANDS and op not in _CONFIG:
        raise JournalError(f"{where} holds an unknown command {op!r} (known: {', '.join(COMMANDS + _CONFIG)}, "
                           "note); the journal was not written by acd or is damaged")
    try:
        if op == "add_skill":
            engine.add_skill(*args)
            return []
        if op == "add_queue":
            if len(args) != 1 or not isinstance(args[0], dict):
                raise TypeError("add_queue takes one queue table")
            engine.add_queue(queue_from_dict(args[0]))
            return []
        return list(getattr(engine, op)(*_engine_args(op, args)))
    except AcdError as e:
        raise JournalError(f"{where} ({op}) is refused on replay: {e}; the journal does not match this "
                           "engine") from None
    except (TypeError, ValueError, KeyError) as e:
        raise JournalError(f"{where} ({op}) has malformed arguments {list(args)!r}: {e}") from None


class _Batch:
    def __init__(self, je: JournaledEngine) -> None:
        self.je = je
        self.inner: Any = None

    def __enter__(self) -> JournaledEngine:
        je = self.je
        je._ensure_up()
        if je._batch_depth == 0:
            self.inner = je.journal.batch()
            self.inner.__enter__()
            je._batch_held = 0
        je._batch_depth += 1
        return je

    def __exit__(self, *exc: object) -> None:
        je = self.je
        je._batch_depth -= 1
        if je._batch_depth:
            return
        try:
            self.inner.__exit__(*exc)
        except JournalError as e:
            je._batch_failed()
            je._fail(e)
            raise
        pending, je._batch_obs = je._batch_obs, []
        je._batch_held = 0
        if pending:
            je.last_write_unix = time.time()
        if je.observer is not None:
            for rec in pending:
                je.observer(*rec)


# positional order of each command's parameters, so that the journal stores plain tuples
_PARAMS = {
    "login": ("agent", "skills", "now", "queues", "paused"),
    "logout": ("agent", "now"),
    "ready": ("agent", "now"),
    "pause": ("agent", "now", "reason"),
    "enqueue": ("call", "queue", "now", "priority", "requirements", "preferred", "preferred_for"),
    "answer": ("call", "now"),
    "ring_no_answer": ("call", "now"),
    "reject": ("call", "now"),
    "abandon": ("call", "now"),
    "withdraw": ("call", "now"),
    "complete": ("call", "now"),
    "advance": ("now",),
    "accept_callback": ("call", "now"),
    "callback_answered": ("call", "now"),
    "callback_failed": ("call", "now"),
    "schedule_callback": ("call", "queue", "at", "now", "priority", "requirements"),
    "set_agent": ("agent", "skills", "now", "queues"),
    "update_queue": ("queue", "now"),
    "remove_queue": ("queue", "now"),
}


def _queue_args(args: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """update_queue's arguments as journaled: the queue as a table (an acd.Queue, or a table already)."""
    if args and isinstance(args[0], Queue):
        return (_queue_to_dict(args[0]),) + tuple(args[1:])
    return args


def _engine_args(op: str, args: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """A journaled tuple as the engine takes it: update_queue's table becomes an acd.Queue again."""
    if op == "update_queue" and args and isinstance(args[0], dict):
        return (queue_from_dict(args[0]),) + tuple(args[1:])
    return args


#: where each command keeps its time in the journal's tuple (readers of records need only that)
NOW_AT = {op: names.index("now") for op, names in _PARAMS.items()}


def _positional(op: str, args: tuple, kw: Dict[str, Any]) -> tuple:
    names = _PARAMS[op]
    if len(args) > len(names):
        raise TypeError(f"{op}() takes at most {len(names)} arguments ({len(args)} given)")
    values = list(args)
    for name in names[len(args):]:
        if name in kw:
            values.append(kw.pop(name))
        else:
            values.append(_MISSING)
    if kw:
        raise TypeError(f"{op}() got unexpected keyword argument(s) {sorted(kw)!r}")
    while values and values[-1] is _MISSING:
        values.pop()
    for i, v in enumerate(values):
        if v is _MISSING and names[i] in _DEFAULTS:   # an optional argument before one given
            values[i] = _DEFAULTS[names[i]]
    if _MISSING in values:
        missing = names[values.index(_MISSING)]
        raise TypeError(f"{op}() missing argument {missing!r}")
    if isinstance(values[-1] if values else None, (set, frozenset)):
        values[-1] = sorted(values[-1])
    return tuple(list(v) if isinstance(v, (tuple, set, frozenset)) else v for v in values)


_MISSING = object()
#: the engine's defaults of optional arguments, filled in when a later one is given
_DEFAULTS = {"priority": None, "requirements": None, "queues": None, "paused": None, "reason": "",
             "preferred": None, "preferred_for": None}

#: commands whose first argument is a call id
CALL_COMMANDS = tuple(op for op, names in _PARAMS.items() if names[0] == "call")


def _encodable(args: Tuple[Any, ...]) -> bool:
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
