"""Errors of an AGI session; each is an :class:`acd.errors.AcdError`.

* :class:`ChannelHungUp` (alias :data:`AGIHangup`) -- the channel is gone
  (``HANGUP`` line or SIGHUP, 511, ``(hangup)`` in a reply, or the link closed).
* :class:`AGICommandError` -- Asterisk refused the command (510, 520).
* :class:`AGICommandFailed` -- the command ran and reported failure
  (``result=-1``: missing sound file, or the caller hung up -- in that case the
  next command raises :class:`ChannelHungUp`; ``EXEC`` of an unknown
  application).
* :class:`AGITimeout` -- no reply within the session's ``command_timeout``.

Malformed input from a peer raises :class:`acd.errors.ProtocolError`, a bad
argument to a helper :class:`acd.errors.InvalidInput`.
"""

from __future__ import annotations

from acd.errors import AcdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .wire import AGIReply

__all__ = ("AGIError", "ChannelHungUp", "AGIHangup", "AGICommandError", "AGICommandFailed", "AGITimeout")


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
