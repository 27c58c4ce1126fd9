"""The Asterisk Gateway Interface (AGI): protocol core, sessions, classic script.

Layers
======

1. **Sans-I/O core** -- :class:`AGIProtocol` turns received lines into events
   (:class:`EnvironmentReceived`, :class:`ReplyReceived`,
   :class:`HangupReceived`) and commands into bytes.  It performs no I/O, so the
   same code serves a classic AGI process, a FastAGI connection and the tests.
   :func:`parse_env_line`, :class:`ReplyParser` and :class:`Command` are the
   building blocks; malformed input raises :class:`acd.errors.ProtocolError`
   and leaves the parser as it was.
2. **Front ends** -- :class:`SyncAGISession` (blocking, classic AGI over
   stdin/stdout) and :class:`AGISession` (asyncio; :class:`StreamAGISession`
   over a FastAGI TCP connection, :class:`RelayAGISession` over the relay
   socket below).  Both offer the same helpers: ``answer``, ``stream_file``,
   ``say_number``, ``get_data``, ``wait_for_digit``, ``set_variable``,
   ``get_variable``, ``verbose``, ``exec``, ``hangup``.
3. **Classic AGI script** -- :func:`main` (run ``python -m acd.adapters.asterisk``).

Wire facts this module relies on
================================

* Asterisk first sends the environment, one ``agi_name: value`` line each,
  ended by an empty line.
* Each command is one line; arguments are separated by blanks, ``"`` toggles
  quoting and ``\\`` makes the next character literal.  We always quote.
  Asterisk reads a command into a 2 KiB buffer, so longer commands are refused
  here (:class:`~acd.errors.InvalidInput`).
* Replies: ``200 result=<token>[ (<data>)][ key=value ...]``; ``510 Invalid or
  unknown command``; ``511 Command Not Permitted on a dead channel``;
  ``520 Invalid command syntax.  Proper usage not available.`` or a multi-line
  ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of
  proper usage.`` body.  ``result`` may be ``-1`` and, for ``GET DATA``, is the
  digit string (possibly empty).
* FastAGI: when the channel hangs up Asterisk writes a ``HANGUP`` line (unless
  the channel variable ``AGISIGHUP`` is ``no``) and then answers most commands
  with 511; ``SET VARIABLE``, ``GET VARIABLE`` and ``VERBOSE`` still work.  A
  classic AGI process receives ``SIGHUP`` instead.

Errors
======

Everything raised here is an :class:`acd.errors.AcdError`:

* :class:`ChannelHungUp` (alias :data:`AGIHangup`) -- the channel is gone
  (``HANGUP`` line, 511, ``(hangup)`` in a reply, or the connection closed).
* :class:`AGICommandError` -- Asterisk refused the command (510, 520).
* :class:`AGICommandFailed` -- the command ran and reported failure
  (``result=-1``: missing sound file, or the caller hung up -- in that case the
  next command raises :class:`ChannelHungUp`; ``EXEC`` of an unknown
  application).
* :class:`AGITimeout` -- no reply within the session's ``command_timeout``.
* :class:`acd.errors.ProtocolError` -- the peer broke the protocol.
* :class:`acd.errors.InvalidInput` -- a helper got a bad argument.

Dispatcher relay protocol (``acd-agi-relay/1``)
===============================================

Classic AGI starts one process per call.  That process (:func:`main`) holds no
state: it connects to the running dispatcher (``acd serve``, or any
:class:`~acd.adapters.asterisk.fastagi.FastAGIServer` started with
``unix_path``) over a local UNIX stream socket and relays AGI commands, so
handlers written for FastAGI run unchanged.  Messages are JSON objects, one
per line (``\\n``-terminated, ASCII-only JSON, at most 1 MiB a line):

script -> dispatcher

* first: ``{"op": "hello", "v": 1, "script": "enqueue", "args": {"queue":
  "support"}, "env": {"agi_channel": "...", ...}}``
* one per command received: ``{"op": "reply", "code": 200, "result": "0",
  "data": null, "extra": [["endpos", "1234"]], "message": "", "usage": null}``
* at any time: ``{"op": "hangup"}`` (SIGHUP or a ``HANGUP`` line from Asterisk)

dispatcher -> script

* ``{"op": "command", "name": "STREAM FILE", "args": ["welcome", ""]}`` --
  the script sends it to Asterisk and answers with exactly one ``reply``;
* last: ``{"op": "end", "status": "OK"}`` (or ``"HANGUP"``, ``"ERROR"``); the
  script exits with status 0 (1 for ``ERROR``).

Closing the socket means the other side is gone: the dispatcher treats it as a
hang-up, the script as a lost dispatcher.  If the dispatcher cannot be reached
(or is lost) the script itself sets ``ACD_STATUS=ERROR``, ``ACD_ERROR=<code>``
and ``ACD_ERROR_DETAIL``, logs a ``VERBOSE`` line and exits with status 1.

Script routing: the first AGI argument names the script, optionally with a
query (``AGI(acd-agi,enqueue?queue=support&priority=2)``); further arguments of
the form ``key=value`` are added (``AGI(acd-agi,enqueue,queue=support)``).  The
socket path comes from ``--socket PATH``, else ``$ACD_AGI_SOCKET``, else
:data:`DEFAULT_SOCKET_PATH`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Callable, Final, TypeVar, Union
from urllib.parse import parse_qsl, urlsplit

from acd.errors import AcdError, InvalidInput, ProtocolError

__all__ = (
    "MAX_LINE",
    "MAX_ENV_LINES",
    "MAX_COMMAND_BYTES",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_COMMAND_TIMEOUT",
    "AGIError",
    "ChannelHungUp",
    "AGIHangup",
    "AGICommandError",
    "AGICommandFailed",
    "AGITimeout",
    "Command",
    "quote_arg",
    "AGIReply",
    "ReplyParser",
    "parse_reply_line",
    "AGIEnvironment",
    "EnvironmentParser",
    "parse_env_line",
    "AGIProtocol",
    "EnvironmentReceived",
    "ReplyReceived",
    "HangupReceived",
    "ConnectionClosed",
    "Route",
    "parse_route",
    "validate_route",
    "check_reply",
    "SyncAGISession",
    "AGISession",
    "StreamAGISession",
    "RelayAGISession",
    "read_environment",
    "read_relay_hello",
    "report_error",
    "error_code",
    "main",
)

log = logging.getLogger(__name__)

MAX_LINE: Final = 8192
"""Longest line accepted from Asterisk, in bytes (without the line end)."""
MAX_ENV_LINES: Final = 256
"""Most ``agi_*`` environment lines accepted."""
MAX_USAGE_LINES: Final = 256
"""Most lines accepted in a 520 usage body."""
MAX_COMMAND_BYTES: Final = 2047
"""Longest command we send, newline included (res_agi reads into 2048 bytes)."""
MAX_ARGS: Final = 120
MAX_RELAY_LINE: Final = 1 << 20
DEFAULT_SOCKET_PATH: Final = "/run/acd/agi.sock"
DEFAULT_COMMAND_TIMEOUT: Final = 3600.0
"""Seconds to wait for a reply; long because EXEC (Dial, MusicOnHold) may last."""
RELAY_VERSION: Final = 1
HANGUP_GRACE: Final = 60.0
"""Seconds the classic script still waits for the dispatcher after a hang-up."""

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------- errors


class AGIError(AcdError):
    """An AGI command could not be carried out.  ``reply`` is Asterisk's reply, if any."""

    def __init__(self, message: str, reply: AGIReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class ChannelHungUp(AGIError):
    """The channel hung up (``HANGUP`` line, 511, ``(hangup)``, or the link closed)."""


AGIHangup = ChannelHungUp


class AGICommandError(AGIError):
    """Asterisk refused the command: 510 (unknown command) or 520 (bad syntax)."""

    @property
    def code(self) -> int:
        return self.reply.code if self.reply is not None else 0

    @property
    def usage(self) -> str | None:
        return self.reply.usage if self.reply is not None else None


class AGICommandFailed(AGIError):
    """The command ran and reported failure (``result=-1``, ``EXEC`` result -2)."""


class AGITimeout(AGIError, TimeoutError):
    """No reply within the session's command timeout; the session is unusable after it."""


# ------------------------------------------------------------------- commands

_COMMAND_NAME = re.compile(r"[A-Z]+(?: [A-Z]+)*\Z")


def quote_arg(value: str) -> str:
    """Quote one argument the way res_agi splits them (``"`` quoting, ``\\`` escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Command:
    """One AGI command: ``name`` (upper-case words) and its arguments.

    Arguments are always quoted on the wire, so any text without a line break
    or NUL is sent as exactly one argument.
    """

    name: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _COMMAND_NAME.match(self.name):
            raise InvalidInput(f"AGI command name must be upper-case words, got {self.name!r}")
        if not isinstance(self.args, tuple):
            raise InvalidInput(f"AGI command args must be a tuple, got {self.args!r}")
        if len(self.args) > MAX_ARGS:
            raise InvalidInput(f"AGI command {self.name} has {len(self.args)} arguments, at most {MAX_ARGS} allowed")
        for arg in self.args:
            if not isinstance(arg, str):
                raise InvalidInput(f"AGI command argument must be a str, got {arg!r}")
            if "\n" in arg or "\r" in arg or "\x00" in arg:
                raise InvalidInput(f"AGI command argument must not contain a line break or NUL, got {_short(arg)!r}")
        try:
            size = len(self.encode())
        except UnicodeEncodeError:
            raise InvalidInput(f"AGI command {self.name} has an argument that is not valid text") from None
        if size > MAX_COMMAND_BYTES:
            raise InvalidInput(f"AGI command {self.name} is {size} bytes long, at most {MAX_COMMAND_BYTES} allowed")

    @classmethod
    def build(cls, name: str, *args: str | int) -> Command:
        """Build a command; ``int`` arguments are formatted in decimal (``bool`` refused)."""
        out = []
        for arg in args:
            if isinstance(arg, bool) or not isinstance(arg, (str, int)):
                raise InvalidInput(f"AGI command argument must be a str or an int, got {arg!r}")
            out.append(str(arg))
        return cls(name, tuple(out))

    def encode(self) -> bytes:
        """The command line, newline included."""
        parts = [self.name, *(quote_arg(a) for a in self.args)]
        return (" ".join(parts) + "\n").encode("utf-8")

    def __str__(self) -> str:
        return self.encode().decode("utf-8").rstrip("\n")


# -------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class AGIReply:
    """One reply from Asterisk.

    ``result`` is the raw token after ``result=`` (200 replies only; may be
    ``""``), ``data`` the text in parentheses, ``extra`` the ``key=value``
    pairs after it (``endpos``...), ``message`` any other text (the text after
    the code for non-200 replies), ``usage`` the body of a multi-line 520.
    """

    code: int
    result: str | None = None
    data: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    message: str = ""
    usage: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        """``result`` as an int, or None when it is not a (short) integer."""
        if self.result is None or not _INT_TOKEN.match(self.result):
            return None
        return int(self.result)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first ``key=value`` pair after the result (``reply.get("endpos")``)."""
        for k, v in self.extra:
            if k == key:
                return v
        return default

    @property
    def endpos(self) -> int | None:
        value = self.get("endpos")
        return int(value) if value is not None and _INT_TOKEN.match(value) else None

    def __str__(self) -> str:
        if self.code != 200:
            return f"{self.code} {self.message}"
        text = f"200 result={self.result}"
        if self.data is not None:
            text += f" ({self.data})"
        if self.message:
            text += " " + self.message
        for k, v in self.extra:
            text += f" {k}={v}"
        return text


_INT_TOKEN = re.compile(r"-?[0-9]{1,18}\Z")
_REPLY_HEAD = re.compile(r"([0-9]{3})([ -])(.*)\Z", re.S)
_RESULT = re.compile(r"result=([^\s]*)")
_RESULT_TOKEN = re.compile(r"[0-9A-Za-z*#+.-]*\Z")
_KV = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)=(.*)\Z", re.S)
_DATA_TAIL = re.compile(r"\s+[A-Za-z_][A-Za-z0-9_-]*=")
_USAGE_END = "520 End of proper usage."


