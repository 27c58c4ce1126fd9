"""Rosters: per-interval requirements turned into shifts, minimising paid hours by an integer program.

    req = read_requirements("staff.csv")           # `acd staff --format csv|json`, or a CSV start,agents
    roster = solve_roster(req, load_shifts("shifts.toml"))
    print(roster.render("table"))

The model (``docs/roster.md``): one integer variable ``x[p] >= 0`` per *pattern* -- a shift type,
one allowed start and one placement of each of its breaks; ``a[p, t] = 1`` when pattern ``p`` has
the agent working (on site, not on a break) during interval ``t``.  We minimise
``sum(cost[p] * x[p])`` (by default a shift's paid hours) subject to ``sum(a[p, t] * x[p]) >=
need[t]`` for every interval and each shift type's optional min/max count, with
:func:`scipy.optimize.milp` (HiGHS).

Time grid.  Everything lives on the requirement's interval grid (30 min, 15 min...): shift starts
and lengths must be on it (refused otherwise).  A break starts on a grid point; one shorter than
an interval (or not a multiple of it) is rounded *up* for coverage -- the agent counts as absent
for every interval the break touches -- while the paid hours subtract only the break's real
length.  So coverage is never overstated.

One day.  A roster covers one day, 00:00-24:00 at most; a shift that would run past midnight is
refused (no wrap-around), and starts where the shift would not fit inside the requirement's day
(first interval's start to last interval's end) are left out, with a note.

scipy is imported only when solving; ``import acd`` never imports this module.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import InvalidInput

__all__ = ("Requirement", "Break", "ShiftType", "RosterShift", "Roster", "DEFAULT_SHIFTS",
           "read_requirements", "requirements_from_text", "load_shifts", "shifts_from_dict",
           "build_patterns", "solve_roster", "MAX_PATTERNS")

DAY = 86400
MAX_PATTERNS = 200_000      # columns of the integer program; far beyond any real day (see docs)
FORMATS = ("table", "csv", "json")


# ---------------------------------------------------------------- clock and durations

def clock(seconds: int) -> str:
    """``HH:MM`` (24:00 for the end of the day)."""
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def span(seconds: int) -> str:
    """``8h30m``, ``45m``, ``2h``."""
    h, m = divmod(seconds // 60, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m or not h else "")


def _parse_clock(name: str, value: object, *, end: bool = False) -> int:
    """Seconds since midnight of ``"HH:MM"`` or a TOML local time; with ``end``, ``"24:00"`` is allowed."""
    import datetime as dt
    if isinstance(value, dt.time):
        if value.second or value.microsecond:
            raise InvalidInput(f"{name} must be a whole minute \"HH:MM\", got {value.isoformat()!r}")
        return value.hour * 3600 + value.minute * 60
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value) if isinstance(value, str) else None
    if m is None:
        raise InvalidInput(f"{name} must be a time \"HH:MM\", got {value!r}")
    h, mi = int(m.group(1)), int(m.group(2))
    if not (mi < 60 and (h < 24 or (end and h == 24 and mi == 0))):
        raise InvalidInput(f"{name} must be a time 00:00..23:59{' or 24:00' if end else ''}, got {value!r}")
    return h * 3600 + mi * 60


def _parse_span(name: str, value: object) -> int:
    """Seconds of ``"8h30m"``, ``"45m"``, ``"2h"`` (whole minutes)."""
    m = re.fullmatch(r"\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*", value) if isinstance(value, str) else None
    if m is None or (m.group(1) is None and m.group(2) is None):
        raise InvalidInput(f"{name} must be a duration like \"8h30m\", \"45m\" or \"2h\", got {value!r}")
    return int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60


# ---------------------------------------------------------------- requirements

@dataclass(frozen=True)
class Requirement:
    """Agents needed per interval: ``need[i]`` for ``[start + i*interval, start + (i+1)*interval)``."""
    start: int
    interval: int
    need: Tuple[int, ...]
    source: str = "agents"      # what was covered: "scheduled", "agents", with the line if one was chosen

    def __post_init__(self) -> None:
        if not (isinstance(self.interval, int) and self.interval >= 60 and self.interval % 60 == 0):
            raise InvalidInput(f"interval must be a whole number of minutes, got {self.interval!r} s")
        if not len(self.need):
            raise InvalidInput("requirement has no interval")
        import numbers
        need = tuple(self.need)
        if any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0 for n in need):
            raise InvalidInput(f"need must be integers >= 0, got {self.need!r}")
        object.__setattr__(self, "need", tuple(int(n) for n in need))     # numpy integers welcome
        if not (0 <= self.start and self.end <= DAY):
            raise InvalidInput(f"requirement runs {clock(self.start)}-{clock(self.end)}: a roster covers one "
                               "day (00:00-24:00) and does not wrap past midnight")

    @property
    def end(self) -> int:
        return self.start + self.interval * len(self.need)

    def label(self, i: int) -> str:
        s = self.start + i * self.interval
        return f"{clock(s)}-{clock(s + self.interval)}"


def _value(name: str, text: object) -> float:
    try:
        v = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {text!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise InvalidInput(f"{name} must be a finite number >= 0, got {text!r}")
    return v


def requirements_from_text(text: str, *, line: Optional[str] = None, need: str = "auto",
                           interval: Optional[int] = None, name: str = "requirements") -> Requirement:
    """A :class:`Requirement` from the CSV or JSON of ``acd staff`` (or simulation staffing), or a CSV
    with columns ``start,agents``.

    Rows of all lines are summed per interval unless ``line`` names one.  ``need`` picks the column
    covered: ``scheduled`` (agents on the payroll, shrinkage included), ``agents`` (on the phones),
    or ``auto`` -- ``scheduled`` when the file has it, else ``agents``.  Fractional sums are rounded
    up.  Intervals missing between the first and the last need no agent."""
    if need not in ("auto", "agents", "scheduled"):
        raise InvalidInput(f"need must be 'auto', 'agents' or 'scheduled', got {need!r}")
    body = text.lstrip("\ufeff \t\r\n")
    rows: List[Mapping[str, Any]]
    file_interval: Optional[int] = None
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as e:
            raise InvalidInput(f"{name} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise InvalidInput(f"{name}: JSON needs a 'rows' list (as `acd staff --format json` writes)")
        rows = data["rows"]
        if any(not isinstance(r, dict) for r in rows):
            raise InvalidInput(f"{name}: each of 'rows' must be an object")
        if "interval" in data:
            iv = _value(f"{name}: interval", data["interval"])
            if iv != int(iv):
                raise InvalidInput(f"{name}: interval must be whole seconds, got {data['interval']!r}")
            file_interval = int(iv)
        columns = set().union(*(r.keys() for r in rows)) if rows else set()
    else:
        reader = csv.DictReader(io.StringIO(body))
        columns = {c.strip() for c in (reader.fieldnames or [])}
        rows = [{(k or "").strip(): v for k, v in r.items()} for r in reader]
    if "start" not in columns:
        raise InvalidInput(f"{name} needs a 'start' column, got columns {sorted(columns)!r}")
    col = need if need != "auto" else ("scheduled" if "scheduled" in columns else "agents")
    if col not in columns:
        raise InvalidInput(f"{name} has no {col!r} column (columns: {sorted(columns)!r})")
    if line is not None:
        if "line" not in columns:
            raise InvalidInput(f"line {line!r} chosen but {name} has no 'line' column")
        lines = sorted({str(r.get("line")) for r in rows})
        rows = [r for r in rows if str(r.get("line")) == line]
        if not rows:
            raise InvalidInput(f"line {line!r} is not in {name} (lines: {lines!r})")
    if not rows:
        raise InvalidInput(f"{name} has no row")

    sums: Dict[int, float] = {}
    lengths = set()
    for i, r in enumerate(rows):
        where = f"{name} row {i + 1}"
        s = _parse_clock(f"{where} start", r.get("start"))
        v = _value(f"{where} {col}", r.get(col))
        if r.get("end") not in (None, ""):
            fin = _parse_clock(f"{where} end", r["end"], end=True)
            if fin == 0 and s > 0:
                fin = DAY       # "23:30-00:00" ends at midnight
            if fin <= s:
                raise InvalidInput(f"{where}: end {r['end']!r} is not after start {r['start']!r} (a roster "
                                   "covers one day and does not wrap past midnight)")
            lengths.add(fin - s)
        sums[s] = sums.get(s, 0.0) + v
    starts = sorted(sums)
    if len(lengths) > 1:
        raise InvalidInput(f"{name}: intervals of different lengths {sorted(span(x) for x in lengths)!r}")
    inferred = {x for x in (interval, file_interval, *lengths) if x is not None}
    if len(inferred) > 1:
        raise InvalidInput(f"{name}: interval {sorted(span(x) for x in inferred)!r} disagree")
    if inferred:
        step = inferred.pop()
    elif len(starts) > 1:
        step = min(b - a for a, b in zip(starts, starts[1:]))
    else:
        raise InvalidInput(f"{name} has one row and no 'end': give the interval (--interval)")
    for s in starts:
        if (s - starts[0]) % step:
            raise InvalidInput(f"{name}: start {clock(s)!r} is not on the {span(step)} grid from {clock(starts[0])}")
    n = (starts[-1] - starts[0]) // step + 1
    # round the sum up once: 2.5 + 2.5 agents need 5, not 6; 1e-9 absorbs float noise
    needs = [0] * n
    for s, v in sums.items():
        needs[(s - starts[0]) // step] = int(math.ceil(v - 1e-9))
    return Requirement(starts[0], step, tuple(needs), col + (f" of line {line!r}" if line is not None else ""))


def read_requirements(path: Union[str, Path], *, line: Optional[str] = None, need: str = "auto",
                      interval: Optional[int] = None) -> Requirement:
    """:func:`requirements_from_text` of a file (``-`` is not special)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"cannot read requirements file {str(p)!r}: {getattr(e, 'strerror', None) or e}") from None
    return requirements_from_text(text, line=line, need=need, interval=interval, name=f"requirements file {str(p)!r}")


