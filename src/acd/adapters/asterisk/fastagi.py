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
arguments become ``args`` (see :func:`~acd.adapters.asterisk.agi.parse_route`).
The same server can listen on a UNIX socket (``unix_path``) for classic AGI
scripts relaying calls (see the relay protocol in
:mod:`acd.adapters.asterisk.agi`); handlers cannot tell the difference.

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
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acd.errors import AcdError, InvalidInput, ProtocolError

from .agi import (DEFAULT_COMMAND_TIMEOUT, MAX_ENV_LINES, MAX_LINE, MAX_RELAY_LINE, AGIProtocol, AGISession,
                  AGITimeout, ChannelHungUp, RelayAGISession, Route, StreamAGISession, _close_writer,
                  _drain_input, _encode_relay, error_code, error_commands, parse_route, read_environment, read_relay_hello,
                  report_error, validate_route)

__all__ = ("FastAGIServer", "Handler", "ServerStats", "DEFAULT_HOST", "DEFAULT_PORT")

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573

Handler = Callable[[AGISession, dict[str, str]], Awaitable[None]]


@dataclass
class ServerStats:
    """Counters since the server started."""

    accepted: int = 0
    completed: int = 0
    hangups: int = 0
    refused: int = 0
    errors: int = 0
    by_code: dict[str, int] = field(default_factory=dict)

    def _error(self, code: str) -> None:
        self.errors += 1
        self.by_code[code] = self.by_code.get(code, 0) + 1


