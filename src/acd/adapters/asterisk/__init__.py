"""Asterisk adapters: AGI (classic script and FastAGI server) and an AMI client.

* :mod:`.agi` -- AGI protocol core, :class:`AGISession` (asyncio) and
  :class:`SyncAGISession`, and the classic AGI script (``python -m
  acd.adapters.asterisk``) that relays a call to the running dispatcher.
* :mod:`.fastagi` -- :class:`FastAGIServer`, routing ``agi://host/script?args``
  to ``async def handler(session, args)``.
* :mod:`.ami` -- :class:`AMIClient`: actions, events, reconnection, Originate.
"""

from .agi import (AGICommandError, AGICommandFailed, AGIEnvironment, AGIError, AGIHangup, AGIProtocol, AGIReply,
                  AGISession, AGITimeout, ChannelHungUp, Command, ReplyParser, Route, SyncAGISession, parse_env_line,
                  parse_reply_line, parse_route, report_error)
from .ami import (AMIActionError, AMIAuthError, AMIClient, AMIConnectionError, AMIError, AMIMessage,
                  AMIOriginateFailed, AMIOutcomeUnknown, AMIResponse, AMITimeout, EventStream)
from .fastagi import FastAGIServer, Handler

__all__ = (
    # AGI
    "AGISession",
    "SyncAGISession",
    "AGIEnvironment",
    "AGIReply",
    "AGIProtocol",
    "ReplyParser",
    "Command",
    "Route",
    "parse_env_line",
    "parse_reply_line",
    "parse_route",
    "report_error",
    "AGIError",
    "ChannelHungUp",
    "AGIHangup",
    "AGICommandError",
    "AGICommandFailed",
    "AGITimeout",
    # FastAGI
    "FastAGIServer",
    "Handler",
    # AMI
    "AMIClient",
    "AMIMessage",
    "AMIResponse",
    "EventStream",
    "AMIError",
    "AMIAuthError",
    "AMIConnectionError",
    "AMIActionError",
    "AMIOriginateFailed",
    "AMIOutcomeUnknown",
    "AMITimeout",
)
