"""``acd serve`` in one object: the composition root.

:class:`Dispatcher` builds the parts and starts and stops them in order:

1. the journal is opened and replayed (:mod:`.commands`) through the
   projections -- counters (:mod:`.counters`) and the call-back ledger
   (:mod:`.callbacks`) -- so both are as they were before the restart;
2. calls replayed in states that need a live peer are taken care of: callers
   who were on hold wait ``reattach_timeout`` for the dialplan, ringing and
   connected calls wait for their reports, dials are *in doubt* (looked up,
   never repeated);
3. the clock, the watchdog (:mod:`.watchdog`), FastAGI (routes in
   :mod:`.agi_routes` and :mod:`.agent_routes`), HTTP (:mod:`.http`) and AMI
   start; every AMI login, the first included, runs a reconciliation pass
   (:mod:`.reconcile`).

``stop()`` drains: new calls are refused (``ACD_ERROR=SHUTDOWN``, the dialplan
falls back), callers on hold are handed back to the dialplan, and
``dial_result``/``call_end``/``callback_*`` reports are still served until no
call rings or talks, or ``[service] shutdown_timeout`` passes; what is still
open then is reconciled at the next start.  Call-backs are still dialled while
draining; dials in flight at the end are left in doubt (looked up at the next
start), not failed.

The engine commands are also methods (``d.login("1001")``,
``d.enqueue("c1", "support")``...): they take the time from the clock, journal
the command and act on its decisions; they raise
:class:`acd.errors.AcdError` subclasses like the engine does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .._core import Assign, DialBack, Exit, Overflow
from ..adapters.asterisk.ami import AMIClient
from ..adapters.asterisk.fastagi import DropSession, FastAGIServer
from ..errors import AcdError, InvalidInput, InvalidState, JournalError, Shutdown, UnknownAgent
from ..journal import Journal
from .agent_routes import AgentRoutes
from .agi_routes import LIVE, CallRoutes
from .callbacks import NOTE_NUMBER, NUMBER, CallbackLedger, Dialler
from .last_agent import NOTE_CALLER, LastAgents
from .calls import RELEASE, Waiters
from .commands import Commands
from .config import AgentEntry, ServiceConfig, is_loopback
from .counters import Counters
from .ha import HANode
from .http.api import actions, pages
from .http.auth import TokenGuard
from .http.server import HTTPServer
from .live import LiveView
from .logs import event
from .outputs.queue_log import QueueLogFile, QueueLogWriter
from .outputs.webhooks import Webhooks
from .reconcile import Reconciler
from .status import build_status
from .supervisor import Supervisor
from .survey import SurveyLog
from .watchdog import Watchdog

__all__ = ("Dispatcher", "ROUTES")

log = logging.getLogger("acd.service")

#: FastAGI route -> handler name (on CallRoutes / AgentRoutes)
ROUTES = ("enqueue", "dial_result", "call_end", "callback_answered", "callback_result", "survey", "agent_login",
          "agent_logout", "agent_pause", "agent_ready")
#: routes still served while draining (they report on calls in progress)
_DRAIN_ROUTES = ("dial_result", "call_end", "callback_answered", "callback_result", "survey")
_META_OLD_CALLBACKS = "service_callbacks"   # call-back numbers of journals written before the ledger
_BUSY = ("offered", "connected")


def _ev(level: int, name: str, msg: str, **fields: Any) -> None:
    event(log, level, name, msg, **fields)


class Dispatcher:
    """``await d.start()`` ... ``await d.stop()``.

    ``clock``: monotonic seconds (injectable for tests).  ``ami_client``: an
    :class:`AMIClient` to use instead of building one from ``config.ami``.
    """

    def __init__(self, config: ServiceConfig, *, clock: Callable[[], float] = time.monotonic,
                 ami_client: Optional[AMIClient] = None) -> None:
        self.config = config
        self.clock = clock
        self.ami: Optional[AMIClient] = ami_client
        self._own_ami = ami_client is None
        # new -> starting -> running -> draining -> stopping -> stopped; with a PostgreSQL journal
        # new -> starting -> standby -> starting -> running ... (or -> stopping when deposed)
        self.state = "new"
        self.agents: Dict[str, AgentEntry] = {a.id: a for a in config.agents}
        self.queue_defs = {q.name: q for q in config.queues}
        self.device_agents: Dict[str, str] = {a.device.lower(): a.id for a in config.agents if a.device}
        self._device_paused: "set[str]" = set()
        self.call_queue: Dict[Any, str] = {}
        self._touched: Dict[Any, float] = {}
        self.counters = Counters()
        self.ledger = CallbackLedger()
        self.ledger.clock = clock
        self.commands = Commands(config, clock, self._route, lambda: self.state)
        self.commands.projections += [self.counters, self.ledger]
        #: the wallboard's read model and event bus (adds its own projections)
        self.live = LiveView(self)
        self.survey = SurveyLog()          # who answered which call, for the survey route
        self.commands.projections.append(self.survey)
        #: [preferred]: the last agent of each caller number (enqueue?preferred=last)
        self.last_agents = LastAgents(config.preferred.remember)
        self.commands.projections.append(self.last_agents)
        #: [webhooks]: a projection (the journal is its outbox) and a sender that runs while this node serves
        self.webhooks = Webhooks(config.webhooks, self.commands) if config.webhooks is not None else None
        if self.webhooks is not None:
            self.commands.projections.append(self.webhooks.outbox)
        #: [queue_log]: the file sink, opened with the journal (its id keys the file's cursor)
        self.queue_log: Optional[QueueLogFile] = None
        self.waiters = Waiters(config.service.reattach_timeout, self._reattach_expired)
        self.dialler = Dialler(self)
        self.reconciler = Reconciler(self)
        self.watchdog = Watchdog(self)
        self.supervisor = Supervisor(self)
        self.call_routes = CallRoutes(self)
        self.agent_routes = AgentRoutes(self)
        self.fastagi: Optional[FastAGIServer] = None
        self.http: Optional[HTTPServer] = None
        #: primary / standby role on a PostgreSQL journal (None with an SQLite journal)
        self.ha: Optional[HANode] = None
        #: True once FastAGI listens and the calls are this node's (start() returned, or took over)
        self.serving = False
        self.commands.on_fenced = lambda why: self.ha.depose(f"a write was refused: {why}") if self.ha else None
        self.started_at = 0.0
        self.started_unix = 0.0
        self._tasks: List[asyncio.Task[Any]] = []
        self._idle = asyncio.Event()
        self._hurry = False

    # ================================================================ life
    @property
    def engine(self) -> Any:
        return self.commands.engine

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def draining(self) -> bool:
        return self.state in ("draining", "stopping")

    @property
    def accepting(self) -> bool:
        """Engine commands are taken (running, draining, stopping until the journal closes)."""
        return self.commands.accepting

    @property
    def fastagi_port(self) -> Optional[int]:
        return self.fastagi.port if self.fastagi is not None else None

    @property
    def http_port(self) -> Optional[int]:
        return self.http.port if self.http is not None else None

    @property
    def ami_connected(self) -> bool:
        return self.ami is not None and self.ami.connected

    # kept for callers of the first service API
    @property
    def decision_counts(self) -> Mapping[str, int]:
        return self.counters.decisions

    @property
    def command_counts(self) -> Mapping[str, int]:
        return self.counters.commands

    @property
    def command_errors(self) -> Mapping[str, int]:
        return self.commands.errors

    def now(self) -> float:
        return self.commands.now()

    async def start(self) -> None:
        """Open the journal (replaying it), take care of replayed calls, then start the clock,
        the watchdog, FastAGI, HTTP and AMI.  Raises (and releases whatever it opened) if any
        part fails.  With a PostgreSQL journal the node starts as a standby (HTTP only, the
        journal followed live) and serves once it takes the lead (:mod:`.ha`)."""
        if self.state != "new":
            raise InvalidState(f"cannot start a dispatcher that is {self.state}")
        self.state = "starting"
        cfg = self.config
        loop = asyncio.get_running_loop()
        try:
            if cfg.journal.shared:
                self.ha = HANode(self)
            self.commands.open(self._before_replay, node=self.ha.node if self.ha is not None else "")
            self.started_at = self.clock()
            self.started_unix = time.time()
            if self.ha is not None:
                await self._start_http()
                self.state = "standby"
                self._tasks.append(loop.create_task(self._lead(), name="acd-lead"))
                _ev(logging.INFO, "standby", f"acd node {self.ha.node} is a standby: following the journal, ready "
                    "to take over", node=self.ha.node, journal=cfg.journal.where, http_port=self.http_port,
                    replayed_commands=self.commands.replayed)
                return
            await self._serve_calls()
        except BaseException:
            await self._shutdown(0.0)
            raise
        self._log_started()

    def _log_started(self) -> None:
        cfg = self.config
        eng = self.engine
        _ev(logging.INFO, "started", "acd service started", engine_time=eng.now, journal=cfg.journal.where,
            fastagi_port=self.fastagi_port, unix_path=cfg.fastagi.unix_path, http_port=self.http_port,
            ami=cfg.ami.enabled, replayed_commands=self.commands.replayed, calls=len(eng.calls()),
            node=self.ha.node if self.ha is not None else None, epoch=self.ha.epoch if self.ha is not None else None)

    async def _lead(self) -> None:
        """A standby's life: follow, take the lead, serve; step down if the lead is lost."""
        ha = self.ha
        assert ha is not None
        epoch = await ha.follow_until_leading()
        t0 = self.clock()
        try:
            self.state = "starting"
            self.commands.promote(epoch)
            ha.promoted(epoch)
            await self._serve_calls()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:   # a node that cannot serve must not keep the lead
            _ev(logging.ERROR, "take_over_failed", f"node {ha.node} won epoch {epoch} but cannot serve: {exc}",
                node=ha.node, epoch=epoch)
            ha.depose(f"taking over failed: {exc}")
            return
        _ev(logging.WARNING, "took_over", f"node {ha.node} is primary (epoch {epoch}); took over in "
            f"{self.clock() - t0:.3f} s after winning the lead", node=ha.node, epoch=epoch,
            seconds=round(self.clock() - t0, 3))
        self._log_started()
        self._tasks.append(asyncio.get_running_loop().create_task(ha.keep_lead(), name="acd-keep-lead"))

    async def _start_http(self) -> None:
        cfg = self.config
        if cfg.http.enabled and self.http is None:
            guard = TokenGuard(cfg.http.token, pages_need_token=not is_loopback(cfg.http.host))
            self.http = HTTPServer(pages(self, guard), cfg.http.host, cfg.http.port, post=actions(self, guard),
                                   guard=guard)
            await self.http.start()

    def _note_clock(self) -> None:
        """Journal engine time against the wall clock as this node starts serving: engine time
        resumes where the journal stopped, so reports need one anchor per start (``acd report``)."""
        try:
            self.commands.note("clock", {"engine": self.now(), "unix": time.time()})
        except AcdError as exc:   # the journal is down: the report will place this stretch less well
            _ev(logging.WARNING, "clock_note_failed", f"could not journal the clock anchor: {exc}")

    async def _serve_calls(self) -> None:
        """Steps 2 and 3 of the module docstring: this node now owns the calls."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        self.ledger.live = True
        self._adopt_old_numbers()
        if cfg.ami.enabled and self.ami is None:
            self.ami = AMIClient(cfg.ami.host, cfg.ami.port, username=cfg.ami.username, secret=cfg.ami.secret,
                                 events="call", ping_interval=cfg.ami.ping_interval)
        if self.ami is not None:
            self.ami.on("Hangup", self._on_ami_hangup)
            self.ami.on("Newstate", self._on_ami_newstate)
            self.ami.on("OriginateResponse", self._on_ami_originate_response)
            self.ami.on("DeviceStateChange", self.on_device_state)
            self._unsubscribe_login = self.ami.on_login(self._on_ami_login)
        self.commands.accepting = True
        self.state = "running"
        self._note_clock()
        self._take_over_replayed()
        if self.webhooks is not None:
            self.webhooks.start()
        self._tasks.append(loop.create_task(self.commands.run_clock(), name="acd-clock"))
        self._tasks.append(loop.create_task(self.watchdog.run(), name="acd-watchdog"))
        if cfg.fastagi.port is not None or cfg.fastagi.unix_path is not None:
            if cfg.fastagi.port is not None and not is_loopback(cfg.fastagi.host):
                _ev(logging.WARNING, "exposed", f"FastAGI listens on {cfg.fastagi.host!r}, beyond this machine: "
                    "FastAGI has no authentication, so anyone who reaches the port can log agents in and out "
                    "and end calls; firewall it to the Asterisk servers", host=cfg.fastagi.host)
            self.fastagi = FastAGIServer(cfg.fastagi.host, cfg.fastagi.port, unix_path=cfg.fastagi.unix_path,
                                         max_sessions=cfg.fastagi.max_sessions)
            for name in ROUTES:
                self.fastagi.route(name, self._route_handler(name))
            await self.fastagi.start()
        await self._start_http()
        if self.ami is not None:
            if self.ami.connected:
                self._on_ami_login()
            else:
                self._tasks.append(loop.create_task(self._ami_connect(), name="acd-ami-connect"))
        self.serving = True

    def _before_replay(self, journal: Journal) -> None:
        self.ledger.journal_id = journal.journal_id
        if self.config.queue_log is not None and self.queue_log is None:
            try:
                self.queue_log = QueueLogFile(self.config.queue_log, journal.journal_id)
            except OSError as exc:
                raise InvalidInput(f"queue_log.path {self.config.queue_log!r}: cannot open it: "
                                   f"{exc.strerror or exc}") from None
            self.commands.projections.append(QueueLogWriter(self.queue_log))

    def _adopt_old_numbers(self) -> None:
        """Journals written before the ledger kept call-back numbers in a meta table."""
        eng = self.engine
        old = eng.journal.get_meta(_META_OLD_CALLBACKS)
        if not old:
            return
        states = eng.calls()
        for call, meta in old.items():
            if call not in self.ledger.entries and states.get(call) in ("callback_pending", "callback_retry",
                                                                       "scheduled", "dialing_back", "connected"):
                self.remember_number(call, meta["number"], meta["queue"], int(meta.get("attempts", 0)))
        eng.journal.set_meta(_META_OLD_CALLBACKS, {})

    def _take_over_replayed(self) -> None:
        """Calls the journal holds in states that need a peer of the old process."""
        now = self.clock()
        for call, state in self.engine.calls().items():
            if state == "waiting":
                # its AGI session died with the old process: the dialplan may still loop back to enqueue
                self.waiters.detach(str(call), self.call_queue.get(call, ""), None)
                _ev(logging.WARNING, "restart_waiting", f"call {call!r} was waiting when the service stopped; it "
                    f"keeps its place for {self.config.service.reattach_timeout:g} s if the dialplan comes back",
                    call=call)
            elif state == "offered":
                self.watchdog.offers[call] = now
            elif state == "dialing_back" and self.ami is None:
                _ev(logging.WARNING, "restart_dialback", f"call-back {call!r} was being dialled, and AMI is "
                    "disabled: no dial of this process can be live, so it counts as failed", call=call)
                self.try_command("callback_failed", call, "AMI disabled")
        pending = [c for c in self.ledger.entries if self.commands.call_state(c) in ("callback_pending",
                                                                                       "callback_retry", "scheduled")]
        if pending:
            _ev(logging.INFO, "restart_callbacks", f"{len(pending)} call-back(s) pending from the journal",
                calls=pending)

    def _route_handler(self, name: str) -> Callable[..., Any]:
        owner: Any = self.agent_routes if name.startswith("agent_") else self.call_routes
        handler = getattr(owner, name[len("agent_"):] if name.startswith("agent_") else name)
        drains = name in _DRAIN_ROUTES

        async def guarded(session: Any, args: Dict[str, str]) -> None:
            if self.state == "stopping" and not drains:
                raise Shutdown("the ACD is stopping")
            try:
                await handler(session, args)
            except AcdError as exc:
                if self.ha is not None and isinstance(exc, JournalError) and not self.engine.up:
                    # this node lost (or may have lost) the lead: no status, so the dialplan retries,
                    # reaching the new primary, instead of taking the fallback
                    raise DropSession(f"this node cannot write its journal: {exc}") from None
                raise
        guarded.__doc__ = handler.__doc__
        if drains and self.config.journal.url is None:
            return handler
        return guarded

    async def stop(self, timeout: Optional[float] = None) -> None:
        """Drain, then stop: see the module docstring."""
        if self.state in ("draining", "stopping", "stopped", "new"):
            self.state = "stopped" if self.state == "new" else self.state
            return
        if self.state == "standby" or (self.ha is not None and self.ha.role == "deposed"):
            await self.abort()   # a standby has nothing to drain; a deposed node may not write
            return
        t = self.config.service.shutdown_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + t
        self.state = "draining"
        # call-backs whose turn comes now are still dialled: left undialled, the next start could
        # not tell them from dials that rang out, and would spend one of their attempts
        busy = self._busy()
        _ev(logging.INFO, "stopping", f"acd service draining: new calls refused, up to {t:g} s for {busy} call(s) "
            "ringing or talking", timeout=t, busy=busy)
        for w in self.waiters:
            if w.session is not None:
                w.push(RELEASE)                       # callers on hold go back to the dialplan now
        self._hurry = False
        while self._busy() and loop.time() < deadline and not self._hurry:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), min(0.2, max(0.0, deadline - loop.time())))
            except asyncio.TimeoutError:
                pass
        left = self._busy()
        if left:
            _ev(logging.WARNING, "drain_timeout", f"{left} call(s) still ringing or talking after {t:g} s; the "
                "next start reconciles them with Asterisk", calls=left)
        await self._shutdown(max(0.0, deadline - loop.time()))
        _ev(logging.INFO, "stopped", "acd service stopped")

    def hurry(self) -> None:
        """Stop draining now (a second SIGTERM): what is still open is reconciled at the next start."""
        self._hurry = True
        self._idle.set()

    def _busy(self) -> int:
        """Calls the drain waits for: ringing, talking, or a dial in flight."""
        eng = self.engine
        if eng is None:
            return 0
        return sum(1 for s in eng.calls().values() if s in _BUSY) + len(self.dialler.tasks)

    async def abort(self) -> None:
        """Stop at once, without draining and without writing (a deposed primary, a standby)."""
        if self.state in ("stopping", "stopped"):
            return
        if self.ha is not None and self.ha.role == "deposed":
            self.commands.accepting = False
            journal = getattr(self.engine, "journal", None)
            if journal is not None and hasattr(journal, "demote"):
                journal.demote()
        await self._shutdown(0.0)

    async def _shutdown(self, timeout: float) -> None:
        self.state = "stopping"
        self.serving = False
        if self.fastagi is not None:
            await self.fastagi.stop(timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.dialler.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()     # before the journal closes (it journals deliveries)
        self.waiters.clear()
        if self.ami is not None:
            self.ami.off("Hangup", self._on_ami_hangup)
            self.ami.off("Newstate", self._on_ami_newstate)
            self.ami.off("OriginateResponse", self._on_ami_originate_response)
            self.ami.off("DeviceStateChange", self.on_device_state)
            unsubscribe = getattr(self, "_unsubscribe_login", None)
            if unsubscribe is not None:
                unsubscribe()
            if self._own_ami:
                await self.ami.close()
        if self.http is not None:
            await self.http.stop()
        await self.live.health.stop()
        try:
            self.commands.close()
        finally:
            if self.queue_log is not None:
                self.queue_log.close()     # after the last record it sees
            if self.ha is not None:
                self.ha.close()   # after the journal's last write: then a standby may lead
        self.state = "stopped"

    async def serve(self, stop: asyncio.Event) -> bool:
        """Start, run until ``stop`` is set, then stop gracefully.  Returns True if the node was
        deposed instead (it stopped without draining; start a new one to follow the new primary)."""
        await self.start()
        waits = [asyncio.ensure_future(stop.wait())]
        if self.ha is not None:
            waits.append(asyncio.ensure_future(self.ha.deposed.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await self.stop()
        return self.ha is not None and self.ha.role == "deposed" and not stop.is_set()

    def health(self) -> Tuple[bool, str]:
        if self.ha is not None and self.ha.role != "primary":
            if self.ha.role == "deposed":
                return False, f"deposed: {self.ha.why_deposed}"
            return False, f"standby, {self.ha.lag:.1f} s behind the journal"
        if self.state != "running":
            return False, self.state
        eng = self.engine
        if not eng.up:
            return False, f"journal down: {eng.last_error}"
        return True, "running"

    def primary_health(self) -> Tuple[bool, str]:
        """``GET /primary``: 200 only on the node that serves calls (Patroni's convention)."""
        ok, why = self.health()
        if ok and not self.serving:
            return False, "taking over"
        if ok:
            return True, "primary" if self.ha is None else f"primary, epoch {self.ha.epoch}"
        return False, why

    def standby_health(self) -> Tuple[bool, str]:
        """``GET /standby``: 200 on a standby that follows the journal within ``[ha] max_lag``."""
        if self.ha is None:
            return False, "no standby role: the journal is a file of this node's (SQLite)"
        if self.ha.role != "standby" or self.state != "standby":
            return False, self.ha.role if self.ha.role != "primary" else "primary"
        lag = self.ha.lag
        if lag > self.ha.max_lag:
            return False, f"standby, {lag:.1f} s behind the journal (more than {self.ha.max_lag:g} s)" + (
                f": {self.ha.last_error}" if self.ha.last_error else "")
        return True, f"standby, {lag:.1f} s behind the journal"

    def require_running(self) -> None:
        if self.state not in ("running", "draining"):
            raise Shutdown(f"the dispatcher is {self.state}")

    def status(self) -> Dict[str, Any]:
        return build_status(self)

    # ============================================================= reload
    def reload(self, by: str = "api") -> Dict[str, Any]:
        """Reload the configuration file (SIGHUP, ``POST /api/reload``): see :mod:`.reload`."""
        from .reload import reload_config
        return reload_config(self, by)

    def apply_config(self, config: ServiceConfig) -> None:
        """Hold ``config`` from now on: every table derived from it is built first, then all are
        swapped together (no await in between: no coroutine sees half of it)."""
        agents = {a.id: a for a in config.agents}
        queue_defs = {q.name: q for q in config.queues}
        device_agents = {a.device.lower(): a.id for a in config.agents if a.device}
        self.config, self.agents, self.queue_defs, self.device_agents = config, agents, queue_defs, device_agents
        self.commands.config = config
        # [preferred]: the window applies to lookups at once (what was seen is kept; a longer
        # window does not bring back entries already pruned)
        self.last_agents.remember = config.preferred.remember

    # ============================================================= commands
    def _run(self, op: str, call: Any, make_args: Callable[[float], Tuple[Any, ...]]) -> List[Any]:
        out = self.commands.run(op, make_args)
        if call is not None:
            self._touched[call] = self.clock()
        return out

    def touched_since(self, call: Any, since: float) -> bool:
        return self._touched.get(call, -1.0) >= since

    def command(self, op: str, call: Any) -> List[Any]:
        """Run the call command ``op`` (``complete``, ``withdraw``...) through its method."""
        return getattr(self, op)(call)

    def try_command(self, op: str, call: Any, why: str) -> bool:
        """A command the service decides on its own: logged, never raising."""
        try:
            self.command(op, call)
        except AcdError as exc:
            _ev(logging.WARNING, "command_refused", f"{op} {call!r} refused: {exc}", call=call, command=op)
            return False
        _ev(logging.WARNING if op in ("withdraw", "callback_failed") else logging.INFO, f"auto_{op}",
            f"call {call}: {op} ({why})", call=call, why=why)
        return True

    def advance(self) -> List[Any]:
        return self._run("advance", None, lambda now: (now,))

    def login(self, agent: str, *, paused: Optional[str] = None) -> List[Any]:
        """Log in a directory agent with its skills and queues."""
        entry = self.agents.get(agent)
        if entry is None:
            raise UnknownAgent(f"agent {agent!r} is not in the [[agents]] directory")
        out = self._run("login", None, lambda now: (agent, dict(entry.skills), now,
                                                    list(entry.queues) if entry.queues is not None else None,
                                                    paused))
        self._device_paused.discard(agent)
        _ev(logging.INFO, "login", f"agent {agent} logged in", agent=agent)
        return out

    def offered_agent(self, call: str) -> Optional[str]:
        """The agent a call is offered to (ringing) or connected with, if any (from the journal)."""
        assign = self.counters.assigns.get(call)
        return str(assign.agent) if assign is not None else None

    def on_call(self, agent: str) -> bool:
        """True while the agent rings or talks (a pause or log-out would be deferred)."""
        return self.commands.agent_state(agent) in ("reserved", "busy")

    def logout(self, agent: str) -> List[Any]:
        later = self.on_call(agent)
        out = self._run("logout", None, lambda now: (agent, now))
        self._device_paused.discard(agent)
        _ev(logging.INFO, "logout", f"agent {agent} logged out{' after the current call' if later else ''}",
            agent=agent, deferred=later)
        return out

    def pause(self, agent: str, reason: str = "") -> List[Any]:
        later = self.on_call(agent)
        out = self._run("pause", None, lambda now: (agent, now, reason))
        self._device_paused.discard(agent)
        _ev(logging.INFO, "pause", f"agent {agent} paused ({reason or 'no reason'})"
            f"{' after the current call' if later else ''}", agent=agent, reason=reason, deferred=later)
        return out

    def ready(self, agent: str) -> List[Any]:
        out = self._run("ready", None, lambda now: (agent, now))
        self._device_paused.discard(agent)
        _ev(logging.INFO, "ready", f"agent {agent} ready", agent=agent)
        return out

    def enqueue(self, call: str, queue: str, priority: Optional[int] = None,
                requirements: Optional[Mapping[str, int]] = None, *, number: str = "",
                preferred: Optional[Sequence[str]] = None, preferred_for: Optional[float] = None) -> List[Any]:
        """A new call in line.  ``number`` (the caller's) is journaled with it when ``[preferred]``
        remembers last agents; ``preferred`` agents get it first for ``preferred_for`` seconds
        (default ``[preferred] wait``)."""
        req = dict(requirements) if requirements else None
        make: Callable[[float], Tuple[Any, ...]]
        if preferred:
            hold = self.config.preferred.wait if preferred_for is None else preferred_for
            pref = list(preferred)
            make = lambda now: (call, queue, now, priority, req, pref, hold)   # noqa: E731
        else:
            make = lambda now: (call, queue, now, priority, req)   # noqa: E731
        if number and self.config.preferred.remember > 0:
            # one group commit: the number is in the journal exactly when the call is
            out = self.commands.run_all([("note", lambda now: (NOTE_CALLER, {"call": call, "number": number})),
                                         ("enqueue", make)])
            self._touched[call] = self.clock()
        else:
            out = self._run("enqueue", call, make)
        self.call_queue.setdefault(call, queue)
        _ev(logging.INFO, "enqueue", f"call {call} entered queue {queue}", call=call, queue=queue, priority=priority,
            requirements=dict(requirements or {}), **({"preferred": list(preferred)} if preferred else {}))
        return out

    def answer(self, call: str) -> List[Any]:
        out = self._run("answer", call, lambda now: (call, now))
        _ev(logging.INFO, "answer", f"call {call} answered", call=call)
        return out

    def ring_no_answer(self, call: str) -> List[Any]:
        out = self._run("ring_no_answer", call, lambda now: (call, now))
        _ev(logging.INFO, "ring_no_answer", f"call {call}: the agent did not answer; back in line", call=call)
        return out

    def reject(self, call: str) -> List[Any]:
        out = self._run("reject", call, lambda now: (call, now))
        _ev(logging.INFO, "reject", f"call {call}: the agent's phone refused it; back in line", call=call)
        return out

    def abandon(self, call: str) -> List[Any]:
        state = self.commands.call_state(call)
        out = self._run("abandon", call, lambda now: (call, now))
        self._ended(call)
        _ev(logging.INFO, "abandon", f"call {call} abandoned ({state})", call=call, state=state)
        return out

    def withdraw(self, call: str) -> List[Any]:
        state = self.commands.call_state(call)
        out = self._run("withdraw", call, lambda now: (call, now))
        self._ended(call)
        _ev(logging.INFO, "withdraw", f"call {call} withdrawn ({state})", call=call, state=state)
        return out

    def answer_and_complete(self, call: str) -> List[Any]:
        """A call reported answered and ended at once (its ``h`` after a Dial whose report was
        lost): both or neither, so that a journal failure cannot leave it connected for ever."""
        out = self.commands.run_all([("answer", lambda now: (call, now)), ("complete", lambda now: (call, now))])
        self._touched[call] = self.clock()
        self._ended(call)
        _ev(logging.INFO, "complete", f"call {call} answered and completed", call=call)
        return out

    def complete(self, call: str) -> List[Any]:
        out = self._run("complete", call, lambda now: (call, now))
        self._ended(call)
        _ev(logging.INFO, "complete", f"call {call} completed", call=call)
        return out

    def accept_callback(self, call: str) -> List[Any]:
        out = self._run("accept_callback", call, lambda now: (call, now))
        _ev(logging.INFO, "accept_callback", f"call {call} accepted a call-back", call=call)
        return out

    def callback_answered(self, call: str) -> List[Any]:
        out = self._run("callback_answered", call, lambda now: (call, now))
        _ev(logging.INFO, "callback_answered", f"call-back {call} connected", call=call)
        return out

    def callback_failed(self, call: str) -> List[Any]:
        out = self._run("callback_failed", call, lambda now: (call, now))
        _ev(logging.INFO, "callback_failed", f"call-back {call} failed", call=call)
        return out

    def schedule_callback(self, call: str, queue: str, delay: float, number: str,
                          priority: Optional[int] = None, *, attempts: int = 0) -> List[Any]:
        """A call-back to ``number`` in ``delay`` seconds (scheduled slot)."""
        if not isinstance(number, str) or not NUMBER.match(number):
            raise InvalidInput(f"number must be a phone number (digits, optional leading '+'), got {number!r}")
        sched = self.config.schedules.get(queue)
        if sched is not None:      # a call-back is dialled while the queue is open: at its next opening
            at = time.time() + delay
            opens = sched.next_open(at)
            if opens is not None and opens > at:
                delay += opens - at
        self.remember_number(call, number, queue, attempts)
        out = self._run("schedule_callback", call, lambda now: (call, queue, now + delay, now, priority))
        _ev(logging.INFO, "schedule_callback", f"call-back {call} scheduled in {delay:g} s", call=call, queue=queue)
        return out

    def remember_number(self, call: str, number: str, queue: str, attempts: int) -> None:
        """Journal the number a call-back dials (before the command that makes it one)."""
        self.commands.note(NOTE_NUMBER, {"call": call, "number": number, "queue": queue, "attempts": attempts})

    def _ended(self, call: str) -> None:
        self.call_queue.pop(call, None)
        self._touched.pop(call, None)
        self.watchdog.offers.pop(call, None)

    # ============================================================ decisions
    def _route(self, decisions: List[Any]) -> None:
        for d in decisions:
            call = d.call
            self._touched[call] = self.clock()
            if isinstance(d, DialBack):
                _ev(logging.INFO, "dialback", f"call-back {call}: dialling agent {d.agent} (attempt {d.attempt})",
                    call=call, agent=d.agent, queue=d.queue, attempt=d.attempt)
                self.dialler.start(d)
                continue
            call = str(call)
            if isinstance(d, Assign):
                self.call_queue[call] = d.queue
                self.watchdog.offers[d.call] = self.clock()
                _ev(logging.INFO, "assign", f"call {call} assigned to agent {d.agent}", call=call, agent=d.agent,
                    queue=d.queue, wait=round(d.wait, 3))
            elif isinstance(d, Overflow):
                self.call_queue[call] = d.to_queue
                _ev(logging.INFO, "overflow", f"call {call} overflowed from {d.from_queue} to {d.to_queue}",
                    call=call, from_queue=d.from_queue, to_queue=d.to_queue)
            elif isinstance(d, Exit):
                if d.reason == "callback_failed":
                    entry = self.ledger.entries.get(d.call)
                    _ev(logging.ERROR, "callback_gave_up",
                        f"call-back {call} of queue {d.queue} gave up after its last attempt; "
                        f"call {entry.number if entry else 'the customer'} by hand", call=call, queue=d.queue,
                        number=entry.number if entry else None)
                else:
                    _ev(logging.INFO, "exit", f"call {call} left queue {d.queue}: {d.reason}", call=call,
                        queue=d.queue, reason=d.reason)
                self._ended(call)
            waiter = self.waiters.get(call)
            if waiter is not None:
                if isinstance(d, Overflow):
                    waiter.queue = d.to_queue
                waiter.push(d)
            elif isinstance(d, Assign):
                # nobody can connect this call (its AGI session is gone): give the agent back
                asyncio.get_running_loop().call_soon(self._orphan, call)
        if self.state == "draining":
            self._idle.set()

    def _orphan(self, call: str) -> None:
        if not self.accepting or call in self.waiters:
            return
        if self.commands.call_state(call) in LIVE:
            self.try_command("withdraw", call, "no AGI session can connect it")

    def _reattach_expired(self, call: str) -> None:
        if self.accepting and self.commands.call_state(call) in LIVE:
            self.try_command("withdraw", call, f"put back in line but the dialplan did not run enqueue again "
                                               f"within {self.config.service.reattach_timeout:g} s")

    # =================================================================== AMI
    async def _ami_connect(self) -> None:
        assert self.ami is not None
        delay = 0.5
        while True:
            try:
                await self.ami.connect()
            except (AcdError, OSError) as exc:
                _ev(logging.WARNING, "ami_down", f"cannot reach the asterisk manager: {exc}; retrying in {delay:g} s",
                    retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                return

    def _on_ami_login(self) -> None:
        _ev(logging.INFO, "ami_connected", "connected to the asterisk manager; reconciling")
        if self.accepting:
            task = asyncio.get_running_loop().create_task(self.reconciler.run("AMI connected"),
                                                          name="acd-reconcile")
            self._tasks.append(task)
            task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    def _on_ami_hangup(self, msg: Mapping[str, str]) -> None:
        if not self.accepting:
            return
        uid = msg.get("Uniqueid") or ""
        cb = self.ledger.by_dial.get(uid)
        if cb is not None:
            # a call-back's agent leg ended; if the engine still has it dialling, it was never answered
            entry = self.ledger.entries.get(cb)
            if self.commands.call_state(cb) == "dialing_back" and cb not in self.dialler.tasks:
                self.dialler.result(cb, entry.dial if entry else None, "its agent leg hung up (AMI)")
            return
        state = self.commands.call_state(uid) if uid else None
        if state == "connected" and uid not in self.ledger.entries:
            # the caller's own channel is gone: the conversation is over even if its call_end is lost
            # (sent to a node losing the lead, or the dialplan went on after Dial and never reported)
            _ev(logging.INFO, "ami_hangup_connected", f"call {uid} hung up (AMI) while connected: completed",
                call=uid)
            self.try_command("complete", uid, "its caller hung up (AMI) while connected")
            return
        if state not in LIVE:
            return
        w = self.waiters.get(uid)
        if w is not None and w.session is not None:
            return  # its AGI session sees the hang-up itself
        self.waiters.drop(uid)
        _ev(logging.INFO, "ami_hangup", f"call {uid} hung up (AMI) with no AGI session attached", call=uid)
        self.try_command("abandon", uid, "hung up (AMI) with no AGI session attached")

    def _on_ami_newstate(self, msg: Mapping[str, str]) -> None:
        if not self.accepting or msg.get("ChannelState") != "6":
            return
        cb = self.ledger.by_dial.get(msg.get("Uniqueid") or "")
        if cb is not None and self.commands.call_state(cb) == "dialing_back":
            entry = self.ledger.entries.get(cb)
            self.dialler.result(cb, entry.dial if entry else None, None)   # the agent leg is up: answered

    def _on_ami_originate_response(self, msg: Mapping[str, str]) -> None:
        """Asterisk sends every OriginateResponse to every manager session, even one that logged in
        after the Originate (a restarted acd): its Uniqueid is the dial's ChannelId, on failure too."""
        if not self.accepting:
            return
        cb = self.ledger.by_dial.get(msg.get("Uniqueid") or "")
        if cb is None or cb in self.dialler.tasks or self.commands.call_state(cb) != "dialing_back":
            return   # not ours, or the Originate's own waiter settles it
        entry = self.ledger.entries.get(cb)
        ok = (msg.get("Response") or "").lower() == "success"
        self.dialler.result(cb, entry.dial if entry else None,
                            None if ok else f"its Originate failed (reason {msg.get('Reason', '?')})")

    def on_device_state(self, msg: Mapping[str, str]) -> None:
        if not self.accepting:
            return
        agent = self.device_agents.get((msg.get("Device") or "").lower())
        if agent is None:
            return
        state = (msg.get("State") or "").upper()
        current = self.commands.agent_state(agent)
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
