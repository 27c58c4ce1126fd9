"""Today's figures per queue, and what the journal says of each open call and agent.

:class:`Today` is a projection (see :mod:`.commands`): it feeds every journal
record to a :class:`acd.journal.calls.CallLog` -- the call records ``acd
report`` measures, so that the wallboard and the report agree on what a call
is, when it was answered and how it ended -- built with ``keep=False`` (its
memory follows the calls open now) and listens to its facts:

* a call counts on the day and in the 30-minute interval of its arrival, in
  the queue it entered (:mod:`acd.kpi`'s rules); ``offered`` at ``enqueue``,
  ``answered`` at ``answer`` (wait ``answered - arrival``, within the queue's
  service-level seconds or not), ``abandoned`` / ``exited`` when it ends;
* engine times are placed on the wall clock by the ``clock`` notes the
  service journals at each start (the rule of ``acd report``); records before
  the first note cannot be placed and are not counted;
* "today" is the local day; a new day starts from zero.

It also gives, for the wallboard, each open call's facts (queue, priority,
arrival) and each logged-in agent's state and the engine time it entered it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..journal.calls import CallFacts, CallLog

__all__ = ("Today", "QueueDay", "INTERVAL")

#: seconds per bar of the day's chart
INTERVAL = 1800
_ANSWERED, _ABANDONED, _EXITED, _CB_FAILED = 0, 1, 2, 3   # acd.kpi.OUTCOMES


@dataclass
class QueueDay:
    """One queue's calls of the day so far (by arrival)."""

    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    exited: int = 0             # max wait, no agent, withdrawn by the PBX, call-back failed for good
    #: interval index (from local midnight) -> [offered, answered, abandoned]
    intervals: Dict[int, List[int]] = field(default_factory=dict)

    def bar(self, k: int) -> List[int]:
        b = self.intervals.get(k)
        if b is None:
            b = self.intervals[k] = [0, 0, 0]
        return b


class _EngineView:
    """The engine a record was applied to, for the CallLog's agent states: the
    service's journaled engine, or (while it replays at start) the one replaying."""

    def __init__(self, get: Any) -> None:
        self._get = get

    def agent_state(self, agent: Any) -> str:
        return str(self._get().agent_state(agent))


class Today:
    """Projection ``apply(seq, op, args, decisions)``; ``engine()`` gives the engine the
    record was applied to (agent states are read from it after each record)."""

    def __init__(self, engine: Any, *, clock: Any = time.time) -> None:
        self.log = CallLog(_EngineView(engine), keep=False, listener=self._fact)
        self._unix = clock
        self.day: Optional[Tuple[int, int, int]] = None       # (year, month, day) the figures are of
        self.queues: Dict[str, QueueDay] = {}
        self._targets: Dict[str, float] = {}                  # queue -> service-level seconds
        # open calls counted today -> (queue entered, interval): an answer or end after a restart
        # is placed by the arrival's own clock anchor, not by the anchor of the answer
        self._counted: Dict[Any, Tuple[str, int]] = {}

    # -- the projection
    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op in ("add_queue", "update_queue"):     # update_queue: a live reload's new target
            self._targets[args[0]["name"]] = float(args[0]["service_level"][1])
        self.log(seq, op, args, decisions)

    def _place(self, engine_time: float) -> Optional[float]:
        """Unix time of an engine time, by the last clock note (None before any)."""
        if not self.log.clock:
            return None
        anchor_engine, anchor_unix = self.log.clock[-1]
        return anchor_unix + (engine_time - anchor_engine)

    def _fact(self, fact: str, c: CallFacts) -> None:
        if fact == "enter":
            unix = self._place(c.arrival)
            if unix is None:
                return
            lt = time.localtime(unix)
            day = (lt.tm_year, lt.tm_mon, lt.tm_mday)
            if self.day is None or day > self.day:
                self._new_day(day)
            elif day < self.day:
                return
            k = (lt.tm_hour * 60 + lt.tm_min) * 60 // INTERVAL
            q = self._queue(c.queue)
            q.offered += 1
            q.bar(k)[0] += 1
            self._counted[c.id] = (c.queue, k)
            return
        counted = self._counted.get(c.id) if fact == "answer" else self._counted.pop(c.id, None)
        if counted is None:            # entered another day, or before any clock note
            return
        q = self._queue(counted[0])
        if fact == "answer":
            q.answered += 1
            q.bar(counted[1])[1] += 1
            if c.answered - c.arrival <= self._targets.get(counted[0], 60.0):
                q.answered_within += 1
        elif c.outcome == _ABANDONED:
            q.abandoned += 1
            q.bar(counted[1])[2] += 1
        elif c.outcome in (_EXITED, _CB_FAILED):
            q.exited += 1

    def _queue(self, name: str) -> QueueDay:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueDay()
        return q

    def _new_day(self, day: Tuple[int, int, int]) -> None:
        self.day = day
        self.queues = {}
        self._counted = {}

    # -- reads
    def roll(self) -> None:
        """Start a new day if the wall clock passed midnight since the last call entered."""
        lt = time.localtime(self._unix())
        day = (lt.tm_year, lt.tm_mon, lt.tm_mday)
        if self.day is None or day > self.day:
            self._new_day(day)

    def still_out(self, queue: str, engine_now: float) -> int:
        """Calls of today in ``queue`` neither answered nor ended whose wait already passed the
        target: certain misses of the service level, counted before they end."""
        target = self._targets.get(queue, 60.0)
        n = 0
        for call, (q, _) in self._counted.items():
            if q != queue:
                continue
            c = self.log.open_call(call)
            if c is not None and math.isnan(c.answered) and engine_now - c.arrival > target:
                n += 1
        return n

    def open_call(self, call: Any) -> Optional[CallFacts]:
        return self.log.open_call(call)

    def agent_since(self, agent: Any, engine_now: float) -> Optional[Tuple[str, float]]:
        return self.log.agent_since(agent, engine_now)
