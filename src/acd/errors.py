"""Errors raised by acd.

Every error is an :class:`AcdError`.  Subclasses also inherit the closest
built-in so that callers who already catch ``KeyError``/``ValueError`` keep
working.  Messages are lower-case, name the field and the offending value with
``!r`` and, where it helps, say what is allowed.

A command that raises leaves the engine exactly as it was: both the compiled
core and the reference model validate everything before they mutate anything.
"""

from __future__ import annotations

__all__ = (
    "AcdError",
    "InvalidInput",
    "UnknownAgent",
    "UnknownQueue",
    "UnknownCall",
    "UnknownSkill",
    "DuplicateId",
    "InvalidState",
    "TimeWentBackwards",
    "ProtocolError",
    "JournalError",
    "Fenced",
    "Shutdown",
)


class AcdError(Exception):
    """Base class of every error raised by acd."""


class InvalidInput(AcdError, ValueError):
    """An argument has the wrong type or is out of its allowed range."""


class UnknownAgent(AcdError, KeyError):
    """No agent with that id is known to the engine."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class UnknownQueue(AcdError, KeyError):
    """No queue with that name is configured."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownCall(AcdError, KeyError):
    """No live call with that id (it never arrived or has already ended)."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownSkill(AcdError, KeyError):
    """A requirement names a skill that no queue or agent has declared."""

    def __str__(self) -> str:
        return str(self.args[0])


class DuplicateId(AcdError, ValueError):
    """An id (call, agent, queue) is already in use."""


class InvalidState(AcdError, RuntimeError):
    """The command is not allowed in the current state (e.g. ready while busy)."""


class TimeWentBackwards(AcdError, ValueError):
    """``now`` is earlier than the engine's current time."""


class ProtocolError(AcdError, ValueError):
    """A peer (Asterisk AGI/AMI) sent something that breaks the protocol."""


class JournalError(AcdError, RuntimeError):
    """The command journal cannot be read or written."""


class Fenced(JournalError):
    """This node is no longer the primary: the database refused its write (a newer epoch holds the
    journal).  Nothing of the refused command was recorded; the node must stop acting and follow."""


class Shutdown(AcdError, RuntimeError):
    """The service is stopping: new calls are refused (the dialplan's fallback takes them)."""


# --- message builders shared by the compiled core and the reference model ---
# Both implementations raise through these so that their errors are identical
# (the differential tests compare type and message).


def unknown_agent(agent: object) -> UnknownAgent:
    return UnknownAgent(f"unknown agent {agent!r}")


def unknown_queue(queue: object) -> UnknownQueue:
    return UnknownQueue(f"unknown queue {queue!r}")


def unknown_call(call: object) -> UnknownCall:
    return UnknownCall(f"unknown call {call!r} (never enqueued or already ended)")


def duplicate_call(call: object) -> DuplicateId:
    return DuplicateId(f"call id {call!r} is already in use by a live call")


def duplicate_agent(agent: object) -> DuplicateId:
    return DuplicateId(f"agent {agent!r} is already logged in")


def bad_state(what: str, ident: object, state: str, action: str) -> InvalidState:
    return InvalidState(f"cannot {action} {what} {ident!r}: it is {state}")


def time_backwards(now: float, current: float) -> TimeWentBackwards:
    return TimeWentBackwards(f"now must not go backwards: got {now!r}, engine time is {current!r}")


def bad_now(now: object, max_time: float) -> InvalidInput:
    return InvalidInput(f"now must be a finite number of seconds at most {max_time:g}, got {now!r}")


def bad_priority(priority: object) -> InvalidInput:
    return InvalidInput(f"priority must be an int in 0..9, got {priority!r}")


def queue_in_use(queue: object, why: str) -> InvalidState:
    return InvalidState(f"cannot remove queue {queue!r}: {why}")