class FastAGIServer:
    """asyncio FastAGI server with per-script handlers.

    ``host``/``port``: TCP listener (``port=None`` disables it; 0 picks a free
    port, see :attr:`port`).  ``unix_path``: also accept classic-AGI relays
    there.  ``backlog``: listen queue length.  Keep it large: during a burst
    (a campaign, an outage upstream) many calls reach the AGI() step in the
    same instant, and connection attempts beyond the backlog are silently
    dropped by the kernel -- with the usual small defaults (5, or asyncio's
    100) those calls miss the ACD, Asterisk merely logs a failed AGI and the
    dialplan carries on, so nothing looks wrong on our side.  ``max_sessions``: concurrent sessions; further calls are answered
    ``ACD_STATUS=ERROR``/``ACD_ERROR=BUSY`` (at most ``max_refusing`` of those
    at once, beyond which connections are simply closed).  ``max_line`` /
    ``max_env_lines`` bound what one peer can make us buffer (the stream reader
    limit is ``max_line``).  ``env_timeout``: seconds a peer has to send its
    environment; ``command_timeout``: seconds to wait for each reply (None =
    forever; EXEC of Dial or MusicOnHold may legitimately last long).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, *, unix_path: str | None = None,
                 unix_mode: int = 0o660, backlog: int = 1024, max_sessions: int = 1000, max_refusing: int = 64,
                 max_line: int = MAX_LINE, max_env_lines: int = MAX_ENV_LINES, env_timeout: float = 10.0,
                 command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT, error_timeout: float = 5.0) -> None:
        if port is None and unix_path is None:
            raise InvalidInput("give a TCP port, a unix_path, or both")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
            raise InvalidInput(f"port must be an int in 0..65535 or None, got {port!r}")
        for name, value in (("backlog", backlog), ("max_sessions", max_sessions), ("max_refusing", max_refusing),
                            ("max_line", max_line), ("max_env_lines", max_env_lines)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive int, got {value!r}")
        for name, t in (("env_timeout", env_timeout), ("error_timeout", error_timeout)):
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
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
        self.max_refusing = max_refusing
        self.max_line = max_line
        self.max_env_lines = max_env_lines
        self.env_timeout = float(env_timeout)
        self.command_timeout = command_timeout
        self.error_timeout = float(error_timeout)
        self.stats = ServerStats()
        self._routes: dict[str, Handler] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active = 0
        self._refusing = 0
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
        return self._active

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
        await self._guard(self._serve_tcp, reader, writer)

    async def _on_unix(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._guard(self._serve_relay, reader, writer)

    async def _guard(self, serve: Callable[..., Awaitable[None]], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """Admission control and the last line of defence around one connection."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = _peer(writer)
        try:
            self.stats.accepted += 1
            if self._stopping:
                log.info("%s: refused, the server is stopping", peer)
                self.stats.refused += 1
                return
            if self._active >= self.max_sessions:
                self.stats.refused += 1
                if self._refusing >= self.max_refusing:
                    log.warning("%s: refused without notice: %d sessions and %d refusals in progress",
                                peer, self._active, self._refusing)
                    return
                self._refusing += 1
                try:
                    await serve(reader, writer, peer, refuse=True)
                finally:
                    self._refusing -= 1
                return
            self._active += 1
            try:
                await serve(reader, writer, peer, refuse=False)
            finally:
                self._active -= 1
        except asyncio.CancelledError:
            pass  # stop() gave up on this session; the connection is closed below
        except Exception:  # never let one connection take the server down
            log.exception("%s: unexpected error in the FastAGI server", peer)
            self.stats._error("INTERNAL")
        finally:
            await _close_writer(writer)
            self._tasks.discard(task)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str, *,
                         refuse: bool) -> None:
        proto = AGIProtocol(max_line=self.max_line, max_env_lines=self.max_env_lines)
        env_timeout = min(self.env_timeout, 2.0) if refuse else self.env_timeout
        try:
            await asyncio.wait_for(read_environment(reader, proto), env_timeout)
        except asyncio.TimeoutError:
            log.warning("%s: no complete AGI environment within %gs; closing", peer, env_timeout)
            self.stats._error("TIMEOUT")
            await self._blind_error(reader, writer, "TIMEOUT", f"no complete AGI environment within {env_timeout:g}s")
            return
        except ProtocolError as exc:
            if proto.closed:
                log.warning("%s: %s", peer, exc)
                self.stats._error("BAD_REQUEST")
                return
            log.warning("%s: bad AGI environment: %s", peer, exc)
            self.stats._error("BAD_REQUEST")
            await self._blind_error(reader, writer, "BAD_REQUEST", f"bad AGI environment: {exc}")
            return
        session = StreamAGISession(reader, writer, proto, command_timeout=self.command_timeout)
        session.start()
        await self._run(session, peer, None, refuse)

    async def _serve_relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str, *,
                           refuse: bool) -> None:
        env_timeout = min(self.env_timeout, 2.0) if refuse else self.env_timeout
        try:
            env, route = await asyncio.wait_for(read_relay_hello(reader), env_timeout)
        except asyncio.TimeoutError:
            log.warning("relay %s: no hello within %gs; closing", peer, env_timeout)
            self.stats._error("TIMEOUT")
            return
        except (ProtocolError, InvalidInput) as exc:
            code = "BAD_REQUEST"
            log.warning("relay %s: bad hello: %s", peer, exc)
            self.stats._error(code)
            try:  # the script reports the error to its channel when it sees this
                for cmd in error_commands(code, f"bad relay hello: {exc}"):
                    writer.write(_encode_relay({"op": "command", "name": cmd.name, "args": list(cmd.args)}))
                writer.write(_encode_relay({"op": "end", "status": "ERROR"}))
                await asyncio.wait_for(writer.drain(), self.error_timeout)
                await asyncio.wait_for(_drain_input(reader, 4), self.error_timeout)
            except (OSError, RuntimeError, asyncio.TimeoutError, ProtocolError):
                pass
            return
        session = RelayAGISession(reader, writer, env, command_timeout=self.command_timeout)
        session.start()
        await self._run(session, f"relay {peer}", route, refuse)

    async def _blind_error(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, code: str,
                           detail: str) -> None:
        """Report an error when the protocol is out of step: write the commands, then
        skim the input for a moment so the peer can read them before we close."""
        try:
            writer.write(b"".join(c.encode() for c in error_commands(code, detail)))
            await asyncio.wait_for(writer.drain(), self.error_timeout)
            await asyncio.wait_for(_drain_input(reader, 4), min(self.error_timeout, 1.0))
        except (OSError, RuntimeError, asyncio.TimeoutError, ProtocolError):
            pass

    async def _run(self, session: AGISession, peer: str, route: Route | None, refuse: bool) -> None:
        """Route one session to its handler and make sure the channel learns the outcome."""
        status = "ERROR"
        where = f"{peer} {session.env.channel} ({session.env.uniqueid or '-'})"
        try:
            if refuse:
                log.warning("%s: refused: %d sessions in progress (max_sessions=%d)",
                            where, self._active, self.max_sessions)
                await self._fail(session, where, "BUSY", f"too many calls in progress ({self.max_sessions})")
                return
            if route is None:
                try:
                    route = parse_route(session.env)
                except InvalidInput as exc:
                    await self._fail(session, where, "BAD_REQUEST", str(exc))
                    return
            handler = self._routes.get(route.script)
            if handler is None:
                known = ", ".join(sorted(self._routes)) or "none"
                await self._fail(session, where, "UNKNOWN_SCRIPT", f"unknown script {route.script!r} (known: {known})")
                return
            session.script, session.args = route.script, dict(route.args)
            try:
                await handler(session, dict(route.args))
            except ChannelHungUp:
                log.info("%s: %s: caller hung up", where, route.script)
                self.stats.hangups += 1
                status = "HANGUP"
            except AGITimeout as exc:
                await self._fail(session, where, "TIMEOUT", str(exc))
            except ProtocolError as exc:
                await self._fail(session, where, "PROTOCOL", str(exc))
            except AcdError as exc:
                await self._fail(session, where, error_code(exc), str(exc))
            except Exception as exc:
                log.exception("%s: handler for %r failed", where, route.script)
                await self._fail(session, where, "INTERNAL", f"internal error ({type(exc).__name__}); see the acd log",
                                 logged=True)
            else:
                status = "OK"
                self.stats.completed += 1
                if not session.hung_up and session.usable and "ACD_STATUS" not in session.variables_set:
                    try:
                        await session.set_variable("ACD_STATUS", "OK")
                    except (AcdError, OSError):
                        pass
        except asyncio.CancelledError:
            if session.usable and not session.hung_up:
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

    async def _fail(self, session: AGISession, where: str, code: str, detail: str, *, logged: bool = False) -> None:
        if not logged:
            log.warning("%s: %s: %s", where, code, detail)
        self.stats._error(code)
        if session.hung_up and session.usable:
            return  # the channel is gone; nobody would read the variables
        await report_error(session, code, detail, timeout=self.error_timeout)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix")
