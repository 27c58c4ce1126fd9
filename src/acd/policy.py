"""Queue and routing configuration, validated once, shared by every engine.

A :class:`Queue` is a service line with a service-level target, a default
call priority, routing steps that relax requirements as a call waits, a
wrap-up time and an optional maximum wait.  Objects here are immutable and
validated on construction: the engines (compiled core and reference model)
trust them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Iterable, Mapping, Optional, Sequence, Tuple

from .errors import InvalidInput

__all__ = ("RoutingStep", "Queue", "AGENT_STRATEGIES", "RNA_ACTIONS", "CALL_CHOICES", "JOIN_RULES", "WAIT_RULES",
           "check_level", "check_requirements", "check_skills", "check_priority", "check_name", "check_targets")

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

#: how a freed agent chooses among the waiting calls it can take
CALL_CHOICES = (
    "priority_fifo",   # highest (aged) priority, then first come first served
    "service_level",   # highest priority, then the call furthest into its queue's SL target (wait / target)
    "cmu_theta",       # highest c*mu/theta index of its class (Atar, Giat & Shimkin 2010), then FIFO
)

#: join_when_no_agents: what a caller meets when no eligible agent is staffed ("overflow:<queue>" too)
JOIN_RULES = ("accept", "refuse")

#: if_wait_over["then"]: what a joining caller whose estimated wait is too long meets ("overflow:<queue>" too)
WAIT_RULES = ("offer_callback", "exit")

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

    Abandonment and call-back (see docs/engine.md):

    * ``cost``: weight of an abandoned call of this queue in the ``cmu_theta``
      call choice (a class's cost is ``cost * (priority + 1)``).
    * ``expected_handle_time`` / ``expected_patience``: priors (seconds) of the
      online service-rate and abandonment-rate estimates, each worth one
      observation.
    * ``announce_on_join``: ``Announce(call, position, ewt)`` when a caller
      joins and no agent takes it at once; ``announce_every``: every so many
      seconds, an ``Announce`` for every caller waiting in the queue.
    * ``callback_threshold``: offer a call-back (``OfferCallback``) to a
      joining caller whose estimated wait exceeds it; ``callback_risk``: or
      whose predicted probability of abandoning exceeds it.
    * ``callback_retry_delay`` / ``callback_attempts``: a dial-back that fails
      is retried after the delay, up to that many attempts in all.
    * ``scheduled_boost``: priority added to a scheduled call-back when its
      slot comes.

    Queue-state rules (admission of live callers; see docs/queue-rules.md):

    * ``max_length``: a caller joining a queue that already has that many live
      callers in line (call-backs not counted) gets ``Exit(call, queue, "full")``.
    * ``join_when_no_agents``: ``"accept"`` (default), ``"refuse"``
      (``Exit(call, queue, "no_agents")``) or ``"overflow:<queue>"`` when no
      eligible agent is staffed (logged in, not paused) as the caller joins.
    * ``leave_when_no_agents``: live callers in line leave with
      ``Exit(call, queue, "no_agents")`` when the last eligible staffed agent
      logs out or pauses.
    * ``if_wait_over``: ``{"seconds": s, "then": "offer_callback" | "exit" |
      "overflow:<queue>"}``: when a joining caller's estimated wait exceeds
      ``s``: an ``OfferCallback``, ``Exit(call, queue, "wait_too_long")`` or an
      ``Overflow`` to that queue.
    """

    name: str
    steps: Tuple[RoutingStep, ...] = (RoutingStep(),)
    priority: int = 0
    service_level: Tuple[float, float] = (0.8, 60.0)
    wrap_up: float = 0.0
    max_wait: Optional[float] = None
    ageing: Optional[float] = None
    cost: float = 1.0
    expected_handle_time: float = 300.0
    expected_patience: float = 180.0
    announce_on_join: bool = False
    announce_every: Optional[float] = None
    callback_threshold: Optional[float] = None
    callback_risk: Optional[float] = None
    callback_retry_delay: float = 120.0
    callback_attempts: int = 3
    scheduled_boost: int = 1
    max_length: Optional[int] = None
    join_when_no_agents: str = "accept"
    leave_when_no_agents: bool = False
    if_wait_over: Optional[Mapping[str, object]] = None

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
        if isinstance(self.cost, bool) or not isinstance(self.cost, (int, float)) or not math.isfinite(self.cost) \
                or self.cost <= 0:
            raise InvalidInput(f"cost must be a positive finite number, got {self.cost!r}")
        object.__setattr__(self, "cost", float(self.cost))
        for name in ("expected_handle_time", "expected_patience", "callback_retry_delay"):
            object.__setattr__(self, name, _check_seconds(name, getattr(self, name), positive=True))
        if not isinstance(self.announce_on_join, bool):
            raise InvalidInput(f"announce_on_join must be a bool, got {self.announce_on_join!r}")
        object.__setattr__(self, "announce_every", _check_seconds("announce_every", self.announce_every,
                                                                  allow_none=True, positive=True))
        object.__setattr__(self, "callback_threshold", _check_seconds("callback_threshold", self.callback_threshold,
                                                                      allow_none=True))
        r = self.callback_risk
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r < 1):
            raise InvalidInput(f"callback_risk must be a probability in [0, 1) or None, got {r!r}")
        if r is not None:
            object.__setattr__(self, "callback_risk", float(r))
        attempts = self.callback_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
            raise InvalidInput(f"callback_attempts must be an int in 1..20, got {attempts!r}")
        boost = self.scheduled_boost
        if isinstance(boost, bool) or not isinstance(boost, int) or not 0 <= boost <= MAX_PRIORITY:
            raise InvalidInput(f"scheduled_boost must be an int in 0..{MAX_PRIORITY}, got {boost!r}")
        n = self.max_length
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000_000):
            raise InvalidInput(f"max_length must be None (unlimited) or an int in 1..1000000000, got {n!r}")
        self._check_rule("join_when_no_agents", self.join_when_no_agents, JOIN_RULES)
        if not isinstance(self.leave_when_no_agents, bool):
            raise InvalidInput(f"leave_when_no_agents must be a bool, got {self.leave_when_no_agents!r}")
        w = self.if_wait_over
        if w is not None:
            if not isinstance(w, Mapping) or set(w) != {"seconds", "then"}:
                raise InvalidInput('if_wait_over must be None or a table {"seconds": s, "then": action}, '
                                   f"got {w!r}")
            over = _check_seconds("if_wait_over seconds", w["seconds"])
            self._check_rule("if_wait_over then", w["then"], WAIT_RULES)
            object.__setattr__(self, "if_wait_over", {"seconds": over, "then": w["then"]})

    def _check_rule(self, field_name: str, value: object, words: Tuple[str, ...]) -> None:
        choices = " | ".join(f'"{x}"' for x in words + ("overflow:<queue>",))
        if not isinstance(value, str) or not (value in words or value.startswith("overflow:")):
            raise InvalidInput(f"{field_name} must be {choices}, got {value!r}")
        if value.startswith("overflow:"):
            target = value[len("overflow:"):]
            check_name(f"{field_name} overflow queue", target)
            if target == self.name:
                raise InvalidInput(f"{field_name}: queue {self.name!r} cannot overflow to itself")

    @property
    def join_overflow(self) -> Optional[str]:
        """The queue named by ``join_when_no_agents="overflow:<queue>"``, else None."""
        r = self.join_when_no_agents
        return r[len("overflow:"):] if r.startswith("overflow:") else None

    @property
    def wait_overflow(self) -> Optional[str]:
        """The queue named by ``if_wait_over["then"] = "overflow:<queue>"``, else None."""
        if self.if_wait_over is None:
            return None
        r = str(self.if_wait_over["then"])
        return r[len("overflow:"):] if r.startswith("overflow:") else None

    @property
    def has_join_rules(self) -> bool:
        return (self.max_length is not None or self.join_when_no_agents != "accept"
                or self.if_wait_over is not None)

    @property
    def skills(self) -> Tuple[str, ...]:
        """Every skill named by this queue's routing steps."""
        names = {s for step in self.steps for s in step.requirements}
        return tuple(sorted(names))

    @property
    def overflow_targets(self) -> Tuple[str, ...]:
        """Every queue this one may send a call to: routing-step overflows, then the queue-state rules'."""
        out = [s.overflow for s in self.steps if s.overflow is not None]
        for t in (self.join_overflow, self.wait_overflow):
            if t is not None and t not in out:
                out.append(t)
        return tuple(out)


