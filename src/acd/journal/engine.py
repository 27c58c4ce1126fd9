"""An engine whose every accepted command is journaled first-class.

:class:`JournaledEngine` wraps :class:`acd.Engine`: each command is applied,
then appended to the journal (durably, unless batched), then its decisions
are returned.  A command the engine refuses is not journaled, but the time it
let pass is (as ``advance``), so that replay reaches exactly the same state.
:meth:`JournaledEngine.open` rebuilds the engine from a journal after a
restart: every waiting call, every pending call-back (accepted, retrying,
scheduled) comes back, once.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional

from .._core import Engine
from ..errors import AcdError, JournalError
from ..policy import Queue, queue_from_dict
from .sqlite import SqliteJournal

__all__ = ("JournaledEngine",)

_COMMANDS = ("login", "logout", "ready", "pause", "enqueue", "answer", "ring_no_answer", "reject", "abandon",
             "complete", "advance", "accept_callback", "callback_answered", "callback_failed",
             "schedule_callback")
_OPTIONS = ("agent_strategy", "seed", "ring_no_answer", "no_answer_delay", "reject_delay", "call_choice",
            "patience_window")


def _queue_to_dict(q: Queue) -> Dict[str, Any]:
    d = dataclasses.asdict(q)
    d["steps"] = [dict(s) for s in d["steps"]]
    d["service_level"] = list(d["service_level"])
    return d


class JournaledEngine:
    """Same commands and queries as :class:`acd.Engine`, with a durable command journal."""

    def __init__(self, journal: SqliteJournal, *, engine_factory: Callable[..., Any] = Engine,
                 _replaying: bool = False, **options: Any) -> None:
        self.journal = journal
        stored = journal.get_meta("engine_options")
        if stored is None:
            unknown = set(options) - set(_OPTIONS)
            if unknown:
                raise JournalError(f"unknown engine option(s) {sorted(unknown)!r}")
            self.engine = engine_factory(**options)
            journal.set_meta("engine_options", options)
        else:
            if options and options != stored:
                raise JournalError(f"journal {journal.path!r} was written with engine options {stored!r}, "
                                   f"not {options!r}")
            self.engine = engine_factory(**stored)
        #: decisions produced while replaying the journal (already acted upon before the restart,
        #: or lost in flight: reconcile with the PBX using :meth:`calls`)
        self.replayed: List[Any] = []
        self._failed: Optional[str] = None

    @classmethod
    def open(cls, path: str, *, sync: str = "full", engine_factory: Callable[..., Any] = Engine,
             **options: Any) -> "JournaledEngine":
        """Open (or create) the journal at ``path`` and rebuild the engine from it."""
        journal = SqliteJournal(path, sync=sync)
        try:
            self = cls(journal, engine_factory=engine_factory, **options)
            for cmd in journal.commands():
                op = cmd[0]
                if op == "add_skill":
                    self.engine.add_skill(cmd[1])
                elif op == "add_queue":
                    self.engine.add_queue(queue_from_dict(cmd[1]))
                else:
                    self.replayed.extend(getattr(self.engine, op)(*cmd[1:]))
        except BaseException:
            journal.close()
            raise
        return self

    # -- configuration
    def add_skill(self, name: str) -> None:
        self.engine.add_skill(name)
        self.journal.append("add_skill", (name,))

    def add_queue(self, queue: Queue) -> None:
        self.engine.add_queue(queue)
        self.journal.append("add_queue", (_queue_to_dict(queue),))

    # -- commands
    def _run(self, op: str, args: tuple) -> List[Any]:
        if self._failed is not None:
            raise JournalError(f"the journal failed earlier ({self._failed}); the engine is ahead of it: "
                               "restart from the journal")
        before = self.engine.now
        try:
            out = getattr(self.engine, op)(*args)
        except AcdError:
            # refused: only the time it let pass is kept (deadlines may have fallen due)
            if self.engine.now > before:
                self._append("advance", (self.engine.now,))
            raise
        self._append(op, args)
        return out

    def _append(self, op: str, args: tuple) -> None:
        # the command is already applied: if it cannot be journaled, stop taking commands rather than
        # let the engine and its journal diverge silently (decisions of this command are withheld)
        try:
            self.journal.append(op, args)
        except JournalError as e:
            self._failed = str(e)
            raise

    def batch(self):
        """Group commit: ``with je.batch(): ...`` makes the block's commands durable together."""
        return self.journal.batch()

    def close(self) -> None:
        self.journal.close()

    def __getattr__(self, name: str) -> Any:
        if name in _COMMANDS:
            def command(*args: Any, **kw: Any) -> List[Any]:
                full = _positional(name, args, kw)
                return self._run(name, full)
            command.__name__ = name
            return command
        return getattr(self.engine, name)


# positional order of each command's parameters, so that the journal stores plain tuples
_PARAMS = {
    "login": ("agent", "skills", "now", "queues", "paused"),
    "logout": ("agent", "now"),
    "ready": ("agent", "now"),
    "pause": ("agent", "now", "reason"),
    "enqueue": ("call", "queue", "now", "priority", "requirements"),
    "answer": ("call", "now"),
    "ring_no_answer": ("call", "now"),
    "reject": ("call", "now"),
    "abandon": ("call", "now"),
    "complete": ("call", "now"),
    "advance": ("now",),
    "accept_callback": ("call", "now"),
    "callback_answered": ("call", "now"),
    "callback_failed": ("call", "now"),
    "schedule_callback": ("call", "queue", "at", "now", "priority", "requirements"),
}


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
    if _MISSING in values:
        missing = names[values.index(_MISSING)]
        raise TypeError(f"{op}() missing argument {missing!r}")
    if isinstance(values[-1] if values else None, (set, frozenset)):
        values[-1] = sorted(values[-1])
    return tuple(list(v) if isinstance(v, (tuple, set, frozenset)) else v for v in values)


_MISSING = object()
