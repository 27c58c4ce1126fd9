"""Blocking AGI over a pair of byte streams: what a classic AGI process speaks on stdin/stdout.

:class:`SyncAGISession` drives the sans-I/O :class:`~.protocol.AGIProtocol`
with the shared :class:`~.lines.LineBuffer`, and offers the same helpers as
the asyncio :class:`~.sessions.AGISession` (built by :class:`~.commands.Helpers`).
No asyncio here: the classic script imports this module.
"""

from __future__ import annotations

from acd.errors import ProtocolError

from .commands import Helpers, check_reply
from .errors import AGIError, ChannelHungUp
from .lines import LineBuffer, read_line
from .protocol import AGIProtocol, EnvironmentReceived, HangupReceived, ReplyReceived
from .wire import MAX_ENV_LINES, MAX_LINE, AGIEnvironment, AGIReply, Command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Callable, TypeVar

    from .commands import Step

    _T = TypeVar("_T")

__all__ = ("SyncAGISession",)

_READ_SIZE = 65536


class SyncAGISession:
    """Blocking AGI session over binary streams (classic AGI: stdin/stdout).

    ``on_hangup``, when set, is called for every ``HANGUP`` line received (a
    classic process usually learns of the hang-up by SIGHUP instead).
    """

    def __init__(self, rfile: IO[bytes], wfile: IO[bytes], *, max_line: int = MAX_LINE,
                 max_env_lines: int = MAX_ENV_LINES) -> None:
        read1 = getattr(rfile, "read1", None)
        self._read: Callable[[], bytes] = ((lambda: read1(_READ_SIZE)) if read1 is not None
                                           else (lambda: rfile.read(_READ_SIZE)))
        self._wfile = wfile
        self._buf = LineBuffer(max_line)
        self._proto = AGIProtocol(max_line=max_line, max_env_lines=max_env_lines)
        self.variables_set: set[str] = set()
        self.on_hangup: Callable[[], object] | None = None

    @property
    def env(self) -> AGIEnvironment:
        if self._proto.env is None:
            raise AGIError("the AGI environment has not been read yet")
        return self._proto.env

    @property
    def hung_up(self) -> bool:
        return self._proto.hung_up

    def mark_hung_up(self) -> None:
        """Record a hang-up learnt outside the protocol (SIGHUP)."""
        self._proto.hung_up = True

    def read_environment(self) -> AGIEnvironment:
        """Read the ``agi_*`` lines up to the blank line."""
        while True:
            line = read_line(self._buf, self._read)
            if line is None:
                self._proto.feed_eof()
                raise ProtocolError("input ended before the AGI environment was complete")
            event = self._proto.feed_line(line)
            if isinstance(event, EnvironmentReceived):
                return event.env

    def transact(self, command: Command) -> AGIReply:
        """Send one command and return Asterisk's reply, whatever its code."""
        data = self._proto.send(command)
        try:
            self._wfile.write(data)
            self._wfile.flush()
        except OSError as exc:
            self._proto.feed_eof()
            raise ChannelHungUp(f"{command.name}: cannot write to Asterisk ({exc})") from None
        while True:
            line = read_line(self._buf, self._read)
            if line is None:
                self._proto.feed_eof()
                raise ChannelHungUp(f"{command.name}: Asterisk closed the AGI connection")
            event = self._proto.feed_line(line)
            if isinstance(event, HangupReceived):
                if self.on_hangup is not None:
                    self.on_hangup()
            elif isinstance(event, ReplyReceived):
                return event.reply

    def command(self, name: str, *args: str | int) -> AGIReply:
        """Send a command; return its 200 reply or raise (511, 510, 520...)."""
        cmd = Command.build(name, *args)
        return check_reply(cmd, self.transact(cmd))

    def _run(self, step: Step[_T]) -> _T:
        cmd, interpret = step
        reply = check_reply(cmd, self.transact(cmd))
        return interpret(cmd, reply, self.hung_up)

    def answer(self) -> None:
        self._run(Helpers.answer())

    def stream_file(self, filename: str, escape_digits: str = "", offset: int | None = None) -> str | None:
        return self._run(Helpers.stream_file(filename, escape_digits, offset))

    def say_number(self, number: int, escape_digits: str = "", gender: str | None = None) -> str | None:
        return self._run(Helpers.say_number(number, escape_digits, gender))

    def get_data(self, prompt: str, timeout: float | None = None, max_digits: int | None = None) -> str:
        return self._run(Helpers.get_data(prompt, timeout, max_digits))

    def wait_for_digit(self, timeout: float | None = None) -> str | None:
        return self._run(Helpers.wait_for_digit(timeout))

    def set_variable(self, name: str, value: str | int) -> None:
        self._run(Helpers.set_variable(name, value))
        self.variables_set.add(name)

    def get_variable(self, name: str) -> str | None:
        return self._run(Helpers.get_variable(name))

    def verbose(self, message: str, level: int = 1) -> None:
        self._run(Helpers.verbose(message, level))

    def exec(self, application: str, *args: str | int) -> int:
        return self._run(Helpers.exec(application, args))

    def hangup(self, channel: str | None = None) -> None:
        self._run(Helpers.hangup(channel))
        if channel is None:
            self._proto.hung_up = True