# ---------------------------------------------------------------- shift types

@dataclass(frozen=True)
class Break:
    """A break of ``length`` seconds lying inside ``[earliest, latest]`` seconds after the shift starts."""
    name: str
    length: int
    earliest: int
    latest: int
    paid: bool = False


@dataclass(frozen=True)
class ShiftType:
    """``length`` is the time on site, start to end; paid hours are that less the unpaid breaks.
    ``starts`` None: every interval of the requirement's day where the shift fits.  ``cost`` None:
    the paid hours."""
    name: str
    length: int
    starts: Optional[Tuple[int, ...]] = None
    breaks: Tuple[Break, ...] = ()
    min_count: int = 0
    max_count: Optional[int] = None
    cost: Optional[float] = None

    def __post_init__(self) -> None:
        who = f"shift {self.name!r}"
        if not (isinstance(self.length, int) and 0 < self.length <= DAY):
            raise InvalidInput(f"{who}: length must be between 1 minute and 24h, got {self.length!r}")
        for b in self.breaks:
            if not (0 < b.length and 0 <= b.earliest and b.earliest + b.length <= b.latest):
                raise InvalidInput(f"{who}: break {b.name!r} of {span(b.length)} does not fit in its window "
                                   f"[{span(b.earliest)}, {span(b.latest)}]")
            if b.latest > self.length:
                raise InvalidInput(f"{who}: break {b.name!r} window [{span(b.earliest)}, {span(b.latest)}] "
                                   f"is outside the shift (length {span(self.length)})")
        if sum(b.length for b in self.breaks) >= self.length:
            raise InvalidInput(f"{who}: breaks ({span(sum(b.length for b in self.breaks))}) fill the shift")
        for s in self.starts or ():
            if s + self.length > DAY:
                raise InvalidInput(f"{who}: start {clock(s)!r} with length {span(self.length)} ends after "
                                   "midnight; rosters do not wrap past midnight")
        if not (isinstance(self.min_count, int) and self.min_count >= 0):
            raise InvalidInput(f"{who}: min must be an integer >= 0, got {self.min_count!r}")
        if self.max_count is not None and not (isinstance(self.max_count, int) and self.max_count >= self.min_count):
            raise InvalidInput(f"{who}: max must be an integer >= min ({self.min_count}), got {self.max_count!r}")
        if self.cost is not None and not (math.isfinite(self.cost) and self.cost >= 0):
            raise InvalidInput(f"{who}: cost must be a finite number >= 0, got {self.cost!r}")

    @property
    def paid_hours(self) -> float:
        return (self.length - sum(b.length for b in self.breaks if not b.paid)) / 3600.0

    @property
    def unit_cost(self) -> float:
        return self.paid_hours if self.cost is None else float(self.cost)


