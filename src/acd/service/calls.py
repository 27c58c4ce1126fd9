"""Callers on hold: the AGI sessions waiting for their call's next decision.

A :class:`CallWaiter` buffers the decisions of one call (``Announce``,
``OfferCallback``, then ``Assign`` or ``Exit``) for the ``enqueue`` session
that acts on them.  Its ``session`` is None while the call is *detached*:
back in line after a ring-no-answer, between ``dial_result`` and the
dialplan's next ``enqueue`` -- or replayed from the journal after a restart,
its old session gone.  A detached call that no session picks up within
``reattach_timeout`` is withdrawn (it is not the caller's choice: it feeds
no patience estimate).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable, Deque, Dict, Iterator, Optional

from .._core import Assign, Exit
from ..adapters.asterisk.agi import AGISession

__all__ = ("CallWaiter", "Waiters", "RELEASE")

#: pushed to a waiter to end its session at once (the service is draining)
RELEASE = object()


class CallWaiter:
    """Decisions for one call, waiting for the AGI session that acts on them."""

    __slots__ = ("call", "queue", "number", "session", "items", "event", "timer", "music")

    def __init__(self, call: str, queue: str, number: Optional[str], session: Optional[AGISession]) -> None:
        self.call = call
        self.queue = queue
        self.number = number
        self.session = session
        self.items: Deque[Any] = collections.deque()
        self.event = asyncio.Event()
        self.timer: Optional[asyncio.TimerHandle] = None
        self.music = False

    def push(self, decision: Any) -> None:
        self.items.append(decision)
        self.event.set()

    def has_terminal(self) -> bool:
        return any(d is RELEASE or isinstance(d, (Assign, Exit)) for d in self.items)

    def pop(self) -> Any:
        """The next decision: a release, an Assign or an Exit first (what is older no longer matters)."""
        for d in self.items:
            if d is RELEASE or isinstance(d, (Assign, Exit)):
                self.items.clear()
                return d
        return self.items.popleft() if self.items else None


class Waiters:
    """The waiters by call id, and the reattach timers of detached ones."""

    def __init__(self, reattach_timeout: float, expired: Callable[[str], None]) -> None:
        self.reattach_timeout = reattach_timeout
        self._expired = expired
        self._by_call: Dict[str, CallWaiter] = {}

    def __contains__(self, call: object) -> bool:
        return call in self._by_call

    def __iter__(self) -> Iterator[CallWaiter]:
        return iter(list(self._by_call.values()))

    def __len__(self) -> int:
        return len(self._by_call)

    def get(self, call: str) -> Optional[CallWaiter]:
        return self._by_call.get(call)

    def add(self, w: CallWaiter) -> None:
        self._by_call[w.call] = w

    def drop(self, call: str) -> None:
        w = self._by_call.pop(call, None)
        if w is not None and w.timer is not None:
            w.timer.cancel()

    def drop_if(self, call: str, w: CallWaiter) -> None:
        if self._by_call.get(call) is w:
            self.drop(call)

    def detach(self, call: str, queue: str, number: Optional[str]) -> CallWaiter:
        """Buffer the decisions of a call without a session until ``enqueue`` runs again."""
        w = self._by_call.get(call)
        if w is None:
            w = CallWaiter(call, queue, number, None)
            self._by_call[call] = w
        w.session = None
        if w.timer is not None:
            w.timer.cancel()
        w.timer = asyncio.get_running_loop().call_later(self.reattach_timeout, self._expire, call, w)
        return w

    def attach(self, call: str, w: CallWaiter, session: AGISession, number: Optional[str]) -> None:
        self._by_call[call] = w
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        w.session = session
        w.number = w.number or number

    def _expire(self, call: str, w: CallWaiter) -> None:
        if self._by_call.get(call) is not w or w.session is not None:
            return
        del self._by_call[call]
        self._expired(call)

    def clear(self) -> None:
        for w in list(self._by_call.values()):
            if w.timer is not None:
                w.timer.cancel()
        self._by_call.clear()
