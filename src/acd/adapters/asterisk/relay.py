"""The relay protocol (``acd-agi-relay/1``) between a classic AGI script and the dispatcher.

Classic AGI starts one process per call.  That process (the classic script,
:mod:`.script`) holds no state: it connects to the running dispatcher (``acd
serve``, or any :class:`~acd.adapters.asterisk.fastagi.FastAGIServer` started
with ``unix_path``) over a local UNIX stream socket and relays AGI commands,
so handlers written for FastAGI run unchanged.  Messages are JSON objects, one
per line (``\\n``-terminated, ASCII-only JSON, at most 1 MiB a line):

script -> dispatcher

* first: ``{"op": "hello", "v": 1, "script": "enqueue", "args": {"queue":
  "support"}, "env": {"agi_channel": "...", ...}}``
* one per command received: ``{"op": "reply", "code": 200, "result": "0",
  "data": null, "extra": [["endpos", "1234"]], "message": "", "usage": null}``
* at any time after the hello: ``{"op": "hangup"}`` (SIGHUP, or a ``HANGUP``
  line from Asterisk), at most once

dispatcher -> script

* ``{"op": "command", "name": "STREAM FILE", "args": ["welcome", ""]}`` --
  the script sends it to Asterisk and answers with exactly one ``reply``;
* last: ``{"op": "end", "status": "OK"}`` (or ``"HANGUP"``, ``"ERROR"``); the
  script exits with status 0 (1 for ``ERROR``).

Closing the socket means the other side is gone: the dispatcher treats it as a
hang-up, the script as a lost dispatcher.

Version 2, "raw" (the compiled relay, ``agi_relay.c``): the script's first line
is :data:`RAW_PREAMBLE`; then the socket carries the AGI stream itself, as a
FastAGI connection would: the environment and Asterisk's replies one way (a
SIGHUP becomes a ``HANGUP`` line, as Asterisk sends over FastAGI), command
lines the other, and the dispatcher's last line is :func:`raw_end_line`
(``acd-relay-end OK``), which the script keeps for itself.  The route is
read from the environment as for classic AGI (``agi_arg_1``).  The script
then parses nothing, so it costs a process start-up and no interpreter.  This module is the codec only
(bytes and dicts, no I/O); the script's blocking client is in :mod:`.script`,
the dispatcher's asyncio session in :mod:`.sessions`.
"""

from __future__ import annotations

from acd.errors import InvalidInput, ProtocolError

from . import minijson
from .lines import short
from .routes import Route, validate_route
from .wire import MAX_ARGS, AGIEnvironment, AGIReply, Command, is_result_token

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Final

__all__ = ("RELAY_VERSION", "MAX_RELAY_LINE", "encode", "decode", "hello", "parse_hello", "reply_message",
           "reply_from_message", "command_message", "command_from_message", "HANGUP", "end_message",
           "RAW_PREAMBLE", "RAW_END", "raw_end_line")

RELAY_VERSION: Final = 1
RAW_PREAMBLE: Final = b"acd-agi-relay/2"
"""First line of a raw relay (protocol version 2), without its line end."""
RAW_END: Final = b"acd-relay-end "
MAX_RELAY_LINE: Final = 1 << 20
"""Longest relay line, in bytes (without the line end)."""


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as a line of ASCII JSON."""
    return (minijson.dumps(dict(message)) + "\n").encode("ascii")


def decode(line: bytes, loads: Callable[[str], Any] = minijson.loads) -> dict[str, Any]:
    """One received line as a message (a JSON object with an ``op`` string), or ProtocolError.

    ``loads`` parses the JSON: :func:`.minijson.loads` by default (the script
    does without the json module); the dispatcher passes ``json.loads``, which is
    faster and accepts a superset.
    """
    try:
        message = loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # ProtocolError and UnicodeDecodeError are ValueErrors
        raise ProtocolError(f"relay message is not JSON: {short(line.decode('utf-8', 'replace'))!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("relay message must be a JSON object with an 'op' string")
    return message


HANGUP: Final = encode({"op": "hangup"})


def hello(route: Route, env: Mapping[str, str]) -> bytes:
    return encode({"op": "hello", "v": RELAY_VERSION, "script": route.script, "args": dict(route.args),
                   "env": dict(env)})


def parse_hello(message: Mapping[str, Any]) -> tuple[AGIEnvironment, Route]:
    """Validate a decoded ``hello`` (ProtocolError / InvalidInput)."""
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


def command_message(command: Command) -> bytes:
    return encode({"op": "command", "name": command.name, "args": list(command.args)})


def command_from_message(message: Mapping[str, Any]) -> Command:
    """The AGI command a ``command`` message asks for (ProtocolError when it is not a valid one)."""
    name, args = message.get("name"), message.get("args")
    if not isinstance(name, str) or not isinstance(args, list):
        raise ProtocolError("relay command needs a 'name' string and an 'args' list")
    try:
        return Command(name, tuple(args))
    except InvalidInput as exc:
        raise ProtocolError(f"relay command refused: {exc}") from None


def end_message(status: str) -> bytes:
    return encode({"op": "end", "status": status})


def raw_end_line(status: str) -> bytes:
    """The raw relay's last line from the dispatcher (``status`` as for :func:`end_message`)."""
    return RAW_END + status.encode("ascii") + b"\n"


def reply_message(reply: AGIReply) -> bytes:
    return encode({"op": "reply", "code": reply.code, "result": reply.result, "data": reply.data,
                   "extra": [list(kv) for kv in reply.extra], "message": reply.message, "usage": reply.usage})


def _opt_str(message: Mapping[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_RELAY_LINE):
        raise ProtocolError(f"relay reply field {key!r} must be a string or null")
    return value


def reply_from_message(message: Mapping[str, Any]) -> AGIReply:
    code = message.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
        raise ProtocolError(f"relay reply has a bad code {code!r}")
    extra = message.get("extra") or []
    if not isinstance(extra, list) or len(extra) > MAX_ARGS or not all(
            isinstance(kv, list) and len(kv) == 2 and all(isinstance(x, str) for x in kv) for kv in extra):
        raise ProtocolError("relay reply field 'extra' must be a list of [key, value] strings")
    result = _opt_str(message, "result")
    if code == 200 and (result is None or not is_result_token(result)):
        raise ProtocolError(f"relay 200 reply has a bad result {result!r}")
    return AGIReply(code, result, _opt_str(message, "data"), tuple((k, v) for k, v in extra),
                    _opt_str(message, "message") or "", _opt_str(message, "usage"))
