"""Argument checks shared by the compiled core and the reference model.

Both engines call these in the same order so that bad input raises the same
error type with the same message from either one (the differential tests
compare them).  Checks that sit on the hot path (``now``, priority) are
repeated inline in ``_core.pyx`` with the same messages.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Tuple

from . import errors
from .errors import InvalidInput, UnknownSkill
from .policy import AGENT_STRATEGIES, RNA_ACTIONS, check_priority, check_requirements, check_skills

__all__ = ("MAX_TIME", "check_now", "check_id", "check_reason", "engine_options", "agent_skills",
           "call_requirements", "check_priority", "check_preferred", "check_preferred_for",
           "MAX_PREFERRED", "DEFAULT_PREFERRED_FOR")

#: The latest time an engine accepts (seconds, about 317 years): epoch seconds pass, a
#: millisecond timestamp (1.7e12) does not.  A deadline beyond it is never reached.
MAX_TIME = 1e10


def _seconds(value: object) -> Optional[float]:
    """``value`` as a float if it is a finite number of seconds at most MAX_TIME, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        t = float(value)
    except OverflowError:      # an int beyond the float range
        return None
    if not math.isfinite(t) or t > MAX_TIME:
        return None
    return t


def check_now(now: object, current: float) -> float:
    t = _seconds(now)
    if t is None:
        raise errors.bad_now(now, MAX_TIME)
    if t < current:
        raise errors.time_backwards(t, current)
    return t


def check_id(field_name: str, ident: object) -> object:
    """Ids are str or int (Asterisk unique ids, agent numbers)."""
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or (isinstance(ident, str) and not ident):
        raise InvalidInput(f"{field_name} id must be a non-empty str or an int, got {ident!r}")
    return ident


#: at most this many preferred agents per call (a returning caller's agent, a small team)
MAX_PREFERRED = 16
#: how long a call waits for its preferred agents when the caller does not say (seconds)
DEFAULT_PREFERRED_FOR = 60.0


def check_preferred(preferred: object) -> Tuple[object, ...]:
    """Preferred agents of a call: None or a tuple/list of agent ids (duplicates dropped, order kept).
    Ids need not be logged in: a returning caller's agent may have left."""
    if preferred is None:
        return ()
    if not isinstance(preferred, (tuple, list)):
        raise InvalidInput(f"preferred must be a tuple of agent ids or None, got {preferred!r}")
    if len(preferred) > MAX_PREFERRED:
        raise InvalidInput(f"preferred must name at most {MAX_PREFERRED} agents, got {len(preferred)}: {preferred!r}")
    out = []
    for ident in preferred:
        check_id("preferred agent", ident)
        if ident not in out:
            out.append(ident)
    return tuple(out)


def check_preferred_for(seconds: object) -> float:
    """How long a call is offered only to its preferred agents: a positive finite number of seconds."""
    if seconds is None:
        return DEFAULT_PREFERRED_FOR
    t = _seconds(seconds)
    if t is None or t <= 0:
        raise InvalidInput(f"preferred_for must be a positive finite number of seconds, got {seconds!r}")
    return t


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or len(reason) > 128 or not reason.isprintable():
        # printable: a reason is shown on dashboards and written to logs and reports
        raise InvalidInput(f"reason must be a printable str of at most 128 characters, got {reason!r}")
    return reason


def engine_options(agent_strategy: object, seed: object, ring_no_answer: object,
                   no_answer_delay: object, reject_delay: object) -> Tuple[str, int, str, float, float]:
    if agent_strategy not in AGENT_STRATEGIES:
        raise InvalidInput(f"agent_strategy must be one of {AGENT_STRATEGIES!r}, got {agent_strategy!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise InvalidInput(f"seed must be an int in 0..2**64-1, got {seed!r}")
    if ring_no_answer not in RNA_ACTIONS:
        raise InvalidInput(f"ring_no_answer must be one of {RNA_ACTIONS!r}, got {ring_no_answer!r}")
    delays = []
    for name, value in (("no_answer_delay", no_answer_delay), ("reject_delay", reject_delay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InvalidInput(f"{name} must be a non-negative finite number of seconds, got {value!r}")
        delays.append(float(value))
    return agent_strategy, seed, ring_no_answer, delays[0], delays[1]  # type: ignore[return-value]


def _known(skills: Mapping[str, int], pairs: Tuple[Tuple[str, int], ...]) -> None:
    for name, _ in pairs:
        if name not in skills:
            raise UnknownSkill(f"unknown skill {name!r} (declare it with add_skill or in a queue)")


def agent_skills(skills: object, known: Mapping[str, int]) -> Tuple[Tuple[str, int], ...]:
    pairs = check_skills(skills)
    _known(known, pairs)
    return pairs


def call_requirements(req: object, known: Mapping[str, int]) -> Tuple[Tuple[str, int], ...]:
    pairs = check_requirements("requirements", req)
    _known(known, pairs)
    return pairs


def agent_queues(queues: object, known: Mapping[str, object]) -> Optional[Tuple[str, ...]]:
    if queues is None:
        return None
    if isinstance(queues, (str, bytes)) or not hasattr(queues, "__iter__"):
        raise InvalidInput(f"queues must be an iterable of queue names or None, got {queues!r}")
    out = []
    for q in queues:  # type: ignore[union-attr]
        if q not in known:
            raise errors.unknown_queue(q)
        out.append(q)
    return tuple(sorted(set(out)))


def merge_requirements(a: Tuple[Tuple[str, int], ...], b: Tuple[Tuple[str, int], ...]) -> Tuple[Tuple[str, int], ...]:
    """Union of two requirement sets; a skill named in both keeps the higher level."""
    if not b:
        return a
    if not a:
        return b
    d: Dict[str, int] = dict(a)
    for k, v in b:
        if d.get(k, 0) < v:
            d[k] = v
    return tuple(sorted(d.items()))


def check_call_choice(choice: object) -> str:
    from .policy import CALL_CHOICES
    if choice not in CALL_CHOICES:
        raise InvalidInput(f"call_choice must be one of {CALL_CHOICES!r}, got {choice!r}")
    return choice  # type: ignore[return-value]


def check_window(window: object) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 10_000_000:
        raise InvalidInput(f"patience_window must be an int in 0..10000000, got {window!r}")
    return window


def check_at(at: object, now: float) -> float:
    """Time slot of a scheduled call-back: a finite time not before now and at most MAX_TIME."""
    t = _seconds(at)
    if t is None or t < now:
        raise InvalidInput(f"at must be a finite time not before now ({now!r}) and at most {MAX_TIME:g}, got {at!r}")
    return t
