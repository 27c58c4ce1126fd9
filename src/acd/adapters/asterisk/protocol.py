"""Sans-I/O AGI: received lines in, events out; commands in, bytes out.

:class:`AGIProtocol` is the state machine of one AGI channel, the same for a
classic AGI process (:class:`~acd.adapters.asterisk.blocking.SyncAGISession`),
a FastAGI connection (:class:`~acd.adapters.asterisk.sessions.StreamAGISession`)
and the tests.  It performs no I/O and never imports asyncio.  The hang-up rules
live here, once: a ``HANGUP`` line, a 511 reply, ``(hangup)`` in a reply or the
end of input mark the channel as hung up.
"""

from __future__ import annotations

from acd.errors import ProtocolError

from .errors import AGIError, ChannelHungUp
from .lines import line_text, short
from .wire import (MAX_ENV_LINES, MAX_LINE, AGIEnvironment, AGIReply, Command, EnvironmentParser, Record,
                   ReplyParser, _Hangup)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    AGIEvent = Union["EnvironmentReceived", "ReplyReceived", "HangupReceived", "ConnectionClosed"]

__all__ = ("AGIProtocol", "EnvironmentReceived", "ReplyReceived", "HangupReceived", "ConnectionClosed")


class EnvironmentReceived(Record):
    """The environment is complete (``env``)."""

    __slots__ = ("env",)
    env: AGIEnvironment

    def __init__(self, env: AGIEnvironment) -> None:
        super().__init__(env)


class ReplyReceived(Record):
    """Asterisk answered ``command`` with ``reply``."""

    __slots__ = ("command", "reply")
    command: Command
    reply: AGIReply

    def __init__(self, command: Command, reply: AGIReply) -> None:
        super().__init__(command, reply)


class HangupReceived(Record):
    """A ``HANGUP`` line: the channel hung up (FastAGI)."""

    __slots__ = ()


class ConnectionClosed(Record):
    """The input ended; ``pending`` is the command left without a reply, if any."""

    __slots__ = ("pending",)
    pending: Command | None

    def __init__(self, pending: Command | None) -> None:
        super().__init__(pending)


class AGIProtocol:
    """Sans-I/O state machine for one AGI channel.

    Feed it every line received (:meth:`feed_line`) and the end of input
    (:meth:`feed_eof`); ask it for the bytes of each command (:meth:`send`).
    One command may be outstanding at a time.  A line it cannot accept raises
    :class:`ProtocolError` and leaves the state unchanged.
    """

    def __init__(self, *, max_line: int = MAX_LINE, max_env_lines: int = MAX_ENV_LINES,
                 max_env_bytes: int | None = None) -> None:
        self.max_line = max_line
        self._envp = EnvironmentParser(max_line, max_env_lines, max_bytes=max_env_bytes)
        self._replies = ReplyParser(max_line)
        self.env: AGIEnvironment | None = None
        self.pending: Command | None = None
        self.hung_up = False
        self.closed = False

    @property
    def env_size(self) -> int:
        """Bytes of environment lines accepted so far (0: the peer has sent no complete line)."""
        return self._envp.size

    @property
    def state(self) -> str:
        if self.closed:
            return "closed"
        if self.env is None:
            return "environment"
        return "idle" if self.pending is None else "waiting"

    def feed_line(self, line: bytes | str) -> AGIEvent | None:
        if self.closed:
            raise ProtocolError("data received after the connection closed")
        text = line_text(line, self.max_line)
        if self.env is None:
            env = self._envp.feed(text)
            if env is None:
                return None
            self.env = env
            return EnvironmentReceived(env)
        if self.pending is None and not self._replies.in_body and text != "HANGUP":
            raise ProtocolError(f"unexpected line while no command is pending: {short(text)!r}")
        item = self._replies.feed(text)
        if item is None:
            return None
        if isinstance(item, _Hangup):
            self.hung_up = True
            return HangupReceived()
        command, self.pending = self.pending, None
        assert command is not None
        if item.code == 511 or item.data == "hangup":
            self.hung_up = True
        return ReplyReceived(command, item)

    def feed_eof(self) -> ConnectionClosed:
        self.closed = True
        self.hung_up = True
        pending, self.pending = self.pending, None
        return ConnectionClosed(pending)

    def send(self, command: Command) -> bytes:
        if self.closed:
            raise ChannelHungUp("the AGI connection is closed")
        if self.env is None:
            raise AGIError("cannot send a command before the AGI environment is received")
        if self.pending is not None:
            raise AGIError(f"cannot send {command.name}: {self.pending.name} is still waiting for its reply")
        data = command.encode()
        self.pending = command
        return data
