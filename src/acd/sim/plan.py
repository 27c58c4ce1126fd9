"""Staffing plans: agents per interval and per line from a forecast, by Erlang (``acd staff``).

A :class:`Forecast` holds, per service line, the expected calls of each
interval, the average handle time (talk + wrap-up) and, when known, the mean
patience (Erlang A; without it Erlang C), plus the targets.  It comes from a
forecast TOML file::

    start = "08:30"
    interval = 1800
    service_level = [0.8, 60]     # 80 % answered within 60 s
    answer_rate = 0.85            # optional: at least 85 % answered (needs patience)
    max_occupancy = 0.9           # optional, the default; 1: no cap
    max_asa = 30                  # optional: answered calls wait 30 s on average at most
    min_over_load = true          # optional, the default: more agents than the offered load

    [[lines]]
    name = "information"
    calls = [120, 240, 260]       # expected calls per interval
    aht = 390                     # seconds, talk + wrap-up
    patience = 180                # seconds, optional

or from a scenario (its queues, mix, arrivals and targets), from
``acd staff --rate ... --aht ...``, from calls per day and an intraday
profile (:func:`forecast_from_profile`) or from a CSV of calls per interval
(:func:`load_calls_csv`).  :func:`staff_forecast` sizes every interval with
:func:`acd.erlang.staff_detail` (safe defaults: occupancy at most 90 %, more
agents than the offered load); :func:`evaluate_forecast` grades given
head-counts.  :func:`plan_records`, :func:`plan_totals`, :func:`plan_csv`,
:func:`plan_json` and :func:`plan_table` write the result (docs/staffing.md).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import InvalidInput
from .scenario import Scenario, _list, _number, _Table, format_clock, parse_clock, scenario_from_dict

__all__ = ("Line", "Forecast", "IntervalStaff", "StaffingPlan", "forecast_from_scenario", "forecast_from_args",
           "forecast_from_profile", "load_calls_csv", "load_profile", "load_forecast", "staff_forecast",
           "evaluate_forecast", "plan_records", "plan_totals", "plan_csv", "plan_json", "plan_table", "plan_rows",
           "erlang_staffing", "CSV_COLUMNS")

#: the largest offered load (erlangs: calls per second x handle time) of one line in one interval
MAX_LOAD = 1_000_000.0


@dataclass(frozen=True)
class Line:
    """One service line of a forecast."""

    name: str
    calls: Tuple[float, ...]          # expected calls per interval
    aht: float                        # seconds, talk + wrap-up
    patience: Optional[float] = None  # mean seconds; None: callers never hang up (Erlang C)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"line name must be a non-empty str, got {self.name!r}")
        object.__setattr__(self, "calls", tuple(_number(f"line {self.name!r} calls", c, lo=0) for c in self.calls))
        object.__setattr__(self, "aht", _number(f"line {self.name!r} aht", self.aht, lo=0, lo_open=True))
        if self.patience is not None:
            p = self.patience
            if isinstance(p, (int, float)) and not isinstance(p, bool) and math.isinf(p) and p > 0:
                object.__setattr__(self, "patience", None)
            else:
                object.__setattr__(self, "patience", _number(f"line {self.name!r} patience", p, lo=0, lo_open=True))


@dataclass(frozen=True)
class Forecast:
    """Expected load per line and interval, with the targets to staff for.

    ``service_level`` ``(fraction, seconds)`` or ``None`` (no target);
    ``answer_rate`` ``None`` or 0 (no target) up to 1 (only for lines
    without patience: with abandonment it can never be met);
    ``max_occupancy`` 0.9 by default, ``None`` or 1 for no cap; ``max_asa``
    seconds or ``None``; ``min_over_load`` (default on): more agents than
    the offered load.  Targets that mean "none" are stored as ``None``.
    """

    start: float
    interval: float
    lines: Tuple[Line, ...]
    service_level: Optional[Tuple[float, float]] = (0.8, 60.0)
    answer_rate: Optional[float] = None
    max_occupancy: Optional[float] = 0.9
    max_asa: Optional[float] = None
    min_over_load: bool = True

    def __post_init__(self) -> None:
        _number("start", self.start, lo=0)
        _number("interval", self.interval, lo=0, lo_open=True)
        if not self.lines:
            raise InvalidInput("a forecast needs at least one line")
        n = len(self.lines[0].calls)
        for ln in self.lines:
            if len(ln.calls) != n:
                raise InvalidInput(f"every line must give the same number of intervals ({n}), "
                                   f"line {ln.name!r} gives {len(ln.calls)}")
        if self.service_level is not None:
            sl = tuple(self.service_level)
            if len(sl) != 2:
                raise InvalidInput(f"service_level must be [fraction, seconds], got {self.service_level!r}")
            frac = _number("service_level fraction", sl[0], lo=0, hi=1, lo_open=True)
            secs = _number("service_level seconds", sl[1], lo=0)
            if frac == 1.0:
                raise InvalidInput(f"service_level [1, {secs:g}] can never be met: some calls always wait "
                                   f"longer than {secs:g} s (use a fraction below 1, e.g. 0.99)")
            object.__setattr__(self, "service_level", (frac, secs))
        for ln in self.lines:
            for k, c in enumerate(ln.calls):
                load = c / self.interval * ln.aht
                if load > MAX_LOAD:
                    raise InvalidInput(f"line {ln.name!r} interval {k}: {c:g} calls of {ln.aht:g} s in "
                                       f"{self.interval:g} s is {load:,.0f} erlangs, above the limit of "
                                       f"{MAX_LOAD:,.0f}")
        if self.answer_rate is not None:
            ar = _number("answer_rate", self.answer_rate, lo=0, hi=1)
            impatient = [ln for ln in self.lines if ln.patience is not None]
            if ar == 1.0 and impatient:
                raise InvalidInput(f"answer_rate 1 can never be met: line {impatient[0].name!r} has a finite "
                                   f"patience ({impatient[0].patience:g} s), so some callers always hang up "
                                   f"first (use a value below 1, e.g. 0.99)")
            object.__setattr__(self, "answer_rate", None if ar == 0.0 else ar)   # >= 0 always holds
        if self.max_occupancy is not None:
            occ = _number("max_occupancy", self.max_occupancy, lo=0, hi=1, lo_open=True)
            object.__setattr__(self, "max_occupancy", None if occ == 1.0 else occ)
        if self.max_asa is not None:
            if self.max_asa == 0:
                raise InvalidInput("max_asa 0 can never be met: some calls always wait")
            _number("max_asa", self.max_asa, lo=0, lo_open=True)
        if not isinstance(self.min_over_load, bool):
            raise InvalidInput(f"min_over_load must be true or false, got {self.min_over_load!r}")

    @property
    def n_intervals(self) -> int:
        return len(self.lines[0].calls)

    def with_targets(self, *, service_level: Union[None, str, Tuple[float, float]] = None,
                     answer_rate: Optional[float] = None, max_occupancy: Optional[float] = None,
                     max_asa: Optional[float] = None, min_over_load: Optional[bool] = None) -> "Forecast":
        """A copy with the targets given replaced (``None``: keep; ``service_level="none"``: no SL target)."""
        kw: Dict[str, Any] = {}
        if service_level is not None:
            kw["service_level"] = None if service_level == "none" else service_level
        for name, v in (("answer_rate", answer_rate), ("max_occupancy", max_occupancy), ("max_asa", max_asa),
                        ("min_over_load", min_over_load)):
            if v is not None:
                kw[name] = v
        return dataclasses.replace(self, **kw)

    def targets(self) -> Dict[str, Any]:
        """The targets applied, for JSON: absent targets are ``None``."""
        return {"service_level": list(self.service_level) if self.service_level else None,
                "answer_rate": self.answer_rate, "max_occupancy": self.max_occupancy, "max_asa": self.max_asa,
                "min_over_load": self.min_over_load}

    def targets_text(self) -> str:
        """The targets applied, in words (only those applied)."""
        parts = []
        if self.service_level is not None:
            parts.append(f"{self.service_level[0] * 100:g} % answered within {self.service_level[1]:g} s")
        if self.answer_rate is not None:
            parts.append(f"answer rate >= {self.answer_rate * 100:g} %")
        if self.max_asa is not None:
            parts.append(f"ASA <= {self.max_asa:g} s")
        if self.max_occupancy is not None:
            parts.append(f"occupancy <= {self.max_occupancy * 100:g} %")
        parts.append("agents > offered load" if self.min_over_load else "agents may be at or below the load")
        return ", ".join(parts)


@dataclass(frozen=True)
class IntervalStaff:
    """Agents in one interval of one line, with what Erlang predicts for them.

    ``service_level`` is NaN without a service-level target; ``asa`` is
    ``inf`` when no call is answered in finite time; ``bound`` and ``fails``
    as in :class:`acd.erlang.Staffing`.
    """

    calls: float
    agents: int
    service_level: float
    p_abandon: float
    occupancy: float
    scheduled: int = 0
    asa: float = 0.0
    load: float = 0.0
    bound: str = ""
    fails: Tuple[str, ...] = ()


@dataclass(frozen=True)
class StaffingPlan:
    """Cells per line (one per interval); ``evaluated``: the head-counts were given, not searched."""

    forecast: Forecast
    lines: Dict[str, Tuple[IntervalStaff, ...]]
    shrinkage: float = 0.0
    evaluated: bool = False

    def agents(self, line: str) -> List[int]:
        return [s.agents for s in self.lines[line]]

    def scheduled(self, line: str) -> List[int]:
        return [s.scheduled for s in self.lines[line]]

    @property
    def total(self) -> List[int]:
        return [sum(col) for col in zip(*(self.agents(k) for k in self.lines))]


# ---------------------------------------------------------------- building forecasts

def forecast_from_scenario(sc: Scenario) -> Forecast:
    """Per queue of the scenario: its share of the arrivals, mean talk + wrap-up, mean patience."""
    loads = sc.queue_load()
    lines = []
    for q in sc.queues:
        calls, talk, pat = loads[q.name]
        if sum(calls) <= 0:
            continue
        lines.append(Line(q.name, tuple(calls), talk + q.wrap_up, None if math.isinf(pat) else pat))
    t = sc.targets
    return Forecast(sc.start, sc.interval, tuple(lines), t.service_level, t.answer_rate)


def forecast_from_args(rates: Sequence[float], aht: float, *, patience: Optional[float] = None,
                       interval: float = 1800.0, start: Union[str, float] = "00:00",
                       service_level: Optional[Tuple[float, float]] = (0.8, 60.0),
                       answer_rate: Optional[float] = None, max_occupancy: Optional[float] = 0.9,
                       max_asa: Optional[float] = None, min_over_load: bool = True) -> Forecast:
    """One line from arrival rates in calls per hour, one per interval."""
    calls = tuple(_number("rate", r, lo=0) * interval / 3600.0 for r in rates)
    return Forecast(parse_clock("start", start), interval, (Line("queue", calls, aht, patience),), service_level,
                    answer_rate, max_occupancy, max_asa, min_over_load)


def forecast_from_profile(calls_per_day: float, weights: Sequence[float], aht: float, *,
                          patience: Optional[float] = None, interval: float = 1800.0,
                          start: Union[str, float] = "00:00", name: str = "calls per day") -> Forecast:
    """One line: ``calls_per_day`` shared among the intervals in proportion to ``weights`` (default targets).

    ``name`` names the input in errors (the CLI passes its flags).
    """
    total = _number(name, calls_per_day, lo=0, hi=1e12)
    w = [_number(f"{name} profile weight {i + 1}", x, lo=0) for i, x in enumerate(weights)]
    if not w or sum(w) <= 0:
        raise InvalidInput(f"the {name} profile needs at least one positive weight, got {list(weights)!r}")
    s = sum(w)
    return Forecast(parse_clock("start", start), interval, (Line("queue", tuple(total * x / s for x in w), aht,
                                                                 patience),))


def load_profile(path: Union[str, Path], what: str = "profile") -> List[float]:
    """Weights from a file: one per line, or CSV whose last column is the weight (a header row allowed).

    Blank lines and ``#`` comments are skipped.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"cannot read {what} file {str(p)!r}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{what} file {str(p)!r} is not UTF-8 text: {e}") from None
    out: List[float] = []
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip() and not r[0].lstrip().startswith("#")]
    for k, row in enumerate(rows):
        cell = row[-1].strip()
        try:
            v = float(cell)
        except ValueError:
            if k == 0:
                continue   # header
            raise InvalidInput(f"{what} file {str(p)!r} row {k + 1}: the weight must be a number, "
                               f"got {cell!r}") from None
        if not math.isfinite(v) or v < 0:
            raise InvalidInput(f"{what} file {str(p)!r} row {k + 1}: the weight must be a finite number >= 0, "
                               f"got {cell!r}")
        out.append(v)
    if not out:
        raise InvalidInput(f"{what} file {str(p)!r} gives no weight")
    return out


