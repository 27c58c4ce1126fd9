"""Queue and routing configuration, validated once, shared by every engine.

A :class:`Queue` is a service line with a service-level target, a default
call priority, routing steps that relax requirements as a call waits, a
wrap-up time and an optional maximum wait.  Objects here are immutable and
validated on construction: the engines (compiled core and reference model)
trust them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Tuple

from .errors import InvalidInput

__all__ = ("RoutingStep", "Queue", "AGENT_STRATEGIES", "RNA_ACTIONS", "check_level",
           "check_requirements", "check_skills", "check_priority", "check_name")

#: agent choice when a call can go to several idle agents
AGENT_STRATEGIES = (
    "longest_idle",    # agent idle for the longest time
    "least_occupied",  # lowest busy/logged-in ratio, as of when it became available
    "highest_level",   # highest sum of levels on the skills the call requires
    "round_robin",     # rotate: least recently offered a call, then login order
    "fewest_calls",    # fewest calls answered since login
    "random",          # uniform among eligible idle agents, seeded
)

#: what happens to an agent whose phone rang without answer
RNA_ACTIONS = ("pause", "ready")

MAX_LEVEL = 10
MAX_PRIORITY = 9


def check_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 128 or not value.isprintable():
        raise InvalidInput(f"{field_name} must be a non-empty printable str of at most 128 characters, got {value!r}")
    return value


def check_level(skill: object, level: object) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
        raise InvalidInput(f"level of skill {skill!r} must be an int in 1..{MAX_LEVEL}, got {level!r}")
    return level


def check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise InvalidInput(f"priority must be an int in 0..{MAX_PRIORITY}, got {priority!r}")
    return priority


def check_requirements(field_name: str, req: object) -> Tuple[Tuple[str, int], ...]:
    """Normalise ``{"tech": 7}`` to a sorted tuple of (skill, minimum level)."""
    if req is None:
        return ()
    if not isinstance(req, Mapping):
        raise InvalidInput(f"{field_name} must be a mapping of skill name to minimum level, got {req!r}")
    out = []
    for skill, level in req.items():
        check_name(f"skill name in {field_name}", skill)
        out.append((skill, check_level(skill, level)))
    return tuple(sorted(out))


def check_skills(skills: object) -> Tuple[Tuple[str, int], ...]:
    """An agent's skills: mapping of skill name to level 1..10 (may be empty)."""
    return check_requirements("skills", skills)


