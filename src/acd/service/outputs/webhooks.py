"""Signed HTTP webhooks for call-back milestones; the journal is the outbox.

**Events.**  :class:`WebhookOutbox` is a projection (:mod:`..commands`): it turns
journal records into events -- ``callback.accepted`` (``accept_callback``),
``callback.scheduled`` (``schedule_callback``: a booked slot, or the retry after
a customer was not reached), ``callback.dialled`` (a ``DialBack``: the agent's
leg rings), ``callback.reached`` (an answered call-back completed with no
"not reached" report) and ``callback.failed`` (an ``Exit`` ``callback_failed``:
the agent legs could not be connected; or a ``callback_not_reached`` note with
no retry left).  Everything in an event comes from the journal, so it is the
same after a restart and on a standby: its id ``<journal id>-<seq>-<k>`` (the
record and the event's rank among that record's events), its body, its
``occurred_at`` (engine time placed on the wall clock by the ``clock`` notes).

**Outbox.**  An event is pending until a ``webhook_delivered`` note (the
receiver answered 2xx) or a ``webhook_gave_up`` note (a permanent 4xx, or older
than ``max_age``) is journaled for it; replay drops it then.  A restart, or a
standby taking over, therefore sends exactly what was not acknowledged.  The
only duplicate left is a stop between the receiver's 2xx and the note: the
receiver dedupes by ``X-Acd-Event-Id``.  Events of records written before
webhooks were first enabled on a journal are not sent (a ``webhooks_start``
note marks the point), so enabling them does not replay history.

**Delivery.**  :class:`WebhookSender` runs on the node that serves calls only,
one event at a time, in journal order (a receiver sees ``reached`` after
``dialled`` for a call; a failing head blocks the rest, which keeps that order
and avoids hammering a receiver that is down).  Retried on a connection error,
timeout, 408, 429, 5xx (or any other non-2xx but 4xx) with exponential back-off
and jitter up to ``max_backoff`` (a ``Retry-After`` in seconds is honoured up to
that cap); given up on any other 4xx, or once the event is older than
``max_age``.  HTTP/1.1 over asyncio streams, ``Connection: close``: events are
rare (a few per call-back), so a pooled connection is not worth its states.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ..._core import DialBack, Exit, OfferCallback, Overflow
from ...errors import AcdError, Fenced
from ...journal import CALL_COMMANDS
from ...journal.calls import WallClock
from ...journal.engine import NOW_AT as _NOW_AT
from ..callbacks import NOTE_NOT_REACHED, NOTE_NUMBER
from ..config import WEBHOOK_EVENTS, WebhooksConfig
from ..logs import event

if TYPE_CHECKING:
    from ..commands import Commands

__all__ = ("WebhookOutbox", "WebhookSender", "Webhooks", "PendingEvent", "sign", "verify", "post_json",
           "EVENT_TYPES", "NOTE_DELIVERED", "NOTE_GAVE_UP", "NOTE_START", "NOTE_NOT_REACHED")

log = logging.getLogger("acd.service")

EVENT_TYPES = WEBHOOK_EVENTS
NOTE_DELIVERED = "webhook_delivered"
NOTE_GAVE_UP = "webhook_gave_up"
NOTE_START = "webhooks_start"

_MAX_HEAD = 64 * 1024


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """``X-Acd-Signature``: ``sha256=`` and the hex HMAC-SHA256 of ``timestamp + "." + body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300.0,
           now: Optional[float] = None) -> bool:
    """A receiver's check: the signature matches and the timestamp is within ``tolerance`` seconds
    of ``now`` (a captured request cannot be replayed later)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# ====================================================================== events (projection)

@dataclass
class PendingEvent:
    seq: int
    k: int
    type: str
    fields: Dict[str, Any]            # the body without "id" (the journal id is known after replay)
    occurred_at: Optional[float]
    body: Optional[bytes] = None      # built once: the same bytes on every attempt

    @property
    def key(self) -> Tuple[int, int]:
        return (self.seq, self.k)


@dataclass
class _Track:
    """What the outbox knows of one call-back (from the journal)."""

    number: Optional[str]
    queue: Optional[str]
    attempts: int = 0                           # agent legs dialled (the ledger's count)
    agent: Optional[str] = None
    answered_at: Optional[float] = None         # engine time of callback_answered
    not_reached: Optional[Dict[str, Any]] = None


class WebhookOutbox:
    """Projection: journal records -> call-back events, pending until a note settles them."""

    def __init__(self, types: Tuple[str, ...] = EVENT_TYPES) -> None:
        self.types = frozenset(types)
        #: insertion order is journal order
        self.pending: Dict[Tuple[int, int], PendingEvent] = {}
        self.started = False          # a webhooks_start note was seen: events from here on are sent
        self.delivered = 0            # journal-derived totals: monotonic across restarts
        self.gave_up = 0
        self.on_event: Callable[[], None] = lambda: None
        self._tracks: Dict[Any, _Track] = {}
        self._ewt: Dict[Any, Optional[float]] = {}
        self._clock = WallClock()

    def head(self) -> Optional[PendingEvent]:
        return next(iter(self.pending.values()), None)

    def unix(self, t: Optional[float]) -> Optional[float]:
        placed = self._clock.unix(t) if t is not None and math.isfinite(t) else None
        return None if placed is None else round(placed, 3)

    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op == "note":
            self._note(args)
            return
        at = _NOW_AT.get(op)
        if at is None:
            return                      # configuration records
        now = float(args[at])
        out: List[Tuple[str, Dict[str, Any]]] = []
        call = args[0] if op in CALL_COMMANDS else None
        t = self._tracks.get(call) if call is not None else None
        if op == "accept_callback":
            t = self._tracks.setdefault(call, _Track(None, None))
            out.append(_event("callback.accepted", call, t, estimated_wait=self._ewt.pop(call, None)))
        elif op == "schedule_callback":
            t = self._tracks.setdefault(call, _Track(None, args[1]))
            t.queue = args[1]
            out.append(_event("callback.scheduled", call, t, scheduled_for=self.unix(float(args[2])),
                              attempts=t.attempts))
        elif op == "callback_answered" and t is not None:
            t.answered_at, t.not_reached = now, None
        elif op == "complete" and t is not None and t.answered_at is not None:
            nr = t.not_reached
            if nr is None:
                out.append(_event("callback.reached", call, t, agent=t.agent, answered_at=self.unix(t.answered_at),
                                  attempts=t.attempts))
                self._forget(call)
            elif not nr.get("retry"):
                out.append(_event("callback.failed", call, t, reason="not_reached", status=nr.get("status") or None,
                                  attempts=t.attempts))
                self._forget(call)
            else:                       # a schedule_callback follows: the next attempt
                t.answered_at = t.not_reached = None
        elif op in ("complete", "abandon", "withdraw"):
            self._forget(call)          # ended before a call-back connected (cancelled, or never one)
        for d in decisions:
            if isinstance(d, OfferCallback):
                self._ewt[d.call] = d.ewt if math.isfinite(d.ewt) else None
                continue
            dt = self._tracks.get(d.call)
            if isinstance(d, DialBack) and dt is not None:
                dt.attempts += 1
                dt.agent, dt.queue = str(d.agent), d.queue
                out.append(_event("callback.dialled", d.call, dt, attempt=d.attempt, agent=str(d.agent)))
            elif isinstance(d, Overflow) and dt is not None:
                dt.queue = d.to_queue
            elif isinstance(d, Exit):
                if dt is not None and d.reason == "callback_failed":
                    out.append(_event("callback.failed", d.call, dt, reason="dial_failed", status=None,
                                      attempts=dt.attempts))
                self._forget(d.call)
        self._emit(seq, now, out)

    def _emit(self, seq: int, now: float, out: List[Tuple[str, Dict[str, Any]]]) -> None:
        occurred = self.unix(now)
        added = False
        for k, (kind, fields) in enumerate(out):
            # k counts every event of the record, subscribed or not: ids do not depend on the config
            if not self.started or kind not in self.types:
                continue
            fields["occurred_at"] = occurred
            self.pending[(seq, k)] = PendingEvent(seq, k, kind, fields, occurred)
            added = True
        if added:
            self.on_event()

    def _note(self, args: Tuple[Any, ...]) -> None:
        kind = args[0] if args else None
        data = args[1] if len(args) > 1 else None
        if kind == NOTE_START:
            self.started = True
        if not isinstance(data, dict):
            return
        if kind == "clock":
            self._clock.note(data)
        elif kind == NOTE_NUMBER:
            t = self._tracks.get(data["call"])
            if t is None:
                t = self._tracks[data["call"]] = _Track(None, None)
            t.number, t.queue = data.get("number"), data.get("queue")
            t.attempts = int(data.get("attempts", 0))
        elif kind == NOTE_NOT_REACHED:
            t = self._tracks.get(data.get("call"))
            if t is not None:
                t.not_reached = data
        elif kind in (NOTE_DELIVERED, NOTE_GAVE_UP):
            self.pending.pop((int(data.get("seq", -1)), int(data.get("k", -1))), None)
            if kind == NOTE_DELIVERED:
                self.delivered += 1
            else:
                self.gave_up += 1

    def _forget(self, call: Any) -> None:
        self._tracks.pop(call, None)
        self._ewt.pop(call, None)


def _event(kind: str, call: Any, t: _Track, **extra: Any) -> Tuple[str, Dict[str, Any]]:
    """The body of an event (without ``id`` and ``occurred_at``), from the track as it is now."""
    return kind, {"type": kind, "call": str(call), "queue": t.queue, "number": t.number, **extra}


# ====================================================================== delivery

@dataclass
class _Target:
    host: str
    port: int
    tls: Optional[ssl.SSLContext]
    host_header: str
    path: str

    @classmethod
    def parse(cls, url: str) -> "_Target":
        p = urlsplit(url)
        assert p.hostname is not None          # validated by the config
        https = p.scheme == "https"
        path = (p.path or "/") + (f"?{p.query}" if p.query else "")
        return cls(p.hostname, p.port or (443 if https else 80), ssl.create_default_context() if https else None,
                   p.netloc, path)


class BadResponse(Exception):
    """The receiver's answer is not an HTTP/1.x response."""