def load_calls_csv(path: Union[str, Path], aht: float, *, patience: Optional[float] = None,
                   interval: Optional[float] = None, what: str = "calls CSV") -> Forecast:
    """Calls per interval from CSV: header ``start,calls`` and optionally ``line`` (default targets).

    ``start`` is ``"HH:MM"``; one row per interval (and line); other columns
    are ignored.  The interval is the spacing of the starts (which must be
    even); a given ``interval`` must agree with it, and is needed when there
    is only one start.  Every line gets ``aht`` and ``patience``.
    """
    p = Path(path)
    where = f"{what} {str(p)!r}"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"cannot read {what} file {str(p)!r}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{where} is not UTF-8 text: {e}") from None
    reader = csv.DictReader(io.StringIO(text))
    cols = [c.strip() for c in (reader.fieldnames or [])]
    if "start" not in cols or "calls" not in cols:
        raise InvalidInput(f"{where} needs a header with columns start and calls (and optionally line), "
                           f"got {','.join(cols) or 'nothing'}")
    cells: Dict[str, Dict[float, float]] = {}
    for k, raw in enumerate(reader, start=2):
        row = {(key or "").strip(): (v or "").strip() for key, v in raw.items() if key is not None}
        if not any(row.values()):
            continue
        start = parse_clock(f"{where} row {k} start", row.get("start", ""))
        try:
            calls = float(row.get("calls", ""))
        except ValueError:
            raise InvalidInput(f"{where} row {k}: calls must be a number, got {row.get('calls')!r}") from None
        if not (math.isfinite(calls) and calls >= 0):
            raise InvalidInput(f"{where} row {k}: calls must be a finite number >= 0, got {row.get('calls')!r}")
        line = row.get("line") or "queue"
        per = cells.setdefault(line, {})
        if start in per:
            raise InvalidInput(f"{where} row {k}: line {line!r} at {format_clock(start)} is given twice")
        per[start] = calls
    if not cells:
        raise InvalidInput(f"{where} has no rows")
    starts = sorted({t for per in cells.values() for t in per})
    if len(starts) > 1:
        steps = {round(b - a, 6) for a, b in zip(starts, starts[1:])}
        if len(steps) != 1:
            raise InvalidInput(f"{where}: the starts must be evenly spaced, got gaps of "
                               f"{', '.join(f'{s:g}' for s in sorted(steps))} s")
        step = steps.pop()
        if interval is not None and abs(interval - step) > 1e-6:
            raise InvalidInput(f"{where}: the starts are {step:g} s apart but the interval given is {interval:g} s")
        interval = step
    elif interval is None:
        interval = 1800.0
    for line, per in cells.items():
        missing = [t for t in starts if t not in per]
        if missing:
            raise InvalidInput(f"{where}: line {line!r} has no row for {format_clock(missing[0])}")
    lines = tuple(Line(name, tuple(per[t] for t in starts), aht, patience) for name, per in cells.items())
    return Forecast(starts[0], interval, lines)


