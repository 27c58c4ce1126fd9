"""The last agent each caller number spoke with: a projection of the journal.

A caller who calls again about the same file is best served by the agent who
already knows it (``enqueue?preferred=last``).  At enqueue the service journals
the caller's number (a ``caller`` note, in the same group commit as the
``enqueue``); this projection pairs it with the agent the call was answered
by and keeps ``number -> (agent, unix time of the answer)`` for
``[preferred] remember`` seconds.  A call-back answered by the caller counts too
(its number is the one dialled).  Because it is rebuilt from the journal, the
memory survives a restart and follows a take-over by the standby.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .._core import Assign, DialBack, Exit
from ..journal.calls import WallClock
from ..journal.engine import NOW_AT
from .callbacks import NOTE_NUMBER

__all__ = ("LastAgents", "NOTE_CALLER")

#: journal note: ``{"call": id, "number": caller number}``, written with the call's enqueue
NOTE_CALLER = "caller"

_ENDS = ("complete", "abandon", "withdraw")


class LastAgents:
    """``number -> last agent`` from the journal's records, seen in order (replayed, then live)."""

    def __init__(self, remember: float) -> None:
        self.remember = remember
        self._clock = WallClock()
        self._number: Dict[str, str] = {}            # live call -> caller number
        self._offered: Dict[str, str] = {}           # live call -> agent it was offered to
        self._last: Dict[str, Tuple[str, float]] = {}  # number -> (agent, unix time of the answer)
        self._since_prune = 0

    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op == "note":
            kind, data = args[0], args[1]
            if kind == "clock" and isinstance(data, dict):
                self._clock.note(data)
            elif kind in (NOTE_CALLER, NOTE_NUMBER) and isinstance(data, dict) and data.get("number"):
                self._number[str(data["call"])] = str(data["number"])   # a caller, or a call-back's number
            return
        for d in decisions:
            if isinstance(d, (Assign, DialBack)):
                self._offered[str(d.call)] = str(d.agent)
            elif isinstance(d, Exit):
                self._forget(str(d.call))
        if op in ("answer", "callback_answered"):
            call = str(args[0])
            number = self._number.get(call)
            agent = self._offered.get(call)
            at = self._clock.unix(float(args[NOW_AT[op]]))
            if number is not None and agent is not None and at is not None:
                self._last.pop(number, None)      # re-inserted: the dict stays in answer order
                self._last[number] = (agent, at)
                self._since_prune += 1
                if self._since_prune >= 1024:
                    self._prune(at)
        elif op in _ENDS:
            self._forget(str(args[0]))

    def _forget(self, call: str) -> None:
        self._number.pop(call, None)
        self._offered.pop(call, None)

    def _prune(self, now: float) -> None:
        """Drop what is older than the window (the dict is in answer order: oldest first)."""
        self._since_prune = 0
        cutoff = now - self.remember
        stale = []
        for number, (_agent, at) in self._last.items():
            if at >= cutoff:
                break
            stale.append(number)
        for number in stale:
            del self._last[number]

    def lookup(self, number: str, now: float) -> Optional[str]:
        """The agent who last answered ``number`` within the window before unix time ``now``, or None."""
        if not number or self.remember <= 0:
            return None
        hit = self._last.get(number)
        if hit is None or now - hit[1] > self.remember:
            return None
        return hit[0]

    def __len__(self) -> int:
        return len(self._last)
