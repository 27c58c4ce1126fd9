"""Primary and standby: one ``acd serve`` leads, the others follow, hot.

With a ``postgresql://`` journal every node starts as a *standby*: it replays
the journal into its engine and projections, then follows it live (commit
notifications, plus a poll), and tries every ``poll`` seconds to take the
lead (:class:`~acd.journal.leadership.Leadership`).  When it wins, it applies
the last records (a short catch-up, not a replay) and starts serving:
FastAGI, AMI, reconciliation with Asterisk, as a restarted node would.

The primary renews its heartbeat every ``lease / 4`` seconds from a thread of
its own, so that a burst of calls keeping the event loop busy does not let
the lease run out (the thread stops renewing if the loop itself stops
running for ``max(10 s, 5 leases)``).  It steps down
-- stops serving at once, without draining, because it may no longer write --
when the heartbeat finds another epoch, when a write fails or is refused as
fenced, or when it could not renew for twice ``lease`` (a standby may have
taken over after one lease; a loaded machine or disk delays a renewal by a
second or two without anything being wrong, and fencing keeps the log safe
in the meantime).
``acd serve`` then starts again as a standby of the new primary.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any, Optional

from ..errors import JournalError
from ..journal.leadership import Leadership
from .logs import event

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("HANode", "default_node_name")

log = logging.getLogger("acd.service")

#: seconds between attempts to take the lead, and between polls of the journal
POLL = 0.2


def default_node_name() -> str:
    return f"{socket.gethostname()[:28]}-{os.getpid()}"


class HANode:
    """The role of one dispatcher on a shared journal."""

    def __init__(self, app: "Dispatcher") -> None:
        self.app = app
        cfg = app.config
        assert cfg.journal.url is not None
        self.node = cfg.ha.node or default_node_name()
        self.lease = cfg.ha.lease
        self.max_lag = cfg.ha.max_lag
        self.leadership = Leadership(cfg.journal.url, schema=cfg.journal.schema, node=self.node, lease=self.lease)
        self.role = "standby"          # standby -> primary -> deposed
        self.epoch: Optional[int] = None
        self.synced_at: Optional[float] = None   # clock() when the standby last had every durable record
        self.last_error: Optional[str] = None
        self.deposed = asyncio.Event()
        self.why_deposed: Optional[str] = None
        self._renewed_at = 0.0
        self._tick = 0.0
        self._stop_beat = threading.Event()
        self._beat_thread: Optional[threading.Thread] = None

    # ----------------------------------------------------------- health
    @property
    def lag(self) -> float:
        """Seconds since this node last had every durable record (0 on the primary)."""
        if self.role == "primary":
            return 0.0
        if self.synced_at is None:
            return float("inf")
        return max(0.0, self.app.clock() - self.synced_at)

    @property
    def standby_ok(self) -> bool:
        return self.role == "standby" and self.lag <= self.max_lag

    # ----------------------------------------------------------- standby
    async def follow_until_leading(self) -> int:
        """Follow the journal until this node takes the lead; returns the epoch won."""
        app = self.app
        journal: Any = app.engine.journal
        self.synced_at = app.clock()
        complained = False
        while True:
            try:
                epoch = await asyncio.to_thread(self.leadership.try_take, journal.writer_pid)
                if epoch is not None:
                    return epoch
                read_at = app.clock()
                n = app.commands.catch_up()
                self.synced_at = read_at
                if n:
                    continue   # more may be there already
                await asyncio.to_thread(journal.wait_for_change, POLL)
                if complained:
                    event(log, logging.INFO, "standby_following", "the journal is reachable again; following it")
                    complained = False
            except Exception as exc:   # the database is away: keep trying, say so once
                self.last_error = str(exc)
                if not complained:
                    event(log, logging.WARNING, "standby_error", f"standby cannot follow the journal: {exc}; "
                          "retrying", error=str(exc))
                    complained = True
                await asyncio.sleep(0.5)

    def promoted(self, epoch: int) -> None:
        self.role = "primary"
        self.epoch = epoch
        self._renewed_at = self.app.clock()
        self.last_error = None

    # ----------------------------------------------------------- primary
    async def keep_lead(self) -> None:
        """Hold the lead: a thread renews the heartbeat (so that a busy event loop -- a burst of
        calls -- does not let the lease run out), this task tells the thread the loop still runs
        and steps down when the lead is lost (cancel to stop)."""
        loop = asyncio.get_running_loop()
        self._tick = self.app.clock()
        self._stop_beat.clear()
        beat = self._beat_thread = threading.Thread(target=self._beat, args=(loop,), name="acd-heartbeat",
                                                    daemon=True)
        beat.start()
        try:
            while self.role == "primary":
                await asyncio.sleep(self.lease / 8)
                self._tick = self.app.clock()
                eng = self.app.engine
                if eng is not None and not eng.up:
                    self.depose(f"a journal write failed: {eng.last_error}")
                elif self.app.clock() - self._renewed_at > 2 * self.lease:
                    # twice the lease: a loaded machine delays the heartbeat thread, and the database
                    # fences this node's writes anyway once a standby has taken over
                    self.depose(f"the heartbeat was not renewed for {self.app.clock() - self._renewed_at:.1f} s"
                                + (f" ({self.last_error})" if self.last_error else ""))
        finally:
            self._stop_beat.set()

    def _tell(self, loop: asyncio.AbstractEventLoop, why: str) -> None:
        try:
            loop.call_soon_threadsafe(self.depose, why)
        except RuntimeError:   # the loop is closed: the node is stopping anyway
            pass

    def _beat(self, loop: asyncio.AbstractEventLoop) -> None:
        period = self.lease / 4
        clock = self.app.clock
        while not self._stop_beat.wait(period):
            if clock() - self._tick > max(10.0, 5 * self.lease):
                # the event loop is stuck: a node that does nothing must not keep the lead
                self._tell(loop, f"the event loop has not run for {clock() - self._tick:.0f} s")
                return
            try:
                still = self.leadership.renew()
            except JournalError as exc:
                if self._stop_beat.is_set():
                    return     # the node is stopping (close() may have interrupted this renewal)
                self.last_error = str(exc)
                if not self.leadership.held:
                    self._tell(loop, f"the lead was lost ({exc})")
                    return
                continue
            if not still:
                self._tell(loop, "another node holds the epoch now")
                return
            self._renewed_at = clock()

    def depose(self, why: str) -> None:
        """This node may no longer write: stop acting now (the dispatcher stops without draining)."""
        if self.role == "deposed":
            return
        self.role = "deposed"
        self.why_deposed = why
        event(log, logging.ERROR, "deposed", f"this node is no longer primary: {why}; it stops serving and will "
              "follow the new primary", node=self.node, epoch=self.epoch)
        self.deposed.set()

    def close(self) -> None:
        self._stop_beat.set()
        beat = self._beat_thread
        if beat is not None and beat.is_alive():
            # it may be inside a renewal (a cut network, a stalled database): end that call first, so
            # that the lock's connection is not closed under it and a deposed node rejoins at once
            self.leadership.interrupt()
            beat.join(2.0)
        self.leadership.release()
