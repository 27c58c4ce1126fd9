"""Simulation scenarios: plain, validated dataclasses, loadable from TOML.

A scenario is one day (or any span) of a contact centre: the service lines
(:class:`acd.Queue`), the call types and their mix, the caller segments,
the arrival profile per interval, the agent groups with their skills,
shifts and pauses, the ring time and the call-back (virtual hold) offer.
Every field is checked when the scenario is built; a mistake raises
:class:`acd.errors.InvalidInput` naming the field and the value, e.g.
``call_types[2].queue names an unknown queue 'suport'``.

``acd scenarios export public_agency`` writes a commented example, and
``acd scenarios export small_helpdesk`` one with a transfer (``transfer =
{ queue, share, service, priority, requirements }`` in a call type).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .._tables import TomlTable
from ..errors import AcdError, InvalidInput
from ..policy import AGENT_STRATEGIES, Queue, check_name, check_priority, check_requirements, queue_from_dict
from .dists import Dist, dist_from_spec

#: documented bounds of a scenario (checked before a run starts; see docs/simulator.md)
MAX_AGENTS = 100_000            # distinct agents, all groups together
MAX_CALLS = 100_000_000         # expected calls of the day (the sum of the arrivals)
MAX_INTERVALS = 10_000          # (end - start) / interval

__all__ = ("Scenario", "CallType", "Transfer", "Segment", "AgentGroup", "Pause", "Callback", "Targets",
           "load_scenario", "scenario_from_dict", "parse_clock", "format_clock", "bundled_scenario",
           "bundled_scenarios", "bundled_scenario_text", "MAX_AGENTS", "MAX_CALLS",
           "MAX_INTERVALS")


# ------------------------------------------------------------------ small checks

def parse_clock(field_name: str, value: object) -> float:
    """Seconds since midnight from ``"HH:MM"``, ``"HH:MM:SS"``, a TOML local time, or a number of seconds."""
    if isinstance(value, _dt.time):
        return value.hour * 3600.0 + value.minute * 60.0 + value.second + value.microsecond / 1e6
    if isinstance(value, str):
        parts = value.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            nums = [int(p) for p in parts]
        except ValueError:
            raise InvalidInput(f"{field_name} must be a time \"HH:MM\" or seconds, got {value!r}") from None
        h, m = nums[0], nums[1]
        s = nums[2] if len(nums) == 3 else 0
        if not (0 <= h <= 48 and 0 <= m < 60 and 0 <= s < 60):
            raise InvalidInput(f"{field_name} must be a time \"HH:MM\" or seconds, got {value!r}")
        return h * 3600.0 + m * 60.0 + s
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    raise InvalidInput(f"{field_name} must be a time \"HH:MM\" or seconds, got {value!r}")


def format_clock(t: float) -> str:
    """``"HH:MM"`` (``"HH:MM:SS"`` when seconds are not whole minutes)."""
    t = int(round(t))
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}" if s == 0 else f"{h:02d}:{m:02d}:{s:02d}"


def _number(field_name: str, value: object, *, lo: float = -math.inf, hi: float = math.inf,
            lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < lo or value > hi or (lo_open and value == lo):
        rng = f"in ({lo:g}, {hi:g}]" if lo_open else f"in [{lo:g}, {hi:g}]"
        raise InvalidInput(f"{field_name} must be a finite number {rng}, got {value!r}")
    return float(value)


def _prob(field_name: str, value: object) -> float:
    return _number(field_name, value, lo=0.0, hi=1.0)


def _int(field_name: str, value: object, *, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise InvalidInput(f"{field_name} must be an int >= {lo}, got {value!r}")
    return value


class _Table(TomlTable):
    document = "scenario"


def _list(field_name: str, value: object) -> list:
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{field_name} must be a list, got {value!r}")
    return list(value)


# ------------------------------------------------------------------ parts

@dataclass(frozen=True)
class Targets:
    """Service objectives the reports grade against."""

    service_level: Tuple[float, float] = (0.8, 60.0)   # 80 % answered within 60 s
    answer_rate: float = 0.85                          # answered / offered, minimum
    answer_rate_excellent: float = 0.92
    short_abandon: float = 5.0                          # abandons before this are not counted

    def __post_init__(self) -> None:
        sl = tuple(self.service_level) if isinstance(self.service_level, (list, tuple)) else self.service_level
        if not (isinstance(sl, tuple) and len(sl) == 2):
            raise InvalidInput(f"targets.service_level must be [fraction, seconds], got {self.service_level!r}")
        object.__setattr__(self, "service_level", (_number("targets.service_level fraction", sl[0], lo=0, hi=1,
                                                           lo_open=True),
                                                   _number("targets.service_level seconds", sl[1], lo=0,
                                                           lo_open=True)))
        object.__setattr__(self, "answer_rate", _prob("targets.answer_rate", self.answer_rate))
        object.__setattr__(self, "answer_rate_excellent",
                           _prob("targets.answer_rate_excellent", self.answer_rate_excellent))
        object.__setattr__(self, "short_abandon", _number("targets.short_abandon", self.short_abandon, lo=0))


@dataclass(frozen=True)
class Transfer:
    """After the first conversation, a ``share`` of a call type's answered calls is transferred to
    ``queue``: the caller waits in that line (patience drawn again from the call type's) and talks
    for ``service`` more with an agent there."""

    queue: str
    share: float
    service: Dist
    priority: Optional[int] = None             # None: the target queue's default priority
    requirements: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("transfer queue", self.queue)
        object.__setattr__(self, "share", _prob(f"transfer to {self.queue!r} share", self.share))
        if self.priority is not None:
            check_priority(self.priority)
        object.__setattr__(self, "requirements",
                           dict(check_requirements(f"transfer to {self.queue!r} requirements", self.requirements)))
        if not isinstance(self.service, Dist) or self.service.kind == "infinite":
            raise InvalidInput(f"transfer to {self.queue!r} service must be a finite Dist, got {self.service!r}")


@dataclass(frozen=True)
class CallType:
    """A kind of call: where it goes, how long it talks, how long the caller waits, and
    whether some of its calls are transferred to another line after the first conversation."""

    name: str
    queue: str
    share: float
    service: Dist
    patience: Dist = Dist.infinite()
    priority: Optional[int] = None             # None: the queue's default priority
    requirements: Mapping[str, int] = field(default_factory=dict)
    transfer: Optional[Transfer] = None

    def __post_init__(self) -> None:
        check_name("call type name", self.name)
        if self.transfer is not None and not isinstance(self.transfer, Transfer):
            raise InvalidInput(f"call type {self.name!r} transfer must be a Transfer, got {self.transfer!r}")
        check_name(f"call type {self.name!r} queue", self.queue)
        object.__setattr__(self, "share", _number(f"call type {self.name!r} share", self.share, lo=0))
        if self.priority is not None:
            check_priority(self.priority)
        object.__setattr__(self, "requirements",
                           dict(check_requirements(f"call type {self.name!r} requirements", self.requirements)))
        for f in ("service", "patience"):
            if not isinstance(getattr(self, f), Dist):
                raise InvalidInput(f"call type {self.name!r} {f} must be a Dist, got {getattr(self, f)!r}")
        if self.service.kind == "infinite":
            raise InvalidInput(f"call type {self.name!r} service cannot be infinite")


@dataclass(frozen=True)
class Segment:
    """A caller population crossing every call type (citizens, professionals…).

    ``priority`` (if set) replaces the call type's; ``priority_boost`` adds to
    it; ``requirements`` are added to the call's; the factors stretch the
    service and patience draws.
    """

    name: str
    share: float
    priority: Optional[int] = None
    priority_boost: int = 0
    requirements: Mapping[str, int] = field(default_factory=dict)
    patience_factor: float = 1.0
    service_factor: float = 1.0

    def __post_init__(self) -> None:
        check_name("segment name", self.name)
        object.__setattr__(self, "share", _number(f"segment {self.name!r} share", self.share, lo=0))
        if self.priority is not None:
            check_priority(self.priority)
        if isinstance(self.priority_boost, bool) or not isinstance(self.priority_boost, int) \
                or not 0 <= self.priority_boost <= 9:
            raise InvalidInput(f"segment {self.name!r} priority_boost must be an int in 0..9, "
                               f"got {self.priority_boost!r}")
        object.__setattr__(self, "requirements",
                           dict(check_requirements(f"segment {self.name!r} requirements", self.requirements)))
        object.__setattr__(self, "patience_factor", _number(f"segment {self.name!r} patience_factor",
                                                            self.patience_factor, lo=0, lo_open=True))
        object.__setattr__(self, "service_factor", _number(f"segment {self.name!r} service_factor",
                                                           self.service_factor, lo=0, lo_open=True))


@dataclass(frozen=True)
class Pause:
    """A planned pause (break, lunch, training) for every agent of a group.

    Agent ``k`` of ``n`` starts it at ``start + spread * k / n`` (staggered),
    or as soon as it finishes its current call, for ``duration`` seconds.
    """

    start: float
    duration: float
    spread: float = 0.0
    reason: str = "break"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _number("pause start", self.start, lo=0))
        object.__setattr__(self, "duration", _number("pause duration", self.duration, lo=0, lo_open=True))
        object.__setattr__(self, "spread", _number("pause spread", self.spread, lo=0))
        if not isinstance(self.reason, str) or not 0 < len(self.reason) <= 128:
            raise InvalidInput(f"pause reason must be a non-empty str of at most 128 characters, got {self.reason!r}")


@dataclass(frozen=True)
class AgentGroup:
    """Agents sharing a skill profile, the queues they serve and a schedule.

    Either ``count`` agents working ``shift`` (``(start, end)`` seconds since
    midnight; ``None`` = the whole scenario, staying until the last call has
    ended), or ``staffing``: agents logged in per interval (as produced by
    ``acd staff``), in which case ``count`` is ignored.
    """

    name: str
    count: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: Optional[Tuple[str, ...]] = None
    shift: Optional[Tuple[float, float]] = None
    pauses: Tuple[Pause, ...] = ()
    staffing: Optional[Tuple[int, ...]] = None

    def __post_init__(self) -> None:
        check_name("agent group name", self.name)
        where = f"agent group {self.name!r}"
        _int(f"{where} count", self.count)
        object.__setattr__(self, "skills", dict(check_requirements(f"{where} skills", self.skills)))
        if self.queues is not None:
            qs = self.queues
            if isinstance(qs, str) or not isinstance(qs, (list, tuple)):
                raise InvalidInput(f"{where} queues must be a list of queue names, got {qs!r}")
            for q in qs:
                check_name(f"{where} queue", q)
            object.__setattr__(self, "queues", tuple(qs))
        if self.shift is not None:
            if not isinstance(self.shift, (list, tuple)) or len(self.shift) != 2:
                raise InvalidInput(f"{where} shift must be [start, end], got {self.shift!r}")
            s, e = self.shift
            if not (isinstance(s, (int, float)) and isinstance(e, (int, float)) and 0 <= s < e):
                raise InvalidInput(f"{where} shift must have start < end, got {self.shift!r}")
            object.__setattr__(self, "shift", (float(s), float(e)))
        pauses = tuple(self.pauses)
        for p in pauses:
            if not isinstance(p, Pause):
                raise InvalidInput(f"{where} pauses must be Pause objects, got {p!r}")
        object.__setattr__(self, "pauses", pauses)
        if self.staffing is not None:
            st = self.staffing
            if not isinstance(st, (list, tuple)):
                raise InvalidInput(f"{where} staffing must be a list of agent counts per interval, got {st!r}")
            for n in st:
                _int(f"{where} staffing entry", n)
            object.__setattr__(self, "staffing", tuple(st))

    @property
    def size(self) -> int:
        """Number of distinct agents in the group."""
        return max(self.staffing, default=0) if self.staffing is not None else self.count


@dataclass(frozen=True)
class Callback:
    """Virtual hold: offer a call-back when the expected wait is long.

    When a caller joins and no agent takes the call at once, a call-back is
    offered if the expected wait exceeds ``threshold`` seconds (estimated by
    the engine when it supports call-backs, else by the simulator as calls in
    line x mean handle time / agents logged in for the queue); the caller
    accepts with probability ``accept``.  An accepted caller hangs up but
    keeps their place in line (they no longer abandon).  When an agent is
    assigned, it dials back: the caller answers with probability ``reach``
    after ``dial_ring`` seconds; otherwise the attempt gives up after
    ``no_answer`` seconds and, while ``retries`` are left, the call goes back
    in line ``retry_delay`` seconds later.  ``queues``: where call-backs are
    offered (None: every queue).
    """

    enabled: bool = False
    threshold: float = 120.0
    accept: float = 0.5
    reach: float = 0.85
    dial_ring: Dist = Dist.fixed(10.0)
    no_answer: float = 30.0
    retries: int = 1
    retry_delay: float = 600.0
    queues: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise InvalidInput(f"callback.enabled must be true or false, got {self.enabled!r}")
        object.__setattr__(self, "threshold", _number("callback.threshold", self.threshold, lo=0))
        object.__setattr__(self, "accept", _prob("callback.accept", self.accept))
        object.__setattr__(self, "reach", _prob("callback.reach", self.reach))
        if not isinstance(self.dial_ring, Dist) or self.dial_ring.kind == "infinite":
            raise InvalidInput(f"callback.dial_ring must be a finite Dist, got {self.dial_ring!r}")
        object.__setattr__(self, "no_answer", _number("callback.no_answer", self.no_answer, lo=0))
        _int("callback.retries", self.retries)
        object.__setattr__(self, "retry_delay", _number("callback.retry_delay", self.retry_delay, lo=0))
        if self.queues is not None:
            if isinstance(self.queues, str) or not isinstance(self.queues, (list, tuple)):
                raise InvalidInput(f"callback.queues must be a list of queue names, got {self.queues!r}")
            object.__setattr__(self, "queues", tuple(self.queues))


# ------------------------------------------------------------------ scenario

@dataclass(frozen=True)
class Scenario:
    """One simulated span of a contact centre.  Times are seconds since midnight.

    ``arrivals`` holds the expected number of calls of each interval
    (Poisson, uniform within the interval).  Shares of call types and of
    segments are relative weights (normalised).
    """

    name: str
    start: float
    end: float
    interval: float
    queues: Tuple[Queue, ...]
    call_types: Tuple[CallType, ...]
    agents: Tuple[AgentGroup, ...]
    arrivals: Tuple[float, ...]
    segments: Tuple[Segment, ...] = (Segment("all", 1.0),)
    ring: Dist = Dist.fixed(0.0)
    callback: Callback = Callback()
    targets: Targets = Targets()
    agent_strategy: str = "longest_idle"
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        check_name("scenario name", self.name)
        start = _number("start", self.start, lo=0)
        end = _number("end", self.end, lo=0)
        if end <= start:
            raise InvalidInput(f"end must be after start, got start={format_clock(start)!r}, end={format_clock(end)!r}")
        interval = _number("interval", self.interval, lo=0, lo_open=True)
        n_int = (end - start) / interval
        if abs(n_int - round(n_int)) > 1e-9:
            raise InvalidInput(f"interval must divide end - start ({end - start:g} s), got {interval!r}")
        n_int = int(round(n_int))
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "interval", interval)
        if self.agent_strategy not in AGENT_STRATEGIES:
            raise InvalidInput(f"agent_strategy must be one of {AGENT_STRATEGIES!r}, got {self.agent_strategy!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2 ** 63:
            raise InvalidInput(f"seed must be an int in 0..2**63-1, got {self.seed!r}")
        if not isinstance(self.ring, Dist) or self.ring.kind == "infinite":
            raise InvalidInput(f"ring must be a finite Dist, got {self.ring!r}")
        # queues: unique names, overflow targets defined earlier (the engine's rule)
        queues = tuple(self.queues)
        if not queues:
            raise InvalidInput("queues must hold at least one queue")
        names: Dict[str, Queue] = {}
        for i, q in enumerate(queues):
            if not isinstance(q, Queue):
                raise InvalidInput(f"queues[{i}] must be an acd.Queue, got {q!r}")
            if q.name in names:
                raise InvalidInput(f"queues[{i}].name {q.name!r} is used twice")
            for t in q.overflow_targets:
                if t not in names:
                    raise InvalidInput(f"queues[{i}] ({q.name!r}) overflows to {t!r}, which must be a queue "
                                       f"listed before it")
            names[q.name] = q
        object.__setattr__(self, "queues", queues)
        # arrivals
        arr = tuple(self.arrivals)
        if len(arr) != n_int:
            raise InvalidInput(f"arrivals must give one value per interval ({n_int} intervals of "
                               f"{interval:g} s from {format_clock(start)} to {format_clock(end)}), got {len(arr)}")
        arr = tuple(_number(f"arrivals[{i}]", v, lo=0) for i, v in enumerate(arr))
        object.__setattr__(self, "arrivals", arr)
        # call types
        cts = tuple(self.call_types)
        if not cts:
            raise InvalidInput("call_types must hold at least one call type")
        seen = set()
        for i, ct in enumerate(cts):
            if not isinstance(ct, CallType):
                raise InvalidInput(f"call_types[{i}] must be a CallType, got {ct!r}")
            if ct.name in seen:
                raise InvalidInput(f"call_types[{i}].name {ct.name!r} is used twice")
            seen.add(ct.name)
            if ct.queue not in names:
                raise InvalidInput(f"call_types[{i}].queue names an unknown queue {ct.queue!r}")
            if ct.transfer is not None and ct.transfer.queue not in names:
                raise InvalidInput(f"call_types[{i}].transfer.queue names an unknown queue {ct.transfer.queue!r}")
        if sum(ct.share for ct in cts) <= 0:
            raise InvalidInput("call_types shares must not all be 0")
        object.__setattr__(self, "call_types", cts)
        segs = tuple(self.segments)
        if not segs:
            raise InvalidInput("segments must hold at least one segment (or be left out)")
        seen = set()
        for i, sg in enumerate(segs):
            if not isinstance(sg, Segment):
                raise InvalidInput(f"segments[{i}] must be a Segment, got {sg!r}")
            if sg.name in seen:
                raise InvalidInput(f"segments[{i}].name {sg.name!r} is used twice")
            seen.add(sg.name)
        if sum(sg.share for sg in segs) <= 0:
            raise InvalidInput("segments shares must not all be 0")
        object.__setattr__(self, "segments", segs)
        # agents
        groups = tuple(self.agents)
        seen = set()
        skills_known = {s for q in queues for s in q.skills}
        for i, g in enumerate(groups):
            if not isinstance(g, AgentGroup):
                raise InvalidInput(f"agents[{i}] must be an AgentGroup, got {g!r}")
            if g.name in seen:
                raise InvalidInput(f"agents[{i}].name {g.name!r} is used twice")
            seen.add(g.name)
            for qn in g.queues or ():
                if qn not in names:
                    raise InvalidInput(f"agents[{i}] ({g.name!r}) queues names an unknown queue {qn!r}")
            if g.staffing is not None and len(g.staffing) != n_int:
                raise InvalidInput(f"agents[{i}] ({g.name!r}) staffing must give one count per interval "
                                   f"({n_int}), got {len(g.staffing)}")
            skills_known |= set(g.skills)
        object.__setattr__(self, "agents", groups)
        for i, ct in enumerate(cts):
            for s in list(ct.requirements) + list(ct.transfer.requirements if ct.transfer else ()):
                if s not in skills_known:
                    raise InvalidInput(f"call_types[{i}] ({ct.name!r}) requires skill {s!r}, which no queue "
                                       f"or agent group declares")
        for i, sg in enumerate(segs):
            for s in sg.requirements:
                if s not in skills_known:
                    raise InvalidInput(f"segments[{i}] ({sg.name!r}) requires skill {s!r}, which no queue "
                                       f"or agent group declares")
        if self.callback.queues is not None:
            for qn in self.callback.queues:
                if qn not in names:
                    raise InvalidInput(f"callback.queues names an unknown queue {qn!r}")
        if not isinstance(self.targets, Targets):
            raise InvalidInput(f"targets must be a Targets, got {self.targets!r}")
        if not isinstance(self.description, str):
            raise InvalidInput(f"description must be a str, got {self.description!r}")
        if n_int > MAX_INTERVALS:
            raise InvalidInput(f"{n_int:,} intervals (end - start / interval) is above the limit of "
                               f"{MAX_INTERVALS:,}")
        n_agents = sum(g.size for g in groups)
        if n_agents > MAX_AGENTS:
            raise InvalidInput(f"agents: {n_agents:,} agents in all groups is above the limit of {MAX_AGENTS:,}")
        calls = float(sum(self.arrivals))
        if calls > MAX_CALLS:
            raise InvalidInput(f"arrivals: {calls:,.0f} expected calls is above the limit of {MAX_CALLS:,}")

    # ---- derived
    @property
    def n_intervals(self) -> int:
        return len(self.arrivals)

    @property
    def interval_starts(self) -> List[float]:
        return [self.start + i * self.interval for i in range(self.n_intervals)]

    @property
    def queue_names(self) -> Tuple[str, ...]:
        return tuple(q.name for q in self.queues)

    @property
    def expected_calls(self) -> float:
        return float(sum(self.arrivals))

    def mix(self) -> List[Tuple[CallType, Segment, float]]:
        """Every (call type, segment) pair with its share of volume (summing to 1)."""
        ts = sum(ct.share for ct in self.call_types)
        ss = sum(sg.share for sg in self.segments)
        return [(ct, sg, ct.share / ts * sg.share / ss) for ct in self.call_types for sg in self.segments
                if ct.share > 0 and sg.share > 0]

    def queue_load(self) -> Dict[str, Tuple[List[float], float, float]]:
        """Per queue: expected calls per interval, mean talk time, mean patience (inf if none).

        Mean talk and patience are volume-weighted over the call types and
        segments entering that queue, transferred calls included (counted in
        the interval their first call arrived, as if every call were
        answered: a slight overestimate); used by staffing and call-back EWT.
        """
        out: Dict[str, Tuple[List[float], float, float]] = {}
        mix = self.mix()
        # (call type, segment, volume share, mean talk) of every stream entering a queue
        streams: Dict[str, List[Tuple[CallType, Segment, float, float]]] = {q.name: [] for q in self.queues}
        for ct, sg, w in mix:
            streams[ct.queue].append((ct, sg, w, ct.service.mean * sg.service_factor))
            if ct.transfer is not None and ct.transfer.share > 0:
                tr = ct.transfer
                streams[tr.queue].append((ct, sg, w * tr.share, tr.service.mean * sg.service_factor))
        for q in self.queues:
            parts = [(ct, sg, w) for ct, sg, w, _ in streams[q.name]]
            share = sum(w for _, _, w in parts)
            if share <= 0:
                out[q.name] = ([0.0] * self.n_intervals, 0.0, math.inf)
                continue
            talk = sum(w * m for _, _, w, m in streams[q.name]) / share
            pats = [ct.patience.mean * sg.patience_factor for ct, sg, _ in parts]
            if all(math.isinf(p) for p in pats):
                pat = math.inf
            else:
                # harmonic mean of finite patience (abandon rates add); infinite ones count as 0 rate
                rate = sum(w / (ct.patience.mean * sg.patience_factor) for ct, sg, w in parts) / share
                pat = 1.0 / rate if rate > 0 else math.inf
            out[q.name] = ([a * share for a in self.arrivals], talk, pat)
        return out

    # ---- variants
    def replace(self, **changes: Any) -> "Scenario":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def scaled(self, factor: float) -> "Scenario":
        """Volume and every agent count multiplied by ``factor`` (counts rounded up, at least 1 if > 0)."""
        f = _number("scale", factor, lo=0, lo_open=True)

        def n(x: int) -> int:
            return 0 if x == 0 else max(1, math.ceil(x * f - 1e-9))

        groups = tuple(dataclasses.replace(g, count=n(g.count),
                                           staffing=None if g.staffing is None else tuple(n(x) for x in g.staffing))
                       for g in self.agents)
        try:
            return self.replace(arrivals=tuple(a * f for a in self.arrivals), agents=groups)
        except InvalidInput as e:
            raise InvalidInput(f"scale {f:g}: {e}") from None

    def with_staffing(self, staffing: Mapping[str, Sequence[int]]) -> "Scenario":
        """Agent groups named in ``staffing`` get that per-interval schedule."""
        names = {g.name for g in self.agents}
        for k in staffing:
            if k not in names:
                raise InvalidInput(f"with_staffing names an unknown agent group {k!r}")
        groups = tuple(dataclasses.replace(g, staffing=tuple(int(x) for x in staffing[g.name]))
                       if g.name in staffing else g for g in self.agents)
        return self.replace(agents=groups)

    def with_callback(self, enabled: bool = True, **changes: Any) -> "Scenario":
        return self.replace(callback=dataclasses.replace(self.callback, enabled=enabled, **changes))


# ------------------------------------------------------------------ TOML

def _queue(i: int, data: object) -> Queue:
    t = _Table(f"queues[{i}]", data)
    d = dict(t.d)
    if "max_wait" in d and isinstance(d["max_wait"], str) and d["max_wait"] in ("none", "infinite"):
        d["max_wait"] = None
    try:
        q = queue_from_dict(d)
    except (AcdError, TypeError) as e:
        raise InvalidInput(f"queues[{i}]: {e}") from None
    if q.leave_when_no_agents:
        # its exits come with pause and log-out commands, whose decisions the simulator's loop does not read
        raise InvalidInput(f"queues[{i}]: leave_when_no_agents is not supported by the simulator yet")
    return q


def _call_type(i: int, data: object) -> CallType:
    t = _Table(f"call_types[{i}]", data)
    ct = CallType(
        name=t.pop("name"),
        queue=t.pop("queue"),
        share=t.pop("share"),
        service=dist_from_spec(t.path("service"), t.pop("service")),
        patience=dist_from_spec(t.path("patience"), t.pop("patience", "infinite")),
        priority=t.pop("priority", None),
        requirements=t.pop("requirements", {}),
        transfer=_transfer(t.path("transfer"), t.pop("transfer")) if "transfer" in t.d else None,
    )
    t.done()
    return ct


def _transfer(where: str, data: object) -> Transfer:
    t = _Table(where, data)
    tr = Transfer(queue=t.pop("queue"), share=t.pop("share"),
                  service=dist_from_spec(t.path("service"), t.pop("service")),
                  priority=t.pop("priority", None), requirements=t.pop("requirements", {}))
    t.done()
    return tr


def _segment(i: int, data: object) -> Segment:
    t = _Table(f"segments[{i}]", data)
    sg = Segment(name=t.pop("name"), share=t.pop("share"), priority=t.pop("priority", None),
                 priority_boost=t.pop("priority_boost", 0), requirements=t.pop("requirements", {}),
                 patience_factor=t.pop("patience_factor", 1.0), service_factor=t.pop("service_factor", 1.0))
    t.done()
    return sg


def _pause(where: str, data: object) -> Pause:
    t = _Table(where, data)
    p = Pause(start=parse_clock(t.path("start"), t.pop("start")),
              duration=_number(t.path("duration"), t.pop("duration"), lo=0, lo_open=True),
              spread=_number(t.path("spread"), t.pop("spread", 0.0), lo=0),
              reason=t.pop("reason", "break"))
    t.done()
    return p


def _agent_group(i: int, data: object, start: float, end: float) -> AgentGroup:
    t = _Table(f"agents[{i}]", data)
    shift = t.pop("shift", None)
    if shift is not None:
        shift_l = _list(t.path("shift"), shift)
        if len(shift_l) != 2:
            raise InvalidInput(f"{t.path('shift')} must be [start, end], got {shift!r}")
        shift = (parse_clock(t.path("shift") + "[0]", shift_l[0]), parse_clock(t.path("shift") + "[1]", shift_l[1]))
        if shift[1] <= shift[0]:
            raise InvalidInput(f"{t.path('shift')} must end after it starts, got {shift_l!r}")
    pauses = tuple(_pause(f"{t.path('pauses')}[{k}]", p) for k, p in enumerate(_list(t.path("pauses"),
                                                                                       t.pop("pauses", []))))
    queues = t.pop("queues", None)
    staffing = t.pop("staffing", None)
    if staffing is not None:
        staffing = tuple(_list(t.path("staffing"), staffing))
    g = AgentGroup(name=t.pop("name"), count=t.pop("count", 0), skills=t.pop("skills", {}),
                   queues=None if queues is None else tuple(_list(t.path("queues"), queues)),
                   shift=shift, pauses=pauses, staffing=staffing)
    t.done()
    return g


def _arrivals(data: object, n_int: int, interval: float) -> Tuple[float, ...]:
    t = _Table("arrivals", data)
    forms = [k for k in ("rate", "per_interval", "total") if k in t.d]
    if len(forms) != 1:
        raise InvalidInput("arrivals needs exactly one of rate (calls per hour), per_interval (calls per "
                           "interval) or total with profile (weights per interval)")
    form = forms[0]
    if form == "rate":
        rate = _number("arrivals.rate", t.pop("rate"), lo=0)
        out = tuple([rate * interval / 3600.0] * n_int)
    elif form == "per_interval":
        out = tuple(_list("arrivals.per_interval", t.pop("per_interval")))
    else:
        total = _number("arrivals.total", t.pop("total"), lo=0)
        prof = _list("arrivals.profile", t.pop("profile", [1.0] * n_int))
        if len(prof) != n_int:
            raise InvalidInput(f"arrivals.profile must give one weight per interval ({n_int}), got {len(prof)}")
        w = [_number(f"arrivals.profile[{k}]", v, lo=0) for k, v in enumerate(prof)]
        s = sum(w)
        if s <= 0:
            raise InvalidInput("arrivals.profile weights must not all be 0")
        out = tuple(total * x / s for x in w)
    t.done()
    return out


def _callback(data: object) -> Callback:
    t = _Table("callback", data)
    kw: Dict[str, Any] = {}
    for k in ("enabled", "threshold", "accept", "reach", "no_answer", "retries", "retry_delay"):
        if k in t.d:
            kw[k] = t.pop(k)
    if "dial_ring" in t.d:
        kw["dial_ring"] = dist_from_spec("callback.dial_ring", t.pop("dial_ring"))
    if "queues" in t.d:
        kw["queues"] = tuple(_list("callback.queues", t.pop("queues")))
    t.done()
    return Callback(**kw)


def _targets(data: object) -> Targets:
    t = _Table("targets", data)
    kw = {k: t.pop(k) for k in ("service_level", "answer_rate", "answer_rate_excellent", "short_abandon")
          if k in t.d}
    t.done()
    return Targets(**kw)


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build a :class:`Scenario` from plain data (a parsed TOML document)."""
    t = _Table("", data)
    start = parse_clock("start", t.pop("start"))
    end = parse_clock("end", t.pop("end"))
    interval = _number("interval", t.pop("interval", 1800.0), lo=0, lo_open=True)
    if end <= start:
        raise InvalidInput(f"end must be after start, got start={data['start']!r}, end={data['end']!r}")
    n_int = (end - start) / interval
    if abs(n_int - round(n_int)) > 1e-9:
        raise InvalidInput(f"interval must divide end - start ({end - start:g} s), got {interval!r}")
    n_int = int(round(n_int))
    if n_int > MAX_INTERVALS:
        raise InvalidInput(f"{n_int:,} intervals of {interval:g} s between start and end is above the limit of "
                           f"{MAX_INTERVALS:,}")
    queues = tuple(_queue(i, q) for i, q in enumerate(_list("queues", t.pop("queues"))))
    call_types = tuple(_call_type(i, c) for i, c in enumerate(_list("call_types", t.pop("call_types"))))
    segs_in = t.pop("segments", None)
    segments = (Segment("all", 1.0),) if segs_in is None else tuple(
        _segment(i, s) for i, s in enumerate(_list("segments", segs_in)))
    agents = tuple(_agent_group(i, g, start, end) for i, g in enumerate(_list("agents", t.pop("agents"))))
    kw: Dict[str, Any] = {}
    if "ring" in t.d:
        kw["ring"] = dist_from_spec("ring", t.pop("ring"))
    if "callback" in t.d:
        kw["callback"] = _callback(t.pop("callback"))
    if "targets" in t.d:
        kw["targets"] = _targets(t.pop("targets"))
    for k in ("agent_strategy", "seed", "description"):
        if k in t.d:
            kw[k] = t.pop(k)
    sc = Scenario(name=t.pop("name"), start=start, end=end, interval=interval, queues=queues,
                  call_types=call_types, agents=agents, arrivals=_arrivals(t.pop("arrivals"), n_int, interval),
                  segments=segments, **kw)
    t.done()
    return sc


def load_scenario(path: Union[str, Path]) -> Scenario:
    """Read and validate a scenario TOML file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read scenario file {str(p)!r}: {e.strerror or e}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"scenario file {str(p)!r} is not valid TOML: {e}") from None
    return scenario_from_dict(data)


def _bundled_files() -> Dict[str, Any]:
    """name -> resource of every ``acd/data/*.toml`` (read through importlib.resources: works installed)."""
    from importlib import resources
    d = resources.files("acd").joinpath("data")
    return {f.name[:-5]: f for f in sorted(d.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".toml") and f.is_file()}


def _bundled_file(name: str) -> Any:
    files = _bundled_files()
    if not isinstance(name, str) or name not in files:
        raise InvalidInput(f"no bundled scenario named {name!r} (bundled: {', '.join(files) or 'none'})")
    return files[name]


def bundled_scenarios() -> List[Tuple[str, str]]:
    """``(name, one-line description)`` of every scenario shipped in ``acd/data``."""
    out = []
    for name, f in _bundled_files().items():
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        desc = str(data.get("description") or data.get("name") or "").splitlines()
        out.append((name, desc[0] if desc else ""))
    return out


def bundled_scenario_text(name: str) -> str:
    """The TOML text (with its comments) of a bundled scenario, to copy and edit."""
    return _bundled_file(name).read_text(encoding="utf-8")


def bundled_scenario(name: str = "public_agency") -> Scenario:
    """A scenario shipped in ``acd/data`` (see :func:`bundled_scenarios`)."""
    data = tomllib.loads(bundled_scenario_text(name))
    return scenario_from_dict(data)
