"""Asterisk adapters: AGI (classic script and FastAGI server) and an AMI client.

* :mod:`.agi` -- every AGI name in one import: the wire format, the sans-I/O
  :class:`AGIProtocol`, :class:`AGISession` (asyncio) and
  :class:`SyncAGISession`, the relay protocol and the classic AGI script
  (``acd-agi``, or ``python -m acd.adapters.asterisk``) that relays a call to
  the running dispatcher (see :mod:`.agi` for the module of each).
* :mod:`.fastagi` -- :class:`FastAGIServer`, routing ``agi://host/script?args``
  to ``async def handler(session, args)``.
* :mod:`.ami` -- :class:`AMIClient`: actions, events, reconnection, Originate.

The names below load on first use, so that the classic AGI script, which
imports this package, pays neither for asyncio nor for the AMI client.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .agi import (AGICommandError, AGICommandFailed, AGIEnvironment, AGIError, AGIHangup, AGIProtocol, AGIReply,
                      AGISession, AGITimeout, ChannelHungUp, Command, ReplyParser, Route, SyncAGISession,
                      parse_env_line, parse_reply_line, parse_route, report_error)
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

_MODULE_OF = {name: "ami" if name.startswith(("AMI", "EventStream")) else
              "fastagi" if name in ("FastAGIServer", "Handler") else "agi" for name in __all__}


if not TYPE_CHECKING:  # type checkers see the imports above, and flag unknown names
    def __getattr__(name: str) -> object:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