async def post_json(target: _Target, body: bytes, headers: Mapping[str, str]) -> Tuple[int, Dict[str, str]]:
    """One POST; returns the status and headers of the final response (1xx skipped).  The body of
    the response is not read: only the status matters, and the connection is closed."""
    reader, writer = await asyncio.open_connection(target.host, target.port, ssl=target.tls, limit=_MAX_HEAD,
                                                   server_hostname=target.host if target.tls else None)
    try:
        lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.host_header}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        while True:
            status, head = await _read_head(reader)
            if not 100 <= status < 200:
                return status, head
    finally:
        # not awaiting wait_closed: a TLS peer slow to close must not turn a 2xx into a time-out
        writer.close()


async def _read_head(reader: asyncio.StreamReader) -> Tuple[int, Dict[str, str]]:
    try:
        line = await reader.readline()
        parts = line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise BadResponse(f"not an HTTP/1.x status line: {line[:80]!r}" if line else
                              "the connection closed before a response")
        headers: Dict[str, str] = {}
        for _ in range(200):
            h = await reader.readline()
            if h in (b"\r\n", b"\n"):
                return int(parts[1]), headers
            if not h:
                raise BadResponse("the connection closed inside the response head")
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raise BadResponse("more than 200 header lines")
    except (asyncio.LimitOverrunError, ValueError) as exc:   # a line longer than the limit
        raise BadResponse(f"response head too large: {exc}") from None