def load_forecast(path: Union[str, Path]) -> Forecast:
    """A forecast TOML file, or a scenario TOML file (recognised by its ``call_types``)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"cannot read forecast file {str(p)!r}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"forecast file {str(p)!r} is not valid TOML: {e}") from None
    if "call_types" in data:
        return forecast_from_scenario(scenario_from_dict(data))
    t = _Table("", data)
    start = parse_clock("start", t.pop("start", 0.0))
    interval = _number("interval", t.pop("interval", 1800.0), lo=0, lo_open=True)
    sl = t.pop("service_level", [0.8, 60.0])
    ar = t.pop("answer_rate", None)
    occ = t.pop("max_occupancy", 0.9)
    asa = t.pop("max_asa", None)
    floor = t.pop("min_over_load", True)
    lines = []
    for i, ld in enumerate(_list("lines", t.pop("lines"))):
        lt = _Table(f"lines[{i}]", ld)
        lines.append(Line(lt.pop("name"), tuple(_list(lt.path("calls"), lt.pop("calls"))), lt.pop("aht"),
                          lt.pop("patience", None)))
        lt.done()
    t.done()
    return Forecast(start, interval, tuple(lines), tuple(_list("service_level", sl)), ar, occ, asa, floor)


# ---------------------------------------------------------------- staffing

def _line_targets(fc: Forecast, ln: Line) -> Dict[str, Any]:
    # nobody abandons without patience (Erlang C): the answer-rate target holds by itself
    max_ab = None if fc.answer_rate is None or ln.patience is None else 1.0 - fc.answer_rate
    return dict(service_level=fc.service_level, max_abandon=max_ab, patience=ln.patience,
                max_occupancy=fc.max_occupancy, min_over_load=fc.min_over_load, max_asa=fc.max_asa)


def _cell(fc: Forecast, calls: float, s: Any) -> IntervalStaff:
    return IntervalStaff(calls=calls, agents=s.agents,
                         service_level=s.service_level if fc.service_level is not None else math.nan,
                         p_abandon=s.p_abandon, occupancy=s.occupancy, scheduled=s.scheduled, asa=s.asa,
                         load=s.load, bound=s.bound, fails=s.fails)


def staff_forecast(fc: Forecast, *, shrinkage: float = 0.0) -> StaffingPlan:
    """The fewest agents per interval and line meeting the forecast's targets (:func:`acd.erlang.staff_detail`).

    Erlang A when the line's patience is known (the answer-rate target is a
    cap on ``p_abandon``), Erlang C otherwise (nobody abandons, so the
    answer-rate target holds by itself).  ``shrinkage`` turns agents on the
    phones into the head-count to schedule.
    """
    from .. import erlang
    lines = {}
    for ln in fc.lines:
        kw = _line_targets(fc, ln)
        lines[ln.name] = tuple(_cell(fc, c, erlang.staff_detail(c / fc.interval, ln.aht, shrinkage=shrinkage, **kw))
                               for c in ln.calls)
    return StaffingPlan(fc, lines, shrinkage)


def evaluate_forecast(fc: Forecast, agents: Union[Mapping[str, Sequence[int]], Sequence[int]], *,
                      shrinkage: float = 0.0, name: str = "agents") -> StaffingPlan:
    """What Erlang predicts with the given agents on the phones, and which targets fail (no search).

    ``agents``: per line, one head-count per interval (or one for the day);
    a plain sequence applies to every line.  ``name`` names the input in
    errors (the CLI passes its flag).
    """
    from .. import erlang
    lines = {}
    for ln in fc.lines:
        if isinstance(agents, Mapping):
            if ln.name not in agents:
                raise InvalidInput(f"{name} gives no head-count for line {ln.name!r}")
            counts = list(agents[ln.name])
        else:
            counts = list(agents)
        if len(counts) == 1:
            counts = counts * fc.n_intervals
        if len(counts) != fc.n_intervals:
            raise InvalidInput(f"{name} gives {len(counts)} head-counts for {fc.n_intervals} intervals "
                               f"(give one, or one per interval)")
        kw = _line_targets(fc, ln)
        cells = []
        for c, n in zip(ln.calls, counts):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InvalidInput(f"{name} head-counts must be ints >= 0, got {n!r}")
            cells.append(_cell(fc, c, erlang.evaluate_agents(n, c / fc.interval, ln.aht, shrinkage=shrinkage, **kw)))
        lines[ln.name] = tuple(cells)
    return StaffingPlan(fc, lines, shrinkage, evaluated=True)


# ---------------------------------------------------------------- output

#: the CSV columns (and JSON row keys) of a plan: fractions are 0..1, times in seconds, clock times "HH:MM"
CSV_COLUMNS = ("start", "end", "line", "calls", "load", "agents", "scheduled", "service_level", "abandon", "asa",
               "occupancy", "bound", "fails")


def _finite(x: float) -> Optional[float]:
    return x if math.isfinite(x) else None


def plan_records(plan: StaffingPlan) -> List[Dict[str, Any]]:
    """One dict per (interval, line), keys :data:`CSV_COLUMNS`; non-finite values (no SL target, no answer) are None."""
    fc = plan.forecast
    out = []
    for i in range(fc.n_intervals):
        t0 = fc.start + i * fc.interval
        for name, cells in plan.lines.items():
            s = cells[i]
            out.append({"start": format_clock(t0), "end": format_clock(t0 + fc.interval), "line": name,
                        "calls": s.calls, "load": s.load, "agents": s.agents, "scheduled": s.scheduled,
                        "service_level": _finite(s.service_level), "abandon": s.p_abandon, "asa": _finite(s.asa),
                        "occupancy": s.occupancy, "bound": s.bound, "fails": list(s.fails)})
    return out


def _summary(cells: Sequence[IntervalStaff], interval: float, fte_hours: float) -> Dict[str, Any]:
    calls = sum(c.calls for c in cells)
    answered = sum(c.calls * (1.0 - c.p_abandon) for c in cells)
    agents = sum(c.agents for c in cells)
    hours = interval / 3600.0
    with_sl = [c for c in cells if math.isfinite(c.service_level)]
    sl_calls = sum(c.calls for c in with_sl)
    waits = [c for c in cells if c.calls * (1.0 - c.p_abandon) > 0]
    asa = (sum(c.asa * c.calls * (1.0 - c.p_abandon) for c in waits) / answered) if answered > 0 else None
    return {
        "calls": calls,
        "agent_hours": agents * hours,
        "scheduled_hours": sum(c.scheduled for c in cells) * hours,
        "fte": sum(c.scheduled for c in cells) * hours / fte_hours,
        "service_level": (sum(c.service_level * c.calls for c in with_sl) / sl_calls if sl_calls > 0 else None)
        if with_sl else None,
        "answer_rate": answered / calls if calls > 0 else None,
        "abandon": 1.0 - answered / calls if calls > 0 else None,
        "asa": _finite(asa) if asa is not None else None,
        "occupancy": sum(c.occupancy * c.agents for c in cells) / agents if agents else None,
    }


def plan_totals(plan: StaffingPlan, fte_hours: float = 7.0) -> Dict[str, Any]:
    """The day: calls, agent-hours, scheduled hours, FTE (scheduled hours / ``fte_hours``), peak head-counts,
    and SL (weighted by calls), answer rate and abandonment (by calls), ASA (by answered calls), occupancy (by
    agent-hours); ``lines``: the same per line."""
    _number("fte_hours", fte_hours, lo=0, hi=24, lo_open=True)
    fc = plan.forecast
    allc = [c for cells in plan.lines.values() for c in cells]
    out = _summary(allc, fc.interval, fte_hours)
    out["fte_hours"] = fte_hours
    out["peak_agents"] = max(plan.total) if plan.total else 0
    out["peak_scheduled"] = max((sum(col) for col in zip(*(plan.scheduled(k) for k in plan.lines))), default=0)
    out["failing_rows"] = sum(1 for c in allc if c.fails)
    out["lines"] = {name: _summary(cells, fc.interval, fte_hours) for name, cells in plan.lines.items()}
    return out


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ";".join(v)
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) >= 1 or v == 0 else f"{v:.6f}".rstrip("0")
    return str(v)


def plan_csv(plan: StaffingPlan) -> str:
    """Header :data:`CSV_COLUMNS` and one row per (interval, line); no total row; ``fails`` joined by ``;``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in plan_records(plan):
        w.writerow([_csv_value(r[k]) for k in CSV_COLUMNS])
    return buf.getvalue()


