"""Opening hours: weekly hours, public holidays and exceptional closures, in a time zone.

A :class:`Schedule` answers two questions from an explicit unix time, with no
clock of its own (the engine and the simulator stay clock-free, and tests
give any instant): :meth:`Schedule.is_open` and :meth:`Schedule.next_open`.
Hours are local wall-clock times, so an office that opens at 08:30 opens at
08:30 on both sides of a daylight-saving change.

Holidays are dates (``2026-12-24``) or named sets computed for any year:
``france`` (the eleven public holidays of the Code du travail, Easter Monday,
Ascension and Whit Monday from the Gregorian Easter) and
``france-alsace-moselle`` (the same plus Good Friday and 26 December).
Closures are whole local days or local ``start/end`` spans.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from .errors import InvalidInput

__all__ = ("Schedule", "easter", "holiday_set", "HOLIDAY_SETS", "WEEKDAYS", "parse_schedule")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY_SETS = ("france", "france-alsace-moselle")
_SPAN = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*\Z")
_HORIZON_DAYS = 400          # next_open looks this far ahead (a year of closures and then some)


def easter(year: int) -> _dt.date:
    """Gregorian Easter Sunday (the anonymous Gregorian computus)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month, day = divmod(h + l_ - 7 * m + 90, 25)
    return _dt.date(year, month, (h + l_ - 7 * m + 33 * month + 19) % 32)


@functools.lru_cache(maxsize=64)
def holiday_set(name: str, year: int) -> FrozenSet[_dt.date]:
    """The dates of a named holiday set in ``year`` (kept: every is_open asks for them)."""
    if name not in HOLIDAY_SETS:
        raise InvalidInput(f"holidays: unknown set {name!r} (known: {', '.join(HOLIDAY_SETS)})")
    e = easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    days = {_dt.date(year, m, d) for m, d in fixed}
    days |= {e + _dt.timedelta(days=1), e + _dt.timedelta(days=39), e + _dt.timedelta(days=50)}
    if name == "france-alsace-moselle":
        days |= {e - _dt.timedelta(days=2), _dt.date(year, 12, 26)}
    return frozenset(days)


@dataclass(frozen=True)
class Schedule:
    """When a queue is open.  ``hours[w]``: the ``(start, end)`` minutes of day ``w`` (0 = Monday),
    ``end`` up to 1440; ``holidays``: dates; ``holiday_sets``: names of :data:`HOLIDAY_SETS`;
    ``closures``: local ``(start, end)`` wall-clock spans, end excluded."""

    name: str
    timezone: str
    hours: Tuple[Tuple[Tuple[int, int], ...], ...]
    holidays: FrozenSet[_dt.date] = frozenset()
    holiday_sets: Tuple[str, ...] = ()
    closures: Tuple[Tuple[_dt.datetime, _dt.datetime], ...] = ()

    def __post_init__(self) -> None:
        _zone(self.timezone, f"schedule {self.name!r}: timezone")
        if len(self.hours) != 7:
            raise InvalidInput(f"schedule {self.name!r}: hours must give the 7 days of the week")

    @property
    def zone(self) -> _dt.tzinfo:
        return _zone(self.timezone, "timezone")

    def is_holiday(self, day: _dt.date) -> bool:
        return day in self.holidays or any(day in holiday_set(s, day.year) for s in self.holiday_sets)

    def is_open(self, unix: float) -> bool:
        local = _dt.datetime.fromtimestamp(unix, self.zone).replace(tzinfo=None)
        if self.is_holiday(local.date()):
            return False
        if any(a <= local < b for a, b in self.closures):
            return False
        minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60.0
        return any(a <= minute < b for a, b in self.hours[local.weekday()])

    def next_open(self, unix: float) -> Optional[float]:
        """``unix`` if open then, else the first instant after it when the queue opens (None if it
        never opens in the next :data:`_HORIZON_DAYS` days)."""
        if self.is_open(unix):
            return unix
        zone = self.zone
        start = _dt.datetime.fromtimestamp(unix, zone).date()
        # a queue opens at the start of a span of hours or at the end of a closure inside one
        candidates: List[float] = []
        for k in range(_HORIZON_DAYS + 1):
            day = start + _dt.timedelta(days=k)
            for a, _ in self.hours[day.weekday()]:
                candidates.append(_unix(day, a, zone))
            if k % 7 == 6 or k == _HORIZON_DAYS:
                for t in sorted(c for c in candidates if c > unix):
                    if self.is_open(t):
                        return self._earliest(unix, t)
                candidates = []
        return None

    def _earliest(self, unix: float, found: float) -> float:
        """A closure ending between ``unix`` and ``found`` may open the queue earlier."""
        best = found
        for _, b in self.closures:
            t = b.replace(tzinfo=self.zone).timestamp()
            if unix < t < best and self.is_open(t):
                best = t
        return best


def _unix(day: _dt.date, minute: int, zone: _dt.tzinfo) -> float:
    h, m = divmod(minute, 60)
    if h >= 24:
        return _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(0, 0), zone).timestamp()
    return _dt.datetime.combine(day, _dt.time(h, m), zone).timestamp()


def _zone(name: str, where: str) -> _dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where} must be an IANA time zone name such as 'Europe/Paris', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{where} {name!r} is not a known IANA time zone (e.g. 'Europe/Paris')") from None


# ---------------------------------------------------------------- parsing ([[schedules]] tables)