def _check_seconds(field_name: str, value: object, *, allow_none: bool = False,
                   positive: bool = False) -> Optional[float]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        what = "a positive" if positive else "a non-negative"
        raise InvalidInput(f"{field_name} must be {what} finite number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RoutingStep:
    """From ``after`` seconds in the queue on, a call needs ``requirements``.

    ``overflow`` names another queue: at ``after`` seconds the call leaves for
    it (an ``Overflow`` decision) and starts that queue's steps; its rank
    there counts from the overflow, raised by ``priority_boost``.  An
    overflow step is the last step of its queue.
    """

    after: float = 0.0
    requirements: Mapping[str, int] = field(default_factory=dict)
    overflow: Optional[str] = None
    priority_boost: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", _check_seconds("after", self.after))
        object.__setattr__(self, "requirements", dict(check_requirements("requirements", self.requirements)))
        if self.overflow is not None:
            check_name("overflow", self.overflow)
            if self.requirements:
                raise InvalidInput(f"an overflow step has no requirements of its own, got {self.requirements!r}")
        if isinstance(self.priority_boost, bool) or not isinstance(self.priority_boost, int) \
                or not 0 <= self.priority_boost <= MAX_PRIORITY:
            raise InvalidInput(f"priority_boost must be an int in 0..{MAX_PRIORITY}, got {self.priority_boost!r}")
        if self.priority_boost and self.overflow is None:
            raise InvalidInput("priority_boost applies to overflow steps only")

    @property
    def requirement_tuple(self) -> Tuple[Tuple[str, int], ...]:
        return tuple(sorted(self.requirements.items()))


@dataclass(frozen=True)
class Queue:
    """A service line.

    ``service_level`` is ``(fraction, seconds)``: e.g. ``(0.8, 60)`` means 80 %
    of calls answered within 60 s.  ``priority`` is the default priority of
    calls entering it (0..9, higher is served first).  ``ageing``: every
    ``ageing`` seconds of waiting raise a call's priority by one (up to 9).
    ``max_wait``: after that many seconds in this queue a waiting call exits
    (``Exit(call, queue, "max_wait")``); the dialplan decides what follows.
    """

    name: str
    steps: Tuple[RoutingStep, ...] = (RoutingStep(),)
    priority: int = 0
    service_level: Tuple[float, float] = (0.8, 60.0)
    wrap_up: float = 0.0
    max_wait: Optional[float] = None
    ageing: Optional[float] = None

    def __post_init__(self) -> None:
        check_name("queue name", self.name)
        steps = tuple(self.steps)
        if not steps:
            raise InvalidInput("steps must hold at least one RoutingStep")
        for s in steps:
            if not isinstance(s, RoutingStep):
                raise InvalidInput(f"steps must be RoutingStep objects, got {s!r}")
        if steps[0].after != 0.0:
            raise InvalidInput(f"the first routing step must start at after=0, got {steps[0].after!r}")
        if steps[0].overflow is not None:
            raise InvalidInput("the first routing step cannot be an overflow")
        for a, b in zip(steps, steps[1:]):
            if b.after <= a.after:
                raise InvalidInput(f"routing steps must have strictly increasing after, got {a.after!r} then {b.after!r}")
            if a.overflow is not None:
                raise InvalidInput("an overflow step must be the last routing step")
        for s in steps:
            if s.overflow == self.name:
                raise InvalidInput(f"queue {self.name!r} cannot overflow to itself")
        object.__setattr__(self, "steps", steps)
        check_priority(self.priority)
        sl = self.service_level
        if not (isinstance(sl, tuple) and len(sl) == 2):
            raise InvalidInput(f"service_level must be (fraction, seconds), got {sl!r}")
        frac, secs = sl
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise InvalidInput(f"service_level fraction must be in (0, 1], got {frac!r}")
        object.__setattr__(self, "service_level",
                           (float(frac), _check_seconds("service_level seconds", secs, positive=True)))
        object.__setattr__(self, "wrap_up", _check_seconds("wrap_up", self.wrap_up))
        object.__setattr__(self, "max_wait", _check_seconds("max_wait", self.max_wait, allow_none=True,
                                                            positive=True))
        object.__setattr__(self, "ageing", _check_seconds("ageing", self.ageing, allow_none=True, positive=True))

    @property
    def skills(self) -> Tuple[str, ...]:
        """Every skill named by this queue's routing steps."""
        names = {s for step in self.steps for s in step.requirements}
        return tuple(sorted(names))

    @property
    def overflow_targets(self) -> Tuple[str, ...]:
        return tuple(s.overflow for s in self.steps if s.overflow is not None)


def queue_from_dict(d: Mapping[str, object]) -> Queue:
    """Build a :class:`Queue` from plain data (TOML/JSON configuration)."""
    d = dict(d)
    steps_in = d.pop("steps", None)
    if steps_in is not None:
        if not isinstance(steps_in, Iterable) or isinstance(steps_in, (str, bytes, Mapping)):
            raise InvalidInput(f"steps must be a list of tables, got {steps_in!r}")
        steps = []
        for s in steps_in:
            if not isinstance(s, Mapping):
                raise InvalidInput(f"each routing step must be a table, got {s!r}")
            unknown = set(s) - {"after", "requirements", "overflow", "priority_boost"}
            if unknown:
                raise InvalidInput(f"unknown routing step field(s) {sorted(unknown)!r}")
            steps.append(RoutingStep(**s))
        d["steps"] = tuple(steps)
    if "service_level" in d and isinstance(d["service_level"], list):
        d["service_level"] = tuple(d["service_level"])
    known = {"name", "steps", "priority", "service_level", "wrap_up", "max_wait", "ageing"}
    unknown = set(d) - known
    if unknown:
        raise InvalidInput(f"unknown queue field(s) {sorted(unknown)!r}")
    return Queue(**d)  # type: ignore[arg-type]