@dataclass
class _Outcome:
    status: Optional[int]
    why: str
    retry_after: Optional[float] = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def permanent(self) -> bool:
        """A refusal that sending again will not change (408 and 429 are worth a retry)."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)


@dataclass
class SenderStats:
    attempts: int = 0                 # POSTs made by this process
    retries: int = 0                  # failed attempts followed by a retry, by this process
    last_status: Optional[int] = None
    last_error: Optional[str] = None
    by_status: Dict[str, int] = field(default_factory=dict)


class WebhookSender:
    """Delivers the outbox's pending events, in order, one at a time (on the leading node only)."""

    def __init__(self, config: WebhooksConfig, outbox: WebhookOutbox, note: Callable[[str, Any], int],
                 journal_id: Callable[[], str], *, rng: Optional[random.Random] = None,
                 wall: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.outbox = outbox
        self._note = note
        self._journal_id = journal_id
        self._rng = rng or random.Random()
        self._wall = wall
        self._clock = clock
        self._target = _Target.parse(config.url)
        self._wake = asyncio.Event()
        self._task: Optional[asyncio.Task[None]] = None
        self.stats = SenderStats()
        outbox.on_event = self._wake.set

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        if self._target.tls is None and self._target.host not in ("localhost", "127.0.0.1", "::1"):
            event(log, logging.WARNING, "webhooks_cleartext", f"webhooks go to {self.config.url!r} over plain "
                  "http: the callers' numbers cross the network unencrypted (signed, not hidden); use https",
                  url=self.config.url)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="acd-webhooks")

    async def stop(self) -> None:
        """At once: a POST in flight is abandoned (the event stays pending, sent again later)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            if not self.outbox.started:
                # the first start on this journal: events of older records are history, not news
                await self._journal(NOTE_START, {"url": self.config.url})
            while True:
                head = self.outbox.head()
                if head is None:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._deliver(head)
        except Fenced as exc:
            event(log, logging.WARNING, "webhooks_stopped", f"webhooks stop: this node no longer leads ({exc})")
        except asyncio.CancelledError:
            raise
        except Exception:   # a bug must not stop call handling; it is logged and shows in the metrics
            log.exception("webhook sender failed", extra={"acd": {"event": "webhooks_error"}})
            self.stats.last_error = "the sender failed (see the log)"

    def delay(self, failures: int, retry_after: Optional[float] = None) -> float:
        """Back-off before retry ``failures``: doubling from ``backoff``, capped, half of it random
        (receivers coming back are not hit by every sender at once)."""
        cfg = self.config
        d = min(cfg.max_backoff, cfg.backoff * 2.0 ** min(failures - 1, 60))
        d = d / 2 + self._rng.random() * d / 2
        if retry_after is not None:
            d = max(d, min(retry_after, cfg.max_backoff))
        return d

    async def _journal(self, kind: str, data: Dict[str, Any]) -> None:
        """Journal a note, retrying while the journal is down (Fenced: this node must stop)."""
        failures = 0
        while True:
            try:
                self._note(kind, data)
                return
            except Fenced:
                raise
            except AcdError as exc:
                failures += 1
                event(log, logging.WARNING, "webhook_note_failed", f"cannot journal {kind} ({exc}); retrying",
                      note=kind)
                await asyncio.sleep(self.delay(failures))

    async def _deliver(self, ev: PendingEvent) -> None:
        cfg = self.config
        first = self._clock()
        failures = 0
        ev_id = f"{self._journal_id()}-{ev.seq}-{ev.k}"
        if ev.body is None:
            ev.body = json.dumps({"id": ev_id, **ev.fields}, sort_keys=True, separators=(",", ":"),
                                 allow_nan=False).encode()
        while self.outbox.pending.get(ev.key) is ev:
            # age from the journal when the record could be placed on the wall clock
            age = self._wall() - ev.occurred_at if ev.occurred_at is not None else self._clock() - first
            if age > cfg.max_age:
                event(log, logging.ERROR, "webhook_gave_up", f"webhook {ev_id} ({ev.type}) given up: not "
                      f"delivered within max_age ({cfg.max_age:g} s); last error: {self.stats.last_error}",
                      id=ev_id, type=ev.type, call=ev.fields.get("call"))
                await self._journal(NOTE_GAVE_UP, {"seq": ev.seq, "k": ev.k, "id": ev_id, "reason": "max_age"})
                return
            outcome = await self._attempt(ev, ev_id, failures + 1)
            if outcome.ok:
                await self._journal(NOTE_DELIVERED, {"seq": ev.seq, "k": ev.k, "id": ev_id,
                                                     "status": outcome.status})
                return
            if outcome.permanent:
                event(log, logging.ERROR, "webhook_gave_up", f"webhook {ev_id} ({ev.type}) given up: the receiver "
                      f"refused it ({outcome.why})", id=ev_id, type=ev.type, status=outcome.status,
                      call=ev.fields.get("call"))
                await self._journal(NOTE_GAVE_UP, {"seq": ev.seq, "k": ev.k, "id": ev_id, "reason": "refused",
                                                   "status": outcome.status})
                return
            failures += 1
            self.stats.retries += 1
            wait = self.delay(failures, outcome.retry_after)
            event(log, logging.WARNING, "webhook_retry", f"webhook {ev_id} ({ev.type}) not delivered "
                  f"({outcome.why}); retry {failures} in {wait:.3g} s", id=ev_id, type=ev.type,
                  status=outcome.status, retry_in=round(wait, 3))
            await asyncio.sleep(wait)

    async def _attempt(self, ev: PendingEvent, ev_id: str, attempt: int) -> _Outcome:
        assert ev.body is not None
        ts = str(int(self._wall()))
        headers = {"User-Agent": "acd-webhooks/1", "X-Acd-Event-Id": ev_id, "X-Acd-Event-Type": ev.type,
                   "X-Acd-Timestamp": ts, "X-Acd-Signature": sign(self.config.secret, ts, ev.body),
                   "X-Acd-Attempt": str(attempt)}
        self.stats.attempts += 1
        try:
            async with asyncio.timeout(self.config.timeout):
                status, head = await post_json(self._target, ev.body, headers)
        except TimeoutError:
            out = _Outcome(None, f"no response within {self.config.timeout:g} s")
        except (OSError, BadResponse) as exc:   # refused, reset, DNS, TLS (ssl.SSLError is an OSError)
            out = _Outcome(None, f"{type(exc).__name__}: {exc}")
        else:
            ra = head.get("retry-after", "")
            why = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
            out = _Outcome(status, why, float(ra) if ra.isdigit() else None)
            key = str(status)
            self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
        self.stats.last_status = out.status
        self.stats.last_error = None if out.ok else out.why
        return out


class Webhooks:
    """The outbox (a projection of the journal) and its sender, as the Dispatcher wires them."""

    def __init__(self, config: WebhooksConfig, commands: "Commands", **sender: Any) -> None:
        self.config = config
        self.outbox = WebhookOutbox(config.events)
        self.sender = WebhookSender(config, self.outbox, commands.note, lambda: _journal_id(commands), **sender)

    def start(self) -> None:
        self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()

    def status(self) -> Dict[str, Any]:
        s = self.sender.stats
        return {"url": self.config.url, "sending": self.sender.running, "pending": len(self.outbox.pending),
                "delivered": self.outbox.delivered, "gave_up": self.outbox.gave_up, "attempts": s.attempts,
                "retries": s.retries, "last_status": s.last_status, "last_error": s.last_error,
                "by_status": dict(s.by_status)}


def _journal_id(commands: "Commands") -> str:
    assert commands.engine is not None
    return str(commands.engine.journal.journal_id)
