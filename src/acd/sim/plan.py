"""Staffing plans: agents per interval and per line from a forecast, by Erlang (``acd staff``).

A :class:`Forecast` holds, per service line, the expected calls of each
interval, the average handle time (talk + wrap-up) and, when known, the mean
patience (Erlang A; without it Erlang C), plus the targets.  It comes from a
forecast TOML file::

    start = "08:30"
    interval = 1800
    service_level = [0.8, 60]     # 80 % answered within 60 s
    answer_rate = 0.85            # optional: at least 85 % answered (needs patience)
    max_occupancy = 0.9           # optional

    [[lines]]
    name = "information"
    calls = [120, 240, 260]       # expected calls per interval
    aht = 390                     # seconds, talk + wrap-up
    patience = 180                # seconds, optional

or from a scenario (its queues, mix, arrivals and targets), or from
``acd staff --rate ... --aht ...``.  :func:`staff_forecast` sizes every
interval with :mod:`acd.erlang`.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import InvalidInput
from .scenario import Scenario, _list, _number, _Table, format_clock, parse_clock, scenario_from_dict

__all__ = ("Line", "Forecast", "StaffingPlan", "forecast_from_scenario", "forecast_from_args", "load_forecast",
           "staff_forecast", "plan_table", "plan_rows", "demo_staffing")

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
    """Expected load per line and interval, with the targets to staff for."""

    start: float
    interval: float
    lines: Tuple[Line, ...]
    service_level: Tuple[float, float] = (0.8, 60.0)
    answer_rate: Optional[float] = None
    max_occupancy: Optional[float] = None

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
        sl = tuple(self.service_level)
        if len(sl) != 2:
            raise InvalidInput(f"service_level must be [fraction, seconds], got {self.service_level!r}")
        object.__setattr__(self, "service_level", (_number("service_level fraction", sl[0], lo=0, hi=1, lo_open=True),
                                                   _number("service_level seconds", sl[1], lo=0)))
        for ln in self.lines:
            for k, c in enumerate(ln.calls):
                load = c / self.interval * ln.aht
                if load > MAX_LOAD:
                    raise InvalidInput(f"line {ln.name!r} interval {k}: {c:g} calls of {ln.aht:g} s in "
                                       f"{self.interval:g} s is {load:,.0f} erlangs, above the limit of "
                                       f"{MAX_LOAD:,.0f}")
        if self.answer_rate is not None:
            _number("answer_rate", self.answer_rate, lo=0, hi=1)
        if self.max_occupancy is not None:
            _number("max_occupancy", self.max_occupancy, lo=0, hi=1, lo_open=True)

    @property
    def n_intervals(self) -> int:
        return len(self.lines[0].calls)

    def with_targets(self, *, service_level: Optional[Tuple[float, float]] = None,
                     answer_rate: Optional[float] = None, max_occupancy: Optional[float] = None) -> "Forecast":
        kw: Dict[str, Any] = {}
        if service_level is not None:
            kw["service_level"] = service_level
        if answer_rate is not None:
            kw["answer_rate"] = answer_rate
        if max_occupancy is not None:
            kw["max_occupancy"] = max_occupancy
        return dataclasses.replace(self, **kw)


@dataclass(frozen=True)
class IntervalStaff:
    """Agents needed in one interval of one line, with what Erlang predicts for them."""

    calls: float
    agents: int
    service_level: float
    p_abandon: float
    occupancy: float


@dataclass(frozen=True)
class StaffingPlan:
    forecast: Forecast
    lines: Dict[str, Tuple[IntervalStaff, ...]]

    def agents(self, line: str) -> List[int]:
        return [s.agents for s in self.lines[line]]

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
                       service_level: Tuple[float, float] = (0.8, 60.0), answer_rate: Optional[float] = None,
                       max_occupancy: Optional[float] = None) -> Forecast:
    """One line from arrival rates in calls per hour, one per interval."""
    calls = tuple(_number("rate", r, lo=0) * interval / 3600.0 for r in rates)
    return Forecast(parse_clock("start", start), interval, (Line("queue", calls, aht, patience),), service_level,
                    answer_rate, max_occupancy)


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
    occ = t.pop("max_occupancy", None)
    lines = []
    for i, ld in enumerate(_list("lines", t.pop("lines"))):
        lt = _Table(f"lines[{i}]", ld)
        lines.append(Line(lt.pop("name"), tuple(_list(lt.path("calls"), lt.pop("calls"))), lt.pop("aht"),
                          lt.pop("patience", None)))
        lt.done()
    t.done()
    return Forecast(start, interval, tuple(lines), tuple(_list("service_level", sl)), ar, occ)


# ---------------------------------------------------------------- staffing

def staff_forecast(fc: Forecast) -> StaffingPlan:
    """Agents per interval and line meeting the forecast's targets, by :func:`acd.erlang.staff_intervals`.

    Erlang A when the line's patience is known (the answer-rate target is a
    cap on ``p_abandon``), Erlang C otherwise (nobody abandons, so the
    answer-rate target holds by itself); Erlang's predictions for the
    agents found come from :func:`acd.erlang.erlang_a`.
    """
    from .. import erlang
    lines = {}
    sl = fc.service_level
    for ln in fc.lines:
        rates = [c / fc.interval for c in ln.calls]
        max_ab = None if fc.answer_rate is None or fc.answer_rate >= 1 else 1.0 - fc.answer_rate
        agents = erlang.staff_intervals(rates, ln.aht, service_level=(min(sl[0], 1 - 1e-12), sl[1]),
                                        max_abandon=max_ab if ln.patience is not None else None,
                                        patience=ln.patience, max_occupancy=fc.max_occupancy)
        cells = []
        patience = math.inf if ln.patience is None else ln.patience
        for c, lam, n in zip(ln.calls, rates, agents.tolist()):
            if lam <= 0 or n <= 0:
                cells.append(IntervalStaff(c, int(n), 1.0, 0.0, 0.0))
                continue
            r = erlang.erlang_a(int(n), lam, ln.aht, patience, sl[1])
            cells.append(IntervalStaff(c, int(n), float(r.service_level), float(r.p_abandon), float(r.occupancy)))
        lines[ln.name] = tuple(cells)
    return StaffingPlan(fc, lines)


def plan_rows(plan: StaffingPlan) -> Tuple[List[str], List[List[str]]]:
    """Header and rows: interval, then per line calls / agents / SL / abandon, then total agents."""
    fc = plan.forecast
    header = ["interval"]
    for name in plan.lines:
        header += [f"{name} calls", "agents", "SL %", "aband. %"]
    header.append("total agents")
    rows = []
    for i in range(fc.n_intervals):
        row = [format_clock(fc.start + i * fc.interval)]
        for name, cells in plan.lines.items():
            s = cells[i]
            row += [f"{s.calls:.0f}", str(s.agents), f"{s.service_level * 100:.0f}", f"{s.p_abandon * 100:.1f}"]
        row.append(str(plan.total[i]))
        rows.append(row)
    agent_hours = sum(plan.total) * fc.interval / 3600.0
    tail = ["total"]
    for name, cells in plan.lines.items():
        tail += [f"{sum(s.calls for s in cells):.0f}", "", "", ""]
    tail.append(f"{agent_hours:.0f} h")
    rows.append(tail)
    return header, rows


def plan_table(plan: StaffingPlan) -> str:
    """The plan as a fixed-width text table: agents per line and interval, with Erlang's predictions.

    ``SL %`` and ``aband. %`` are over all lines (weighted by calls).
    """
    fc = plan.forecast
    sl = fc.service_level
    names = list(plan.lines)
    header = ["interval", "calls"] + names + ["total", "SL %", "aband. %", "occup. %"]
    rows = []
    for i in range(fc.n_intervals):
        cells = [plan.lines[k][i] for k in names]
        calls = sum(c.calls for c in cells)
        agents = sum(c.agents for c in cells)
        w = calls if calls > 0 else 1.0
        slp = sum(c.service_level * c.calls for c in cells) / w if calls > 0 else 1.0
        ab = sum(c.p_abandon * c.calls for c in cells) / w if calls > 0 else 0.0
        occ = sum(c.occupancy * c.agents for c in cells) / agents if agents else 0.0
        rows.append([format_clock(fc.start + i * fc.interval), f"{calls:.0f}"] + [str(c.agents) for c in cells]
                    + [str(agents), f"{slp * 100:.0f}", f"{ab * 100:.1f}", f"{occ * 100:.0f}"])
    agent_hours = sum(plan.total) * fc.interval / 3600.0
    rows.append(["total", f"{sum(sum(c.calls for c in plan.lines[k]) for k in names):.0f}"]
                + [f"{sum(plan.agents(k)) * fc.interval / 3600.0:.0f} h" for k in names]
                + [f"{agent_hours:.0f} h", "", "", ""])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = [f"targets: {sl[0] * 100:.0f} % answered within {sl[1]:g} s"
           + (f", answer rate >= {fc.answer_rate * 100:.0f} %" if fc.answer_rate is not None else "")
           + (f", occupancy <= {fc.max_occupancy * 100:.0f} %" if fc.max_occupancy is not None else ""),
           "lines: " + "; ".join(f"{ln.name} (aht {ln.aht:.0f} s, " + (f"patience {ln.patience:.0f} s, erlang A)"
                                                                      if ln.patience else "erlang C)")
                                 for ln in fc.lines)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out.append(fmt.format(*header))
    for r in rows:
        out.append(fmt.format(*r))
    return "\n".join(out)


def demo_staffing(sc: Scenario) -> Tuple[StaffingPlan, Scenario]:
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
