"""Asterisk Manager Interface (AMI) client (asyncio).

::

    client = AMIClient("127.0.0.1", 5038, username="acd", secret="...")
    await client.connect()                       # banner + Login; raises AMIAuthError
    client.on("Hangup", on_hangup)               # callbacks by event name ("*" = all)
    async with client.events("QueueMemberStatus") as stream:
        async for event in stream: ...
    resp = await client.action("QueueStatus", Queue="support")   # resp.events: the list
    result = await client.originate("PJSIP/0612345678@trunk", context="callback",
                                    exten="s", priority=1, variables={"ACD_CALL": "c42"})
    await client.close()

Wire format: after connecting, Asterisk sends one banner line
``Asterisk Call Manager/<version>``; then every message, in both directions,
is ``Key: Value`` lines ended by an empty line (CRLF line ends; LF accepted).
Each action carries an ``ActionID`` and its ``Response`` echoes it; list
actions answer ``EventList: start`` and then send events with the same
``ActionID``, the last one with ``EventList: Complete``.

Connection management: :meth:`AMIClient.connect` makes the first connection
and raises if it fails.  Afterwards a lost connection is re-established with
exponential back-off (``backoff_initial`` doubling up to ``backoff_max``, with
``jitter``) and a fresh Login; a ``Ping`` every ``ping_interval`` seconds
detects a silent server.  Actions in flight when the link drops fail with
:class:`AMIConnectionError`; actions sent while disconnected fail at once
(wait with :meth:`AMIClient.wait_connected` if you prefer).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import math
import os
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from acd.errors import AcdError, InvalidInput, ProtocolError

__all__ = (
    "AMIClient",
    "AMIMessage",
    "AMIResponse",
    "AMIParser",
    "EventStream",
    "encode_action",
    "AMIError",
    "AMIAuthError",
    "AMIConnectionError",
    "AMIActionError",
    "AMIOriginateFailed",
    "AMIOutcomeUnknown",
    "AMITimeout",
    "ORIGINATE_REASONS",
)

log = logging.getLogger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 5038
MAX_AMI_LINE: Final = 65536
MAX_AMI_LINES: Final = 4096
ORIGINATE_REASONS: Final = {0: "failed", 1: "hung up", 3: "no answer", 4: "answered", 5: "busy", 8: "congestion"}
"""Meaning of the ``Reason`` of a failed ``OriginateResponse`` (last control frame seen)."""


class AMIError(AcdError):
    """Base class of AMI errors."""


class AMIAuthError(AMIError):
    """Login refused (wrong user name or secret, or not allowed from this host)."""


class AMIConnectionError(AMIError, ConnectionError):
    """Not connected, or the connection was lost before the answer came."""


class AMITimeout(AMIError, TimeoutError):
    """No answer in time."""


class AMIActionError(AMIError):
    """Asterisk answered ``Response: Error``; ``response`` holds the message."""

    def __init__(self, message: str, response: AMIMessage | None = None) -> None:
        super().__init__(message)
        self.response = response


class AMIOriginateFailed(AMIActionError):
    """The originated call was not answered; ``reason`` is Asterisk's code (5 = busy...)."""

    def __init__(self, message: str, response: AMIMessage | None = None, reason: int | None = None) -> None:
        super().__init__(message, response)
        self.reason = reason


# ------------------------------------------------------------------ messages


class AMIOutcomeUnknown(AMIError):
    """An action (an Originate) was written to Asterisk but its outcome never came back
    (the link dropped, or no answer in time): it may be running there.  Look it up
    (by the ``ChannelId`` you gave it) instead of repeating it."""