def plan_json(plan: StaffingPlan, fte_hours: float = 7.0) -> str:
    """``{"interval", "start", "mode", "targets", "shrinkage", "lines", "rows", "totals"}`` (strict JSON)."""
    fc = plan.forecast
    doc = {"interval": fc.interval, "start": format_clock(fc.start),
           "mode": "evaluate" if plan.evaluated else "staff", "targets": fc.targets(), "shrinkage": plan.shrinkage,
           "lines": [{"name": ln.name, "aht": ln.aht, "patience": ln.patience,
                      "model": "erlang A" if ln.patience is not None else "erlang C"} for ln in fc.lines],
           "rows": plan_records(plan), "totals": plan_totals(plan, fte_hours)}
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


_SHORT = {"service_level": "SL", "abandon": "abandon", "asa": "ASA", "occupancy": "occupancy", "load": "load",
          "none": "none", "zero": "-", "given": "given"}


def _pct(x: Optional[float], digits: int = 0) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * 100:.{digits}f}"


def _secs(x: Optional[float]) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.1f}"


def plan_table(plan: StaffingPlan, fte_hours: float = 7.0) -> str:
    """The plan as a fixed-width text table, one row per interval (lines side by side), then the day's totals.

    ``SL %``, ``aband. %`` and ``ASA s`` are over all lines (weighted by
    calls, answered calls for ASA), ``occup. %`` by agents; ``bound`` (or,
    for given head-counts, ``fails``) per line, separated by ``/``.
    """
    fc = plan.forecast
    names = list(plan.lines)
    multi = len(names) > 1
    shrink = plan.shrinkage > 0
    last = "fails" if plan.evaluated else "bound"
    header = ["interval", "calls"] + (names + ["total"] if multi else ["agents"]) + (["sched."] if shrink else []) \
        + ["SL %", "aband. %", "ASA s", "occup. %", last]
    rows = []
    for i in range(fc.n_intervals):
        cells = [plan.lines[k][i] for k in names]
        sm = _summary(cells, fc.interval, fte_hours)
        if plan.evaluated:
            tag = "/".join("+".join(_SHORT[f] for f in c.fails) or "ok" for c in cells)
        else:
            tag = "/".join(_SHORT.get(c.bound, c.bound) for c in cells)
        rows.append([format_clock(fc.start + i * fc.interval), f"{sm['calls']:.0f}"]
                    + [str(c.agents) for c in cells] + ([str(sum(c.agents for c in cells))] if multi else [])
                    + ([str(sum(c.scheduled for c in cells))] if shrink else [])
                    + [_pct(sm["service_level"]), _pct(sm["abandon"], 1), _secs(sm["asa"]), _pct(sm["occupancy"]),
                       tag])
    tot = plan_totals(plan, fte_hours)
    rows.append(["total", f"{tot['calls']:.0f}"]
                + [f"{tot['lines'][k]['agent_hours']:.0f} h" for k in names]
                + ([f"{tot['agent_hours']:.0f} h"] if multi else [])
                + ([f"{tot['scheduled_hours']:.0f} h"] if shrink else [])
                + [_pct(tot["service_level"]), _pct(tot["abandon"], 1), _secs(tot["asa"]), _pct(tot["occupancy"]),
                   ""])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    what = "evaluating the given agents against" if plan.evaluated else "targets"
    out = [f"{what}: {fc.targets_text()}",
           "lines: " + "; ".join(f"{ln.name} (aht {ln.aht:g} s, " + (f"patience {ln.patience:g} s, erlang A)"
                                                                    if ln.patience else "erlang C)")
                                 for ln in fc.lines)]
    if shrink:
        out.append(f"shrinkage {plan.shrinkage * 100:g} %: scheduled = agents / {1 - plan.shrinkage:g}, rounded up")
    fmt = "  ".join(f"{{:{'<' if i in (0, len(widths) - 1) else '>'}{w}}}" for i, w in enumerate(widths))
    out.append(fmt.format(*header).rstrip())
    for r in rows:
        out.append(fmt.format(*r).rstrip())
    day = (f"day: {tot['calls']:,.0f} calls, {tot['agent_hours']:,.1f} agent-hours on the phones"
           + (f", {tot['scheduled_hours']:,.1f} scheduled" if shrink else "")
           + f" = {tot['fte']:,.1f} FTE of {fte_hours:g} h; peak {tot['peak_agents']} agents"
           + (f" ({tot['peak_scheduled']} scheduled)" if shrink else ""))
    out.append(day)
    if plan.evaluated:
        out.append(f"{tot['failing_rows']} of {fc.n_intervals * len(names)} line-intervals fail a target"
                   if tot["failing_rows"] else "every line-interval meets every target")
    return "\n".join(out)