# full time: 8h paid, 8h30m on site with an unpaid 30-min lunch between +3h and +6h; part time: 4h
DEFAULT_SHIFTS: Tuple[ShiftType, ...] = (
    ShiftType("full", 8 * 3600 + 1800, breaks=(Break("lunch", 1800, 3 * 3600, 6 * 3600),)),
    ShiftType("part", 4 * 3600),
)


class _Table:
    """A TOML table read key by key; ``done()`` refuses the keys left (unknown ones)."""

    def __init__(self, path: str, data: object) -> None:
        if not isinstance(data, dict):
            raise InvalidInput(f"{path} must be a table, got {data!r}")
        self.path, self.data = path, dict(data)

    def pop(self, key: str, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise InvalidInput(f"{self.path}.{key} is missing")
            return default
        return self.data.pop(key)

    def done(self, allowed: Sequence[str]) -> None:
        if self.data:
            k = sorted(self.data)[0]
            raise InvalidInput(f"{self.path}: unknown key {k!r} (allowed: {', '.join(allowed)})")


_SHIFT_KEYS = ("name", "length", "starts", "break", "min", "max", "cost")
_BREAK_KEYS = ("name", "length", "window", "paid")


def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{name} must be an integer >= 0, got {value!r}")
    return value


def shifts_from_dict(data: Mapping[str, Any], name: str = "shifts") -> Tuple[ShiftType, ...]:
    """Shift types from the parsed TOML (``[[shift]]`` tables; ``docs/roster.md``)."""
    top = _Table(name, data)
    raw = top.pop("shift", None)
    top.done(("shift",))
    if raw is None:
        raise InvalidInput(f"{name}.shift is missing: the file needs [[shift]] tables")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{name}.shift must be a non-empty array of tables ([[shift]]), got {raw!r}")
    types: List[ShiftType] = []
    for i, sd in enumerate(raw):
        t = _Table(f"{name}.shift[{i}]", sd)
        sname = t.pop("name")
        if not isinstance(sname, str) or not sname.strip():
            raise InvalidInput(f"{t.path}.name must be a non-empty string, got {sname!r}")
        if sname in (x.name for x in types):
            raise InvalidInput(f"{t.path}.name {sname!r} is used twice")
        t.path = f"{name}.shift[{i}] ({sname})"
        length = _parse_span(f"{t.path}.length", t.pop("length"))
        starts = _starts(f"{t.path}.starts", t.pop("starts", None))
        breaks = []
        braw = t.pop("break", [])
        if not isinstance(braw, list):
            raise InvalidInput(f"{t.path}.break must be an array of tables ([[shift.break]]), got {braw!r}")
        for j, bd in enumerate(braw):
            b = _Table(f"{t.path}.break[{j}]", bd)
            bname = b.pop("name", f"break{j + 1}")
            blen = _parse_span(f"{b.path}.length", b.pop("length"))
            win = b.pop("window", None)
            if win is None:
                lo, hi = 0, length
            elif isinstance(win, list) and len(win) == 2:
                lo, hi = (_parse_span(f"{b.path}.window", w) for w in win)
            else:
                raise InvalidInput(f"{b.path}.window must be [\"from\", \"to\"] after the shift start, "
                                   f"e.g. [\"3h\", \"5h\"], got {win!r}")
            if hi > length:
                raise InvalidInput(f"{b.path}.window {win!r} is outside the shift: it ends after the shift's "
                                   f"length {span(length)}")
            if lo + blen > hi:
                raise InvalidInput(f"{b.path}.window {win!r} is too short for a break of {span(blen)}")
            paid = b.pop("paid", False)
            if not isinstance(paid, bool):
                raise InvalidInput(f"{b.path}.paid must be true or false, got {paid!r}")
            b.done(_BREAK_KEYS)
            breaks.append(Break(str(bname), blen, lo, hi, paid))
        mn = _int(f"{t.path}.min", t.pop("min", 0))
        mx = t.pop("max", None)
        if mx is not None:
            mx = _int(f"{t.path}.max", mx)
            if mx < mn:
                raise InvalidInput(f"{t.path}.max {mx!r} is below min {mn!r}")
        cost = t.pop("cost", None)
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))
                                 or not (math.isfinite(cost) and cost >= 0)):
            raise InvalidInput(f"{t.path}.cost must be a number >= 0, got {cost!r}")
        t.done(_SHIFT_KEYS)
        for s in starts or ():
            if s + length > DAY:
                raise InvalidInput(f"{t.path}.starts: {clock(s)!r} + length {span(length)} ends after midnight; "
                                   "rosters do not wrap past midnight")
        types.append(ShiftType(sname, length, starts, tuple(breaks), mn, mx,
                               None if cost is None else float(cost)))
    return tuple(types)


