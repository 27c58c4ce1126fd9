"""The running ACD: one engine, its journal, and the Asterisk-facing servers.

:class:`Dispatcher` owns a :class:`~acd.journal.JournaledEngine` and drives it
in real time from one asyncio loop:

* **Clock.**  Engine time is seconds of service operation:
  ``now = base + (time.monotonic() - t0)``, where ``base`` is the engine time
  found in the journal at start-up (0 for a new journal) -- the time of the last
  journaled command, which is what the engine's ``now`` is after replay.  A
  restart therefore continues engine time monotonically from where the
  journal stopped; the downtime itself is not counted (a call-back scheduled
  "in 10 minutes" before a 5-minute outage fires 15 minutes after it was set).
  A clock task sleeps until :meth:`Engine.next_deadline` (woken early whenever
  a command may have moved it) and calls ``advance``.
* **Commands.**  Every engine command runs synchronously on the loop, is
  journaled (durable before its decisions are acted upon) and its decisions
  are routed at once: ``Assign``/``Announce``/``OfferCallback``/``Exit``/
  ``Overflow`` to the AGI session waiting for that call, ``DialBack`` to an
  AMI Originate task.
* **FastAGI routes** (``agi://host:4573/<route>?...``; the UNIX-socket relay of
  classic AGI scripts reaches the same routes): ``enqueue``, ``dial_result``,
  ``call_end``, ``callback_result``, ``agent_login``, ``agent_logout``,
  ``agent_pause``, ``agent_ready``.  Channel variables they set are listed on
  each handler and in ``examples/asterisk/README.md``.
* **AMI** (optional): ``Hangup`` events abandon calls waiting without an AGI
  session; ``DeviceStateChange`` pauses agents whose phone became
  unavailable; ``Originate`` dials call-backs.
* **HTTP**: ``/metrics``, ``/snapshot.json``, ``/`` (see :mod:`.web`).

Restart (the journal replays every command): live callers waiting in line
lost their AGI sessions with the old process, so they are abandoned; a
call-back being dialled when the process stopped is failed (the engine
retries it per its queue's policy); accepted, retrying and scheduled
call-backs are kept, with their numbers (stored in the journal's meta table
under ``service_callbacks``).  Offered and connected calls are kept: their
``dial_result``/``call_end`` come later from the dialplan.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import math
import re
import time
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

from .._core import Announce, Assign, DialBack, Exit, OfferCallback, Overflow
from ..adapters.asterisk.agi import AGICommandError, AGICommandFailed, AGISession, ChannelHungUp
from ..adapters.asterisk.ami import AMIClient, AMIError, AMIOriginateFailed
from ..adapters.asterisk.fastagi import FastAGIServer
from ..errors import (AcdError, DuplicateId, InvalidInput, InvalidState, ProtocolError, UnknownAgent, UnknownCall,
                      unknown_call, unknown_queue)
from ..journal import JournaledEngine
from ..policy import Queue
from .config import AgentEntry, ServiceConfig
from .logs import event
from .web import HTTPServer, render_dashboard, render_json, render_metrics

__all__ = ("Dispatcher", "DIAL_STATUSES", "ROUTES")

log = logging.getLogger("acd.service")

#: ${DIALSTATUS} -> engine command for ``dial_result``
DIAL_STATUSES: Mapping[str, str] = {
    "ANSWER": "answer", "NOANSWER": "ring_no_answer", "BUSY": "reject", "CONGESTION": "reject",
    "CHANUNAVAIL": "reject", "DONTCALL": "reject", "TORTURE": "reject", "INVALIDARGS": "reject",
    "CANCEL": "abandon",
}
ROUTES = ("enqueue", "dial_result", "call_end", "callback_result", "agent_login", "agent_logout", "agent_pause",
          "agent_ready")

_LIVE = ("waiting", "offered")
_CALLBACK_STATES = ("callback_pending", "callback_retry", "scheduled", "dialing_back")
_CALLBACK_NUMBER = re.compile(r"\+?[0-9]{2,24}\Z")
_REASON = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_META_CALLBACKS = "service_callbacks"
_META_QUEUES = "service_queues"
_WAIT_SLICE = 5.0  # seconds between checks that an idle AGI link is still usable


def _ev(level: int, name: str, msg: str, **fields: Any) -> None:
    event(log, level, name, msg, **fields)


class _CallWaiter:
    """Decisions for one call, waiting for the AGI session that acts on them.

    ``session`` is None while the call is "detached": back in line after a
    ring-no-answer, between ``dial_result`` and the dialplan's next ``enqueue``.
    """

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
        return any(isinstance(d, (Assign, Exit)) for d in self.items)

    def pop(self) -> Any:
        """The next decision: an Assign or Exit first (what is older no longer matters)."""
        for d in self.items:
            if isinstance(d, (Assign, Exit)):
                self.items.clear()
                return d
        return self.items.popleft() if self.items else None


@dataclasses.dataclass
class _SL:
    answered: int = 0
    within: int = 0
    abandoned: int = 0


class Dispatcher:
    """``acd serve`` in one object: ``await d.start()`` ... ``await d.stop()``.

    ``clock``: monotonic seconds (injectable for tests).  ``ami_client``: an
    :class:`AMIClient` to use instead of building one from ``config.ami``.

    The engine commands are also methods (``d.login("1001")``,
    ``d.enqueue("c1", "support")``...): they take the time from the clock,
    journal the command and act on its decisions; they raise
    :class:`acd.errors.AcdError` subclasses like the engine does.
    """

    def __init__(self, config: ServiceConfig, *, clock: Callable[[], float] = time.monotonic,
                 ami_client: Optional[AMIClient] = None) -> None:
        self.config = config
        self._clock = clock
        self.engine: Optional[JournaledEngine] = None
        self.fastagi: Optional[FastAGIServer] = None
        self.http: Optional[HTTPServer] = None
        self.ami: Optional[AMIClient] = ami_client
        self._own_ami = ami_client is None
        self._base = 0.0
        self._t0 = 0.0
        self._started_at = 0.0
        self._replayed = 0
        self._dialing_closed = False
        self._wake: Optional[asyncio.Event] = None
        self._clock_task: Optional[asyncio.Task[None]] = None
        self._ami_task: Optional[asyncio.Task[None]] = None
        self._dialbacks: Dict[str, asyncio.Task[None]] = {}
        self._waiters: Dict[str, _CallWaiter] = {}
        self._callbacks: Dict[str, Dict[str, Any]] = {}
        self._call_queue: Dict[str, str] = {}
        self._offers: Dict[str, Tuple[str, float]] = {}
        self._sl: Dict[str, _SL] = collections.defaultdict(_SL)
        self._device_agents: Dict[str, str] = {a.device.lower(): a.id for a in config.agents if a.device}
        self._device_paused: "set[str]" = set()
        self._agents: Dict[str, AgentEntry] = {a.id: a for a in config.agents}
        self._queue_defs: Dict[str, Queue] = {q.name: q for q in config.queues}
        self.decision_counts: collections.Counter[str] = collections.Counter()
        self.command_counts: collections.Counter[str] = collections.Counter()
        self.command_errors: collections.Counter[str] = collections.Counter()
        self._state = "new"  # new -> running -> stopping -> stopped

    # ================================================================ life
    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def fastagi_port(self) -> Optional[int]:
        return self.fastagi.port if self.fastagi is not None else None

    @property
    def http_port(self) -> Optional[int]:
        return self.http.port if self.http is not None else None

    @property
    def ami_connected(self) -> bool:
        return self.ami is not None and self.ami.connected

    def now(self) -> float:
        """Engine time now (never earlier than the engine's own)."""
        assert self.engine is not None
        return max(self.engine.now, self._base + (self._clock() - self._t0))

    async def start(self) -> None:
        """Open the journal (replaying it), reconcile, then start the clock, FastAGI,
        HTTP and AMI.  Raises (and releases whatever it opened) if any part fails."""
        if self._state != "new":
            raise InvalidState(f"cannot start a dispatcher that is {self._state}")
        self._state = "starting"
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            self.engine = JournaledEngine.open(cfg.journal.path, sync=cfg.journal.sync, **dict(cfg.engine))
            self._replayed = len(self.engine.journal)
            self._configure()
            self._base = self.engine.now
            self._t0 = self._started_at = self._clock()
            if cfg.ami.enabled and self.ami is None:
                self.ami = AMIClient(cfg.ami.host, cfg.ami.port, username=cfg.ami.username, secret=cfg.ami.secret,
                                     events="call", ping_interval=cfg.ami.ping_interval)
            if self.ami is not None:
                self.ami.on("Hangup", self._on_ami_hangup)
                self.ami.on("DeviceStateChange", self._on_ami_device_state)
            self._state = "running"
            self._reconcile()
            self._clock_task = loop.create_task(self._run_clock(), name="acd-clock")
            if cfg.fastagi.port is not None or cfg.fastagi.unix_path is not None:
                self.fastagi = FastAGIServer(cfg.fastagi.host, cfg.fastagi.port, unix_path=cfg.fastagi.unix_path,
                                             max_sessions=cfg.fastagi.max_sessions)
                for name in ROUTES:
                    self.fastagi.route(name, getattr(self, f"_agi_{name}"))
                await self.fastagi.start()
            if cfg.http.enabled:
                self.http = HTTPServer({"/metrics": self._page_metrics, "/snapshot.json": self._page_json,
                                        "/": self._page_dashboard, "/healthz": self._page_health},
                                       cfg.http.host, cfg.http.port)
                await self.http.start()
            if self.ami is not None and not self.ami.connected:
                self._ami_task = loop.create_task(self._ami_connect(), name="acd-ami-connect")
        except BaseException:
            await self._shutdown(0.0)
            raise
        _ev(logging.INFO, "started", "acd service started", engine_time=self._base,
            journal=cfg.journal.path, fastagi_port=self.fastagi_port, unix_path=cfg.fastagi.unix_path,
            http_port=self.http_port, ami=cfg.ami.enabled, replayed_commands=self._replayed,
            calls=len(self.engine.calls()))

    async def stop(self, timeout: Optional[float] = None) -> None:
        """Graceful shutdown: stop accepting AGI sessions, let running ones finish
        for ``timeout`` seconds (default ``[service] shutdown_timeout``), then
        cancel them; finish or fail call-backs being dialled; close AMI, HTTP and
        the journal."""
        if self._state in ("stopping", "stopped", "new"):
            self._state = "stopped" if self._state == "new" else self._state
            return
        t = self.config.service.shutdown_timeout if timeout is None else timeout
        _ev(logging.INFO, "stopping", f"acd service stopping (up to {t:g} s for running calls)", timeout=t)
        await self._shutdown(t)
        _ev(logging.INFO, "stopped", "acd service stopped")

    async def _shutdown(self, timeout: float) -> None:
        self._state = "stopping"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.fastagi is not None:
            await self.fastagi.stop(timeout)
        if self._clock_task is not None:
            self._clock_task.cancel()
            await asyncio.gather(self._clock_task, return_exceptions=True)
        # call-backs being dialled: let them finish while time remains (finishing one
        # may start another), then cancel the rest (each then counts as failed)
        while self._dialbacks and loop.time() < deadline:
            await asyncio.wait(list(self._dialbacks.values()), timeout=deadline - loop.time())
        self._dialing_closed = True
        tasks = list(self._dialbacks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for w in list(self._waiters.values()):
            if w.timer is not None:
                w.timer.cancel()
        self._waiters.clear()
        if self._ami_task is not None:
            self._ami_task.cancel()
            await asyncio.gather(self._ami_task, return_exceptions=True)
        if self.ami is not None:
            self.ami.off("Hangup", self._on_ami_hangup)
            self.ami.off("DeviceStateChange", self._on_ami_device_state)
            if self._own_ami:
                await self.ami.close()
        if self.http is not None:
            await self.http.stop()
        if self.engine is not None:
            self.engine.close()
        self._state = "stopped"

    async def serve(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, then stop gracefully."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # --------------------------------------------------------- start-up work
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
            d = _queue_json(q)
            if q.name not in queues:
                eng.add_queue(q)
                stored[q.name] = d
            elif stored.setdefault(q.name, d) != d:
                _ev(logging.WARNING, "queue_changed",
                    f"queue {q.name!r} differs from the one in the journal; the journal's definition stays in force "
                    "(queues cannot change while the journal lives: start a new journal to apply the change)",
                    queue=q.name)
        missing = sorted(set(eng.queues) - set(self._queue_defs))
        if missing:
            _ev(logging.WARNING, "queue_unconfigured", f"queue(s) {missing!r} come from the journal but are not in the "
                "configuration; they keep serving with their journaled definition", queues=missing)
        eng.journal.set_meta(_META_QUEUES, stored)
        self._callbacks = dict(eng.journal.get_meta(_META_CALLBACKS, {}) or {})

    def _reconcile(self) -> None:
        """Bring calls replayed from the journal in line with a fresh process."""
        assert self.engine is not None
        calls = dict(self.engine.calls())
        for call, state in calls.items():
            if state == "waiting":
                _ev(logging.WARNING, "restart_abandon", f"call {call!r} was waiting when the service stopped; "
                    "its AGI session is gone, so it is abandoned", call=call)
                self._try("abandon", call)
            elif state == "dialing_back":
                _ev(logging.WARNING, "restart_dialback", f"call-back {call!r} was being dialled when the service "
                    "stopped; the result is unknown, so it counts as failed and will be retried", call=call)
                self._try("callback_failed", call)
            elif state in ("offered", "connected"):
                _ev(logging.INFO, "restart_keep", f"call {call!r} is {state}: waiting for its dial_result/call_end",
                    call=call, state=state)
        live = dict(self.engine.calls())
        stale = [c for c in self._callbacks if live.get(c) not in (*_CALLBACK_STATES, "connected")]
        for c in stale:
            del self._callbacks[c]
        if stale:
            self._save_callbacks()
        pending = [c for c in self._callbacks if live.get(c) in _CALLBACK_STATES]
        if pending:
            _ev(logging.INFO, "restart_callbacks", f"{len(pending)} call-back(s) pending from the journal",
                calls=pending)

    def _try(self, op: str, call: str) -> None:
        try:
            getattr(self, op)(call)
        except AcdError as exc:
            _ev(logging.WARNING, "command_refused", f"{op} {call!r} refused: {exc}", call=call, command=op)

    # ================================================================ clock
    async def _run_clock(self) -> None:
        assert self._wake is not None and self.engine is not None
        while True:
            self._wake.clear()
            deadline = self.engine.next_deadline()
            if deadline is None:
                await self._wake.wait()
                continue
            delay = deadline - self.now()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                self.advance()
            except AcdError as exc:  # the journal failed: keep trying, do not spin
                _ev(logging.ERROR, "clock_error", f"advance failed: {exc}")
                await asyncio.sleep(1.0)

    # ============================================================= commands
    def _exec(self, op: str, make_args: Callable[[float], Tuple[Any, ...]]) -> List[Any]:
        if self.engine is None or self._state not in ("running", "stopping"):
            raise InvalidState(f"cannot run {op}: the dispatcher is {self._state}")
        now = self.now()
        deadline = self.engine.next_deadline()
        try:
            out = getattr(self.engine, op)(*make_args(now))
        except AcdError:
            self.command_errors[op] += 1
            if deadline is not None and deadline <= now:
                # deadlines that fell due before the refusal: act on their decisions now
                self._route(self.engine.advance(now))
            raise
        finally:
            if self._wake is not None:
                self._wake.set()
        self.command_counts[op] += 1
        self._route(out)
        return out

    def advance(self) -> List[Any]:
        return self._exec("advance", lambda now: (now,))

    def login(self, agent: str, *, paused: Optional[str] = None) -> List[Any]:
        """Log in a directory agent with its skills and queues."""
        entry = self._agents.get(agent)
        if entry is None:
            raise UnknownAgent(f"agent {agent!r} is not in the [[agents]] directory")
        out = self._exec("login", lambda now: (agent, dict(entry.skills), now,
                                               list(entry.queues) if entry.queues is not None else None, paused))
        self._device_paused.discard(agent)
        _ev(logging.INFO, "login", f"agent {agent} logged in", agent=agent)
        return out

    def logout(self, agent: str) -> List[Any]:
        out = self._exec("logout", lambda now: (agent, now))
        self._device_paused.discard(agent)
        later = self._after_call(agent)
        _ev(logging.INFO, "logout", f"agent {agent} logged out{later}", agent=agent, deferred=bool(later))
        return out

    def pause(self, agent: str, reason: str = "") -> List[Any]:
        out = self._exec("pause", lambda now: (agent, now, reason))
        self._device_paused.discard(agent)
        later = self._after_call(agent)
        _ev(logging.INFO, "pause", f"agent {agent} paused ({reason or 'no reason'}){later}", agent=agent,
            reason=reason, deferred=bool(later))
        return out

    def _after_call(self, agent: str) -> str:
        """' after the current call' when the engine deferred the agent's request (it rings or talks)."""
        assert self.engine is not None
        return " after the current call" if self.engine.agent_state(agent) in ("reserved", "busy") else ""

    def ready(self, agent: str) -> List[Any]:
        out = self._exec("ready", lambda now: (agent, now))
        self._device_paused.discard(agent)
        _ev(logging.INFO, "ready", f"agent {agent} ready", agent=agent)
        return out

    def enqueue(self, call: str, queue: str, priority: Optional[int] = None,
                requirements: Optional[Mapping[str, int]] = None) -> List[Any]:
        out = self._exec("enqueue", lambda now: (call, queue, now, priority,
                                                 dict(requirements) if requirements else None))
        self._call_queue.setdefault(call, queue)
        _ev(logging.INFO, "enqueue", f"call {call} entered queue {queue}", call=call, queue=queue, priority=priority,
            requirements=dict(requirements or {}))
        return out

    def answer(self, call: str) -> List[Any]:
        out = self._exec("answer", lambda now: (call, now))
        offer = self._offers.pop(call, None)
        if offer is not None:
            queue, wait = offer
            sl = self._sl[queue]
            sl.answered += 1
            q = self._queue_defs.get(queue)
            if q is not None and wait <= q.service_level[1]:
                sl.within += 1
        _ev(logging.INFO, "answer", f"call {call} answered", call=call)
        return out

    def ring_no_answer(self, call: str) -> List[Any]:
        out = self._exec("ring_no_answer", lambda now: (call, now))
        self._offers.pop(call, None)
        _ev(logging.INFO, "ring_no_answer", f"call {call}: the agent did not answer; back in line", call=call)
        return out

    def reject(self, call: str) -> List[Any]:
        out = self._exec("reject", lambda now: (call, now))
        self._offers.pop(call, None)
        _ev(logging.INFO, "reject", f"call {call}: the agent's phone refused it; back in line", call=call)
        return out

    def abandon(self, call: str) -> List[Any]:
        state = self._call_state(call)
        out = self._exec("abandon", lambda now: (call, now))
        if state in _LIVE:
            queue = self._call_queue.get(call)
            if queue is not None:
                self._sl[queue].abandoned += 1
        self._ended(call)
        _ev(logging.INFO, "abandon", f"call {call} abandoned ({state})", call=call, state=state)
        return out

    def complete(self, call: str) -> List[Any]:
        out = self._exec("complete", lambda now: (call, now))
        self._ended(call)
        _ev(logging.INFO, "complete", f"call {call} completed", call=call)
        return out

    def accept_callback(self, call: str) -> List[Any]:
        out = self._exec("accept_callback", lambda now: (call, now))
        _ev(logging.INFO, "accept_callback", f"call {call} accepted a call-back", call=call)
        return out

    def callback_answered(self, call: str) -> List[Any]:
        out = self._exec("callback_answered", lambda now: (call, now))
        _ev(logging.INFO, "callback_answered", f"call-back {call} connected", call=call)
        return out

    def callback_failed(self, call: str) -> List[Any]:
        out = self._exec("callback_failed", lambda now: (call, now))
        _ev(logging.INFO, "callback_failed", f"call-back {call} failed", call=call)
        return out

    def schedule_callback(self, call: str, queue: str, delay: float, number: str,
                          priority: Optional[int] = None) -> List[Any]:
        """A call-back to ``number`` in ``delay`` seconds (scheduled slot)."""
        if not isinstance(number, str) or not _CALLBACK_NUMBER.match(number):
            raise InvalidInput(f"number must be a phone number (digits, optional leading '+'), got {number!r}")
        self._remember_callback(call, number, queue)
        try:
            out = self._exec("schedule_callback", lambda now: (call, queue, now + delay, now, priority))
        except AcdError:
            self._forget_callback(call)
            raise
        _ev(logging.INFO, "schedule_callback", f"call-back {call} scheduled in {delay:g} s", call=call, queue=queue)
        return out

    def _call_state(self, call: str) -> Optional[str]:
        assert self.engine is not None
        try:
            return self.engine.call_state(call)
        except UnknownCall:
            return None

    def _agent_state(self, agent: str) -> Optional[str]:
        assert self.engine is not None
        try:
            return self.engine.agent_state(agent)
        except UnknownAgent:
            return None

    def _ended(self, call: str) -> None:
        self._call_queue.pop(call, None)
        self._offers.pop(call, None)
        self._forget_callback(call)

    # ------------------------------------------------------ call-back numbers
    def _remember_callback(self, call: str, number: str, queue: str) -> None:
        meta = self._callbacks.get(call) or {"attempts": 0}
        meta.update(number=number, queue=queue)
        self._callbacks[call] = meta
        self._save_callbacks()

    def _forget_callback(self, call: str) -> None:
        if self._callbacks.pop(call, None) is not None:
            self._save_callbacks()

    def _save_callbacks(self) -> None:
        assert self.engine is not None
        self.engine.journal.set_meta(_META_CALLBACKS, self._callbacks)

    # ============================================================ decisions
    def _route(self, decisions: List[Any]) -> None:
        for d in decisions:
            kind = type(d).__name__
            self.decision_counts[kind] += 1
            if isinstance(d, DialBack):
                _ev(logging.INFO, "dialback", f"call-back {d.call}: dialling agent {d.agent} (attempt {d.attempt})",
                    call=d.call, agent=d.agent, queue=d.queue, attempt=d.attempt)
                self._start_dialback(d)
                continue
            call = str(d.call)
            if isinstance(d, Assign):
                self._offers[call] = (d.queue, d.wait)
                self._call_queue[call] = d.queue
                _ev(logging.INFO, "assign", f"call {call} assigned to agent {d.agent}", call=call, agent=d.agent,
                    queue=d.queue, wait=round(d.wait, 3))
            elif isinstance(d, Overflow):
                self._call_queue[call] = d.to_queue
                _ev(logging.INFO, "overflow", f"call {call} overflowed from {d.from_queue} to {d.to_queue}",
                    call=call, from_queue=d.from_queue, to_queue=d.to_queue)
            elif isinstance(d, Exit):
                meta = self._callbacks.get(call)
                if d.reason == "callback_failed":
                    _ev(logging.ERROR, "callback_gave_up",
                        f"call-back {call} of queue {d.queue} gave up after its last attempt; "
                        f"call {meta.get('number') if meta else 'the customer'} by hand", call=call, queue=d.queue,
                        number=meta.get("number") if meta else None)
                else:
                    _ev(logging.INFO, "exit", f"call {call} left queue {d.queue}: {d.reason}", call=call,
                        queue=d.queue, reason=d.reason)
                self._ended(call)
            waiter = self._waiters.get(call)
            if waiter is not None:
                if isinstance(d, Overflow):
                    waiter.queue = d.to_queue
                waiter.push(d)
            elif isinstance(d, Assign):
                # nobody can connect this call (its AGI session is gone): give the agent back
                asyncio.get_running_loop().call_soon(self._abandon_orphan, call)

    def _abandon_orphan(self, call: str) -> None:
        if self._state != "running" or call in self._waiters:
            return
        if self._call_state(call) in _LIVE:
            _ev(logging.WARNING, "orphan", f"call {call} has no AGI session to connect it; abandoned", call=call)
            self._try("abandon", call)

    # --------------------------------------------------------------- dial back
    def _start_dialback(self, d: DialBack) -> None:
        call = str(d.call)
        if self._state not in ("running", "stopping") or self._dialing_closed:
            _ev(logging.WARNING, "dialback_deferred", f"call-back {call} not dialled: the service is stopping; "
                "the next start retries it", call=call)
            return
        task = asyncio.get_running_loop().create_task(self._dialback(d), name=f"acd-dialback-{call}")
        self._dialbacks[call] = task

        def done(t: "asyncio.Task[None]") -> None:
            self._dialback_done(call, t)

        task.add_done_callback(done)

    def _dialback_done(self, call: str, task: asyncio.Task[None]) -> None:
        if self._dialbacks.get(call) is task:
            del self._dialbacks[call]
        if not task.cancelled() and task.exception() is not None:
            log.error("call-back task failed", exc_info=task.exception(),
                      extra={"acd": {"event": "dialback_error", "call": call}})

    async def _dialback(self, d: DialBack) -> None:
        call = str(d.call)
        meta = self._callbacks.get(call)
        entry = self._agents.get(str(d.agent))
        if meta is not None:
            meta["attempts"] = int(meta.get("attempts", 0)) + 1
            self._save_callbacks()
        why: Optional[str] = None
        cb = self.config.callback
        try:
            if meta is None or not meta.get("number"):
                why = "no call-back number is known for this call"
            elif entry is None:
                why = f"agent {d.agent!r} is not in the [[agents]] directory (no dial string)"
            elif self.ami is None:
                why = "the asterisk manager is disabled ([ami] enabled = false)"
            else:
                if not self.ami.connected:
                    try:
                        await self.ami.wait_connected(timeout=min(5.0, cb.ring_timeout))
                    except AMIError:
                        why = "not connected to the asterisk manager"
                if why is None:
                    number = meta["number"]
                    await self.ami.originate(
                        entry.dial, context=cb.context, exten=cb.exten, priority=cb.priority,
                        timeout=cb.ring_timeout, caller_id=f'"call-back {d.queue}" <{number}>',
                        variables={"ACD_CALL": call, "ACD_CALLBACK_NUMBER": number, "ACD_QUEUE": d.queue,
                                   "ACD_AGENT": str(d.agent), "ACD_ATTEMPT": d.attempt})
        except AMIOriginateFailed as exc:
            why = f"the agent's leg failed: {exc}"
        except (AMIError, ProtocolError, InvalidInput, OSError) as exc:
            why = f"originate failed: {exc}"
        except asyncio.CancelledError:
            self._dialback_result(d, "the service is shutting down")
            raise
        self._dialback_result(d, why)

    def _dialback_result(self, d: DialBack, why: Optional[str]) -> None:
        if self.engine is None or self._state not in ("running", "stopping"):
            return
        try:
            if why is None:
                self.callback_answered(str(d.call))
            else:
                _ev(logging.WARNING, "dialback_failed", f"call-back {d.call} (attempt {d.attempt}) failed: {why}",
                    call=d.call, agent=d.agent, attempt=d.attempt, why=why)
                self.callback_failed(str(d.call))
        except AcdError as exc:
            _ev(logging.WARNING, "dialback_unrecorded", f"call-back {d.call}: result not recorded: {exc}",
                call=d.call)

    # =================================================================== AMI
    async def _ami_connect(self) -> None:
        assert self.ami is not None
        delay = 0.5
        while True:
            try:
                await self.ami.connect()
            except (AMIError, ProtocolError, OSError) as exc:
                _ev(logging.WARNING, "ami_down", f"cannot reach the asterisk manager: {exc}; retrying in {delay:g} s",
                    retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                _ev(logging.INFO, "ami_connected", "connected to the asterisk manager")
                return

    def _on_ami_hangup(self, msg: Mapping[str, str]) -> None:
        if self._state != "running":
            return
        uid = msg.get("Uniqueid") or ""
        if not uid or self._call_state(uid) not in _LIVE:
            return
        w = self._waiters.get(uid)
        if w is not None and w.session is not None:
            return  # its AGI session sees the hang-up itself
        self._drop_waiter(uid)
        _ev(logging.INFO, "ami_hangup", f"call {uid} hung up (AMI) with no AGI session attached", call=uid)
        self._try("abandon", uid)

    def _on_ami_device_state(self, msg: Mapping[str, str]) -> None:
        if self._state != "running":
            return
        agent = self._device_agents.get((msg.get("Device") or "").lower())
        if agent is None:
            return
        state = (msg.get("State") or "").upper()
        current = self._agent_state(agent)
        if state in ("UNAVAILABLE", "INVALID") and current in ("available", "wrap_up"):
            try:
                self.pause(agent, "device_unavailable")
            except AcdError as exc:
                _ev(logging.WARNING, "command_refused", f"pause {agent!r} refused: {exc}", agent=agent)
                return
            self._device_paused.add(agent)
        elif state == "NOT_INUSE" and agent in self._device_paused and self.config.ami.device_return_ready:
            self._device_paused.discard(agent)
            if current == "paused":
                try:
                    self.ready(agent)
                except AcdError as exc:
                    _ev(logging.WARNING, "command_refused", f"ready {agent!r} refused: {exc}", agent=agent)

    # ============================================================ AGI routes
    def _call_arg(self, session: AGISession, args: Mapping[str, str]) -> str:
        call = args.get("call") or session.env.uniqueid
        if not call:
            raise InvalidInput("no call id: the AGI environment has no agi_uniqueid and no call= argument was given")
        if len(call) > 128 or not call.isprintable():
            raise InvalidInput(f"call must be a printable id of at most 128 characters, got {call!r}")
        return call

    @staticmethod
    def _check_args(route: str, args: Mapping[str, str], allowed: Tuple[str, ...], prefix: str = "") -> None:
        unknown = sorted(k for k in args if k not in allowed and not (prefix and k.startswith(prefix)))
        if unknown:
            raise InvalidInput(f"unknown argument(s) {unknown!r} for {route} (allowed: {', '.join(allowed)}"
                               f"{', ' + prefix + '<skill>' if prefix else ''})")

    def _drop_waiter(self, call: str) -> None:
        w = self._waiters.pop(call, None)
        if w is not None and w.timer is not None:
            w.timer.cancel()

    def _detach(self, call: str, queue: str, number: Optional[str]) -> _CallWaiter:
        """Buffer a requeued call's decisions until the dialplan runs ``enqueue`` again."""
        w = self._waiters.get(call)
        if w is None:
            w = _CallWaiter(call, queue, number, None)
            self._waiters[call] = w
        if w.timer is not None:
            w.timer.cancel()
        w.timer = asyncio.get_running_loop().call_later(self.config.service.reattach_timeout,
                                                        self._reattach_expired, call, w)
        return w

    def _reattach_expired(self, call: str, w: _CallWaiter) -> None:
        if self._waiters.get(call) is not w or w.session is not None:
            return
        del self._waiters[call]
        if self._state == "running" and self._call_state(call) in _LIVE:
            _ev(logging.WARNING, "reattach_timeout", f"call {call} was put back in line but the dialplan did not "
                f"run enqueue again within {self.config.service.reattach_timeout:g} s; abandoned", call=call)
            self._try("abandon", call)

    async def _agi_enqueue(self, session: AGISession, args: Dict[str, str]) -> None:
        """Put the caller in line and hold it until an agent is found.

        Args: ``queue`` (required for a new call), ``priority`` (0..9),
        ``skill_<name>=<level>`` extra requirements, ``call`` (default
        ``agi_uniqueid``).  Ends with ``ACD_STATUS``: ``OK`` (an agent is
        found: ``ACD_AGENT``, ``ACD_AGENT_DIAL``, ``ACD_QUEUE``, ``ACD_WAIT``),
        ``EXIT`` (``ACD_EXIT_REASON``: ``max_wait``...), ``CALLBACK`` (the
        caller accepted a call-back: hang up), or ``ERROR``.  A call put back
        in line by ``dial_result`` resumes its place when ``enqueue`` runs again.
        """
        self._check_args("enqueue", args, ("queue", "priority", "call"), prefix="skill_")
        assert self.engine is not None
        call = self._call_arg(session, args)
        queue = args.get("queue", "")
        priority = _opt_int("priority", args.get("priority"), 0, 9)
        requirements: Dict[str, int] = {}
        for key, value in args.items():
            if key.startswith("skill_"):
                name = key[len("skill_"):]
                requirements[name] = _int_arg(f"level of skill {name!r}", value, 1, 10)
        state = self._call_state(call)
        existing = self._waiters.get(call)
        resume = False
        if state is not None:
            detached = existing is not None and existing.session is None
            if (state == "waiting" and (existing is None or detached)) or (state == "offered" and detached):
                resume = True
            else:
                raise DuplicateId(f"call {call!r} is already {state} in the acd")
        else:
            if not queue:
                raise InvalidInput("argument 'queue' is required, e.g. agi://127.0.0.1:4573/enqueue?queue=support")
            if queue not in self.engine.queues:
                raise unknown_queue(queue)
        number = session.env.callerid
        if resume:  # attach at once: the detached waiter's timer must not fire now
            w = existing or _CallWaiter(call, self._call_queue.get(call, queue), number, None)
            self._waiters[call] = w
            if w.timer is not None:
                w.timer.cancel()
                w.timer = None
            w.session = session
            w.number = w.number or number
            _ev(logging.INFO, "resume", f"call {call} back on hold in queue {w.queue}", call=call, queue=w.queue)
        else:
            await session.answer()
            if self._call_state(call) is not None or call in self._waiters:
                raise DuplicateId(f"call {call!r} is already in the acd")
            w = _CallWaiter(call, queue, number, session)
            self._waiters[call] = w
            try:
                self.enqueue(call, queue, priority, requirements or None)
            except BaseException:
                self._drop_waiter(call)
                raise
        connected = False
        try:
            if resume:
                await session.answer()
            while True:
                d = await self._next_decision(w, session)
                if d is None:
                    raise ChannelHungUp(f"call {call}: caller hung up while waiting")
                if isinstance(d, Assign):
                    await self._moh(session, w, False)
                    entry = self._agents.get(str(d.agent))
                    dial = entry.dial if entry is not None else ""
                    if entry is None:
                        _ev(logging.ERROR, "no_dial", f"agent {d.agent} is logged in but not in the directory; "
                            "ACD_AGENT_DIAL is empty", agent=d.agent, call=call)
                    await session.set_variable("ACD_AGENT", str(d.agent))
                    await session.set_variable("ACD_AGENT_DIAL", dial)
                    await session.set_variable("ACD_QUEUE", d.queue)
                    await session.set_variable("ACD_WAIT", int(round(d.wait)))
                    await session.set_variable("ACD_STATUS", "OK")
                    connected = True
                    await self._verbose(session, f"acd: call {call} -> agent {d.agent} ({dial}) after "
                                                 f"{d.wait:.0f}s in {d.queue}")
                    return
                if isinstance(d, Exit):
                    await self._moh(session, w, False)
                    await session.set_variable("ACD_QUEUE", d.queue)
                    await session.set_variable("ACD_EXIT_REASON", d.reason)
                    await session.set_variable("ACD_STATUS", "EXIT")
                    await self._verbose(session, f"acd: call {call} leaves {d.queue}: {d.reason}")
                    return
                if isinstance(d, Announce):
                    await self._announce(session, w, d)
                elif isinstance(d, OfferCallback):
                    if await self._offer_callback(session, w, d):
                        return
        finally:
            if self._waiters.get(call) is w:
                self._drop_waiter(call)
            if not connected and self._state in ("running", "stopping") and self._call_state(call) in _LIVE:
                self._try("abandon", call)

    async def _next_decision(self, w: _CallWaiter, session: AGISession) -> Any:
        """The next decision for this call, or None when the caller hangs up."""
        while True:
            d = w.pop()
            if d is not None:
                return d
            if session.hung_up or not session.usable:
                return None
            await self._moh(session, w, True)
            if w.items:
                continue
            w.event.clear()
            got = asyncio.ensure_future(w.event.wait())
            gone = asyncio.ensure_future(session.wait_hangup())
            try:
                await asyncio.wait((got, gone), timeout=_WAIT_SLICE, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (got, gone):
                    t.cancel()
                await asyncio.gather(got, gone, return_exceptions=True)

    async def _moh(self, session: AGISession, w: _CallWaiter, on: bool) -> None:
        """Music on hold on or off (only when it changes)."""
        cls = self.config.prompts.music_on_hold
        if not cls or w.music == on:
            return
        w.music = on
        try:
            if on:
                await session.command("SET MUSIC", "on", cls)
            else:
                await session.command("SET MUSIC", "off")
        except (AGICommandError, AGICommandFailed) as exc:
            log.debug("SET MUSIC failed: %s", exc)

    async def _play(self, session: AGISession, sound: str) -> None:
        try:
            await session.stream_file(sound)
        except AGICommandFailed as exc:
            _ev(logging.WARNING, "prompt_failed", f"cannot play {sound!r}: {exc}", sound=sound)

    async def _say(self, session: AGISession, number: int) -> None:
        try:
            await session.say_number(number)
        except AGICommandFailed as exc:
            log.debug("SAY NUMBER failed: %s", exc)

    async def _verbose(self, session: AGISession, text: str) -> None:
        try:
            await session.verbose(text, 2)
        except (AGICommandError, AGICommandFailed):
            pass

    async def _announce(self, session: AGISession, w: _CallWaiter, d: Announce) -> None:
        """Position (``youarenext``, or ``thereare`` N ``callswaiting``), then the
        expected wait in minutes (``holdtime`` N ``minutes``) when it is a minute or more."""
        p = self.config.prompts
        steps: List[Callable[[], Any]] = []
        if d.position <= 1:
            steps.append(lambda: self._play(session, p.youarenext))
        else:
            steps += [lambda: self._play(session, p.thereare), lambda: self._say(session, d.position),
                      lambda: self._play(session, p.callswaiting)]
        if math.isfinite(d.ewt) and d.ewt >= 60:
            minutes = int(math.ceil(d.ewt / 60))
            steps += [lambda: self._play(session, p.holdtime), lambda: self._say(session, minutes),
                      lambda: self._play(session, p.minutes)]
        await self._moh(session, w, False)
        for step in steps:
            if w.has_terminal():
                break
            await step()

    async def _offer_callback(self, session: AGISession, w: _CallWaiter, d: OfferCallback) -> bool:
        """Play the offer and read one digit; on the accept digit, keep the caller's place
        as a call-back (``ACD_STATUS=CALLBACK``).  True when accepted."""
        call = w.call
        if self.ami is None:
            log.debug("call-back offer to %s skipped: [ami] is disabled", call)
            return False
        number = w.number or ""
        if not _CALLBACK_NUMBER.match(number):
            _ev(logging.INFO, "offer_skipped", f"call-back offer to {call} skipped: caller id {number!r} "
                "cannot be dialled back", call=call)
            return False
        if w.has_terminal():
            return False
        cb = self.config.callback
        await self._moh(session, w, False)
        try:
            digits = await session.get_data(self.config.prompts.callback_offer, timeout=cb.offer_timeout, max_digits=1)
        except AGICommandFailed as exc:
            _ev(logging.WARNING, "prompt_failed", f"call-back offer prompt failed: {exc}", call=call)
            digits = ""
        if digits != cb.accept_digit or w.has_terminal():
            return False
        self._remember_callback(call, number, w.queue)
        try:
            self.accept_callback(call)
        except (InvalidState, UnknownCall) as exc:
            self._forget_callback(call)
            _ev(logging.INFO, "offer_late", f"call-back for {call} not taken: {exc}", call=call)
            return False
        await session.set_variable("ACD_QUEUE", w.queue)
        await session.set_variable("ACD_STATUS", "CALLBACK")
        await self._verbose(session, f"acd: call {call} will be called back at {number}")
        await self._play(session, self.config.prompts.callback_accepted)
        return True

    async def _agi_dial_result(self, session: AGISession, args: Dict[str, str]) -> None:
        """After ``Dial(${ACD_AGENT_DIAL})``: ``status=${DIALSTATUS}``, ``call`` (default
        ``agi_uniqueid``).  ANSWER -> answer (no-op when already connected);
        NOANSWER -> ring_no_answer; BUSY/CONGESTION/CHANUNAVAIL -> reject;
        CANCEL -> abandon.  When the call is back in line, sets ``ACD_REQUEUE=1``:
        the dialplan runs ``enqueue`` again and the caller keeps their place."""
        self._check_args("dial_result", args, ("call", "status"))
        call = self._call_arg(session, args)
        status = args.get("status", "").upper()
        op = DIAL_STATUSES.get(status)
        if op is None:
            raise InvalidInput(f"status must be one of {sorted(DIAL_STATUSES)!r} (${{DIALSTATUS}}), got "
                               f"{args.get('status', '')!r}")
        state = self._call_state(call)
        if state is None:
            raise unknown_call(call)
        requeue = False
        if op == "answer" and state == "connected":
            pass
        elif op in ("ring_no_answer", "reject"):
            fresh = call not in self._waiters
            self._detach(call, self._call_queue.get(call, ""), session.env.callerid)
            try:
                getattr(self, op)(call)
            except BaseException:
                if fresh:
                    self._drop_waiter(call)
                raise
            requeue = self._call_state(call) in _LIVE  # in line, or already offered to another agent
        else:
            getattr(self, op)(call)
        await session.set_variable("ACD_REQUEUE", "1" if requeue else "0")
        await self._verbose(session, f"acd: call {call}: dial status {status} -> {op}"
                                     f"{' (back in line)' if requeue else ''}")

    async def _agi_call_end(self, session: AGISession, args: Dict[str, str]) -> None:
        """From the ``h`` extension: ``call`` (default ``agi_uniqueid``), optional
        ``status=${DIALSTATUS}``.  Connected -> complete (a connected call-back
        whose status is given and is not ANSWER did not reach the customer: see
        ``callback_result``); offered -> complete if status is ANSWER (answer
        first), else abandon; waiting -> abandon; call-backs pending and ended
        calls are left alone."""
        self._check_args("call_end", args, ("call", "status"))
        call = self._call_arg(session, args)
        status = args.get("status", "").upper()
        state = self._call_state(call)
        if state == "connected":
            if call in self._callbacks and status and status != "ANSWER":
                what = self._callback_not_reached(call, status)
            else:
                self.complete(call)
                what = "completed"
        elif state == "offered" and status == "ANSWER":
            self.answer(call)
            self.complete(call)
            what = "completed"
        elif state in _LIVE:
            w = self._waiters.get(call)
            if w is None or w.session is None:
                self._drop_waiter(call)
                self.abandon(call)
                what = "abandoned"
            else:
                what = "still held by its enqueue session"
        elif state in _CALLBACK_STATES:
            what = f"kept ({state})"
        else:
            what = "already ended"
        await self._verbose(session, f"acd: call {call} end: {what}")

    async def _agi_callback_result(self, session: AGISession, args: Dict[str, str]) -> None:
        """From the call-back context, after dialling the customer: ``call=${ACD_CALL}``,
        ``status=${DIALSTATUS}``.  ANSWER: nothing to do (the call-back is
        connected; ``call_end`` completes it).  Otherwise the agent was reached
        but not the customer: the call is completed (the agent goes to wrap-up)
        and, unless the queue's ``callback_attempts`` are used up, a new
        call-back is scheduled ``callback_retry_delay`` seconds later (a log
        line at error level names the number when giving up)."""
        self._check_args("callback_result", args, ("call", "status"))
        call = args.get("call")
        if not call:
            raise InvalidInput("argument 'call' is required (call=${ACD_CALL})")
        status = args.get("status", "").upper()
        state = self._call_state(call)
        if status == "ANSWER" or state != "connected":
            what = f"{status or 'no status'} ({state or 'ended'})"
        else:
            what = self._callback_not_reached(call, status)
        await self._verbose(session, f"acd: call-back {call}: {what}")

    def _callback_not_reached(self, call: str, status: str) -> str:
        meta = dict(self._callbacks.get(call) or {})
        queue = meta.get("queue") or self._call_queue.get(call, "")
        self.complete(call)
        qdef = self._queue_defs.get(queue)
        attempts = int(meta.get("attempts", 1))
        limit = qdef.callback_attempts if qdef is not None else 1
        if meta.get("number") and qdef is not None and attempts < limit:
            self._callbacks[call] = meta
            self.schedule_callback(call, queue, qdef.callback_retry_delay, meta["number"])
            return f"customer not reached ({status}); retry in {qdef.callback_retry_delay:g}s"
        _ev(logging.ERROR, "callback_gave_up", f"call-back {call} of queue {queue}: customer {meta.get('number')} "
            f"not reached after {attempts} attempt(s); call by hand", call=call, queue=queue,
            number=meta.get("number"))
        return f"customer not reached ({status}); giving up after {attempts} attempt(s)"

    # ---------------------------------------------------------------- agents
    def _agent_for(self, session: AGISession, args: Mapping[str, str]) -> AgentEntry:
        agent = args.get("agent")
        if agent:
            entry = self._agents.get(agent)
            if entry is None:
                raise UnknownAgent(f"agent {agent!r} is not in the [[agents]] directory")
            return entry
        cid = session.env.callerid or ""
        for a in self.config.agents:
            if cid in a.callerid:
                return a
        entry = self._agents.get(cid)
        if entry is not None:
            return entry
        for a in self.config.agents:
            if a.dial.rpartition("/")[2] == cid:
                return a
        raise UnknownAgent(f"no agent in the [[agents]] directory matches caller id {cid!r} (pass agent=...)")

    async def _agent_done(self, session: AGISession, entry: AgentEntry, text: str) -> None:
        await session.set_variable("ACD_AGENT", entry.id)
        await session.set_variable("ACD_AGENT_STATE", self._agent_state(entry.id) or "logged_out")
        await session.set_variable("ACD_STATUS", "OK")
        await self._verbose(session, f"acd: agent {entry.id} {text}")

    async def _agi_agent_login(self, session: AGISession, args: Dict[str, str]) -> None:
        """Feature code: log in (``agent=`` or the caller id; skills and queues from the directory)."""
        self._check_args("agent_login", args, ("agent",))
        entry = self._agent_for(session, args)
        self.login(entry.id)
        skills = ", ".join(f"{k}={v}" for k, v in sorted(entry.skills.items())) or "none"
        queues = ", ".join(entry.queues) if entry.queues is not None else "all"
        await self._agent_done(session, entry, f"logged in (skills {skills}; queues {queues})")

    async def _agi_agent_logout(self, session: AGISession, args: Dict[str, str]) -> None:
        """Feature code: log out (refused while on a call)."""
        self._check_args("agent_logout", args, ("agent",))
        entry = self._agent_for(session, args)
        self.logout(entry.id)
        await self._agent_done(session, entry, "logged out")

    async def _agi_agent_pause(self, session: AGISession, args: Dict[str, str]) -> None:
        """Feature code: pause (``reason=``, default ``break``)."""
        self._check_args("agent_pause", args, ("agent", "reason"))
        reason = args.get("reason") or "break"
        if not _REASON.match(reason):
            raise InvalidInput(f"reason must be 1 to 64 letters, digits, '_', '.', '-', got {reason!r}")
        entry = self._agent_for(session, args)
        self.pause(entry.id, reason)
        await self._agent_done(session, entry, f"paused ({reason})")

    async def _agi_agent_ready(self, session: AGISession, args: Dict[str, str]) -> None:
        """Feature code: ready again (end a pause or the wrap-up)."""
        self._check_args("agent_ready", args, ("agent",))
        entry = self._agent_for(session, args)
        self.ready(entry.id)
        await self._agent_done(session, entry, "ready")

    # ================================================================ status
    def status(self) -> Dict[str, Any]:
        """Everything the HTTP endpoints show, as plain JSON-able data."""
        assert self.engine is not None
        eng = self.engine
        snap = eng.snapshot()
        now = self.now() if self._state in ("running", "stopping") else snap["now"]
        lag = max(0.0, now - snap["now"])  # the engine's clock moves with commands only
        queues: Dict[str, Any] = {}
        for name, q in snap["queues"].items():
            if q["waiting"]:
                q = {**q, "oldest_wait": q["oldest_wait"] + lag}
            ewt = eng.estimate_wait(name).ewt
            qdef = self._queue_defs.get(name)
            sl = self._sl[name]
            denom = sl.answered + sl.abandoned
            fraction, seconds = qdef.service_level if qdef is not None else (0.8, 60.0)
            queues[name] = {**q, "ewt": ewt if math.isfinite(ewt) else None,
                            "service_level": {"fraction": fraction, "seconds": seconds, "answered": sl.answered,
                                              "answered_within": sl.within, "abandoned": sl.abandoned,
                                              "measured": sl.within / denom if denom else None}}
        agents = {}
        for agent, a in snap["agents"].items():
            entry = self._agents.get(str(agent))
            agents[str(agent)] = {**a, "call": None if a.get("call") is None else str(a["call"]),
                                  "dial": entry.dial if entry is not None else None}
        fa = self.fastagi
        stats = fa.stats if fa is not None else None
        return {
            "now": now,
            "queues": queues,
            "agents": agents,
            "calls": {str(c): s for c, s in eng.calls().items()},
            "service": {
                "uptime": self._clock() - self._started_at,
                "state": self._state,
                "decisions": dict(self.decision_counts),
                "commands": dict(self.command_counts),
                "command_errors": dict(self.command_errors),
                "fastagi": {"active": fa.active_sessions if fa is not None else 0,
                            "accepted": stats.accepted if stats else 0, "completed": stats.completed if stats else 0,
                            "hangups": stats.hangups if stats else 0, "refused": stats.refused if stats else 0,
                            "errors": stats.errors if stats else 0,
                            "by_code": dict(stats.by_code) if stats else {}},
                "ami": {"enabled": self.ami is not None, "connected": self.ami_connected},
                "dialbacks_in_progress": len(self._dialbacks),
                "callbacks_known": len(self._callbacks),
                "journal": {"path": self.config.journal.path, "replayed_at_start": self._replayed},
            },
        }

    def _page_metrics(self) -> Tuple[int, str, bytes]:
        return 200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(self.status()).encode()

    def _page_json(self) -> Tuple[int, str, bytes]:
        return 200, "application/json", render_json(self.status())

    def _page_dashboard(self) -> Tuple[int, str, bytes]:
        return 200, "text/html; charset=utf-8", render_dashboard(self.status(), self.config.http.refresh).encode()

    def _page_health(self) -> Tuple[int, str, bytes]:
        return (200 if self._state == "running" else 503), "text/plain; charset=utf-8", f"{self._state}\n".encode()


def _opt_int(name: str, value: Optional[str], lo: int, hi: int) -> Optional[int]:
    if value is None or value == "":
        return None
    return _int_arg(name, value, lo, hi)


def _int_arg(name: str, value: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an int in {lo}..{hi}, got {value!r}") from None
    if not lo <= n <= hi:
        raise InvalidInput(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    return n


def _queue_json(q: Queue) -> Any:
    d = dataclasses.asdict(q)
    d["steps"] = [dict(s) for s in d["steps"]]
    return json.loads(json.dumps(d))