class AMIMessage(Mapping[str, str]):
    """One AMI message: ordered ``(key, value)`` pairs, keys looked up case-insensitively.

    ``msg["Event"]`` gives the first value; :meth:`get_all` every value of a
    repeated key (``Variable``, ``Output``).  ``output`` holds lines that were
    not ``Key: Value`` (old ``Response: Follows`` command output).
    """

    __slots__ = ("headers", "output", "_index")

    def __init__(self, headers: Iterable[tuple[str, str]], output: Iterable[str] = ()) -> None:
        self.headers: tuple[tuple[str, str], ...] = tuple((str(k), str(v)) for k, v in headers)
        self.output: tuple[str, ...] = tuple(output)
        index: dict[str, str] = {}
        for k, v in self.headers:
            index.setdefault(k.lower(), v)
        self._index = index

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for k, _ in self.headers:
            if k.lower() not in seen:
                seen.add(k.lower())
                yield k

    def __len__(self) -> int:
        return len(self._index)

    def get_all(self, key: str) -> list[str]:
        lk = key.lower()
        return [v for k, v in self.headers if k.lower() == lk]

    @property
    def event(self) -> str | None:
        return self._index.get("event")

    @property
    def response(self) -> str | None:
        return self._index.get("response")

    @property
    def action_id(self) -> str | None:
        return self._index.get("actionid")

    def __repr__(self) -> str:
        kind = f"Event={self.event!r}" if self.event is not None else f"Response={self.response!r}"
        return f"{type(self).__name__}({kind}, {len(self.headers)} headers)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AMIMessage):
            return NotImplemented
        return self.headers == other.headers and self.output == other.output

    def __hash__(self) -> int:
        return hash((self.headers, self.output))


class AMIResponse(AMIMessage):
    """The answer to an action; ``events`` are the items of a list response and
    ``complete`` its final ``...Complete`` event."""

    __slots__ = ("events", "complete")

    def __init__(self, headers: Iterable[tuple[str, str]], output: Iterable[str] = (),
                 events: Iterable[AMIMessage] = (), complete: AMIMessage | None = None) -> None:
        super().__init__(headers, output)
        self.events: tuple[AMIMessage, ...] = tuple(events)
        self.complete = complete

    @property
    def success(self) -> bool:
        return (self.response or "").lower() in ("success", "follows", "goodbye", "pong")

    @property
    def message(self) -> str:
        return self._index.get("message", "")


_BANNER = re.compile(r"Asterisk Call Manager/([0-9]+(?:\.[0-9]+)*)\s*\Z")
_HEADER = re.compile(r"([^\s:]+):(?: ?)(.*)\Z", re.S)
_END_COMMAND = "--END COMMAND--"


class AMIParser:
    """Sans-I/O AMI reader: the banner line, then messages.

    :meth:`feed_line` returns a complete :class:`AMIMessage` (at its blank
    line) or None.  Size limits raise :class:`ProtocolError`.
    """

    def __init__(self, max_line: int = MAX_AMI_LINE, max_lines: int = MAX_AMI_LINES) -> None:
        self.max_line = max_line
        self.max_lines = max_lines
        self.banner: str | None = None
        self.version: tuple[int, ...] | None = None
        self._headers: list[tuple[str, str]] = []
        self._output: list[str] = []
        self._follows = False

    def feed_line(self, line: bytes | str) -> AMIMessage | None:
        if isinstance(line, (bytes, bytearray)):
            if len(line) > self.max_line + 2:
                raise ProtocolError(f"AMI line longer than {self.max_line} bytes")
            text = bytes(line).decode("utf-8", "replace")
        else:
            text = line
            if len(text) > self.max_line + 2:
                raise ProtocolError(f"AMI line longer than {self.max_line} characters")
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        if self.banner is None:
            m = _BANNER.match(text)
            if not m:
                raise ProtocolError(f"not an AMI banner: {text[:80]!r} (expected 'Asterisk Call Manager/x.y')")
            self.banner = text
            self.version = tuple(int(p) for p in m.group(1).split("."))
            return None
        if text == "":
            if not self._headers and not self._output:
                return None  # stray blank line between messages
            msg = AMIMessage(self._headers, self._output)
            self._headers, self._output, self._follows = [], [], False
            return msg
        if len(self._headers) + len(self._output) >= self.max_lines:
            self._headers, self._output, self._follows = [], [], False
            raise ProtocolError(f"AMI message longer than {self.max_lines} lines")
        m = None if (self._follows and self._output) else _HEADER.match(text)
        if m is None:
            if text.endswith(_END_COMMAND):
                text = text[: -len(_END_COMMAND)]
                if text:
                    self._output.append(text)
            else:
                self._output.append(text)
            return None
        key, value = m.group(1), m.group(2)
        self._headers.append((key, value))
        if key.lower() == "response" and value.lower() == "follows":
            self._follows = True
        return None