def _starts(name: str, value: object) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            raise InvalidInput(f"{name} is empty")
        out = sorted({_parse_clock(name, v) for v in value})
    elif isinstance(value, dict):
        t = _Table(name, value)
        a = _parse_clock(f"{name}.from", t.pop("from"))
        b = _parse_clock(f"{name}.to", t.pop("to"))
        step = _parse_span(f"{name}.step", t.pop("step"))
        t.done(("from", "to", "step"))
        if step <= 0:
            raise InvalidInput(f"{name}.step must be positive, got {value['step']!r}")
        if b < a:
            raise InvalidInput(f"{name}: to {value['to']!r} is before from {value['from']!r}")
        out = list(range(a, b + 1, step))
    else:
        raise InvalidInput(f"{name} must be a list of \"HH:MM\" or {{from, to, step}}, got {value!r}")
    return tuple(out)


def load_shifts(path: Union[str, Path]) -> Tuple[ShiftType, ...]:
    """The shift types of a TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"cannot read shift file {str(p)!r}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"shift file {str(p)!r} is not valid TOML: {e}") from None
    return shifts_from_dict(data, name=p.name)


# ---------------------------------------------------------------- patterns

@dataclass(frozen=True)
class _Pattern:
    kind: int                           # index into the shift types
    start: int                          # seconds since midnight
    breaks: Tuple[Tuple[int, int], ...]  # (break index, offset from start), in the type's order
    working: Tuple[int, ...]            # requirement intervals covered


def build_patterns(req: Requirement, types: Sequence[ShiftType]) -> Tuple[List[_Pattern], List[str]]:
    """Every (shift type, start, break placement) on the requirement's grid, and notes on what was
    left out.  Raises :class:`InvalidInput` for a length, start or break that is off the grid."""
    iv = req.interval
    pats: List[_Pattern] = []
    notes: List[str] = []
    for k, st in enumerate(types):
        who = f"shift {st.name!r}"
        if st.length % iv:
            raise InvalidInput(f"{who}: length {span(st.length)!r} is not a multiple of the interval {span(iv)}")
        starts = st.starts if st.starts is not None else range(req.start, req.end, iv)
        for s in starts:
            if (s - req.start) % iv:
                raise InvalidInput(f"{who}: start {clock(s)!r} is not on the {span(iv)} grid of the requirement "
                                   f"(from {clock(req.start)})")
        inside = [s for s in starts if req.start <= s and s + st.length <= req.end]
        if st.starts is not None and len(inside) < len(starts):
            notes.append(f"{who}: {len(starts) - len(inside)} of {len(starts)} starts left out (the shift would "
                         f"not fit inside {clock(req.start)}-{clock(req.end)})")
        if not inside and st.min_count > 0:
            raise InvalidInput(f"{who}: min {st.min_count} but no start fits inside "
                               f"{clock(req.start)}-{clock(req.end)}")
        # break positions: grid offsets o with the break's grid-rounded span [o, o + occ) inside its window
        places: List[List[Tuple[int, int, int]]] = []
        for j, b in enumerate(st.breaks):
            occ = -(-b.length // iv) * iv
            first = -(-b.earliest // iv) * iv
            opts = [(j, o, occ) for o in range(first, b.latest - occ + 1, iv)]
            if not opts:
                raise InvalidInput(f"{who}: break {b.name!r} ({span(b.length)}, counted as {span(occ)} on the "
                                   f"{span(iv)} grid) has no place in its window [{span(b.earliest)}, "
                                   f"{span(b.latest)}] on the grid")
            places.append(opts)
        if math.prod(len(o) for o in places) > MAX_PATTERNS:     # refuse before enumerating them
            raise InvalidInput(f"{who}: its break windows allow {math.prod(len(o) for o in places):,} placements "
                               f"(more than {MAX_PATTERNS:,}): narrow the windows")
        combos = []
        for combo in itertools.product(*places):
            off = sorted((o, o + occ) for _, o, occ in combo)
            if all(a[1] <= b[0] for a, b in zip(off, off[1:])):    # breaks do not overlap
                combos.append(combo)
        if not combos:
            raise InvalidInput(f"{who}: its breaks cannot all be placed without overlapping")
        seen = set()
        for s in inside:
            first_i = (s - req.start) // iv
            n = st.length // iv
            for combo in combos:
                away = {(o + d) // iv for _, o, occ in combo for d in range(0, occ, iv)}
                working = tuple(first_i + i for i in range(n) if i not in away)
                if (s, working) in seen:    # two breaks swapped: the same column
                    continue
                seen.add((s, working))
                pats.append(_Pattern(k, s, tuple((j, o) for j, o, _ in combo), working))
                if len(pats) > MAX_PATTERNS:
                    raise InvalidInput(f"more than {MAX_PATTERNS:,} shift patterns (starts x break placements): "
                                       "restrict the shifts' starts or break windows")
    return pats, notes


# ---------------------------------------------------------------- solving

@dataclass(frozen=True)
class RosterShift:
    """``count`` agents on shift ``kind`` from ``start`` to ``end``; breaks as (name, start, end, paid)."""
    kind: str
    start: int
    end: int
    breaks: Tuple[Tuple[str, int, int, bool], ...]
    count: int
    paid_hours: float           # per agent
    cost: float                 # per agent


@dataclass(frozen=True)
class Roster:
    requirement: Requirement
    shifts: Tuple[RosterShift, ...]
    rostered: Tuple[int, ...]   # agents working per interval
    status: str                 # "optimal" or "time limit reached (feasible)"
    objective: float
    bound: float                # HiGHS's dual bound: no roster costs less
    mip_gap: float
    solve_seconds: float
    n_patterns: int
    notes: Tuple[str, ...] = field(default=())

    @property
    def paid_hours(self) -> float:
        return sum(s.paid_hours * s.count for s in self.shifts)

    @property
    def agents(self) -> int:
        return sum(s.count for s in self.shifts)

    @property
    def required_hours(self) -> float:
        return sum(self.requirement.need) * self.requirement.interval / 3600.0

    @property
    def rostered_hours(self) -> float:
        return sum(self.rostered) * self.requirement.interval / 3600.0

    @property
    def over_coverage_hours(self) -> float:
        return self.rostered_hours - self.required_hours

    @property
    def efficiency(self) -> float:
        """Required hours / rostered (working) hours: 1 means no surplus at all."""
        return self.required_hours / self.rostered_hours if self.rostered_hours else 1.0

    def render(self, fmt: str = "table") -> str:
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2) + "\n"
        if fmt == "csv":
            return self._csv()
        if fmt == "table":
            return self._table()
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")

    def _shift_rows(self) -> List[Dict[str, Any]]:
        return [{"shift": s.kind, "start": clock(s.start), "end": clock(s.end),
                 "breaks": " ".join(f"{n} {clock(a)}-{clock(b)}{'' if p else ' unpaid'}" for n, a, b, p in s.breaks),
                 "count": s.count, "paid_hours": s.paid_hours, "cost": s.cost} for s in self.shifts]

    def _interval_rows(self) -> List[Dict[str, Any]]:
        r = self.requirement
        return [{"start": clock(r.start + i * r.interval), "end": clock(r.start + (i + 1) * r.interval),
                 "required": n, "rostered": m, "surplus": m - n} for i, (n, m) in enumerate(zip(r.need, self.rostered))]

    def _totals(self) -> Dict[str, Any]:
        return {"agents": self.agents, "paid_hours": self.paid_hours, "cost": self.objective,
                "required_hours": self.required_hours, "rostered_hours": self.rostered_hours,
                "over_coverage_hours": self.over_coverage_hours, "efficiency": self.efficiency,
                "status": self.status, "mip_gap": self.mip_gap, "bound": self.bound,
                "patterns": self.n_patterns, "intervals": len(self.requirement.need),
                "solve_seconds": self.solve_seconds}

    def to_dict(self) -> Dict[str, Any]:
        return {"interval": self.requirement.interval, "covers": self.requirement.source,
                "shifts": self._shift_rows(), "intervals": self._interval_rows(), "totals": self._totals(),
                "notes": list(self.notes)}

    def _csv(self) -> str:
        # the sections of `acd report --format csv`: "# name", a header, rows, a blank line between
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        for title, rows in (("shifts", self._shift_rows()), ("intervals", self._interval_rows()),
                            ("totals", [self._totals()])):
            if title != "shifts":
                w.writerow([])
            w.writerow([f"# {title}"])
            w.writerow(list(rows[0]) if rows else ["shift", "start", "end", "breaks", "count", "paid_hours", "cost"])
            for row in rows:
                w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row.values()])
        return out.getvalue()

    def _table(self) -> str:
        def grid(head: List[str], rows: List[List[str]], left: Tuple[int, ...] = (0,)) -> List[str]:
            ws = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
            fmt = lambda cells: "  ".join(c.ljust(w) if i in left else c.rjust(w)  # noqa: E731
                                          for i, (c, w) in enumerate(zip(cells, ws))).rstrip()
            return [fmt(head), fmt(["-" * w for w in ws])] + [fmt(r) for r in rows]
        lines = [f"roster covering {self.requirement.source} ({span(self.requirement.interval)} intervals, "
                 f"{clock(self.requirement.start)}-{clock(self.requirement.end)}): {self.status}"]
        lines += grid(["shift", "start", "end", "breaks", "count", "paid h"],
                      [[r["shift"], r["start"], r["end"], r["breaks"], str(r["count"]), f"{r['paid_hours']:g}"]
                       for r in self._shift_rows()], left=(0, 3))
        lines.append("")
        lines += grid(["interval", "required", "rostered", "surplus"],
                      [[f"{r['start']}-{r['end']}", str(r["required"]), str(r["rostered"]), f"{r['surplus']:+d}"]
                       for r in self._interval_rows()])
        lines.append("")
        lines.append(f"{self.agents} agents, {self.paid_hours:g} paid hours (cost {self.objective:g}; no roster "
                     f"costs less than {self.bound:g}, gap {self.mip_gap:.2%})")
        lines.append(f"required {self.required_hours:g} h, rostered {self.rostered_hours:g} h working, over-coverage "
                     f"{self.over_coverage_hours:g} h, efficiency {self.efficiency:.1%}")
        lines.append(f"{self.n_patterns:,} shift patterns x {len(self.requirement.need)} intervals, solved in "
                     f"{self.solve_seconds:.2f} s")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def solve_roster(req: Requirement, types: Sequence[ShiftType] = DEFAULT_SHIFTS, *, time_limit: float = 60.0,
                 mip_gap: float = 1e-4) -> Roster:
    """The cheapest roster covering ``req`` with ``types`` (HiGHS through :func:`scipy.optimize.milp`).

    Raises :class:`InvalidInput` when an interval cannot be covered (no shift works then, or the
    shifts' max counts are too low) or when ``time_limit`` seconds give no roster at all; a roster
    found within the limit but not proved optimal says so in ``status`` and ``mip_gap``."""
    if not (isinstance(time_limit, (int, float)) and 0 < time_limit <= DAY):
        raise InvalidInput(f"time_limit must be in (0, 86400] seconds, got {time_limit!r}")
    if not (isinstance(mip_gap, (int, float)) and 0 <= mip_gap < 1):
        raise InvalidInput(f"mip_gap must be in [0, 1), got {mip_gap!r}")
    if not types:
        raise InvalidInput("no shift type")
    import numpy as np
    try:
        from scipy.optimize import Bounds, LinearConstraint, milp  # type: ignore[import-untyped]
        from scipy.sparse import coo_array  # type: ignore[import-untyped]
    except ImportError:
        raise InvalidInput("rosters need scipy >= 1.9 (its HiGHS milp): pip install 'acd[planning]'") from None

    pats, notes = build_patterns(req, types)
    T, P = len(req.need), len(pats)
    need = np.array(req.need, dtype=float)
    # an interval no pattern works, or more than the max counts can staff, is named before solving
    cap = np.zeros(T)
    for k, st in enumerate(types):
        covered = np.zeros(T, dtype=bool)
        for p in pats:
            if p.kind == k:
                covered[list(p.working)] = True
        cap += np.where(covered, np.inf if st.max_count is None else st.max_count, 0.0)
    for t in range(T):
        if need[t] > cap[t]:
            why = (f"no shift works then (shifts must fit inside {clock(req.start)}-{clock(req.end)})"
                   if cap[t] == 0 else f"the shifts' max counts allow at most {cap[t]:g}")
            raise InvalidInput(f"interval {req.label(t)} needs {req.need[t]} agents but {why}")

    if P == 0:      # nothing needed and nothing possible: the empty roster
        return Roster(req, (), (0,) * T, "optimal", 0.0, 0.0, 0.0, 0.0, 0, tuple(notes))
    rows = [t for p in pats for t in p.working]
    cols = [i for i, p in enumerate(pats) for _ in p.working]
    A = coo_array((np.ones(len(rows)), (rows, cols)), shape=(T, P)).tocsr()
    cost = np.array([types[p.kind].unit_cost for p in pats])
    cons = [LinearConstraint(A, lb=need, ub=np.inf)]
    counted = [k for k, st in enumerate(types) if st.min_count > 0 or st.max_count is not None]
    if counted:
        G = np.zeros((len(counted), P))
        for r, k in enumerate(counted):
            G[r, [i for i, p in enumerate(pats) if p.kind == k]] = 1.0
        cons.append(LinearConstraint(G, lb=[types[k].min_count for k in counted],
                                     ub=[np.inf if types[k].max_count is None else types[k].max_count
                                         for k in counted]))
    ub = np.array([np.inf if types[p.kind].max_count is None else types[p.kind].max_count for p in pats], dtype=float)
    t0 = time.perf_counter()
    res = milp(cost, integrality=np.ones(P), bounds=Bounds(0, ub), constraints=cons,
               options={"time_limit": float(time_limit), "mip_rel_gap": float(mip_gap), "disp": False})
    elapsed = time.perf_counter() - t0
    lp_bound = -np.inf
    kinds = np.array([p.kind for p in pats])
    lo_k = np.array([st.min_count for st in types])
    hi_k = np.array([np.inf if st.max_count is None else st.max_count for st in types])
    x = None if res.x is None else np.rint(res.x).astype(np.int64)
    if res.status != 0 and res.status != 2:
        # stopped early: HiGHS's incumbent on a big grid can be poor (28 % above the bound on a
        # 15-min day of 28 000 columns), so also round the LP relaxation and keep the cheaper
        alt, lp_bound = _rounded_lp(A, cost, need, kinds, lo_k, hi_k, cons, Bounds(0, ub), time_limit, milp)
        if alt is not None and (x is None or cost @ alt < cost @ x):
            x = alt
        elapsed = time.perf_counter() - t0
    if x is None:
        if res.status == 2:
            raise InvalidInput("the requirements cannot be met within the shifts' min/max counts "
                               "(each interval alone could be; together they need more agents than the max allow)")
        if res.status == 1:
            raise InvalidInput(f"no roster found within the time limit of {time_limit:g} s (raise it)")
        raise InvalidInput(f"the solver found no roster: {res.message}")

    rostered = A @ x
    # checked from the solution itself, not from the solver's word
    short = np.nonzero(rostered < need)[0]
    if short.size:
        t = int(short[0])
        raise RuntimeError(f"roster leaves interval {req.label(t)} short: {rostered[t]} < {req.need[t]}")
    for k, st in enumerate(types):
        n = int(sum(x[i] for i, p in enumerate(pats) if p.kind == k))
        if n < st.min_count or (st.max_count is not None and n > st.max_count):
            raise RuntimeError(f"roster has {n} shifts {st.name!r}, outside [{st.min_count}, {st.max_count}]")
    shifts = []
    for i in np.nonzero(x)[0]:
        p, st = pats[int(i)], types[pats[int(i)].kind]
        brk = tuple(sorted(((st.breaks[j].name, p.start + o, p.start + o + st.breaks[j].length, st.breaks[j].paid)
                            for j, o in p.breaks), key=lambda b: b[1]))
        shifts.append(RosterShift(st.name, p.start, p.start + st.length, brk, int(x[i]), st.paid_hours, st.unit_cost))
    shifts.sort(key=lambda s: (s.start, s.kind, s.breaks))
    objective = float(cost @ x)
    # a lower bound on any roster's cost: HiGHS's, or the LP relaxation's when that is better
    bound = max(float(getattr(res, "mip_dual_bound", None) or -np.inf), float(lp_bound))
    bound = objective if res.status == 0 or not math.isfinite(bound) else min(bound, objective)
    gap = (objective - bound) / objective if objective > 0 else 0.0
    status = "optimal" if res.status == 0 else "time limit reached (best roster found)"
    return Roster(req, tuple(shifts), tuple(int(v) for v in rostered), status, objective, bound, gap, elapsed, P,
                  tuple(notes))


def _rounded_lp(A: Any, cost: Any, need: Any, kinds: Any, lo_k: Any, hi_k: Any, cons: Any, bounds: Any,
                time_limit: float, milp: Any) -> Tuple[Any, float]:
    """A roster from the LP relaxation: its counts rounded down, the intervals left short filled
    greedily (the shift covering most short intervals per unit of cost, within the max counts), the
    min counts topped up, then shifts dropped, dearest first, while coverage and the min counts
    allow.  None if the greedy fill is stuck on the max counts; with the LP's optimum, a lower bound
    on any roster's cost."""
    import numpy as np
    lp = milp(cost, integrality=np.zeros(len(cost)), bounds=bounds, constraints=cons,
              options={"time_limit": float(time_limit), "disp": False})
    if lp.x is None:
        return None, -np.inf
    x = np.floor(lp.x + 1e-9).astype(np.int64)
    cols = A.tocsc()
    per_kind = np.bincount(kinds, weights=x, minlength=len(lo_k))
    ub = np.asarray(bounds.ub, dtype=float) * np.ones(len(cost))
    for k in np.nonzero(per_kind < lo_k)[0]:
        j = int(np.nonzero(kinds == k)[0][np.argmin(cost[kinds == k])])
        x[j] += int(lo_k[k] - per_kind[k])
        per_kind[k] = lo_k[k]
    cov = A @ x
    while np.any(cov < need):
        gain = cols.T @ (cov < need).astype(float)
        score = gain / (cost + 1e-9)
        score[(per_kind[kinds] >= hi_k[kinds]) | (x >= ub)] = 0.0
        j = int(np.argmax(score))
        if score[j] <= 0:
            return None, float(lp.fun)
        x[j] += 1
        per_kind[kinds[j]] += 1
        cov = cov + cols[:, [j]].toarray().ravel()
    for i in sorted(np.nonzero(x)[0], key=lambda i: -cost[i]):
        col = cols[:, [int(i)]].toarray().ravel()
        while x[i] > 0 and per_kind[kinds[i]] > lo_k[kinds[i]] and np.all(cov - col >= need):
            x[i] -= 1
            cov = cov - col
            per_kind[kinds[i]] -= 1
    return x, float(lp.fun)
