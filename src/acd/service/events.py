"""A bus of service events, with bounded subscriber queues.

Publishers call :meth:`EventBus.publish` (never blocking, never failing);
each :class:`Subscription` holds at most ``maxsize`` events: when a slow
subscriber lets it fill, the oldest events are dropped and counted in
:attr:`Subscription.dropped`, so memory stays bounded whoever reads.  A
subscriber that only needs "something changed" (the wallboard's streams,
which send the latest state anyway) takes :meth:`Subscription.drain`.

Events (``kind``, ``data``):

* ``journal`` -- ``{"seq", "op"}``: a record became durable (live, not the
  replay at start); published by :class:`JournalEvents`, a projection;
* ``health`` -- ``{"ami", "journal", "state", "role"}``: one of these changed
  (sampled by :class:`HealthWatch`);
* ``tick`` -- ``{}``: time passed (waits grow, a day ends): read models whose
  figures depend on the clock refresh.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

__all__ = ("Event", "EventBus", "Subscription", "JournalEvents", "HealthWatch")

log = logging.getLogger("acd.service.events")


@dataclass(frozen=True)
class Event:
    seq: int                   # the bus's own order (1, 2, ...), not the journal's
    kind: str
    data: Mapping[str, Any]


class Subscription:
    def __init__(self, bus: "EventBus", maxsize: int) -> None:
        self._bus = bus
        self._events: Deque[Event] = collections.deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        #: events dropped because this subscriber did not keep up
        self.dropped = 0
        self.closed = False

    def _put(self, ev: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1          # the deque drops the oldest itself
        self._events.append(ev)
        self._ready.set()

    async def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until an event is queued (True) or ``timeout`` seconds pass (False)."""
        if self._events:
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return bool(self._events)

    def drain(self) -> List[Event]:
        """Every queued event, oldest first; the queue is empty afterwards."""
        out = list(self._events)
        self._events.clear()
        self._ready.clear()
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._unsubscribe(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self.seq = 0
        self._subs: List[Subscription] = []
        #: called with True when the first subscriber comes, False when the last one leaves
        self.on_demand: Optional[Callable[[bool], None]] = None

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self, maxsize: int = 64) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subs.append(sub)
        if len(self._subs) == 1 and self.on_demand is not None:
            self.on_demand(True)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            if not self._subs and self.on_demand is not None:
                self.on_demand(False)

    def publish(self, kind: str, **data: Any) -> Event:
        self.seq += 1
        ev = Event(self.seq, kind, data)
        for sub in self._subs:
            sub._put(ev)
        return ev


class JournalEvents:
    """Projection publishing each record while ``live()`` (the replay at start is not news)."""

    def __init__(self, bus: EventBus, live: Callable[[], bool]) -> None:
        self.bus = bus
        self.live = live

    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if self.live():
            self.bus.publish("journal", seq=seq, op=op)


class HealthWatch:
    """Samples ``probe()`` every ``period`` seconds while the bus has subscribers, and publishes
    ``health`` when it changed, ``tick`` every ``tick`` seconds.  Sampling, not hooks: AMI, the
    journal, HA and draining each change state their own way, and a sample sees them all."""

    def __init__(self, bus: EventBus, probe: Callable[[], Dict[str, Any]], *, period: float = 0.25,
                 tick: float = 10.0) -> None:
        self.bus = bus
        self.probe = probe
        self.period = period
        self.tick = tick
        self._task: Optional[asyncio.Task[None]] = None
        self.last: Optional[Dict[str, Any]] = None
        bus.on_demand = self._demand

    def _demand(self, wanted: bool) -> None:
        if wanted and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="acd-health-watch")
        elif not wanted and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.tick
        while True:
            try:
                now = self.probe()
            except Exception:   # a probe bug must not stop the wallboard's updates for good
                log.exception("health probe failed")
                now = self.last or {}
            if now != self.last:
                if self.last is not None:
                    self.bus.publish("health", **now)
                self.last = now
            if loop.time() >= next_tick:
                next_tick = loop.time() + self.tick
                self.bus.publish("tick")
            await asyncio.sleep(self.period)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
