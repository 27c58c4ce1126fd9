"""FastAGI server (asyncio): Asterisk connects over TCP, one connection per call.

Dialplan::

    exten => 100,1,AGI(agi://127.0.0.1:4573/enqueue?queue=support&priority=2)
     same => n,GotoIf($["${ACD_STATUS}" = "ERROR"]?failed)

Python::

    server = FastAGIServer()

    @server.route("enqueue")
    async def enqueue(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        await session.stream_file("please-hold")

    await server.start()
    ...
    await server.stop()

Routing: the script name is the path of ``agi_request`` (falling back on
``agi_network_script``); its query string and any ``key=value`` dialplan
arguments become ``args`` (see :func:`~acd.adapters.asterisk.routes.parse_route`).
The same server can listen on a UNIX socket (``unix_path``) for classic AGI
programs relaying calls -- the Python script's JSON relay or the compiled
relay's raw AGI stream, told apart by their first line (see
:mod:`acd.adapters.asterisk.relay`); handlers cannot tell the difference.

Every session ends with the channel variable ``ACD_STATUS`` set: ``OK`` (set
by the server unless the handler set it itself), or ``ERROR`` with
``ACD_ERROR`` (a short code) and ``ACD_ERROR_DETAIL`` (a sentence), plus a
VERBOSE line and a log line.  Codes: ``BAD_REQUEST`` (missing or garbled
environment, malformed request), ``UNKNOWN_SCRIPT``, ``BUSY`` (session cap),
``TIMEOUT``, ``PROTOCOL``, ``INTERNAL`` (handler bug), ``SHUTDOWN``, or the
upper-snake name of the :class:`~acd.errors.AcdError` a handler raised
(``INVALID_INPUT``, ``UNKNOWN_QUEUE``...).  A handler that ends because the
caller hung up (:class:`~acd.adapters.asterisk.agi.ChannelHungUp`) is normal.
No input from a peer can crash the server: each connection's errors stay in
its own task.

Admission, in two phases:

1. *Pre-admission.*  A new connection must deliver its complete environment
   (FastAGI, raw relay) or relay hello (JSON relay) within ``env_timeout`` (2 s; Asterisk
   sends it at once), and its route must name a registered script.  Until then
   it holds no session slot, so idle or slow peers cannot lock calls out; it
   counts against ``max_pending`` instead (2048).  A connection arriving when
   ``max_pending`` are already pending is closed at once, unread and untold
   (``stats.dropped``; a rate-limited warning).  A timeout is ``TIMEOUT``, a bad
   environment or route ``BAD_REQUEST``, an unknown script ``UNKNOWN_SCRIPT``.
2. *Admission.*  With the environment read, the call takes one of
   ``max_sessions`` slots (1000) for as long as its handler runs.  When none is
   free (or the server is stopping) it is refused: ``BUSY`` (or ``SHUTDOWN``).

Every error decided before admission is reported in one round trip: the four
commands (three SET VARIABLE, one VERBOSE; plus the end line on a relay) are
written at once, the replies skimmed for at most ``error_timeout``, the
connection closed -- the connection stays counted as pending meanwhile, so
refusals need no cap of their own and every refused call whose environment
was read learns ``ACD_STATUS=ERROR``.  At most ``max_sessions + max_pending``
connections are open at any time (mind ``ulimit -n``).  The only calls that end
without ``ACD_STATUS`` are those dropped beyond ``max_pending``, those whose
peer sent nothing usable, relays that time out (the relay script reports a
lost dispatcher itself) and channels already hung up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import stat
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acd.errors import AcdError, InvalidInput, ProtocolError

from .commands import error_code, error_commands
from .errors import AGITimeout, ChannelHungUp
from .protocol import AGIProtocol
from .relay import MAX_RELAY_LINE, RAW_PREAMBLE, command_message, end_message, raw_end_line
from .routes import Route, parse_route, validate_route
from .sessions import (DEFAULT_COMMAND_TIMEOUT, AGISession, RawRelayAGISession, RelayAGISession, StreamAGISession,
                       close_writer, drain_input, read_environment, read_relay_hello, readline, report_error)
from .wire import MAX_ENV_LINES, MAX_LINE

__all__ = ("FastAGIServer", "Handler", "ServerStats", "DEFAULT_HOST", "DEFAULT_PORT", "DropSession",
           "SESSION_OUTCOMES")


class DropSession(Exception):
    """Raised by a handler to end the session at once, reporting nothing: the channel's dialplan
    sees no ACD_STATUS, as after a crash, and retries (a node that lost the lead does this, so
    that callers try the new primary instead of the fallback)."""

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573
MAX_ENV_BYTES = 64 * 1024
"""Largest FastAGI environment accepted (a real one is 1-2 KiB; the line bounds alone would allow 2 MiB)."""

Handler = Callable[[AGISession, dict[str, str]], Awaitable[None]]

SESSION_OUTCOMES = ("completed", "hung_up", "error", "dropped", "shutdown", "refused", "rejected", "shed")
"""How a connection ended, one per connection (:attr:`ServerStats.outcomes`): its handler returned
(``completed``), the caller hung up (``hung_up``), the handler failed (``error``: ``ACD_ERROR``) or
ended it without a status (``dropped``: :class:`DropSession`), :meth:`FastAGIServer.stop` cut it short
(``shutdown``); or it never got a session: no slot or stopping (``refused``), a missing, late or bad
environment or an unknown script (``rejected``), closed unread beyond ``max_pending`` (``shed``)."""


@dataclass
class ServerStats:
    """Counters since the server started.

    ``accepted``: connections accepted (TCP and UNIX).  ``dropped``: of those,
    closed at once because ``max_pending`` connections were already waiting
    (nothing read, nothing said).  ``refused``: calls whose environment was read
    but that got no session (``BUSY``, or ``SHUTDOWN`` while stopping).
    ``completed``/``hangups``: handlers that returned / ended with the caller
    gone.  ``errors`` and ``by_code``: every ``ACD_ERROR`` outcome by code,
    refusals (``BUSY``) and pre-admission timeouts (``TIMEOUT``) included, at
    most one per connection.  These overlap (a refusal is also an error);
    ``outcomes`` does not: each accepted connection is counted there exactly
    once, when it ends, under one of :data:`SESSION_OUTCOMES`.
    """

    accepted: int = 0
    completed: int = 0
    hangups: int = 0
    refused: int = 0
    dropped: int = 0
    errors: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SESSION_OUTCOMES, 0))

    def _error(self, code: str) -> None:
        self.errors += 1
        self.by_code[code] = self.by_code.get(code, 0) + 1


class _Outcome:
    """How one connection ended: the first decision wins, and ``_guard`` counts it once, at the end
    (a cancellation or a failure while the outcome is being reported must not count it again)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: str | None = None

    def decide(self, value: str) -> bool:
        """Record ``value`` unless an outcome was decided already; True when this one counts."""
        if self.value is not None:
            return False
        self.value = value
        return True


