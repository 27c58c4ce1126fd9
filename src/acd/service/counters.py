"""Counters derived from the journal: monotonic across restarts.

:class:`Counters` is a projection (see :mod:`.commands`): it reads every
journal record, replayed at start-up and live afterwards, and derives what the
engine's own snapshot does not hold -- the service level (answered within
the queue's target, abandoned while in line), commands and decisions by kind.
Because it is rebuilt from the same records every time, a counter shown to a
supervisor or scraped by Prometheus never goes back after a restart.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from .._core import Assign, Exit, Overflow
from ..journal import CALL_COMMANDS, COMMANDS

__all__ = ("Counters", "ServiceLevel")

_ENDS = ("complete", "abandon", "withdraw")


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
        self._target: Dict[str, float] = {}            # queue -> service-level seconds
        self._live: Dict[Any, str] = {}                # live callers in line or ringing -> queue
        self._offers: Dict[Any, Tuple[str, float]] = {}  # offered live calls -> (queue, wait)
        #: the Assign of each call ringing or connected: who has it, after a restart too
        self.assigns: Dict[Any, Assign] = {}

    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op == "add_queue":
            q = args[0]
            self._target[q["name"]] = float(q["service_level"][1])
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
        elif op == "answer":
            offer = self._offers.pop(call, None)
            if offer is not None:
                queue, wait = offer
                sl = self.sl[queue]
                sl.answered += 1
                if wait <= self._target.get(queue, 60.0):
                    sl.within += 1
        elif op in ("ring_no_answer", "reject"):
            self._offers.pop(call, None)
            self.assigns.pop(call, None)
        elif op == "abandon":
            line = self._live.get(call)
            if line is not None:
                self.sl[line].abandoned += 1
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

    def _end(self, call: Any) -> None:
        self._live.pop(call, None)
        self._offers.pop(call, None)
        self.assigns.pop(call, None)
