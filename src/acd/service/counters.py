"""Counters derived from the journal: monotonic across restarts.

:class:`Counters` is a projection (see :mod:`.commands`): it reads every
journal record, replayed at start-up and live afterwards, and derives what the
engine's own snapshot does not hold -- the service level (answered within
the queue's target, abandoned while in line), commands and decisions by kind.
Because it is rebuilt from the same records every time, a counter shown to a
supervisor or scraped by Prometheus never goes back after a restart.
"""

from __future__ import annotations

import bisect
import collections
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .._core import Assign, Exit, Overflow
from ..journal import CALL_COMMANDS, COMMANDS

__all__ = ("Counters", "ServiceLevel", "WaitHistogram", "WAIT_BUCKETS", "WAIT_OUTCOMES")

_ENDS = ("complete", "abandon", "withdraw")

#: upper bounds (seconds) of the wait histograms; each queue adds its own service-level seconds,
#: so that its service level can be read off the histogram exactly
WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0)
WAIT_OUTCOMES = ("answered", "abandoned")
_DEFAULT_TARGET = (0.8, 60.0)   # a queue the journal never declared (cannot happen in a service journal)


class WaitHistogram:
    """Waits of live callers, one observation per call: a Prometheus histogram's data."""

    def __init__(self, bounds: Tuple[float, ...]) -> None:
        self.bounds = tuple(sorted(set(float(b) for b in bounds)))
        self._counts = [0] * (len(self.bounds) + 1)   # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, wait: float) -> None:
        # bisect_left: the first bound >= wait, since a bucket holds waits <= its bound ("le")
        self._counts[bisect.bisect_left(self.bounds, wait)] += 1
        self.sum += wait
        self.count += 1

    def cumulative(self) -> List[Tuple[float, int]]:
        """``(le, waits <= le)`` for each bound, then ``(inf, count)``."""
        out: List[Tuple[float, int]] = []
        total = 0
        for le, n in zip(self.bounds + (math.inf,), self._counts):
            total += n
            out.append((le, total))
        return out

    def at_most(self, seconds: float) -> Optional[int]:
        """Observations <= ``seconds`` when that is one of the bounds (None otherwise)."""
        i = bisect.bisect_left(self.bounds, seconds)
        if i == len(self.bounds) or self.bounds[i] != seconds:
            return None
        return sum(self._counts[:i + 1])


@dataclass
class ServiceLevel:
    answered: int = 0
    within: int = 0
    abandoned: int = 0

    @property
    def measured(self) -> float | None:
        """Answered within the target over answered + abandoned (None before any)."""
        denom = self.answered + self.abandoned
        return self.within / denom if denom else None


class Counters:
    def __init__(self) -> None:
        self.commands: collections.Counter[str] = collections.Counter()
        self.decisions: collections.Counter[str] = collections.Counter()
        self.notes: collections.Counter[str] = collections.Counter()
        self.sl: Dict[str, ServiceLevel] = collections.defaultdict(ServiceLevel)
        #: queue -> (fraction, seconds) of its service-level target, as the journal declared it
        self.targets: Dict[str, Tuple[float, float]] = {}
        #: (queue, "answered" | "abandoned") -> waits of live callers, measured as acd.kpi does
        self.waits: Dict[Tuple[str, str], WaitHistogram] = {}
        self._live: Dict[Any, str] = {}                # live callers in line or ringing -> queue
        self._arrival: Dict[Any, float] = {}           # live callers -> engine time of their enqueue
        self._offers: Dict[Any, Tuple[str, float]] = {}  # offered live calls -> (queue, wait)
        #: the Assign of each call ringing or connected: who has it, after a restart too
        self.assigns: Dict[Any, Assign] = {}

    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op == "update_queue":     # live reconfiguration: the new target from now on
            q = args[0]
            fraction, seconds = q["service_level"]
            self.targets[q["name"]] = (float(fraction), float(seconds))
        if op == "add_queue":
            q = args[0]
            fraction, seconds = q["service_level"]
            self.targets[q["name"]] = (float(fraction), float(seconds))
            for outcome in WAIT_OUTCOMES:   # every series exists from the start, at 0
                self._histogram(q["name"], outcome)
            return
        if op == "note":
            self.notes[str(args[0])] += 1
            return
        if op not in COMMANDS:
            return
        self.commands[op] += 1
        call = args[0] if op in CALL_COMMANDS else None
        if op == "enqueue":
            self._live[call] = args[1]
            self._arrival[call] = float(args[2])
        elif op == "answer":
            offer = self._offers.pop(call, None)
            if offer is not None:
                queue, offered_after = offer
                # the wait ends when the agent answers (as acd.kpi measures it), not when the phone rang
                arrival = self._arrival.get(call)
                wait = float(args[1]) - arrival if arrival is not None else offered_after
                sl = self.sl[queue]
                sl.answered += 1
                if wait <= self._target(queue)[1]:
                    sl.within += 1
                self._histogram(queue, "answered").observe(wait)
        elif op in ("ring_no_answer", "reject"):
            self._offers.pop(call, None)
            self.assigns.pop(call, None)
        elif op == "abandon":
            line = self._live.get(call)
            arrival = self._arrival.get(call)
            if line is not None:
                self.sl[line].abandoned += 1
                if arrival is not None:
                    self._histogram(line, "abandoned").observe(float(args[1]) - arrival)
            self._end(call)
        elif op in _ENDS:
            self._end(call)
        elif op == "accept_callback":
            self._live.pop(call, None)                 # a call-back now: never an abandon
        for d in decisions:
            self.decisions[type(d).__name__] += 1
            if isinstance(d, Assign):
                self._offers[d.call] = (d.queue, d.wait)
                self._live[d.call] = d.queue
                self.assigns[d.call] = d
            elif isinstance(d, Overflow):
                if d.call in self._live:
                    self._live[d.call] = d.to_queue
            elif isinstance(d, Exit):
                self._end(d.call)

    def _target(self, queue: str) -> Tuple[float, float]:
        return self.targets.get(queue, _DEFAULT_TARGET)

    def _histogram(self, queue: str, outcome: str) -> WaitHistogram:
        h = self.waits.get((queue, outcome))
        if h is None:
            h = self.waits[queue, outcome] = WaitHistogram(WAIT_BUCKETS + (self._target(queue)[1],))
        return h

    def _end(self, call: Any) -> None:
        self._live.pop(call, None)
        self._arrival.pop(call, None)
        self._offers.pop(call, None)
        self.assigns.pop(call, None)