def _line_text(line: bytes | str, max_line: int) -> str:
    """Decode one received line and strip its line end; enforce the length bound."""
    if isinstance(line, (bytes, bytearray)):
        if line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > max_line:
            raise ProtocolError(f"line of {len(line)} bytes exceeds the limit of {max_line}")
        text = bytes(line).decode("utf-8", "replace")
    elif isinstance(line, str):
        text = line[:-1] if line.endswith("\n") else line
        text = text[:-1] if text.endswith("\r") else text
        if len(text) > max_line:
            raise ProtocolError(f"line of {len(text)} characters exceeds the limit of {max_line}")
    else:
        raise TypeError(f"line must be bytes or str, got {type(line).__name__}")
    if "\n" in text or "\r" in text:
        raise ProtocolError(f"line contains an embedded line break: {_short(text)!r}")
    return text


def _find_data_end(inner: str) -> int:
    """Index of the ``)`` that closes the reply data, or -1.

    The data is not escaped by Asterisk (a variable may contain parentheses),
    so take the last ``)`` that is followed by nothing or by ``key=...``.
    """
    idx = len(inner)
    while True:
        idx = inner.rfind(")", 0, idx)
        if idx < 0:
            return -1
        end = idx + 1
        if end == len(inner) or inner[end:].isspace() or _DATA_TAIL.match(inner, end):
            return idx