_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


def _format_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"AMI field {key} must be finite, got {value!r}")
        return repr(value)
    if not isinstance(value, str):
        raise InvalidInput(f"AMI field {key} must be a str, int, float or bool, got {value!r}")
    if "\r" in value or "\n" in value or "\x00" in value:
        raise InvalidInput(f"AMI field {key} must not contain a line break or NUL, got {value[:80]!r}")
    return value


def encode_action(action: str, action_id: str, fields: Mapping[str, object] | None = None) -> bytes:
    """Encode one action; list/tuple values repeat the key (``Variable``)."""
    if not isinstance(action, str) or not _KEY.match(action):
        raise InvalidInput(f"AMI action name must be letters, digits, '_' or '-', got {action!r}")
    lines = [f"Action: {action}", f"ActionID: {_format_value('ActionID', action_id)}"]
    for key, value in (fields or {}).items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInput(f"AMI field name must be letters, digits, '_' or '-', got {key!r}")
        if key.lower() in ("action", "actionid"):
            raise InvalidInput(f"AMI field {key} is set by the client")
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            lines.append(f"{key}: {_format_value(key, v)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


# -------------------------------------------------------------- event stream


class EventStream:
    """Async iterator over events (optionally only some names), with a bounded
    buffer: when a slow consumer lets it fill, the oldest events are dropped
    (counted in ``dropped``).  Iteration ends when the stream or client closes."""

    def __init__(self, client: AMIClient, names: frozenset[str] | None, maxsize: int) -> None:
        self._client = client
        self._names = names
        self._maxsize = maxsize
        self._items: deque[AMIMessage] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def _push(self, msg: AMIMessage) -> None:
        if self._closed or (self._names is not None and (msg.event or "").lower() not in self._names):
            return
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("AMI event stream full (%d): %d event(s) dropped", self._maxsize, self.dropped)
        self._items.append(msg)
        self._ready.set()

    def _end(self) -> None:
        self._closed = True
        self._ready.set()

    def close(self) -> None:
        self._client._streams.discard(self)
        self._end()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> AMIMessage:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    async def get(self, timeout: float | None = None) -> AMIMessage:
        """The next event; AMITimeout after ``timeout``; AMIConnectionError once closed."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except asyncio.TimeoutError:
            raise AMITimeout(f"no event within {timeout:g} s") from None
        except StopAsyncIteration:
            raise AMIConnectionError("the event stream is closed") from None

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------- client


@dataclass
class _Pending:
    action: str
    future: asyncio.Future[AMIResponse]
    response: AMIResponse | None = None  # set once a list response has started
    events: list[AMIMessage] = field(default_factory=list)


_DEFAULT: Any = object()
Callback = Callable[[AMIMessage], Any]


def _positive(name: str, value: object, *, allow_none: bool = False, zero: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not zero):
        raise InvalidInput(f"{name} must be a positive number of seconds{' or None' if allow_none else ''}, "
                           f"got {value!r}")


class AMIClient:
    """asyncio AMI client with ActionID correlation, events and reconnection.

    ``events``: the Login ``Events`` field (True = ``on``, False = ``off``, or
    a class mask such as ``"call,agent"``).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, username: str, secret: str,
                 events: bool | str = True, reconnect: bool = True, connect_timeout: float = 10.0,
                 action_timeout: float = 10.0, ping_interval: float | None = 30.0, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0, backoff_factor: float = 2.0, jitter: float = 0.1,
                 max_line: int = MAX_AMI_LINE, max_message_lines: int = MAX_AMI_LINES,
                 max_list_events: int = 100_000) -> None:
        if not isinstance(username, str) or not username:
            raise InvalidInput(f"username must be a non-empty str, got {username!r}")
        if not isinstance(secret, str):
            raise InvalidInput("secret must be a str")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
            raise InvalidInput(f"port must be an int in 1..65535, got {port!r}")
        _positive("connect_timeout", connect_timeout)
        _positive("action_timeout", action_timeout)
        _positive("ping_interval", ping_interval, allow_none=True)
        _positive("backoff_initial", backoff_initial)
        _positive("backoff_max", backoff_max)
        if isinstance(backoff_factor, bool) or not isinstance(backoff_factor, (int, float)) or not backoff_factor >= 1:
            raise InvalidInput(f"backoff_factor must be a number >= 1, got {backoff_factor!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
            raise InvalidInput(f"jitter must be a number in 0..1, got {jitter!r}")
        self.host, self.port = host, port
        self.username, self._secret = username, secret
        self.events_mask = "on" if events is True else "off" if events is False else _format_value("Events", events)
        self.reconnect = reconnect
        self.connect_timeout = float(connect_timeout)
        self.action_timeout = float(action_timeout)
        self.ping_interval = ping_interval
        self.backoff_initial, self.backoff_max = float(backoff_initial), float(backoff_max)
        self.backoff_factor, self.jitter = float(backoff_factor), float(jitter)
        self.max_line, self.max_message_lines = max_line, max_message_lines
        self.max_list_events = max_list_events
        self.banner: str | None = None
        self.version: tuple[int, ...] | None = None
        self.logins = 0
        #: Unix time of the last successful login (None before the first)
        self.last_login_unix: float | None = None
        self._ids = itertools.count(1)
        self._prefix = f"acd-{os.getpid()}-{id(self) & 0xFFFFFF:x}-"
        self._pending: dict[str, _Pending] = {}
        self._originates: dict[str, asyncio.Future[AMIMessage]] = {}
        self._handlers: dict[str, list[Callback]] = {}
        self._login_callbacks: list[Callable[[], Any]] = []
        self._streams: set[EventStream] = set()
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False

    # ------------------------------------------------------------- state
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until logged in (again); AMITimeout after ``timeout``."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            raise AMITimeout(f"not connected to AMI within {timeout:g} s") from None

    # ----------------------------------------------------------- events
    def on(self, event: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(message)`` for each event named ``event`` (case-insensitive;
        ``"*"`` = every event).  Coroutine callbacks run as tasks.  Returns an
        unsubscribe function."""
        if not isinstance(event, str) or not event:
            raise InvalidInput(f"event must be an event name or '*', got {event!r}")
        if not callable(callback):
            raise InvalidInput(f"callback must be callable, got {callback!r}")
        self._handlers.setdefault(event.lower(), []).append(callback)
        return lambda: self.off(event, callback)

    def on_login(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call ``callback()`` after every successful login, the first and each reconnection
        (what happened while the link was down must be looked up then).  Coroutine
        callbacks run as tasks.  Returns an unsubscribe function."""
        self._login_callbacks.append(callback)
        return lambda: self._login_callbacks.remove(callback) if callback in self._login_callbacks else None

    def _logged_in(self) -> None:
        for callback in list(self._login_callbacks):
            try:
                result = callback()
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)
                    task.add_done_callback(self._callback_done)
            except Exception:
                log.exception("AMI login callback %r failed", callback)

    def off(self, event: str, callback: Callback) -> None:
        callbacks = self._handlers.get(event.lower(), [])
        if callback in callbacks:
            callbacks.remove(callback)

    def events(self, *names: str, maxsize: int = 10_000) -> EventStream:
        """An async iterator over events (all, or only those named)."""
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InvalidInput(f"maxsize must be a positive int, got {maxsize!r}")
        stream = EventStream(self, frozenset(n.lower() for n in names) if names else None, maxsize)
        if self._closing:
            stream._end()
        else:
            self._streams.add(stream)
        return stream

    def _emit(self, msg: AMIMessage) -> None:
        name = (msg.event or "").lower()
        for callback in [*self._handlers.get(name, ()), *self._handlers.get("*", ())]:
            try:
                result = callback(msg)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)
                    task.add_done_callback(self._callback_done)
            except Exception:
                log.exception("AMI event callback %r failed on %s", callback, msg.event)
        for stream in list(self._streams):
            stream._push(msg)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI event callback failed", exc_info=task.exception())

    # ---------------------------------------------------------- dispatch
    def _dispatch(self, msg: AMIMessage) -> None:
        aid = msg.action_id
        if msg.event is None and msg.response is not None:  # events may carry "Response" too
            pending = self._pending.get(aid) if aid is not None else None
            if pending is None:
                log.debug("AMI response for unknown ActionID %r ignored", aid)
                return
            resp = AMIResponse(msg.headers, msg.output)
            if resp.success and (resp.get("EventList", "").lower() == "start"
                                 or "will follow" in resp.message.lower()):
                pending.response = resp
                return
            if not pending.future.done():
                pending.future.set_result(resp)
            return
        if aid is not None:
            pending = self._pending.get(aid)
            if pending is not None and pending.response is not None:
                if msg.get("EventList", "").lower() == "complete" or (msg.event or "").endswith("Complete"):
                    r = pending.response
                    if not pending.future.done():
                        pending.future.set_result(AMIResponse(r.headers, r.output, pending.events, msg))
                elif len(pending.events) >= self.max_list_events:
                    if not pending.future.done():
                        pending.future.set_exception(ProtocolError(
                            f"{pending.action}: list longer than {self.max_list_events} events"))
                else:
                    pending.events.append(msg)
                return
            waiter = self._originates.get(aid)
            if waiter is not None and (msg.event or "").lower() == "originateresponse" and not waiter.done():
                waiter.set_result(msg)
        self._emit(msg)

    def _fail_all(self, message: str) -> None:
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(AMIConnectionError(f"{pending.action}: {message}"))
        for waiter in list(self._originates.values()):
            if not waiter.done():
                waiter.set_exception(AMIConnectionError(f"Originate: {message}"))

    # ----------------------------------------------------------- actions
    def _next_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    async def _send(self, action: str, fields: Mapping[str, object], *, timeout: float | None, action_id: str | None,
                    writer: asyncio.StreamWriter | None = None, sent: list[bool] | None = None) -> AMIResponse:
        writer = writer or self._writer
        if writer is None or writer.is_closing():
            raise AMIConnectionError(f"{action}: not connected to AMI")
        action_id = action_id or self._next_id()
        data = encode_action(action, action_id, fields)
        fut: asyncio.Future[AMIResponse] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(action, fut)
        try:
            try:
                writer.write(data)
                if sent is not None:
                    sent.append(True)   # from here on Asterisk may act on it
                await writer.drain()
            except (OSError, RuntimeError) as exc:
                raise AMIConnectionError(f"{action}: cannot write to AMI ({exc})") from None
            try:
                return await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise AMITimeout(f"no response to {action} (ActionID {action_id}) within {timeout:g} s") from None
        finally:
            self._pending.pop(action_id, None)

    async def action(self, action: str, fields: Mapping[str, object] | None = None, *,
                     timeout: float | None = _DEFAULT, check: bool = True, **kwargs: object) -> AMIResponse:
        """Send an action and return its response (with ``events`` for list actions).

        Fields come from ``fields`` and keyword arguments (list values repeat
        the key).  With ``check`` (default) ``Response: Error`` raises
        :class:`AMIActionError`.
        """
        merged = {**(fields or {}), **kwargs}
        if not self.connected:
            encode_action(action, "x", merged)  # report bad input before connection state
            raise AMIConnectionError(f"{action}: not connected to AMI")
        resp = await self._send(action, merged, timeout=self.action_timeout if timeout is _DEFAULT else timeout,
                                action_id=None)
        if check and not resp.success:
            raise AMIActionError(f"{action} failed: {resp.message or resp.response}", resp)
        return resp

    async def originate(self, channel: str, *, context: str | None = None, exten: str | None = None,
                        priority: int | str | None = None, application: str | None = None, data: str | None = None,
                        timeout: float = 30.0, caller_id: str | None = None,
                        variables: Mapping[str, str | int] | None = None, account: str | None = None,
                        fields: Mapping[str, object] | None = None, wait: bool = True) -> AMIMessage:
        """Originate a call (asynchronously on the Asterisk side) to ``channel``,
        connected to ``context``/``exten``/``priority`` or to ``application``.

        With ``wait`` (default) return the ``OriginateResponse`` event once the
        call is answered, or raise :class:`AMIOriginateFailed` (``reason``: 3 no
        answer, 5 busy, 8 congestion, 0 failure); without it return the
        ``Originate`` response at once.  ``timeout`` is the ring time in seconds.
        """
        if not isinstance(channel, str) or not channel:
            raise InvalidInput(f"channel must be a non-empty str, got {channel!r}")
        _positive("timeout", timeout)
        body: dict[str, object] = {"Channel": channel}
        if application is not None:
            if exten is not None or context is not None or priority is not None:
                raise InvalidInput("give either application (and data) or context/exten/priority, not both")
            body["Application"] = application
            if data is not None:
                body["Data"] = data
        else:
            if exten is None or context is None or priority is None:
                raise InvalidInput("originate needs context, exten and priority (or an application)")
            body.update(Context=context, Exten=exten, Priority=priority)
        body["Timeout"] = int(round(timeout * 1000))
        if caller_id is not None:
            body["CallerID"] = caller_id
        if account is not None:
            body["Account"] = account
        if variables:
            pairs = []
            for key, value in variables.items():
                if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_()]*", key):
                    raise InvalidInput(f"variable name must be a dialplan variable name, got {key!r}")
                pairs.append(f"{key}={_format_value(key, value)}")
            body["Variable"] = pairs
        body.update(fields or {})
        body["Async"] = "true"
        encode_action("Originate", "x", body)  # validate before anything is registered
        if not self.connected:
            raise AMIConnectionError("Originate: not connected to AMI")
        action_id = self._next_id()
        waiter: asyncio.Future[AMIMessage] = asyncio.get_running_loop().create_future()
        if wait:
            self._originates[action_id] = waiter
        sent: list[bool] = []
        try:
            try:
                resp = await self._send("Originate", body, timeout=self.action_timeout, action_id=action_id,
                                        sent=sent)
                if not resp.success:
                    raise AMIActionError(f"Originate to {channel} refused: {resp.message or resp.response}", resp)
                if not wait:
                    return resp
                event = await asyncio.wait_for(waiter, timeout + self.action_timeout)
            except asyncio.TimeoutError:
                raise AMIOutcomeUnknown(f"no OriginateResponse for {channel} within "
                                        f"{timeout + self.action_timeout:g} s") from None
            except (AMIConnectionError, AMITimeout) as exc:
                if sent:   # Asterisk may have started the call: its outcome is unknown, not a failure
                    raise AMIOutcomeUnknown(f"Originate to {channel}: {exc}") from None
                raise
        finally:
            self._originates.pop(action_id, None)
            if not waiter.done():
                waiter.cancel()
        if (event.get("Response") or "").lower() != "success":
            raw = event.get("Reason", "")
            reason = int(raw) if raw.lstrip("-").isdigit() else None
            why = ORIGINATE_REASONS.get(reason, f"reason {raw}") if reason is not None else "unknown reason"
            raise AMIOriginateFailed(f"call to {channel} failed: {why}", event, reason)
        return event

    # --------------------------------------------------------- connection
    async def connect(self) -> None:
        """Connect and log in; raise AMIAuthError, AMIConnectionError, AMITimeout or
        ProtocolError if that first attempt fails.  Reconnects by itself afterwards."""
        if self._supervisor is not None and not self._supervisor.done():
            raise AMIError("connect() was already called")
        self._closing = False
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(first))
        try:
            await asyncio.shield(first)
        except asyncio.CancelledError:
            await self.close()
            raise

    async def __aenter__(self) -> AMIClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_initial * self.backoff_factor ** min(attempt, 64))
        return delay * (1 + self.jitter * random.random())

    async def _supervise(self, first: asyncio.Future[None]) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                err = _as_ami_error(exc)
                if not first.done():
                    first.set_exception(err)
                    return
                log.warning("AMI %s:%s: reconnection failed: %s", self.host, self.port, err)
            else:
                attempt = 0
                if not first.done():
                    first.set_result(None)
                await self._run_connection()
                if self._closing:
                    return
            if not self.reconnect:
                self._shutdown_streams()
                return
            delay = self._backoff(attempt)
            attempt += 1
            log.info("AMI %s:%s: reconnecting in %.2f s", self.host, self.port, delay)
            await asyncio.sleep(delay)

    async def _open(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=self.max_line + 2), self.connect_timeout)
        except asyncio.TimeoutError:
            raise AMITimeout(f"cannot connect to AMI {self.host}:{self.port} within {self.connect_timeout:g} s") \
                from None
        except OSError as exc:
            raise AMIConnectionError(f"cannot connect to AMI {self.host}:{self.port}: {exc}") from None
        try:
            parser = AMIParser(self.max_line, self.max_message_lines)
            try:
                line = await asyncio.wait_for(_readline(reader), self.connect_timeout)
            except asyncio.TimeoutError:
                raise AMITimeout(f"no AMI banner from {self.host}:{self.port}") from None
            if line is None:
                raise AMIConnectionError(f"AMI {self.host}:{self.port} closed the connection before its banner")
            parser.feed_line(line)
            self.banner, self.version = parser.banner, parser.version
            self._read_task = asyncio.get_running_loop().create_task(self._read_loop(reader, parser))
            resp = await self._send("Login", {"Username": self.username, "Secret": self._secret,
                                              "Events": self.events_mask},
                                    timeout=self.connect_timeout, action_id=None, writer=writer)
            if not resp.success:
                raise AMIAuthError(f"AMI login as {self.username!r} refused: {resp.message or resp.response}")
        except BaseException:
            await self._teardown(writer)
            raise
        self._writer = writer
        self.logins += 1
        self.last_login_unix = time.time()
        self._connected.set()
        log.info("AMI connected to %s:%s (%s)", self.host, self.port, self.banner)
        if self.ping_interval is not None:
            self._ping_task = asyncio.get_running_loop().create_task(self._ping_loop(self.ping_interval))
        self._logged_in()

    async def _run_connection(self) -> None:
        task = self._read_task
        if task is not None:
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    raise
            except Exception:  # a bug, not the peer: log it and reconnect
                log.exception("AMI reader failed")
        if not self._closing:
            log.warning("AMI connection to %s:%s lost", self.host, self.port)
        await self._teardown(self._writer)

    async def _read_loop(self, reader: asyncio.StreamReader, parser: AMIParser) -> None:
        why = "AMI connection lost"
        try:
            while True:
                line = await _readline(reader)
                if line is None:
                    why = "AMI connection closed by Asterisk"
                    return
                msg = parser.feed_line(line)
                if msg is not None:
                    self._dispatch(msg)
        except ProtocolError as exc:
            why = f"AMI protocol error: {exc}"
            log.warning("%s", why)
        except OSError as exc:
            why = f"AMI connection lost: {exc}"
        except Exception:
            log.exception("AMI message handling failed; dropping the connection")
        finally:
            self._connected.clear()
            self._fail_all(why)

    async def _ping_loop(self, interval: float) -> None:
        writer = self._writer
        while True:
            await asyncio.sleep(interval)
            try:
                await self._send("Ping", {}, timeout=self.action_timeout, action_id=None, writer=writer)
            except (AMITimeout, AMIConnectionError) as exc:
                log.warning("AMI keep-alive failed (%s); dropping the connection", exc)
                if writer is not None:
                    writer.transport.abort()
                return

    async def _teardown(self, writer: asyncio.StreamWriter | None) -> None:
        self._connected.clear()
        current = asyncio.current_task()
        for name in ("_ping_task", "_read_task"):
            task = getattr(self, name)
            setattr(self, name, None)
            if task is not None and task is not current and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    if current is not None and current.cancelling():
                        raise
        if writer is not None:
            try:
                if not writer.is_closing():
                    writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            except (OSError, RuntimeError, asyncio.TimeoutError):
                writer.transport.abort()
        if writer is self._writer:
            self._writer = None
        self._fail_all("AMI connection closed")

    def _shutdown_streams(self) -> None:
        for stream in list(self._streams):
            stream._end()
        self._streams.clear()

    async def close(self) -> None:
        """Log off, stop reconnecting, fail what is still waiting, end event streams."""
        self._closing = True
        if self.connected and self._writer is not None:
            try:
                await self._send("Logoff", {}, timeout=min(2.0, self.action_timeout), action_id=None)
            except AMIError:
                pass
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and not supervisor.done():
            supervisor.cancel()
            try:
                await supervisor
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        await self._teardown(self._writer)
        self._fail_all("AMI client closed")
        self._shutdown_streams()
        tasks = list(self._callback_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _as_ami_error(exc: BaseException) -> BaseException:
    if isinstance(exc, (AMIError, ProtocolError)):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return AMITimeout(str(exc) or "AMI timeout")
    if isinstance(exc, OSError):
        return AMIConnectionError(str(exc))
    return exc


async def _readline(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError("AMI line too long") from None
