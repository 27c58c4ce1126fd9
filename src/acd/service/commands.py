"""The single writer: every engine command of the service goes through here.

:class:`Commands` owns the :class:`~acd.journal.JournaledEngine` and the
service clock.  A command takes the time from the clock, is journaled
(durable before its decisions are acted upon), and its decisions are handed
to the router.  Read models (counters, the call-back ledger) are
*projections*: they see every journal record, replayed at start and live
afterwards, so what they show is the same after a restart as before it.

Engine time is seconds of service operation: ``now = base + (clock() - t0)``,
where ``base`` is the engine time found in the journal at start-up.  A
restart continues engine time from where the journal stopped; the downtime
itself is not counted.  A clock task sleeps until the engine's next deadline
(woken early whenever a command may have moved it) and calls ``advance``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from ..errors import AcdError, Fenced, InvalidState, JournalError
from ..journal import Journal, JournaledEngine, SqliteJournal
from ..policy import Queue
from .config import ServiceConfig
from .logs import event

__all__ = ("Commands", "Projection", "queue_json")

log = logging.getLogger("acd.service")

_META_QUEUES = "service_queues"


class Projection(Protocol):
    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None: ...


def queue_json(q: Queue) -> Any:
    d = dataclasses.asdict(q)
    d["steps"] = [dict(s) for s in d["steps"]]
    return json.loads(json.dumps(d))


class Commands:
    """Engine command -> journal -> decisions, for one process."""

    def __init__(self, config: ServiceConfig, clock: Callable[[], float], route: Callable[[List[Any]], None],
                 state: Callable[[], str]) -> None:
        self.config = config
        self._clock = clock
        self._route = route
        self._state = state
        self.engine: Optional[JournaledEngine] = None
        #: the engine being replayed at open (projections that read engine state see it there)
        self.loading: Optional[JournaledEngine] = None
        self.projections: List[Projection] = []
        self.errors: Dict[str, int] = {}        # refused commands, since this process started
        self.replayed = 0
        self._base = 0.0
        self._t0 = 0.0
        self.accepting = False
        self.wake = asyncio.Event()
        #: called when the database refuses a write as fenced (another node leads)
        self.on_fenced: Optional[Callable[[str], None]] = None

    # ----------------------------------------------------------- life
    def open(self, before_replay: Callable[[Journal], None], *, node: str = "") -> None:
        """Open the journal and replay it through the projections; ``before_replay`` sees the
        journal first (its id names side effects).  A PostgreSQL journal opens as a follower:
        :meth:`promote` makes it writable once this node leads."""
        cfg = self.config
        journal: Journal
        if cfg.journal.url is not None:
            from ..journal.postgres import PostgresJournal
            # a write blocked past twice the lease (a cut network) fails, and the primary steps down,
            # as it does when its heartbeat is that late; a shorter bound made a slow commit on a
            # loaded disk depose a healthy primary (fencing, not this bound, keeps the log safe)
            journal = PostgresJournal(cfg.journal.url, schema=cfg.journal.schema, node=node or None,
                                      timeout=2 * cfg.ha.lease)
        else:
            journal = SqliteJournal(cfg.journal.path, sync=cfg.journal.sync)
        try:
            before_replay(journal)
            je = JournaledEngine(journal, observer=self._observe, fail_stop=cfg.journal.shared, **dict(cfg.engine))
            self.loading = je
            je.load()
        except BaseException:
            journal.close()
            raise
        finally:
            self.loading = None
        self.engine = je
        self.replayed = journal.last_seq
        if cfg.journal.url is None:
            self._configure()
        self._base = je.now
        self._t0 = self._clock()

    def current(self) -> JournaledEngine:
        """The engine the record a projection sees was applied to (at open: the one replaying)."""
        eng = self.engine if self.engine is not None else self.loading
        assert eng is not None
        return eng

    def catch_up(self) -> int:
        """A standby's step: apply what the primary made durable since; returns how many records."""
        assert self.engine is not None
        before = self.engine.applied
        self.engine.catch_up()
        return self.engine.applied - before

    def promote(self, epoch: int) -> None:
        """This node leads with ``epoch``: apply the last records, then write (configuration first).
        Engine time continues from the last record, as after a restart."""
        assert self.engine is not None
        self.engine.promote(epoch)
        self.replayed = self.engine.applied
        self._configure()
        self._base = self.engine.now
        self._t0 = self._clock()

    def close(self) -> None:
        self.accepting = False
        if self.engine is not None:
            self.engine.close()

    def _observe(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        for p in self.projections:
            p.apply(seq, op, args, decisions)

    def _configure(self) -> None:
        """Declare the config's skills and queues the journal does not hold yet."""
        assert self.engine is not None
        eng = self.engine
        have = set(eng.skills)
        for s in self.config.skills:
            if s not in have:
                eng.add_skill(s)
        stored: Dict[str, Any] = eng.journal.get_meta(_META_QUEUES, {}) or {}
        queues = set(eng.queues)
        for q in self.config.queues:
            d = queue_json(q)
            if q.name not in queues:
                eng.add_queue(q)
                stored[q.name] = d
            elif stored.setdefault(q.name, d) != d:
                event(log, logging.WARNING, "queue_changed",
                      f"queue {q.name!r} differs from the one in the journal; the journal's definition stays in "
                      "force (queues cannot change while the journal lives: start a new journal to apply the change)",
                      queue=q.name)
        missing = sorted(set(eng.queues) - {q.name for q in self.config.queues})
        if missing:
            event(log, logging.WARNING, "queue_unconfigured", f"queue(s) {missing!r} come from the journal but are "
                  "not in the configuration; they keep serving with their journaled definition", queues=missing)
        eng.journal.set_meta(_META_QUEUES, stored)

    # ----------------------------------------------------------- time
    def now(self) -> float:
        """Engine time now (never earlier than the engine's own)."""
        assert self.engine is not None
        return max(self.engine.now, self._base + (self._clock() - self._t0))

    async def run_clock(self) -> None:
        """Advance the engine at each deadline (for ever; cancel to stop)."""
        assert self.engine is not None
        while True:
            self.wake.clear()
            deadline = self.engine.next_deadline()
            if deadline is None:
                await self.wake.wait()
                continue
            delay = deadline - self.now()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                self.run("advance", lambda now: (now,))
            except AcdError as exc:  # the journal is down: retry later, do not spin
                event(log, logging.ERROR, "clock_error", f"advance failed: {exc}")
                await asyncio.sleep(1.0)

    # ----------------------------------------------------------- commands
    def run(self, op: str, make_args: Callable[[float], Tuple[Any, ...]]) -> List[Any]:
        """Run one engine command at the current time; route and return its decisions."""
        if self.engine is None or not self.accepting:
            raise InvalidState(f"cannot run {op}: the dispatcher is {self._state()}")
        try:
            out = getattr(self.engine, op)(*make_args(self.now()))
        except AcdError as exc:
            self._refused(op, exc)
            raise
        finally:
            self.wake.set()
        self._route(out)
        return out

    def _refused(self, op: str, exc: AcdError) -> None:
        """After a refused command: count it, report a lost lead, route the deadlines that fell due."""
        assert self.engine is not None
        self.errors[op] = self.errors.get(op, 0) + 1
        if self.on_fenced is not None and (isinstance(exc, Fenced) or (
                isinstance(exc, JournalError) and self.config.journal.shared)):
            self.on_fenced(str(exc))
        held = self.engine.take_held()   # deadlines that fell due before the refusal
        if held:
            self._route(held)

    def run_all(self, steps: Sequence[Tuple[str, Callable[[float], Tuple[Any, ...]]]]) -> List[Any]:
        """Several commands (and ``note`` steps) as one: journaled in one group commit, their decisions
        routed once it is durable.  If any is refused (or the commit fails) none of them happened: the engine is
        rolled back to the journal, as for one refused command."""
        if self.engine is None or not self.accepting:
            raise InvalidState(f"cannot run {'+'.join(op for op, _ in steps)}: the dispatcher is {self._state()}")
        out: List[Any] = []
        op = steps[0][0] if steps else ""
        try:
            with self.engine.batch():
                for op, make_args in steps:
                    if op == "note":      # a fact of the service's, durable with the commands
                        self.engine.note(*make_args(self.now()))
                    else:
                        out.extend(getattr(self.engine, op)(*make_args(self.now())))
        except AcdError as exc:
            self._refused(op, exc)
            raise
        finally:
            self.wake.set()
        self._route(out)
        return out

    def note(self, kind: str, data: Any) -> int:
        """Journal a fact of the service's (seen by the projections in its place)."""
        assert self.engine is not None
        return self.engine.note(kind, data)

    def call_state(self, call: str) -> Optional[str]:
        assert self.engine is not None
        try:
            return self.engine.call_state(call)
        except AcdError:
            return None

    def agent_state(self, agent: str) -> Optional[str]:
        assert self.engine is not None
        try:
            return self.engine.agent_state(agent)
        except AcdError:
            return None

    @property
    def journal_up(self) -> bool:
        return self.engine is not None and self.engine.up
