"""asyncio AGI sessions: what a route handler receives.

:class:`AGISession` is the interface (``answer``, ``stream_file``,
``get_data``... the same helpers as the blocking session, built by
:class:`~.commands.Helpers`); :class:`StreamAGISession` speaks AGI over a
FastAGI TCP connection, :class:`RelayAGISession` the relay protocol
(:mod:`.relay`) with a classic AGI script.  Handlers cannot tell them apart.
:func:`report_error` tells a channel about an error (``ACD_STATUS=ERROR``...).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from acd.errors import ProtocolError

from . import relay
from .commands import ERROR_VARIABLES, Helpers, check_reply, error_commands
from .errors import AGIError, AGITimeout, ChannelHungUp
from .lines import short
from .protocol import AGIProtocol, EnvironmentReceived, HangupReceived, ReplyReceived
from .routes import Route
from .wire import AGIEnvironment, AGIReply, Command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .commands import Step

__all__ = ("DEFAULT_COMMAND_TIMEOUT", "AGISession", "StreamAGISession", "RelayAGISession", "read_environment",
           "read_relay_hello", "report_error", "close_writer", "drain_input")

log = logging.getLogger(__name__)

DEFAULT_COMMAND_TIMEOUT = 3600.0
"""Seconds to wait for a reply; long because EXEC (Dial, MusicOnHold) may last."""

_T = TypeVar("_T")
_DEFAULT: Any = object()


class AGISession:
    """One AGI channel, asyncio flavour (what route handlers receive).

    Commands are serialised: one is in flight at a time.  If the task awaiting
    a command is cancelled the reply is still awaited (before the next command
    is sent), so the session stays usable.  ``hung_up`` turns true, and
    :meth:`wait_hangup` returns, as soon as Asterisk reports the hang-up --
    even while no command is running.  ``script`` and ``args`` are the route
    the server chose.
    """

    def __init__(self, env: AGIEnvironment, *, command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT) -> None:
        self.env = env
        self.command_timeout = command_timeout
        self.script: str | None = None
        self.args: Mapping[str, str] = {}
        self.variables_set: set[str] = set()
        self._lock = asyncio.Lock()
        self._hangup = asyncio.Event()
        self._pending: asyncio.Future[AGIReply] | None = None
        self._inflight: asyncio.Future[AGIReply] | None = None
        self._failure: tuple[type[AGIError] | type[ProtocolError], str] | None = None
        self._closed = False

    # -- state
    @property
    def hung_up(self) -> bool:
        return self._hangup.is_set()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def usable(self) -> bool:
        """False once the link failed (closed, timed out, protocol error)."""
        return self._failure is None

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the channel hangs up; return False if ``timeout`` passed first."""
        if timeout is None:
            await self._hangup.wait()
            return True
        try:
            await asyncio.wait_for(self._hangup.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # -- transport hooks (subclasses)
    async def _write_command(self, command: Command) -> None:
        raise NotImplementedError

    async def _close_transport(self) -> None:
        raise NotImplementedError

    #: the task reading the peer's lines (set by ``start`` in the subclasses)
    _task: "asyncio.Task[None] | None" = None

    async def _stop_reader(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                # Only swallow the reader's own cancellation, not ours.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def blind_report(self, lines: list[Command]) -> None:
        """Send commands without waiting for replies (the link is out of step)."""

    async def finish(self, status: str = "OK") -> None:
        """End the session (FastAGI: close; relay: tell the script, then close)."""
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._failure is None:
            self._failure = (ChannelHungUp, "the AGI session is closed")
        self._fail_pending()
        await self._close_transport()

    # -- events from the reader
    def _on_reply(self, reply: AGIReply) -> None:
        if reply.code == 511 or reply.data == "hangup":
            self._hangup.set()
        fut, self._pending = self._pending, None
        if fut is None or fut.done():
            self._on_failure(ProtocolError, f"unsolicited reply from Asterisk: {short(str(reply))!r}")
            return
        fut.set_result(reply)

    def _on_hangup(self) -> None:
        log.debug("%s: HANGUP received", self.env.channel)
        self._hangup.set()

    def _on_failure(self, kind: type[AGIError] | type[ProtocolError], message: str) -> None:
        """The link is unusable (EOF, error): fail whatever waits; later commands fail too."""
        if kind is ChannelHungUp:
            self._hangup.set()
        if self._failure is None:
            self._failure = (kind, message)
        self._fail_pending()

    def _fail_pending(self) -> None:
        assert self._failure is not None
        kind, message = self._failure
        for fut in (self._pending, self._inflight):
            if fut is not None and not fut.done():
                fut.set_exception(kind(message))
                fut.exception()  # mark retrieved: an orphaned reply may have no reader
        self._pending = None

    def _raise_failure(self, command: Command) -> None:
        if self._failure is not None:
            kind, message = self._failure
            raise kind(f"{command.name}: {message}")

    # -- commands
    async def _await_reply(self, fut: asyncio.Future[AGIReply], command: Command, timeout: float | None) -> AGIReply:
        if timeout is None:
            return await asyncio.shield(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            message = f"no reply to {command.name} within {timeout:g} s"
            # The link is out of step now: later commands fail at once.
            self._on_failure(AGITimeout, message)
            log.warning("%s: %s; the session is unusable", self.env.channel, message)
            raise AGITimeout(message) from None

    async def transact(self, command: Command, *, timeout: float | None = _DEFAULT) -> AGIReply:
        """Send one command and return Asterisk's reply, whatever its code."""
        limit = self.command_timeout if timeout is _DEFAULT else timeout
        async with self._lock:
            self._raise_failure(command)
            if self._inflight is not None:  # an earlier caller was cancelled; its reply is still owed
                await self._await_reply(self._inflight, command, limit)
                self._inflight = None
            fut: asyncio.Future[AGIReply] = asyncio.get_running_loop().create_future()
            self._pending = fut
            try:
                await self._write_command(command)
            except (OSError, RuntimeError) as exc:
                self._on_failure(ChannelHungUp, f"cannot write to Asterisk ({exc})")
                self._raise_failure(command)
            try:
                return await self._await_reply(fut, command, limit)
            except asyncio.CancelledError:
                if not fut.done():
                    self._inflight = fut
                raise

    async def command(self, name: str, *args: str | int, timeout: float | None = _DEFAULT) -> AGIReply:
        """Send a command; return its 200 reply or raise (511, 510, 520...)."""
        cmd = Command.build(name, *args)
        return check_reply(cmd, await self.transact(cmd, timeout=timeout))

    async def _run(self, pair: Step[_T], timeout: float | None = _DEFAULT) -> _T:
        cmd, interpret = pair
        reply = check_reply(cmd, await self.transact(cmd, timeout=timeout))
        return interpret(cmd, reply, self.hung_up)

    async def answer(self) -> None:
        """ANSWER the channel."""
        await self._run(Helpers.answer())

    async def stream_file(self, filename: str, escape_digits: str = "", offset: int | None = None) -> str | None:
        """Play a sound file; return the escape digit pressed, or None."""
        return await self._run(Helpers.stream_file(filename, escape_digits, offset))

    async def say_number(self, number: int, escape_digits: str = "", gender: str | None = None) -> str | None:
        """Say a number; return the escape digit pressed, or None."""
        return await self._run(Helpers.say_number(number, escape_digits, gender))

    async def get_data(self, prompt: str, timeout: float | None = None, max_digits: int | None = None) -> str:
        """Play ``prompt`` and collect DTMF digits (``timeout`` in seconds; None = Asterisk default)."""
        return await self._run(Helpers.get_data(prompt, timeout, max_digits))

    async def wait_for_digit(self, timeout: float | None = None) -> str | None:
        """Wait for one DTMF digit (None = forever); return it, or None on timeout."""
        return await self._run(Helpers.wait_for_digit(timeout))

    async def set_variable(self, name: str, value: str | int) -> None:
        """Set a channel variable (or a dialplan function such as ``CALLERID(name)``)."""
        await self._run(Helpers.set_variable(name, value))
        self.variables_set.add(name)

    async def get_variable(self, name: str) -> str | None:
        """A channel variable's value, or None when it is not set."""
        return await self._run(Helpers.get_variable(name))

    async def verbose(self, message: str, level: int = 1) -> None:
        """Log a line on the Asterisk console."""
        await self._run(Helpers.verbose(message, level))

    async def exec(self, application: str, *args: str | int, timeout: float | None = _DEFAULT) -> int:
        """Run a dialplan application (arguments joined with ','); return its result."""
        return await self._run(Helpers.exec(application, args), timeout)

    async def hangup(self, channel: str | None = None) -> None:
        """Hang up this channel (or another one by name)."""
        await self._run(Helpers.hangup(channel))
        if channel is None:
            self._hangup.set()


async def readline(reader: asyncio.StreamReader, max_line: int) -> bytes | None:
    """One line, None at end of input; ProtocolError when longer than allowed."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"line longer than {max_line} bytes") from None
    if len(line) > max_line + 2:
        raise ProtocolError(f"line longer than {max_line} bytes")
    return line


async def read_environment(reader: asyncio.StreamReader, proto: AGIProtocol) -> AGIEnvironment:
    """Read the environment from a stream (wrap in ``asyncio.wait_for`` for a deadline).

    Raises ProtocolError (also when the input ends before the blank line).
    """
    while True:
        line = await readline(reader, proto.max_line)
        if line is None:
            proto.feed_eof()
            raise ProtocolError("connection closed before the AGI environment was complete")
        event = proto.feed_line(line)
        if isinstance(event, EnvironmentReceived):
            return event.env


class StreamAGISession(AGISession):
    """AGI over an asyncio stream pair (a FastAGI TCP connection)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: AGIProtocol, *,
                 command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT) -> None:
        if proto.env is None:
            raise AGIError("the AGI environment must be read before the session starts")
        super().__init__(proto.env, command_timeout=command_timeout)
        self._reader = reader
        self._writer = writer
        self._proto = proto
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background reader (replies, HANGUP lines, end of input)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while True:
                line = await readline(self._reader, self._proto.max_line)
                if line is None:
                    self._proto.feed_eof()
                    self._on_failure(ChannelHungUp, "Asterisk closed the AGI connection")
                    return
                event = self._proto.feed_line(line)
                if isinstance(event, ReplyReceived):
                    self._on_reply(event.reply)
                elif isinstance(event, HangupReceived):
                    self._on_hangup()
        except ProtocolError as exc:
            log.warning("%s: protocol error from Asterisk: %s", self.env.channel, exc)
            self._on_failure(ProtocolError, str(exc))
        except OSError as exc:
            self._on_failure(ChannelHungUp, f"AGI connection lost ({exc})")

    async def _write_command(self, command: Command) -> None:
        self._writer.write(self._proto.send(command))
        await self._writer.drain()

    async def blind_report(self, lines: list[Command]) -> None:
        if self._writer.is_closing():
            return
        await self._stop_reader()
        try:
            self._writer.write(b"".join(c.encode() for c in lines))
            await asyncio.wait_for(self._writer.drain(), 2.0)
            # Let the peer answer before we close, or the close would reset the
            # connection under its replies (and possibly lose our commands).
            await asyncio.wait_for(drain_input(self._reader, len(lines)), 1.0)
        except (OSError, RuntimeError, asyncio.TimeoutError):
            pass

    async def _close_transport(self) -> None:
        await self._stop_reader()
        await close_writer(self._writer)


async def drain_input(reader: asyncio.StreamReader, replies: int) -> None:
    """Read and discard input until ``replies`` reply lines (``NNN ...`` or relay
    JSON) were seen or the input ends, so that closing does not reset the
    connection under the peer's last replies."""
    seen = 0
    tail = b""
    while seen < replies:
        chunk = await reader.read(4096)
        if not chunk:
            return
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()[-16:]  # only the start of a line matters; keep it bounded
        for line in lines:
            if line[:3].isdigit() and line[3:4] == b" " or line.startswith(b"{"):
                seen += 1


async def close_writer(writer: asyncio.StreamWriter, timeout: float = 2.0) -> None:
    try:
        if not writer.is_closing():
            writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except (OSError, RuntimeError, asyncio.TimeoutError):
        writer.transport.abort()


class RawRelayAGISession(StreamAGISession):
    """AGI relayed byte for byte by the compiled relay (protocol version 2): a FastAGI
    stream whose last line tells the relay how the session ended."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: AGIProtocol, *,
                 command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT) -> None:
        super().__init__(reader, writer, proto, command_timeout=command_timeout)
        self._ended = False

    async def finish(self, status: str = "OK") -> None:
        if not self._ended and not self._writer.is_closing():
            self._ended = True
            try:
                self._writer.write(relay.raw_end_line(status))
                await asyncio.wait_for(self._writer.drain(), 2.0)
            except (OSError, RuntimeError, asyncio.TimeoutError):
                pass
        await self.aclose()


class RelayAGISession(AGISession):
    """AGI relayed by a classic AGI script over the dispatcher's UNIX socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: AGIEnvironment, *,
                 command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT) -> None:
        super().__init__(env, command_timeout=command_timeout)
        self._reader = reader
        self._writer = writer
        self._task: asyncio.Task[None] | None = None
        self._ended = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while True:
                line = await readline(self._reader, relay.MAX_RELAY_LINE)
                if line is None:
                    self._on_failure(ChannelHungUp, "the AGI script closed the relay connection")
                    return
                message = relay.decode(line, json.loads)
                op = message["op"]
                if op == "reply":
                    self._on_reply(relay.reply_from_message(message))
                elif op == "hangup":
                    self._on_hangup()
                else:
                    raise ProtocolError(f"unexpected relay message {op!r}")
        except ProtocolError as exc:
            log.warning("%s: protocol error from the AGI script: %s", self.env.channel, exc)
            self._on_failure(ProtocolError, str(exc))
        except OSError as exc:
            self._on_failure(ChannelHungUp, f"relay connection lost ({exc})")

    async def _write_command(self, command: Command) -> None:
        self._writer.write(relay.command_message(command))
        await self._writer.drain()

    async def blind_report(self, lines: list[Command]) -> None:
        if self._writer.is_closing():
            return
        try:
            for c in lines:
                self._writer.write(relay.command_message(c))
            await asyncio.wait_for(self._writer.drain(), 2.0)
        except (OSError, RuntimeError, asyncio.TimeoutError):
            pass

    async def finish(self, status: str = "OK") -> None:
        if not self._ended and not self._writer.is_closing():
            self._ended = True
            try:
                self._writer.write(relay.end_message(status))
                await asyncio.wait_for(self._writer.drain(), 2.0)
            except (OSError, RuntimeError, asyncio.TimeoutError):
                pass
        await self.aclose()

    async def _close_transport(self) -> None:
        await self._stop_reader()
        await close_writer(self._writer)


async def read_relay_hello(reader: asyncio.StreamReader, line: bytes | None = None) -> tuple[AGIEnvironment, Route]:
    """Read (unless ``line`` is it) and validate the script's ``hello`` (ProtocolError / InvalidInput)."""
    if line is None:
        line = await readline(reader, relay.MAX_RELAY_LINE)
    if line is None:
        raise ProtocolError("relay connection closed before the hello message")
    return relay.parse_hello(relay.decode(line, json.loads))


async def report_error(session: AGISession, code: str, detail: str, *, timeout: float = 5.0) -> bool:
    """Tell the channel about an error: ``ACD_STATUS=ERROR``, ``ACD_ERROR=code``,
    ``ACD_ERROR_DETAIL=detail`` and a VERBOSE line.  Best effort; True if all sent."""
    commands = error_commands(code, detail)
    if not session.usable:
        await session.blind_report(commands)
        return False
    try:
        for cmd in commands:
            await session.transact(cmd, timeout=timeout)
        session.variables_set.update(ERROR_VARIABLES)
        return True
    except (AGIError, ProtocolError):
        return False