def _parse_tail(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    words: list[str] = []
    extra: list[list[str]] = []
    for token in text.split():
        m = _KV.match(token)
        if m:
            extra.append([m.group(1), m.group(2)])
        elif extra:
            extra[-1][1] += " " + token  # "results=foo bar": values may hold blanks
        else:
            words.append(token)
    return " ".join(words), tuple((k, v) for k, v in extra)


def _single_reply(code: int, rest: str) -> AGIReply:
    if code != 200:
        return AGIReply(code, message=rest)
    m = _RESULT.match(rest)
    if not m:
        raise ProtocolError(f"200 reply without result=: {_short(rest)!r}")
    token = m.group(1)
    if not _RESULT_TOKEN.match(token):
        raise ProtocolError(f"malformed result {_short(token)!r} in 200 reply")
    after = rest[m.end():]
    data = None
    if after.startswith(" ("):
        inner = after[2:]
        close = _find_data_end(inner)
        if close < 0:
            raise ProtocolError(f"unterminated (data) in 200 reply: {_short(rest)!r}")
        data = inner[:close]
        after = inner[close + 1:]
    message, extra = _parse_tail(after)
    return AGIReply(200, token, data, extra, message)


class _Hangup:
    __slots__ = ()

    def __repr__(self) -> str:
        return "HANGUP"


HANGUP_NOTICE: Final = _Hangup()
"""Returned by :meth:`ReplyParser.feed` for a ``HANGUP`` notification line."""


def parse_reply_line(line: bytes | str, max_line: int = MAX_LINE) -> AGIReply:
    """Parse one complete single-line reply (not ``HANGUP``, not a 520 body)."""
    text = _line_text(line, max_line)
    m = _REPLY_HEAD.match(text)
    if not m or m.group(2) != " ":
        raise ProtocolError(f"malformed AGI reply line: {_short(text)!r}")
    return _single_reply(int(m.group(1)), m.group(3))


class ReplyParser:
    """Assemble replies from lines, including multi-line 520 bodies.

    :meth:`feed` returns an :class:`AGIReply` when one is complete,
    :data:`HANGUP_NOTICE` for a ``HANGUP`` line, else None.  A line that is not
    a reply raises :class:`ProtocolError` and changes nothing.
    """

    def __init__(self, max_line: int = MAX_LINE, max_body_lines: int = MAX_USAGE_LINES) -> None:
        self.max_line = max_line
        self.max_body_lines = max_body_lines
        self._body: list[str] | None = None
        self._code = 0
        self._head = ""

    @property
    def in_body(self) -> bool:
        """True while inside a multi-line (``520-``) reply."""
        return self._body is not None

    def feed(self, line: bytes | str) -> AGIReply | _Hangup | None:
        text = _line_text(line, self.max_line)
        if self._body is not None:
            return self._feed_body(text)
        if text == "HANGUP":
            return HANGUP_NOTICE
        m = _REPLY_HEAD.match(text)
        if not m:
            raise ProtocolError(f"malformed AGI reply line: {_short(text)!r}")
        code = int(m.group(1))
        if m.group(2) == "-":
            if code != 520:  # only usage help is ever sent on several lines
                raise ProtocolError(f"unexpected multi-line {code} reply: {_short(text)!r}")
            self._body, self._code, self._head = [], code, m.group(3)
            return None
        return _single_reply(code, m.group(3))

    def _feed_body(self, text: str) -> AGIReply | None:
        body = self._body
        assert body is not None
        if text.startswith("520 "):
            pass
        elif text.endswith(_USAGE_END):
            # Some usage texts lack a final newline, gluing the end marker on.
            body.append(text[: -len(_USAGE_END)])
        else:
            if len(body) >= self.max_body_lines:
                self._body = None
                raise ProtocolError(f"multi-line 520 reply longer than {self.max_body_lines} lines")
            body.append(text)
            return None
        self._body = None
        return AGIReply(self._code, message=self._head, usage="\n".join(body))


# ---------------------------------------------------------------- environment

_ENV_KEY = re.compile(r"agi_[A-Za-z0-9_]{1,64}\Z")
_REQUIRED_ENV: Final = ("agi_request", "agi_channel")


def parse_env_line(line: bytes | str, max_line: int = MAX_LINE) -> tuple[str, str]:
    """Parse ``agi_name: value`` into ``(name, value)``; raise ProtocolError otherwise."""
    text = _line_text(line, max_line)
    key, sep, rest = text.partition(":")
    if not sep or not _ENV_KEY.match(key) or (rest and rest[0] != " "):
        raise ProtocolError(f"malformed AGI environment line {_short(text)!r} (expected 'agi_name: value')")
    value = rest[1:]
    if _CONTROL.search(value):
        raise ProtocolError(f"control character in AGI environment value of {key}")
    return key, value


class AGIEnvironment(Mapping[str, str]):
    """The ``agi_*`` variables Asterisk sent, keyed by their full names."""

    __slots__ = ("_vars",)

    def __init__(self, variables: Mapping[str, str]) -> None:
        vars_ = dict(variables)
        if len(vars_) > MAX_ENV_LINES:
            raise ProtocolError(f"AGI environment has {len(vars_)} variables, at most {MAX_ENV_LINES} allowed")
        for key, value in vars_.items():
            if not isinstance(key, str) or not _ENV_KEY.match(key):
                raise ProtocolError(f"malformed AGI environment name {_short(str(key))!r}")
            if not isinstance(value, str) or len(value) > MAX_LINE or _CONTROL.search(value):
                raise ProtocolError(f"malformed AGI environment value for {key}")
        missing = [k for k in _REQUIRED_ENV if k not in vars_]
        if missing:
            raise ProtocolError(f"incomplete AGI environment: missing {', '.join(missing)}")
        self._vars = vars_

    def __getitem__(self, key: str) -> str:
        return self._vars[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def __repr__(self) -> str:
        return f"AGIEnvironment(channel={self.channel!r}, request={self.request!r})"

    @property
    def request(self) -> str:
        return self._vars["agi_request"]

    @property
    def channel(self) -> str:
        return self._vars["agi_channel"]

    @property
    def uniqueid(self) -> str | None:
        return self._vars.get("agi_uniqueid")

    @property
    def callerid(self) -> str | None:
        return self._vars.get("agi_callerid")

    @property
    def calleridname(self) -> str | None:
        return self._vars.get("agi_calleridname")

    @property
    def language(self) -> str | None:
        return self._vars.get("agi_language")

    @property
    def context(self) -> str | None:
        return self._vars.get("agi_context")

    @property
    def extension(self) -> str | None:
        return self._vars.get("agi_extension")

    @property
    def network(self) -> bool:
        return self._vars.get("agi_network", "").lower() == "yes"

    @property
    def network_script(self) -> str | None:
        return self._vars.get("agi_network_script")

    @property
    def arguments(self) -> tuple[str, ...]:
        """``agi_arg_1``, ``agi_arg_2``... in order, up to the first missing one."""
        out = []
        n = 1
        while f"agi_arg_{n}" in self._vars:
            out.append(self._vars[f"agi_arg_{n}"])
            n += 1
        return tuple(out)


class EnvironmentParser:
    """Collect environment lines until the blank line (bounded in count and length,
    and in total size -- line ends included -- when ``max_bytes`` is given)."""

    def __init__(self, max_line: int = MAX_LINE, max_lines: int = MAX_ENV_LINES, *,
                 max_bytes: int | None = None) -> None:
        self.max_line = max_line
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.size = 0  # bytes (or characters, for str lines) accepted so far, line ends included
        self._vars: dict[str, str] = {}
        self.done = False

    def feed(self, line: bytes | str) -> AGIEnvironment | None:
        if self.done:
            raise ProtocolError("the AGI environment is already complete")
        text = _line_text(line, self.max_line)
        size = self.size + len(line)
        if self.max_bytes is not None and size > self.max_bytes:
            raise ProtocolError(f"AGI environment longer than {self.max_bytes} bytes")
        if text == "":
            if not self._vars:
                raise ProtocolError("missing AGI environment (got an empty line first)")
            env = AGIEnvironment(self._vars)
            self.done = True
            return env
        key, value = parse_env_line(text, self.max_line)
        if key in self._vars:
            raise ProtocolError(f"duplicate AGI environment variable {key}")
        if len(self._vars) >= self.max_lines:
            raise ProtocolError(f"AGI environment longer than {self.max_lines} lines")
        self._vars[key] = value
        self.size = size
        return None


# ------------------------------------------------------------ sans-I/O core


@dataclass(frozen=True, slots=True)
class EnvironmentReceived:
    env: AGIEnvironment


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    command: Command
    reply: AGIReply


@dataclass(frozen=True, slots=True)
class HangupReceived:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    pending: Command | None


AGIEvent = Union[EnvironmentReceived, ReplyReceived, HangupReceived, ConnectionClosed]


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
        text = _line_text(line, self.max_line)
        if self.env is None:
            env = self._envp.feed(text)
            if env is None:
                return None
            self.env = env
            return EnvironmentReceived(env)
        if self.pending is None and not self._replies.in_body and text != "HANGUP":
            raise ProtocolError(f"unexpected line while no command is pending: {_short(text)!r}")
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


# --------------------------------------------------------------------- routes

_SCRIPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(?:/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,7}\Z")
_ARG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")
MAX_ROUTE_ARGS: Final = 32
MAX_ARG_VALUE: Final = 1024


@dataclass(frozen=True, slots=True)
class Route:
    """Which handler to run (``script``) and its validated arguments."""

    script: str
    args: Mapping[str, str]


def validate_route(script: object, args: object) -> Route:
    """Check a script name and its arguments; raise InvalidInput with the reason."""
    if not isinstance(script, str) or not _SCRIPT_NAME.match(script):
        raise InvalidInput(f"script name must be letters, digits, '_', '.', '-' (and '/'), got {_short(str(script))!r}")
    if not isinstance(args, Mapping):
        raise InvalidInput(f"script arguments must be a mapping, got {type(args).__name__}")
    if len(args) > MAX_ROUTE_ARGS:
        raise InvalidInput(f"too many script arguments: {len(args)}, at most {MAX_ROUTE_ARGS} allowed")
    out: dict[str, str] = {}
    for key, value in args.items():
        if not isinstance(key, str) or not _ARG_KEY.match(key):
            raise InvalidInput(f"bad argument name {_short(str(key))!r}")
        if not isinstance(value, str):
            raise InvalidInput(f"argument {key} must be text, got {type(value).__name__}")
        if len(value) > MAX_ARG_VALUE or _CONTROL.search(value) or "\x00" in value:
            raise InvalidInput(f"bad value for argument {key}: {_short(value)!r}")
        out[key] = value
    return Route(script, out)


def _add_args(args: dict[str, str], pairs: list[tuple[str, str]], where: str) -> None:
    for key, value in pairs:
        if key in args:
            raise InvalidInput(f"argument {_short(key)!r} given twice ({where})")
        if len(args) >= MAX_ROUTE_ARGS:
            raise InvalidInput(f"too many script arguments, at most {MAX_ROUTE_ARGS} allowed")
        args[key] = value


def _query_pairs(query: str) -> list[tuple[str, str]]:
    if not query:
        return []
    try:
        return parse_qsl(query, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_ROUTE_ARGS)
    except ValueError as exc:
        raise InvalidInput(f"malformed query string {_short(query)!r}: {exc}") from None


def _kv_args(values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise InvalidInput(f"argument {_short(value)!r} is not of the form key=value")
        pairs.append((key, val))
    return pairs


def parse_route(env: AGIEnvironment, *, classic: bool = False) -> Route:
    """Find the script name and its arguments in the environment.

    FastAGI (``classic=False``): the path and query of ``agi_request``
    (``agi://host:4573/enqueue?queue=support&priority=2``), falling back on
    ``agi_network_script``; dialplan arguments (``agi_arg_N``) of the form
    ``key=value`` are added.  Classic AGI (``classic=True``): the first
    dialplan argument is the script (optionally with ``?query``), the others
    are ``key=value``.  Raises InvalidInput.
    """
    dial_args = env.arguments
    if classic:
        if not dial_args:
            raise InvalidInput("no script named: pass it as the first AGI argument, e.g. AGI(acd-agi,enqueue)")
        target, extra = dial_args[0], dial_args[1:]
        path, _, query = target.partition("?")
    else:
        extra = dial_args
        request = env.request
        try:
            parts = urlsplit(request)
        except ValueError as exc:
            raise InvalidInput(f"malformed agi_request {_short(request)!r}: {exc}") from None
        if parts.scheme in ("agi", "hagi"):
            path, query = parts.path, parts.query
        else:
            script = env.network_script
            if script is None:
                raise InvalidInput(f"cannot find the script: agi_request {_short(request)!r} is not an agi:// URL "
                                   "and agi_network_script is missing")
            path, _, query = script.partition("?")
    script_name = path.strip("/")
    args: dict[str, str] = {}
    _add_args(args, _query_pairs(query), "in the query")
    _add_args(args, _kv_args(extra), "in the dialplan arguments")
    return validate_route(script_name, args)


# ------------------------------------------------------ reply interpretation


def check_reply(command: Command, reply: AGIReply) -> AGIReply:
    """Return a 200 reply; raise the matching error for any other code."""
    if reply.code == 200:
        return reply
    if reply.code == 511:
        raise ChannelHungUp(f"{command.name}: channel is hung up (511 {reply.message})", reply)
    if reply.code == 510:
        raise AGICommandError(f"{command.name}: Asterisk does not know this command (510 {reply.message})", reply)
    if reply.code == 520:
        raise AGICommandError(f"{command.name}: invalid command syntax (520)", reply)
    raise AGICommandError(f"{command.name}: unexpected reply {reply.code} {_short(reply.message)!r}", reply)


def _result_int(command: Command, reply: AGIReply) -> int:
    value = reply.result_int
    if value is None:
        raise ProtocolError(f"{command.name}: result {_short(str(reply.result))!r} is not an integer")
    return value


def _failed(command: Command, reply: AGIReply, hung_up: bool) -> AGIError:
    if hung_up or reply.data == "hangup":
        return ChannelHungUp(f"{command.name}: channel hung up", reply)
    return AGICommandFailed(f"{command.name} failed (result={reply.result})", reply)


def _ok_int(command: Command, reply: AGIReply, hung_up: bool) -> int:
    value = _result_int(command, reply)
    if value < 0:
        raise _failed(command, reply, hung_up)
    return value


def _digit(command: Command, reply: AGIReply, hung_up: bool) -> str | None:
    value = _ok_int(command, reply, hung_up)
    if value == 0:
        return None
    if value > 0x10FFFF:
        raise ProtocolError(f"{command.name}: result {value} is not a character code")
    return chr(value)


_DIGITS_RESULT = re.compile(r"[0-9*#A-Da-d]*\Z")


def _get_data_result(command: Command, reply: AGIReply, hung_up: bool) -> str:
    result = reply.result or ""
    if result == "-1":
        raise _failed(command, reply, hung_up)
    if not _DIGITS_RESULT.match(result):
        raise ProtocolError(f"{command.name}: result {_short(result)!r} is not a digit string")
    return result


def _get_variable_result(command: Command, reply: AGIReply, hung_up: bool) -> str | None:
    value = _result_int(command, reply)
    if value == 1:
        return reply.data if reply.data is not None else ""
    return None


def _exec_result(command: Command, reply: AGIReply, hung_up: bool) -> int:
    value = _result_int(command, reply)
    if value == -2:
        raise AGICommandFailed(f"EXEC: no application {command.args[0]!r}", reply)
    return value


def _none(command: Command, reply: AGIReply, hung_up: bool) -> None:
    return None


_ESCAPE_DIGITS = re.compile(r"[0-9*#A-D]*\Z")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\([^()\s\"\\]{0,256}\))?\Z")


def _escape(digits: str) -> str:
    if not isinstance(digits, str) or not _ESCAPE_DIGITS.match(digits):
        raise InvalidInput(f"escape_digits must be made of 0-9, *, #, A-D, got {digits!r}")
    return digits


def _text(name: str, value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise InvalidInput(f"{name} must be a {'' if empty else 'non-empty '}str, got {value!r}")
    return value


def _ms(name: str, seconds: object, *, none_as: int) -> int:
    if seconds is None:
        return none_as
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0 or seconds > 86400:
        raise InvalidInput(f"{name} must be a number of seconds in 0..86400 or None, got {seconds!r}")
    return int(round(seconds * 1000))


def _variable_name(name: object) -> str:
    if not isinstance(name, str) or not _VARIABLE.match(name):
        raise InvalidInput(f"variable name must look like NAME or FUNC(args), got {name!r}")
    return name


def _plain_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    return value


_T = TypeVar("_T")
_Step = tuple[Command, Callable[[Command, AGIReply, bool], _T]]


class _Helpers:
    """Build (command, interpreter) pairs for the helper methods of both front ends."""

    @staticmethod
    def answer() -> _Step[int]:
        return Command("ANSWER"), _ok_int

    @staticmethod
    def stream_file(filename: str, escape_digits: str, offset: int | None) -> _Step[str | None]:
        args: list[str | int] = [_text("filename", filename), _escape(escape_digits)]
        if offset is not None:
            args.append(_plain_int("offset", offset, 0, 2**31 - 1))
        return Command.build("STREAM FILE", *args), _digit

    @staticmethod
    def say_number(number: int, escape_digits: str, gender: str | None) -> _Step[str | None]:
        args: list[str | int] = [_plain_int("number", number, -(2**31), 2**31 - 1), _escape(escape_digits)]
        if gender is not None:
            if gender not in ("f", "m", "c", "n"):
                raise InvalidInput(f"gender must be one of 'f', 'm', 'c', 'n' or None, got {gender!r}")
            args.append(gender)
        return Command.build("SAY NUMBER", *args), _digit

    @staticmethod
    def get_data(prompt: str, timeout: float | None, max_digits: int | None) -> _Step[str]:
        args: list[str | int] = [_text("prompt", prompt)]
        # 0 ms lets Asterisk use its default digit timeout.
        args.append(_ms("timeout", timeout, none_as=0))
        if max_digits is not None:
            args.append(_plain_int("max_digits", max_digits, 1, 1024))
        return Command.build("GET DATA", *args), _get_data_result

    @staticmethod
    def wait_for_digit(timeout: float | None) -> _Step[str | None]:
        return Command.build("WAIT FOR DIGIT", _ms("timeout", timeout, none_as=-1)), _digit

    @staticmethod
    def set_variable(name: str, value: str | int) -> _Step[None]:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidInput(f"variable value must be a str or an int, got {value!r}")
        return Command.build("SET VARIABLE", _variable_name(name), value), _none

    @staticmethod
    def get_variable(name: str) -> _Step[str | None]:
        return Command.build("GET VARIABLE", _variable_name(name)), _get_variable_result

    @staticmethod
    def verbose(message: str, level: int) -> _Step[None]:
        return Command.build("VERBOSE", _text("message", message, empty=True),
                             _plain_int("level", level, 1, 4)), _none

    @staticmethod
    def exec(application: str, args: tuple[str | int, ...]) -> _Step[int]:
        if not isinstance(application, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,64}", application):
            raise InvalidInput(f"application must be a dialplan application name, got {application!r}")
        parts = []
        for arg in args:
            if isinstance(arg, bool) or not isinstance(arg, (str, int)):
                raise InvalidInput(f"application argument must be a str or an int, got {arg!r}")
            parts.append(str(arg))
        if parts:
            return Command.build("EXEC", application, ",".join(parts)), _exec_result
        return Command.build("EXEC", application), _exec_result

    @staticmethod
    def hangup(channel: str | None) -> _Step[int]:
        if channel is None:
            return Command("HANGUP"), _ok_int
        return Command.build("HANGUP", _text("channel", channel)), _ok_int


# ------------------------------------------------------------ sync front end


class SyncAGISession:
    """Blocking AGI session over binary streams (classic AGI: stdin/stdout)."""

    def __init__(self, rfile: IO[bytes], wfile: IO[bytes], *, max_line: int = MAX_LINE,
                 max_env_lines: int = MAX_ENV_LINES) -> None:
        self._rfile = rfile
        self._wfile = wfile
        self._proto = AGIProtocol(max_line=max_line, max_env_lines=max_env_lines)
        self.variables_set: set[str] = set()
        self.on_hangup: Any = None  # optional callable, run when a HANGUP line arrives

    @property
    def env(self) -> AGIEnvironment:
        if self._proto.env is None:
            raise AGIError("the AGI environment has not been read yet")
        return self._proto.env

    @property
    def hung_up(self) -> bool:
        return self._proto.hung_up

    def _readline(self) -> bytes | None:
        limit = self._proto.max_line + 2
        line = self._rfile.readline(limit)
        if not line:
            return None
        if not line.endswith(b"\n"):
            if len(line) >= limit:
                raise ProtocolError(f"line longer than {self._proto.max_line} bytes")
            return None  # end of input in the middle of a line
        return line

    def read_environment(self) -> AGIEnvironment:
        """Read the ``agi_*`` lines up to the blank line."""
        while True:
            line = self._readline()
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
            line = self._readline()
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

    def _run(self, pair: _Step[_T]) -> _T:
        cmd, interpret = pair
        reply = check_reply(cmd, self.transact(cmd))
        return interpret(cmd, reply, self.hung_up)

    def answer(self) -> None:
        self._run(_Helpers.answer())

    def stream_file(self, filename: str, escape_digits: str = "", offset: int | None = None) -> str | None:
        return self._run(_Helpers.stream_file(filename, escape_digits, offset))

    def say_number(self, number: int, escape_digits: str = "", gender: str | None = None) -> str | None:
        return self._run(_Helpers.say_number(number, escape_digits, gender))

    def get_data(self, prompt: str, timeout: float | None = None, max_digits: int | None = None) -> str:
        return self._run(_Helpers.get_data(prompt, timeout, max_digits))

    def wait_for_digit(self, timeout: float | None = None) -> str | None:
        return self._run(_Helpers.wait_for_digit(timeout))

    def set_variable(self, name: str, value: str | int) -> None:
        self._run(_Helpers.set_variable(name, value))
        self.variables_set.add(name)

    def get_variable(self, name: str) -> str | None:
        return self._run(_Helpers.get_variable(name))

    def verbose(self, message: str, level: int = 1) -> None:
        self._run(_Helpers.verbose(message, level))

    def exec(self, application: str, *args: str | int) -> int:
        return self._run(_Helpers.exec(application, args))

    def hangup(self, channel: str | None = None) -> None:
        self._run(_Helpers.hangup(channel))
        if channel is None:
            self._proto.hung_up = True


# --------------------------------------------------------- asyncio front end

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
            self._on_failure(ProtocolError, f"unsolicited reply from Asterisk: {_short(str(reply))!r}")
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

    async def _run(self, pair: _Step[_T], timeout: float | None = _DEFAULT) -> _T:
        cmd, interpret = pair
        reply = check_reply(cmd, await self.transact(cmd, timeout=timeout))
        return interpret(cmd, reply, self.hung_up)

    async def answer(self) -> None:
        """ANSWER the channel."""
        await self._run(_Helpers.answer())

    async def stream_file(self, filename: str, escape_digits: str = "", offset: int | None = None) -> str | None:
        """Play a sound file; return the escape digit pressed, or None."""
        return await self._run(_Helpers.stream_file(filename, escape_digits, offset))

    async def say_number(self, number: int, escape_digits: str = "", gender: str | None = None) -> str | None:
        """Say a number; return the escape digit pressed, or None."""
        return await self._run(_Helpers.say_number(number, escape_digits, gender))

    async def get_data(self, prompt: str, timeout: float | None = None, max_digits: int | None = None) -> str:
        """Play ``prompt`` and collect DTMF digits (``timeout`` in seconds; None = Asterisk default)."""
        return await self._run(_Helpers.get_data(prompt, timeout, max_digits))

    async def wait_for_digit(self, timeout: float | None = None) -> str | None:
        """Wait for one DTMF digit (None = forever); return it, or None on timeout."""
        return await self._run(_Helpers.wait_for_digit(timeout))

    async def set_variable(self, name: str, value: str | int) -> None:
        """Set a channel variable (or a dialplan function such as ``CALLERID(name)``)."""
        await self._run(_Helpers.set_variable(name, value))
        self.variables_set.add(name)

    async def get_variable(self, name: str) -> str | None:
        """A channel variable's value, or None when it is not set."""
        return await self._run(_Helpers.get_variable(name))

    async def verbose(self, message: str, level: int = 1) -> None:
        """Log a line on the Asterisk console."""
        await self._run(_Helpers.verbose(message, level))

    async def exec(self, application: str, *args: str | int, timeout: float | None = _DEFAULT) -> int:
        """Run a dialplan application (arguments joined with ','); return its result."""
        return await self._run(_Helpers.exec(application, args), timeout)

    async def hangup(self, channel: str | None = None) -> None:
        """Hang up this channel (or another one by name)."""
        await self._run(_Helpers.hangup(channel))
        if channel is None:
            self._hangup.set()


async def _readline(reader: asyncio.StreamReader, max_line: int) -> bytes | None:
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
        line = await _readline(reader, proto.max_line)
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
                line = await _readline(self._reader, self._proto.max_line)
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
            await asyncio.wait_for(_drain_input(self._reader, len(lines)), 1.0)
        except (OSError, RuntimeError, asyncio.TimeoutError):
            pass

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

    async def _close_transport(self) -> None:
        await self._stop_reader()
        await _close_writer(self._writer)


async def _drain_input(reader: asyncio.StreamReader, replies: int) -> None:
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


async def _close_writer(writer: asyncio.StreamWriter, timeout: float = 2.0) -> None:
    try:
        if not writer.is_closing():
            writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except (OSError, RuntimeError, asyncio.TimeoutError):
        writer.transport.abort()


# ------------------------------------------------------------------- relay


def _encode_relay(message: Mapping[str, Any]) -> bytes:
    return (json.dumps(message, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def _decode_relay(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError(f"relay message is not JSON: {_short(line.decode('utf-8', 'replace'))!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("relay message must be a JSON object with an 'op' string")
    return message


def _reply_to_relay(reply: AGIReply) -> dict[str, Any]:
    return {"op": "reply", "code": reply.code, "result": reply.result, "data": reply.data,
            "extra": [list(kv) for kv in reply.extra], "message": reply.message, "usage": reply.usage}


def _opt_str(message: Mapping[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_RELAY_LINE):
        raise ProtocolError(f"relay reply field {key!r} must be a string or null")
    return value


def _reply_from_relay(message: Mapping[str, Any]) -> AGIReply:
    code = message.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
        raise ProtocolError(f"relay reply has a bad code {code!r}")
    extra = message.get("extra") or []
    if not isinstance(extra, list) or len(extra) > MAX_ARGS or not all(
            isinstance(kv, list) and len(kv) == 2 and all(isinstance(x, str) for x in kv) for kv in extra):
        raise ProtocolError("relay reply field 'extra' must be a list of [key, value] strings")
    result = _opt_str(message, "result")
    if code == 200 and (result is None or not _RESULT_TOKEN.match(result)):
        raise ProtocolError(f"relay 200 reply has a bad result {result!r}")
    return AGIReply(code, result, _opt_str(message, "data"), tuple((k, v) for k, v in extra),
                    _opt_str(message, "message") or "", _opt_str(message, "usage"))


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
                line = await _readline(self._reader, MAX_RELAY_LINE)
                if line is None:
                    self._on_failure(ChannelHungUp, "the AGI script closed the relay connection")
                    return
                message = _decode_relay(line)
                op = message["op"]
                if op == "reply":
                    self._on_reply(_reply_from_relay(message))
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
        self._writer.write(_encode_relay({"op": "command", "name": command.name, "args": list(command.args)}))
        await self._writer.drain()

    async def blind_report(self, lines: list[Command]) -> None:
        if self._writer.is_closing():
            return
        try:
            for c in lines:
                self._writer.write(_encode_relay({"op": "command", "name": c.name, "args": list(c.args)}))
            await asyncio.wait_for(self._writer.drain(), 2.0)
        except (OSError, RuntimeError, asyncio.TimeoutError):
            pass

    async def finish(self, status: str = "OK") -> None:
        if not self._ended and not self._writer.is_closing():
            self._ended = True
            try:
                self._writer.write(_encode_relay({"op": "end", "status": status}))
                await asyncio.wait_for(self._writer.drain(), 2.0)
            except (OSError, RuntimeError, asyncio.TimeoutError):
                pass
        await self.aclose()

    async def _close_transport(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        await _close_writer(self._writer)


async def read_relay_hello(reader: asyncio.StreamReader) -> tuple[AGIEnvironment, Route]:
    """Read and validate the script's ``hello`` (ProtocolError / InvalidInput)."""
    line = await _readline(reader, MAX_RELAY_LINE)
    if line is None:
        raise ProtocolError("relay connection closed before the hello message")
    message = _decode_relay(line)
    if message["op"] != "hello":
        raise ProtocolError(f"expected a relay hello, got {message['op']!r}")
    if message.get("v") != RELAY_VERSION:
        raise ProtocolError(f"unsupported relay version {message.get('v')!r} (this dispatcher speaks {RELAY_VERSION})")
    env_data = message.get("env")
    if not isinstance(env_data, dict):
        raise ProtocolError("relay hello without an 'env' object")
    env = AGIEnvironment(env_data)
    args = message.get("args", {})
    return env, validate_route(message.get("script"), args if isinstance(args, dict) else None)


# ------------------------------------------------------------ error reports

_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def error_code(exc: BaseException) -> str:
    """Short upper-case code for an error (``InvalidInput`` -> ``INVALID_INPUT``)."""
    return _SNAKE.sub("_", type(exc).__name__).upper()


def _detail(text: str, limit: int = 200) -> str:
    text = _CONTROL.sub(" ", text).replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_commands(code: str, detail: str) -> list[Command]:
    """The commands that report an error to the channel."""
    detail = _detail(detail)
    return [Command.build("SET VARIABLE", "ACD_STATUS", "ERROR"),
            Command.build("SET VARIABLE", "ACD_ERROR", code),
            Command.build("SET VARIABLE", "ACD_ERROR_DETAIL", detail),
            Command.build("VERBOSE", _detail(f"acd: {code}: {detail}", 400), 1)]


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
        session.variables_set.update(("ACD_STATUS", "ACD_ERROR", "ACD_ERROR_DETAIL"))
        return True
    except (AGIError, ProtocolError):
        return False


# ------------------------------------------------------------ classic script


class _RelayClient:
    """Blocking client side of the relay socket (used by :func:`main`)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._rfile = sock.makefile("rb")
        self._sending = False
        self._hangup_pending = False
        self.hangup_sent = False

    def send(self, message: Mapping[str, Any]) -> None:
        self._sending = True
        try:
            self._sock.sendall(_encode_relay(message))
        finally:
            self._sending = False
        if self._hangup_pending:
            self._hangup_pending = False
            self.notify_hangup()

    def notify_hangup(self) -> None:
        """Tell the dispatcher the channel hung up (safe to call from a signal handler)."""
        if self.hangup_sent:
            return
        if self._sending:  # never interleave two messages: send after the current one
            self._hangup_pending = True
            return
        self.hangup_sent = True
        try:
            self._sock.sendall(_encode_relay({"op": "hangup"}))
        except OSError:
            pass

    def receive(self) -> dict[str, Any] | None:
        if self.hangup_sent:
            # The call is over; a dispatcher that never ends the session must not
            # leave this process behind forever.
            self._sock.settimeout(HANGUP_GRACE)
        line = self._rfile.readline(MAX_RELAY_LINE + 2)
        if not line:
            return None
        if not line.endswith(b"\n"):
            if len(line) > MAX_RELAY_LINE:
                raise ProtocolError(f"relay line longer than {MAX_RELAY_LINE} bytes")
            return None
        return _decode_relay(line)

    def close(self) -> None:
        self._rfile.close()
        self._sock.close()


def _script_error(agi: SyncAGISession, code: str, detail: str, stderr: IO[str]) -> None:
    """Report an error to the channel (best effort) and on stderr."""
    print(f"acd-agi: {code}: {detail}", file=stderr)
    if agi.hung_up:
        return
    for cmd in error_commands(code, detail):
        try:
            agi.transact(cmd)
        except (AGIError, ProtocolError, InvalidInput):
            return


def _parse_argv(argv: list[str]) -> str | None:
    socket_path = None
    it = iter(argv)
    for arg in it:
        if arg == "--socket":
            socket_path = next(it, None)
        elif arg.startswith("--socket="):
            socket_path = arg.split("=", 1)[1]
    return socket_path


def main(argv: list[str] | None = None, *, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None,
         stderr: IO[str] | None = None, socket_path: str | None = None, connect_timeout: float = 5.0,
         install_signal_handlers: bool | None = None) -> int:
    """Run as a classic AGI script: relay this call to the dispatcher.

    Returns the exit status: 0 when the dispatcher ended the session (``OK``
    or ``HANGUP``), 1 on any reported error (dispatcher down or lost, bad
    request, ``ERROR`` from the dispatcher), 2 when even the AGI environment
    could not be read.  Errors end up as one line on stderr, never as a
    traceback.
    """
    errf = stderr if stderr is not None else sys.stderr
    try:
        return _main(argv, stdin, stdout, errf, socket_path, connect_timeout, install_signal_handlers)
    except Exception as exc:  # a bug: still one clear line for the Asterisk log
        print(f"acd-agi: INTERNAL: {type(exc).__name__}: {exc}", file=errf)
        return 1


def _main(argv: list[str] | None, stdin: IO[bytes] | None, stdout: IO[bytes] | None, errf: IO[str],
          socket_path: str | None, connect_timeout: float, install_signal_handlers: bool | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rfile = stdin if stdin is not None else sys.stdin.buffer
    wfile = stdout if stdout is not None else sys.stdout.buffer
    if install_signal_handlers is None:
        install_signal_handlers = stdin is None
    path = socket_path or _parse_argv(argv) or os.environ.get("ACD_AGI_SOCKET") or DEFAULT_SOCKET_PATH

    agi = SyncAGISession(rfile, wfile)
    try:
        env = agi.read_environment()
    except ProtocolError as exc:
        print(f"acd-agi: PROTOCOL: cannot read the AGI environment: {exc}", file=errf)
        return 2
    try:
        route = parse_route(env, classic=True)
    except InvalidInput as exc:
        _script_error(agi, "BAD_REQUEST", str(exc), errf)
        return 1

    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError as exc:
        _script_error(agi, "UNAVAILABLE", f"cannot create a UNIX socket: {exc}", errf)
        return 1
    try:
        sock.settimeout(connect_timeout)
        sock.connect(path)
        sock.settimeout(None)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or type(exc).__name__
        _script_error(agi, "UNAVAILABLE", f"dispatcher unavailable at {path}: {reason}", errf)
        return 1

    relay = _RelayClient(sock)
    previous = None
    if install_signal_handlers:
        def on_sighup(signum: int, frame: object) -> None:
            relay.notify_hangup()
        try:
            previous = signal.signal(signal.SIGHUP, on_sighup)
        except (ValueError, OSError, AttributeError):  # not the main thread / no SIGHUP
            previous = None
    agi.on_hangup = relay.notify_hangup
    try:
        return _relay_loop(agi, relay, env, route, errf)
    finally:
        if previous is not None:
            signal.signal(signal.SIGHUP, previous)
        relay.close()


def _relay_loop(agi: SyncAGISession, relay: _RelayClient, env: AGIEnvironment, route: Route,
                errf: IO[str]) -> int:
    try:
        relay.send({"op": "hello", "v": RELAY_VERSION, "script": route.script, "args": dict(route.args),
                    "env": dict(env)})
        while True:
            message = relay.receive()
            if message is None:
                _script_error(agi, "DISPATCHER_LOST", "the dispatcher closed the connection", errf)
                return 1
            op = message["op"]
            if op == "end":
                return 1 if message.get("status") == "ERROR" else 0
            if op != "command":
                raise ProtocolError(f"unexpected relay message {op!r}")
            name, args = message.get("name"), message.get("args")
            if not isinstance(name, str) or not isinstance(args, list):
                raise ProtocolError("relay command needs a 'name' string and an 'args' list")
            try:
                command = Command(name, tuple(args))
            except InvalidInput as exc:
                raise ProtocolError(f"relay command refused: {exc}") from None
            try:
                reply = agi.transact(command)
            except ChannelHungUp:
                relay.notify_hangup()
                return 0  # Asterisk closed our stdin: nothing more to do
            relay.send(_reply_to_relay(reply))
    except ProtocolError as exc:
        _script_error(agi, "PROTOCOL", str(exc), errf)
        return 1
    except OSError as exc:
        _script_error(agi, "DISPATCHER_LOST", f"relay connection failed: {exc}", errf)
        return 1