def plan_rows(plan: StaffingPlan) -> Tuple[List[str], List[List[str]]]:
    """Header and rows for the HTML report: interval, per line calls / agents / SL / abandon / bound, total agents."""
    fc = plan.forecast
    header = ["interval"]
    for name in plan.lines:
        header += [f"{name} calls", "agents", "SL %", "aband. %", "bound"]
    header.append("total agents")
    rows = []
    for i in range(fc.n_intervals):
        row = [format_clock(fc.start + i * fc.interval)]
        for name, cells in plan.lines.items():
            s = cells[i]
            row += [f"{s.calls:.0f}", str(s.agents), _pct(s.service_level), _pct(s.p_abandon, 1),
                    _SHORT.get(s.bound, s.bound)]
        row.append(str(plan.total[i]))
        rows.append(row)
    agent_hours = sum(plan.total) * fc.interval / 3600.0
    tail = ["total"]
    for name, cells in plan.lines.items():
        tail += [f"{sum(s.calls for s in cells):.0f}", "", "", "", ""]
    tail.append(f"{agent_hours:.0f} h")
    rows.append(tail)
    return header, rows


def erlang_staffing(sc: Scenario) -> Tuple[StaffingPlan, Scenario]:
    """Staff the scenario's lines by Erlang and give each line's agents to its home group.

    A group's home line is the first queue it lists; the first group of a
    home line gets the line's per-interval staffing, the other groups of
    that line none.  Groups with no home line keep their schedule.  Pauses
    are dropped: Erlang counts agents on the phones.
    """
    plan = staff_forecast(forecast_from_scenario(sc))
    staffing: Dict[str, List[int]] = {}
    used = set()
    for g in sc.agents:
        home = g.queues[0] if g.queues else None
        if home is None or home not in plan.lines:
            continue
        staffing[g.name] = plan.agents(home) if home not in used else [0] * sc.n_intervals
        used.add(home)
    missing = [q for q in plan.lines if q not in used]
    if missing:
        raise InvalidInput(f"no agent group has {missing[0]!r} as its home line (first of its queues)")
    groups = tuple(dataclasses.replace(g, pauses=()) if g.name in staffing else g for g in sc.agents)
    return plan, sc.replace(agents=groups).with_staffing(staffing)