def _spans(where: str, value: object) -> Tuple[Tuple[int, int], ...]:
    items: Sequence[object]
    if isinstance(value, str):
        items = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise InvalidInput(f"{where} must be a str such as '08:30-12:30, 13:30-17:00' or a list of them, "
                           f"got {value!r}")
    out: List[Tuple[int, int]] = []
    for item in items:
        m = _SPAN.match(item) if isinstance(item, str) else None
        if m is None:
            raise InvalidInput(f"{where}: {item!r} is not a span HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        a, b = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or b > 1440 or b <= a:
            raise InvalidInput(f"{where}: {item!r} must run forwards within one day (00:00 to 24:00)")
        out.append((a, b))
    out.sort()
    for (a1, b1), (a2, _) in zip(out, out[1:]):
        if a2 < b1:
            raise InvalidInput(f"{where}: spans overlap ({value!r})")
    return tuple(out)


def _date(where: str, text: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{where}: {text!r} is not a date YYYY-MM-DD") from None


def _moment(where: str, text: str) -> _dt.datetime:
    try:
        return _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{where}: {text!r} is not a local time 'YYYY-MM-DD HH:MM'") from None


def parse_schedule(where: str, data: Mapping[str, object]) -> Tuple[Schedule, Optional[Tuple[str, ...]]]:
    """A ``[[schedules]]`` table: the schedule and the queues it applies to (None: every queue).
    Keys: ``name``, ``timezone``, ``hours`` (a table of ``mon``...``sun``), ``holidays`` (set
    names and dates), ``closed`` (dates and ``start/end`` local spans), ``queues``."""
    d = dict(data)
    known = {"name", "timezone", "hours", "holidays", "closed", "queues"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise InvalidInput(f"{where}: unknown key(s) {unknown!r} (known: {', '.join(sorted(known))})")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}.name must be a non-empty str, got {name!r}")
    tz = d.get("timezone")
    _zone(tz, f"{where}.timezone")   # type: ignore[arg-type]
    hours_in = d.get("hours")
    if not isinstance(hours_in, Mapping) or not hours_in:
        raise InvalidInput(f"{where}.hours must be a table such as {{ mon = '08:30-17:00', ... }}, got "
                           f"{hours_in!r}")
    bad = sorted(set(hours_in) - set(WEEKDAYS))
    if bad:
        raise InvalidInput(f"{where}.hours: unknown day(s) {bad!r} (days: {', '.join(WEEKDAYS)})")
    hours = tuple(_spans(f"{where}.hours.{w}", hours_in.get(w, "")) for w in WEEKDAYS)
    holidays: set[_dt.date] = set()
    sets: List[str] = []
    hol = d.get("holidays", [])
    if not isinstance(hol, list) or not all(isinstance(h, str) for h in hol):
        raise InvalidInput(f"{where}.holidays must be a list of set names ({', '.join(HOLIDAY_SETS)}) and dates, "
                           f"got {hol!r}")
    for h in hol:
        if h in HOLIDAY_SETS:
            sets.append(h)
        elif not re.match(r"\d{4}-\d{2}-\d{2}\Z", h):
            raise InvalidInput(f"{where}.holidays: {h!r} is neither a date YYYY-MM-DD nor a known set "
                               f"({', '.join(HOLIDAY_SETS)})")
        else:
            holidays.add(_date(f"{where}.holidays", h))
    closures: List[Tuple[_dt.datetime, _dt.datetime]] = []
    closed = d.get("closed", [])
    if not isinstance(closed, list) or not all(isinstance(c, str) for c in closed):
        raise InvalidInput(f"{where}.closed must be a list of dates or 'start/end' local spans, got {closed!r}")
    for c in closed:
        if "/" in c:
            a_s, b_s = c.split("/", 1)
            a, b = _moment(f"{where}.closed", a_s), _moment(f"{where}.closed", b_s)
            if b <= a:
                raise InvalidInput(f"{where}.closed: {c!r} must end after it starts")
        else:
            day = _date(f"{where}.closed", c)
            a = _dt.datetime.combine(day, _dt.time(0, 0))
            b = a + _dt.timedelta(days=1)
        closures.append((a, b))
    queues = d.get("queues")
    if queues is not None and (not isinstance(queues, list) or not queues
                               or not all(isinstance(q, str) and q for q in queues)):
        raise InvalidInput(f"{where}.queues must be a non-empty list of queue names, got {queues!r}")
    sched = Schedule(name, str(tz), hours, frozenset(holidays), tuple(sets), tuple(sorted(closures)))
    return sched, (tuple(queues) if queues is not None else None)


def schedules_by_queue(where: str, tables: object, queue_names: Sequence[str]) -> Dict[str, Schedule]:
    """``[[schedules]]``: the schedule of each queue that has one (a queue in two is an error)."""
    if not isinstance(tables, list):
        raise InvalidInput(f"{where} must be an array of tables ([[schedules]]), got {tables!r}")
    out: Dict[str, Schedule] = {}
    names: set[str] = set()
    for i, t in enumerate(tables):
        w = f"{where}[{i}]"
        if not isinstance(t, Mapping):
            raise InvalidInput(f"{w} must be a table, got {t!r}")
        sched, queues = parse_schedule(w, t)
        if sched.name in names:
            raise InvalidInput(f"{w}.name {sched.name!r} is used twice")
        names.add(sched.name)
        for q in queues if queues is not None else queue_names:
            if q not in queue_names:
                raise InvalidInput(f"{w}.queues names an unknown queue {q!r}")
            if q in out:
                raise InvalidInput(f"{w}: queue {q!r} already follows schedule {out[q].name!r}")
            out[q] = sched
    return out