class _Throttled:
    """A warning logger that lets ``burst`` records through per ``interval``
    seconds and sums up the rest, so that a flood of bad connections costs
    neither the disk nor the CPU the calls need."""

    def __init__(self, burst: int = 10, interval: float = 10.0) -> None:
        self.burst = burst
        self.interval = interval
        self._window_end = 0.0
        self._count = 0
        self._suppressed = 0
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now >= self._window_end:
            self.flush()
            self._window_end = now + self.interval
            self._count = 0
        if self._count < self.burst:
            self._count += 1
            log.warning(msg, *args)
            return
        self._suppressed += 1
        if self._timer is None:  # report the sum at the end of the window even if the flood stops
            self._timer = asyncio.get_running_loop().call_later(self._window_end - now, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._suppressed:
            log.warning("... and %d more like it in the last %gs", self._suppressed, self.interval)
            self._suppressed = 0


# How a connection carries AGI: FastAGI over TCP, the Python script's JSON relay, the compiled raw relay.
_TCP, _JSON_RELAY, _RAW_RELAY = "tcp", "json relay", "raw relay"

_Greeting = tuple[str, Route, Handler, Callable[[], StreamAGISession | RelayAGISession], str]
"""What pre-admission yields: where (for logs), route, handler, session factory, transport kind."""


class FastAGIServer:
    """asyncio FastAGI server with per-script handlers.

    ``host``/``port``: TCP listener (``port=None`` disables it; 0 picks a free
    port, see :attr:`port`).  ``unix_path``: also accept classic-AGI relays
    there.  ``backlog``: listen queue length.  Keep it large: during a burst
    (a campaign, an outage upstream) many calls reach the AGI() step in the
    same instant, and connection attempts beyond the backlog are silently
    dropped by the kernel -- with the usual small defaults (5, or asyncio's
    100) those calls miss the ACD, Asterisk merely logs a failed AGI and the
    dialplan carries on, so nothing looks wrong on our side.

    Admission (see the module docstring): ``env_timeout`` -- seconds a new
    connection has to deliver its complete environment (or relay hello) before
    it is dropped; until then it holds no session slot.  ``max_pending`` --
    connections allowed in that phase at once (reading the environment, or
    being told an error such as BUSY); beyond it new connections are closed at
    once (counted in ``stats.dropped``, warned about at a limited rate), so the
    server never holds more than ``max_sessions + max_pending`` connections.
    ``max_sessions`` -- concurrent sessions (handlers running); a call whose
    environment arrives when all are taken is answered
    ``ACD_STATUS=ERROR``/``ACD_ERROR=BUSY`` at once.  ``max_line`` /
    ``max_env_lines`` / ``max_env_bytes`` bound what one peer can make us
    buffer (the stream reader limit is ``max_line``).  ``command_timeout``:
    seconds to wait for each reply (None = forever; EXEC of Dial or
    MusicOnHold may legitimately last long).  ``error_timeout``: seconds an
    error report may wait for each step (writing, a reply).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, *, unix_path: str | None = None,
                 unix_mode: int = 0o660, backlog: int = 1024, max_sessions: int = 1000, max_pending: int = 2048,
                 max_line: int = MAX_LINE, max_env_lines: int = MAX_ENV_LINES, max_env_bytes: int = MAX_ENV_BYTES,
                 env_timeout: float = 2.0, command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
                 error_timeout: float = 5.0) -> None:
        if port is None and unix_path is None:
            raise InvalidInput("give a TCP port, a unix_path, or both")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
            raise InvalidInput(f"port must be an int in 0..65535 or None, got {port!r}")
        for name, value in (("backlog", backlog), ("max_sessions", max_sessions), ("max_pending", max_pending),
                            ("max_line", max_line), ("max_env_lines", max_env_lines),
                            ("max_env_bytes", max_env_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive int, got {value!r}")
        for name, t in (("env_timeout", env_timeout), ("error_timeout", error_timeout)):
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < math.inf:
                raise InvalidInput(f"{name} must be a positive number of seconds, got {t!r}")
        if command_timeout is not None and (isinstance(command_timeout, bool)
                                            or not isinstance(command_timeout, (int, float)) or not command_timeout > 0):
            raise InvalidInput(f"command_timeout must be a positive number of seconds or None, got {command_timeout!r}")
        self.host = host
        self._port = port
        self.unix_path = unix_path
        self.unix_mode = unix_mode
        self.backlog = backlog
        self.max_sessions = max_sessions
        self.max_pending = max_pending
        self.max_line = max_line
        self.max_env_lines = max_env_lines
        self.max_env_bytes = max_env_bytes
        self.env_timeout = float(env_timeout)
        self.command_timeout = command_timeout
        self.error_timeout = float(error_timeout)
        self.stats = ServerStats()
        self._routes: dict[str, Handler] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active = 0
        self._pending = 0
        self._log_dropped = _Throttled()
        self._log_timeout = _Throttled()
        self._log_refused = _Throttled()
        self._log_rejected = _Throttled()
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        self._unix_inode: tuple[int, int] | None = None

    # ----------------------------------------------------------- routing
    def route(self, name: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for script ``name``; usable as a decorator."""
        try:
            validate_route(name, {})
        except InvalidInput:
            raise InvalidInput(f"route name must be letters, digits, '_', '.', '-' (and '/'), got {name!r}") from None

        def register(fn: Handler) -> Handler:
            if not callable(fn):
                raise InvalidInput(f"handler for {name!r} must be an async callable, got {fn!r}")
            if name in self._routes:
                raise InvalidInput(f"route {name!r} is already registered")
            self._routes[name] = fn
            return fn

        return register if handler is None else register(handler)

    @property
    def routes(self) -> Mapping[str, Handler]:
        return dict(self._routes)

    # ------------------------------------------------------------- life
    @property
    def port(self) -> int | None:
        """The bound TCP port (useful after ``port=0``)."""
        for srv in self._servers:
            for sock in srv.sockets:
                if sock.family.name in ("AF_INET", "AF_INET6"):
                    return int(sock.getsockname()[1])
        return self._port

    @property
    def active_sessions(self) -> int:
        """Calls admitted and running their handler (at most ``max_sessions``)."""
        return self._active

    @property
    def pending_connections(self) -> int:
        """Connections not holding a session: reading their environment, or being told an error."""
        return self._pending

    @property
    def serving(self) -> bool:
        return bool(self._servers) and not self._stopping

    async def start(self) -> None:
        """Bind the listeners (raises OSError if a port or path is unavailable)."""
        if self._servers:
            raise InvalidInput("the server is already started")
        self._stopping = False
        self._stopped = asyncio.Event()
        limit = self.max_line + 2
        try:
            if self._port is not None:
                # backlog: see the class docstring (bursts must not be dropped).
                self._servers.append(await asyncio.start_server(
                    self._on_tcp, self.host, self._port, limit=limit, backlog=self.backlog, reuse_address=True))
            if self.unix_path is not None:
                self._remove_stale_socket(self.unix_path)
                self._servers.append(await asyncio.start_unix_server(
                    self._on_unix, self.unix_path, limit=MAX_RELAY_LINE + 2, backlog=self.backlog))
                os.chmod(self.unix_path, self.unix_mode)
                st = os.stat(self.unix_path)
                self._unix_inode = (st.st_dev, st.st_ino)
        except BaseException:
            await self._close_listeners()
            raise
        log.info("FastAGI server listening on %s", ", ".join(self._describe()))

    def _describe(self) -> list[str]:
        out = []
        if self._port is not None:
            out.append(f"{self.host}:{self.port}")
        if self.unix_path is not None:
            out.append(f"unix:{self.unix_path}")
        return out

    @staticmethod
    def _remove_stale_socket(path: str) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise InvalidInput(f"unix_path {path!r} exists and is not a socket")
        os.unlink(path)

    async def _close_listeners(self) -> None:
        servers, self._servers = self._servers, []
        for srv in servers:
            srv.close()
        for srv in servers:
            await srv.wait_closed()
        if self.unix_path is not None and self._unix_inode is not None:
            try:
                st = os.stat(self.unix_path)
                if (st.st_dev, st.st_ino) == self._unix_inode:
                    os.unlink(self.unix_path)
            except OSError:
                pass
            self._unix_inode = None

    async def serve_forever(self) -> None:
        """Start if needed, then wait until :meth:`stop` is called."""
        if not self._servers:
            await self.start()
        assert self._stopped is not None
        await self._stopped.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting calls, let running sessions finish for up to ``timeout``
        seconds, then cancel the rest (their channels get ``ACD_ERROR=SHUTDOWN``
        when still reachable)."""
        if self._stopping:
            return
        self._stopping = True
        for srv in self._servers:
            srv.close()
        tasks = set(self._tasks)
        if tasks:
            log.info("FastAGI server stopping: waiting up to %gs for %d session(s)", timeout, len(tasks))
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning("FastAGI server stopping: cancelling %d session(s) still running", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=max(2 * self.error_timeout, 1.0))
        await self._close_listeners()
        for throttled in (self._log_dropped, self._log_timeout, self._log_refused, self._log_rejected):
            throttled.flush()
        if self._stopped is not None:
            self._stopped.set()
        log.info("FastAGI server stopped")

    async def __aenter__(self) -> FastAGIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------- connections
    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._guard(False, reader, writer)

    async def _on_unix(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._guard(True, reader, writer)

    async def _guard(self, unix: bool, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Admission control and the last line of defence around one connection.

        Pre-admission (bounded by ``max_pending``): read the environment or the
        relay hello within ``env_timeout`` and resolve the route.  Only then is
        the call counted against ``max_sessions``; a call that finds no slot is
        told BUSY (cheaply, see :meth:`_notify`) while still in the pending phase.
        """
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = f"relay {_peer(writer)}" if unix else _peer(writer)
        self.stats.accepted += 1
        outcome = _Outcome()
        pending = False
        try:
            if self._pending >= self.max_pending:
                outcome.decide("shed")
                self.stats.dropped += 1
                self._log_dropped("%s: closed at once: %d connections are already waiting for their environment "
                                  "or a refusal (max_pending=%d)", peer, self._pending, self.max_pending)
                writer.transport.abort()  # nothing was read or written: free the descriptor now
                return
            self._pending += 1
            pending = True
            call = await (self._greet_unix(reader, writer, peer) if unix else self._greet_tcp(reader, writer, peer))
            if call is None:
                outcome.decide("rejected")
                return
            where, route, handler, make_session, kind = call
            if self._stopping or self._active >= self.max_sessions:
                outcome.decide("refused")
                code, detail = (("SHUTDOWN", "the ACD dispatcher is shutting down") if self._stopping else
                                ("BUSY", f"too many calls in progress ({self.max_sessions})"))
                self.stats.refused += 1
                self.stats._error(code)
                self._log_refused("%s: refused (%s): %d sessions in progress (max_sessions=%d)",
                                  where, code, self._active, self.max_sessions)
                await self._notify(reader, writer, kind, code, detail, replies_within=self.error_timeout)
                return
            # Admitted: the connection moves from the pending count to a session slot.
            self._pending -= 1
            pending = False
            self._active += 1
            try:
                session = make_session()
                session.start()
                session.script, session.args = route.script, dict(route.args)
                await self._run(session, where, route, handler, outcome)
            finally:
                self._active -= 1
        except asyncio.CancelledError:
            outcome.decide("shutdown")  # stop() gave up on this connection; it is closed below
        except Exception:  # never let one connection take the server down
            log.exception("%s: unexpected error in the FastAGI server", peer)
            if outcome.decide("error"):
                self.stats._error("INTERNAL")
        finally:
            if pending:
                self._pending -= 1
            await close_writer(writer)
            self._tasks.discard(task)
            self.stats.outcomes[outcome.value or "error"] += 1

    async def _greet_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         peer: str, kind: str = _TCP, env_timeout: float | None = None) -> _Greeting | None:
        """Pre-admission for FastAGI (and the raw relay, which carries the same stream): the
        environment and the route, or None once the peer was told why not."""
        proto = AGIProtocol(max_line=self.max_line, max_env_lines=self.max_env_lines,
                            max_env_bytes=self.max_env_bytes)
        try:
            env = await asyncio.wait_for(read_environment(reader, proto),
                                         self.env_timeout if env_timeout is None else env_timeout)
        except asyncio.TimeoutError:
            self.stats._error("TIMEOUT")
            self._log_timeout("%s: no complete AGI environment within %gs; closing", peer, self.env_timeout)
            # A peer that sent no line is no Asterisk (it sends the environment at once): a
            # scanner or a flood.  It still gets the notice, with a shorter wait for replies.
            await self._notify(reader, writer, kind, "TIMEOUT",
                               f"no complete AGI environment within {self.env_timeout:g}s",
                               replies_within=min(self.error_timeout, 1.0 if proto.env_size else 0.25))
            return None
        except ProtocolError as exc:
            self.stats._error("BAD_REQUEST")
            self._log_rejected("%s: bad AGI environment: %s", peer, exc)
            if not proto.closed:  # the peer is still there to read why
                await self._notify(reader, writer, kind, "BAD_REQUEST", f"bad AGI environment: {exc}",
                                   replies_within=min(self.error_timeout, 1.0))
            return None
        where = f"{peer} {env.channel} ({env.uniqueid or '-'})"
        try:
            route = parse_route(env, classic=kind == _RAW_RELAY)
        except InvalidInput as exc:
            await self._reject(reader, writer, kind, where, "BAD_REQUEST", str(exc))
            return None
        handler = await self._handler_for(reader, writer, kind, where, route)
        if handler is None:
            return None
        session = RawRelayAGISession if kind == _RAW_RELAY else StreamAGISession
        return where, route, handler, lambda: session(reader, writer, proto, command_timeout=self.command_timeout), kind

    async def _greet_unix(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          peer: str) -> _Greeting | None:
        """Pre-admission for a relayed call: the JSON hello, or the raw relay's preamble then
        the AGI environment; None once the script was told why not (or it said nothing)."""
        started = asyncio.get_running_loop().time()
        try:
            first = await asyncio.wait_for(readline(reader, MAX_RELAY_LINE), self.env_timeout)
            if first is not None and first.rstrip(b"\r\n") == RAW_PREAMBLE:
                left = self.env_timeout - (asyncio.get_running_loop().time() - started)
                return await self._greet_tcp(reader, writer, peer, _RAW_RELAY, max(left, 0.001))
            env, route = await asyncio.wait_for(read_relay_hello(reader, first), self.env_timeout)
        except asyncio.TimeoutError:
            # No notice: the script tells its channel itself when the dispatcher is lost.
            self.stats._error("TIMEOUT")
            self._log_timeout("%s: no hello within %gs; closing", peer, self.env_timeout)
            return None
        except (ProtocolError, InvalidInput) as exc:
            self.stats._error("BAD_REQUEST")
            self._log_rejected("%s: bad hello: %s", peer, exc)
            await self._notify(reader, writer, _JSON_RELAY, "BAD_REQUEST", f"bad relay hello: {exc}",
                               replies_within=self.error_timeout)
            return None
        where = f"{peer} {env.channel} ({env.uniqueid or '-'})"
        handler = await self._handler_for(reader, writer, _JSON_RELAY, where, route)
        if handler is None:
            return None
        return where, route, handler, lambda: RelayAGISession(reader, writer, env,
                                                              command_timeout=self.command_timeout), _JSON_RELAY

    async def _handler_for(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str,
                           where: str, route: Route) -> Handler | None:
        handler = self._routes.get(route.script)
        if handler is None:
            known = ", ".join(sorted(self._routes)) or "none"
            await self._reject(reader, writer, kind, where, "UNKNOWN_SCRIPT",
                               f"unknown script {route.script!r} (known: {known})")
        return handler

    async def _reject(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str, where: str,
                      code: str, detail: str) -> None:
        self.stats._error(code)
        self._log_rejected("%s: %s: %s", where, code, detail)
        await self._notify(reader, writer, kind, code, detail, replies_within=self.error_timeout)

    async def _notify(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str, code: str,
                      detail: str, *, replies_within: float) -> None:
        """Report an error before any session exists, at the cost of one round trip.

        The commands (``ACD_STATUS``, ``ACD_ERROR``, ``ACD_ERROR_DETAIL``,
        VERBOSE; then ``end`` on the relay) are written in one go without waiting
        for each reply -- Asterisk and the relay script handle them in order --
        then the replies are skimmed so that closing does not reset the connection
        under them.  Never longer than ``error_timeout`` to write plus
        ``replies_within`` to skim; best effort (the peer may be gone).
        """
        commands = error_commands(code, detail)
        if kind == _JSON_RELAY:
            data = b"".join(command_message(c) for c in commands) + end_message("ERROR")
        else:
            data = b"".join(c.encode() for c in commands) + (raw_end_line("ERROR") if kind == _RAW_RELAY else b"")
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), self.error_timeout)
            await asyncio.wait_for(drain_input(reader, len(commands)), replies_within)
        except (OSError, RuntimeError, asyncio.TimeoutError, ProtocolError):
            pass

    async def _run(self, session: AGISession, where: str, route: Route, handler: Handler,
                   outcome: _Outcome) -> None:
        """Run an admitted session's handler and make sure the channel learns the outcome.
        The outcome is decided as the handler ends, before it is reported to the channel."""
        status = "ERROR"
        try:
            try:
                await handler(session, dict(route.args))
            except ChannelHungUp:
                log.info("%s: %s: caller hung up", where, route.script)
                outcome.decide("hung_up")
                self.stats.hangups += 1
                status = "HANGUP"
            except DropSession as exc:
                log.warning("%s: %s: session dropped without a status: %s", where, route.script, exc)
                outcome.decide("dropped")
                self.stats._error("DROPPED")
                status = "DROPPED"
            except AGITimeout as exc:
                await self._fail(session, where, "TIMEOUT", str(exc), outcome)
            except ProtocolError as exc:
                await self._fail(session, where, "PROTOCOL", str(exc), outcome)
            except AcdError as exc:
                await self._fail(session, where, error_code(exc), str(exc), outcome)
            except Exception as exc:
                log.exception("%s: handler for %r failed", where, route.script)
                await self._fail(session, where, "INTERNAL", f"internal error ({type(exc).__name__}); see the acd log",
                                 outcome, logged=True)
            else:
                status = "OK"
                outcome.decide("completed")
                self.stats.completed += 1
                if not session.hung_up and session.usable and "ACD_STATUS" not in session.variables_set:
                    try:
                        await session.set_variable("ACD_STATUS", "OK")
                    except (AcdError, OSError):
                        pass
        except asyncio.CancelledError:
            # only a handler cut short ends in SHUTDOWN: one cancelled while its outcome was being
            # reported keeps that outcome (it was counted, and its channel variables are set or lost)
            if outcome.decide("shutdown") and session.usable and not session.hung_up:
                self.stats._error("SHUTDOWN")
                await asyncio.shield(self._shutdown_notice(session))
            raise
        finally:
            await asyncio.shield(session.finish(status))

    async def _shutdown_notice(self, session: AGISession) -> None:
        try:
            await asyncio.wait_for(report_error(session, "SHUTDOWN", "the ACD dispatcher is shutting down",
                                                timeout=self.error_timeout), 2 * self.error_timeout)
        except (asyncio.TimeoutError, AcdError):
            pass

    async def _fail(self, session: AGISession, where: str, code: str, detail: str, outcome: _Outcome, *,
                    logged: bool = False) -> None:
        if not logged:
            log.warning("%s: %s: %s", where, code, detail)
        outcome.decide("shutdown" if code == "SHUTDOWN" else "error")  # a handler told to stop is a shutdown
        self.stats._error(code)
        if session.hung_up and session.usable:
            return  # the channel is gone; nobody would read the variables
        await report_error(session, code, detail, timeout=self.error_timeout)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix")