def check_targets(queue: Queue, known: object) -> None:
    """At ``add_queue``: every queue ``queue`` may overflow to must be configured already (so that
    overflow chains end: a target always comes before the queues sending calls to it)."""
    from . import errors
    for s in queue.steps:
        if s.overflow is not None and s.overflow not in known:  # type: ignore[operator]
            raise errors.unknown_queue(s.overflow)
    for field_name, target in (("join_when_no_agents", queue.join_overflow),
                               ("if_wait_over", queue.wait_overflow)):
        if target is not None and target not in known:  # type: ignore[operator]
            raise errors.UnknownQueue(f"queue {queue.name!r}: {field_name} overflows to {target!r}, "
                                      "which is not configured (add the target queue first)")


def check_join_targets_before(queue: Queue, index: int, order: Sequence[str]) -> None:
    """At ``update_queue``: the queues a joining call may be sent on to (``join_when_no_agents``,
    ``if_wait_over``) must be configured before this one (at ``order.index < index``), as
    ``add_queue`` guarantees, so that overflows at join cannot loop."""
    from . import errors
    for field_name, target in (("join_when_no_agents", queue.join_overflow),
                               ("if_wait_over", queue.wait_overflow)):
        if target is not None and order.index(target) >= index:
            raise errors.InvalidInput(f"queue {queue.name!r}: {field_name} overflows to {target!r}, which is "
                                      "configured after it (or is itself): a call could be sent round in a loop")


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
    known = {f.name for f in fields(Queue)}
    unknown = set(d) - known
    if unknown:
        raise InvalidInput(f"unknown queue field(s) {sorted(unknown)!r}")
    return Queue(**d)  # type: ignore[arg-type]
