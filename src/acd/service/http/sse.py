"""``GET /events``: the wallboard's state pushed as Server-Sent Events (``text/event-stream``).

A stream sends, in the format of the HTML standard's EventSource:

* at once, then whenever something changed (a journal record, a health
  change, a ``tick`` every 10 s for waits and the day), coalesced to at most
  one every :data:`MIN_INTERVAL` seconds::

      event: state
      id: <bus sequence number>
      data: <the state as one line of JSON: see acd.service.live>

* ``: heartbeat`` (a comment) after :data:`HEARTBEAT` seconds of silence, so
  that proxies keep the connection and a dead client is noticed;
* ``retry: 2000`` first: the browser reconnects 2 s after a cut.

A stream holds no queue of its own beyond a bounded subscription: a slow
client gets the latest state when it reads again, never a backlog.  At most
``max_streams`` are open at once (503 with ``Retry-After`` beyond).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Optional

from ..events import Subscription
from .server import Request, Response, text

if TYPE_CHECKING:
    from ..live import LiveView

__all__ = ("EventStreams", "MIN_INTERVAL", "HEARTBEAT", "MAX_STREAMS")

MIN_INTERVAL = 0.15
HEARTBEAT = 15.0
MAX_STREAMS = 32
_RETRY_MS = 2000


class _Stream:
    """One client's events; an async iterator whose ``aclose`` frees its slot (called by the
    server even when it never iterated: a HEAD, a client gone at once)."""

    def __init__(self, owner: "EventStreams", sub: Subscription) -> None:
        self._owner = owner
        self._sub = sub
        self._first = True
        self._last_sent = 0.0
        self._closed = False

    def __aiter__(self) -> "_Stream":
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        loop = asyncio.get_running_loop()
        view = self._owner.view
        if self._first:
            self._first = False
            self._last_sent = loop.time()
            self._sub.drain()
            return f"retry: {_RETRY_MS}\n".encode() + _event(view.bus.seq, view.state_json(fresh=True))
        if not await self._sub.wait(self._owner.heartbeat):
            return b": heartbeat\n\n"
        # coalesce: what else happens before the next slot goes into the same state
        delay = self._last_sent + self._owner.min_interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self._sub.drain()
        self._last_sent = loop.time()
        return _event(view.bus.seq, view.state_json())

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._sub.close()
            self._owner.open -= 1


def _event(seq: int, data: bytes) -> bytes:
    return b"event: state\nid: %d\ndata: %s\n\n" % (seq, data)   # compact JSON holds no newline


class EventStreams:
    """The ``/events`` handler, counting its open streams."""

    def __init__(self, view: "LiveView", *, max_streams: Optional[int] = None, min_interval: Optional[float] = None,
                 heartbeat: Optional[float] = None) -> None:
        self.view = view
        # the module's values when not given, read now (tests shorten them)
        self.max_streams = MAX_STREAMS if max_streams is None else max_streams
        self.min_interval = MIN_INTERVAL if min_interval is None else min_interval
        self.heartbeat = HEARTBEAT if heartbeat is None else heartbeat
        self.open = 0

    def __call__(self, request: Request) -> Response:
        if self.open >= self.max_streams:
            return text(503, f"too many event streams open (at most {self.max_streams}); retry later",
                        **{"Retry-After": "5"})
        self.open += 1
        stream = _Stream(self, self.view.bus.subscribe())
        # X-Accel-Buffering: a reverse proxy (nginx) must pass events on as they come
        return Response(200, "text/event-stream; charset=utf-8", b"", {"X-Accel-Buffering": "no"}, stream=stream)
