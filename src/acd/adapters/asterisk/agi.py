"""The Asterisk Gateway Interface (AGI), in one import: every AGI name of acd.

The implementation is split by concept, one module each:

======================  =====================================================
:mod:`.lines`           the line reader shared by AGI and the relay
:mod:`.wire`            the wire format: environment, commands, replies
:mod:`.errors`          :class:`AGIError` and its subclasses
:mod:`.protocol`        :class:`AGIProtocol`, the sans-I/O state machine
:mod:`.commands`        helpers (``answer``, ``stream_file``...), reply checks,
                        error reports
:mod:`.routes`          which handler a call runs (:func:`parse_route`)
:mod:`.blocking`        :class:`SyncAGISession` (classic AGI over stdin/stdout)
:mod:`.sessions`        :class:`AGISession` and its asyncio front ends
                        (FastAGI, relay)
:mod:`.relay`           the relay protocol between the classic script and the
                        dispatcher
:mod:`.minijson`        the JSON of the relay, without the json module
:mod:`.script`          the classic AGI script (:func:`main`; ``acd-agi``)
======================  =====================================================

This module re-exports them all (it imports asyncio; the classic script does
not import it).
"""

from __future__ import annotations

from .blocking import SyncAGISession
from .commands import check_reply, error_code, error_commands
from .errors import AGICommandError, AGICommandFailed, AGIError, AGIHangup, AGITimeout, ChannelHungUp
from .protocol import AGIProtocol, ConnectionClosed, EnvironmentReceived, HangupReceived, ReplyReceived
from .relay import MAX_RELAY_LINE, RELAY_VERSION
from .routes import Route, parse_query, parse_route, validate_route
from .script import DEFAULT_SOCKET_PATH, HANGUP_GRACE, main
from .sessions import (DEFAULT_COMMAND_TIMEOUT, AGISession, RelayAGISession, StreamAGISession, read_environment,
                       read_relay_hello, report_error)
from .wire import (HANGUP_NOTICE, MAX_ARGS, MAX_COMMAND_BYTES, MAX_ENV_LINES, MAX_LINE, MAX_USAGE_LINES,
                   AGIEnvironment, AGIReply, Command, EnvironmentParser, ReplyParser, parse_env_line,
                   parse_reply_line, quote_arg)

__all__ = (
    "MAX_LINE",
    "MAX_ENV_LINES",
    "MAX_USAGE_LINES",
    "MAX_COMMAND_BYTES",
    "MAX_ARGS",
    "MAX_RELAY_LINE",
    "RELAY_VERSION",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_COMMAND_TIMEOUT",
    "HANGUP_GRACE",
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
    "HANGUP_NOTICE",
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
    "parse_query",
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
    "error_commands",
    "main",
)
