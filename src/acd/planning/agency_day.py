"""The agency's question, answered by simulation: what ``acd demo`` prints.

A public agency's peak day (the bundled ``public_agency`` scenario: 5,000
calls, about 7 minutes of talk, callers who wait minutes) is run five ways,
each over several seeds, on the real engine:

1. **today**: the agency's own schedule with the routing most PBX queues
   have: one queue per line answered by that line's agents only, first come
   first served, no caller priority, no call-back;
2. **acd's routing**, same agents: skills requirements that relax as a call
   waits (other lines' agents help after 60-90 s), health professionals
   first, longest-idle agent;
3. the same **with call-back offers** (virtual hold), taken by the share of
   callers the published field results report (``callback.accept``);
4. and 5. the **head-count acd finds** for 85 % and for 92 % of calls
   answered in every interval, found by simulation
   (:func:`acd.planning.simstaff.staff_by_simulation`, common random
   numbers over the seeds), each run with and without call-backs so that the
   effect of call-backs is seen where agents are no longer the bottleneck.

Every figure is the mean over the seeds with a 95 % confidence half-width
(Student t), and every definition is printed with the table.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..sim.scenario import Scenario

__all__ = ("classic_routing", "Column", "Study", "run_study", "render_study")


def classic_routing(sc: Scenario) -> Scenario:
    """The same day with the routing of a plain PBX queue per line.

    Each queue keeps only its first routing step (no relaxation, no
    overflow), each agent group serves only its home line (the first queue
    it lists) and every caller segment has the same priority.  Agents,
    schedules, volumes and callers are unchanged, so the difference with the
    scenario as written is acd's routing alone.
    """
    queues = tuple(dataclasses.replace(q, steps=q.steps[:1]) for q in sc.queues)
    agents = tuple(dataclasses.replace(g, queues=None if g.queues is None else g.queues[:1]) for g in sc.agents)
    segments = tuple(dataclasses.replace(s, priority=0) for s in sc.segments)
    return sc.replace(queues=queues, agents=agents, segments=segments)


# the figures of each column: label, kpi key ("all" column of acd.kpi.summary), scale, format
_FIGURES: Tuple[Tuple[str, str, float, str], ...] = (
    ("answered %", "answer_rate", 100.0, "{:.1f}"),
    ("abandoned % (excl. short)", "abandon_rate_excl_short", 100.0, "{:.1f}"),
    ("SL % (60 s, offered excl. short)", "sl_offered_excl_short", 100.0, "{:.1f}"),
    ("ASA s (answered calls)", "asa", 1.0, "{:.0f}"),
    ("call-backs accepted", "cb_accepted", 1.0, "{:.0f}"),
    ("occupancy %", "occupancy", 100.0, "{:.1f}"),
)


@dataclass(frozen=True)
class Column:
    """One way of running the day, over several seeds."""

    label: str
    scenario: Scenario
    agent_hours: float                        # on shift (paid)
    phone_hours: float                        # on shift minus planned pauses
    peak_agents: int
    figures: Dict[str, Tuple[float, float]]   # label -> (mean, 95 % half-width)
    waits: Dict[str, float]                   # answered calls' waits: p50, p90, max (seconds, pooled over seeds)
    runs: Tuple[Any, ...]                     # the SimResults (the report draws the first)


@dataclass(frozen=True)
class Study:
    scenario: Scenario
    seeds: Tuple[int, ...]
    columns: Tuple[Column, ...]
    search: Dict[str, Any]                    # per target: simulations run, seconds, staffing rows


def _half_width(xs: Sequence[float]) -> float:
    """95 % two-sided Student-t half-width of the mean (0 for one value)."""
    n = len(xs)
    if n < 2:
        return 0.0
    # t quantiles 0.975 for 1..30 degrees of freedom; beyond, the normal's 1.96 is within 1 %
    t = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
    q = t[n - 2] if n - 1 <= len(t) else 1.96
    return q * float(np.std(xs, ddof=1)) / math.sqrt(n)


def _agent_hours(sc: Scenario) -> Tuple[float, float, int]:
    """Agent-hours on shift, agent-hours on the phones (shift minus planned pauses), most agents on shift at once."""
    per = np.zeros(sc.n_intervals)
    pauses = 0.0
    starts = sc.interval_starts
    for g in sc.agents:
        if g.staffing is not None:
            per += np.asarray(g.staffing, dtype=float)
            continue
        s, e = g.shift if g.shift is not None else (sc.start, sc.end)
        for i, t0 in enumerate(starts):
            overlap = max(0.0, min(e, t0 + sc.interval) - max(s, t0))
            per[i] += g.count * overlap / sc.interval
        pauses += g.count * sum(p.duration for p in g.pauses) / 3600.0
    shift = float(per.sum() * sc.interval / 3600.0)
    return shift, shift - pauses, int(math.ceil(per.max() - 1e-9)) if len(per) else 0


def run_column(label: str, sc: Scenario, seeds: Sequence[int], simulate: Callable[..., Any],
               progress: Optional[Callable[[str], None]] = None) -> Column:
    runs = []
    for s in seeds:
        if progress is not None:
            progress(label)
        runs.append(simulate(sc, s))
    figs: Dict[str, Tuple[float, float]] = {}
    for name, key, scale, _fmt in _FIGURES:
        xs = [float(r.summary()["all"][key]) * scale for r in runs]
        xs = [x for x in xs if x == x]
        figs[name] = (float(np.mean(xs)) if xs else math.nan, _half_width(xs))
    waits = []
    for r in runs:
        rec = r.records
        ans = rec["outcome"] == 0
        waits.append(rec["answered"][ans] - rec["arrival"][ans])
    w = np.concatenate(waits) if waits else np.zeros(0)
    wq = {"p50": float(np.percentile(w, 50)), "p90": float(np.percentile(w, 90)), "max": float(w.max())} \
        if len(w) else {"p50": math.nan, "p90": math.nan, "max": math.nan}
    hours, phone, peak = _agent_hours(sc)
    return Column(label, sc, hours, phone, peak, figs, wq, tuple(runs))


def run_study(sc: Scenario, *, seeds: Sequence[int], targets: Sequence[float] = (0.85, 0.92),
              staff: Optional[Callable[[Scenario, float], Tuple[Scenario, Dict[str, Any]]]] = None,
              simulate: Optional[Callable[..., Any]] = None,
              progress: Optional[Callable[[str], None]] = None) -> Study:
    """Run the five ways of the day (module docstring) and return their figures.

    ``staff(scenario, answer_rate)`` returns the scenario staffed for that
    answer rate and a dict describing the search; by default
    :func:`acd.planning.simstaff.staff_by_simulation` on the same seeds.
    """
    if simulate is None:
        from ..sim import simulate as sim

        def simulate(s: Scenario, seed: int) -> Any:
            return sim(s, seed, record_agents=True)
    seeds = tuple(seeds)
    if staff is None:
        staff = _staff_by_simulation(seeds)
    cols = [run_column("1 today", classic_routing(sc).with_callback(False), seeds, simulate, progress),
            run_column("2 acd routing", sc.with_callback(False), seeds, simulate, progress),
            run_column("3 + call-backs", sc.with_callback(True), seeds, simulate, progress)]
    search: Dict[str, Any] = {}
    for k, target in enumerate(targets):
        staffed, info = staff(sc.with_callback(False), target)
        search[f"{target:.0%}"] = info
        n = 4 + 2 * k
        cols.append(run_column(f"{n} {target * 100:.0f} % staffed", staffed.with_callback(False), seeds, simulate,
                               progress))
        cols.append(run_column(f"{n + 1} + call-backs", staffed.with_callback(True), seeds, simulate, progress))
    return Study(sc, seeds, tuple(cols), search)


def _staff_by_simulation(seeds: Sequence[int]) -> Callable[[Scenario, float], Tuple[Scenario, Dict[str, Any]]]:
    def staff(sc: Scenario, target: float) -> Tuple[Scenario, Dict[str, Any]]:
        from .simstaff import staff_by_simulation
        # the answer rate alone: the agency's question; the same seeds as the figures (common random numbers)
        res = staff_by_simulation(sc, service_level=None, answer_rate=target, replications=len(seeds),
                                  seed=seeds[0])
        return res.scenario, {"simulations": res.simulations, "seconds": res.seconds, "met": res.met,
                              "unproven": len(res.unattainable)}
    return staff


def _fmt(fmt: str, v: Tuple[float, float]) -> str:
    mean, hw = v
    if mean != mean:
        return "-"
    s = fmt.format(mean)
    return s if hw == 0 or fmt == "{:.0f}" and hw < 0.5 else f"{s} ±{fmt.format(hw)}"


def render_study(st: Study) -> str:
    """One page: the day, a table of the columns, what each means, the definitions."""
    sc = st.scenario
    load = sc.queue_load()
    erl = np.zeros(sc.n_intervals)
    for calls, talk, _pat in load.values():
        erl += np.asarray(calls) * talk / sc.interval
    peak_i = int(np.argmax(erl))
    starts = sc.interval_starts
    from ..sim.scenario import format_clock
    lines = [f"{sc.name}: {sc.expected_calls:,.0f} calls expected from {format_clock(sc.start)} to "
             f"{format_clock(sc.end)}, {len(sc.queues)} lines",
             f"offered load (talk only): {erl.mean():.0f} Erlangs on average, {erl[peak_i]:.0f} at the "
             f"{format_clock(starts[peak_i])} peak; each figure below is the mean of {len(st.seeds)} simulated "
             f"days (seeds {st.seeds[0]}..{st.seeds[-1]}) ±95 % interval", ""]
    cols = st.columns
    header = [""] + [c.label for c in cols]
    rows = [["agents at the busiest time"] + [str(c.peak_agents) for c in cols],
            ["agent-hours on shift"] + [f"{c.agent_hours:.0f}" for c in cols],
            ["  of which on the phones"] + [f"{c.phone_hours:.0f}" for c in cols]]
    for name, _key, _scale, fmt in _FIGURES:
        rows.append([name] + [_fmt(fmt, c.figures[name]) for c in cols])
    rows.append(["wait of answered: median s"] + [f"{c.waits['p50']:.0f}" for c in cols])
    rows.append(["  90 % answered within s"] + [f"{c.waits['p90']:.0f}" for c in cols])
    rows.append(["  longest s"] + [f"{c.waits['max']:.0f}" for c in cols])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt_row = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines += [fmt_row.format(*header)] + [fmt_row.format(*r) for r in rows]
    t = sc.targets
    today, routed, cb = cols[0], cols[1], cols[2]
    ab = lambda c: c.figures["abandoned % (excl. short)"][0]  # noqa: E731
    ar = lambda c: c.figures["answered %"][0]  # noqa: E731
    lines += ["",
              f"1 today: the agency's schedule ({today.peak_agents} agents at the busiest time), one queue per "
              f"line, first come first served, no call-back. {ar(today):.1f} % of calls answered against a "
              f"target of {t.answer_rate * 100:.0f} %; the median answered caller waits "
              f"{today.waits['p50'] / 60:.1f} min, one in ten more than {today.waits['p90'] / 60:.1f} min.",
              f"2 acd's routing, same agents: other lines' agents help after 60-90 s and health professionals "
              f"go first: {ar(routed) - ar(today):+.1f} points answered. Priority has a price: citizens behind "
              f"them wait longer (longest wait {routed.waits['max'] / 60:.0f} min).",
              f"3 call-backs, same agents ({sc.callback.accept * 100:.0f} % of callers offered one accept it, "
              f"an input taken from published field results): abandonment {ab(routed):.1f} -> {ab(cb):.1f} %. "
              f"With too few agents every agent is busy all day: a call-back does not add an agent, it only "
              f"spares the caller the wait on the line (a call-back caller's wait is counted until the agent "
              f"calls back, so ASA and SL look worse). The answer rate is capped by the head-count."]
    sl_label = _FIGURES[2][0]
    k = 3
    for key, info in st.search.items():
        staffed, with_cb = cols[k], cols[k + 1]
        n = staffed.label.split()[0]
        proven = "" if not info.get("unproven") else (
            f"; in {info['unproven']} line-interval(s) too few calls to prove the target at 95 %")
        lines.append(f"{n} head-count for {key} of calls answered in every interval of every line, found by "
                     f"simulation (acd staff --simulate: {info.get('simulations', '?')} simulated days, "
                     f"{info.get('seconds', 0):.0f} s{proven}): {staffed.phone_hours:.0f} agent-hours on the "
                     f"phones, {staffed.phone_hours - today.phone_hours:+.0f} h on today's "
                     f"{today.phone_hours:.0f} ({(staffed.phone_hours / today.phone_hours - 1) * 100:+.0f} %), "
                     f"placed where the calls are: {staffed.peak_agents} agents at the busiest time against "
                     f"{today.peak_agents}; {ar(staffed):.1f} % answered over the day. Breaks come on top (today "
                     f"{today.agent_hours - today.phone_hours:.0f} h), placed off the peak by acd roster. The "
                     f"{t.service_level[0] * 100:.0f} % within {t.service_level[1]:g} s target was not asked here "
                     f"({staffed.figures[sl_label][0]:.1f} %); acd staff --simulate public_agency "
                     f"sizes for both.")
        lines.append(f"{with_cb.label.split()[0]} the same with call-backs: abandonment {ab(staffed):.1f} -> "
                     f"{ab(with_cb):.1f} % ({(ab(with_cb) - ab(staffed)) / ab(staffed) * 100:+.0f} %), "
                     f"{with_cb.figures['call-backs accepted'][0]:.0f} call-backs a day. Published field results "
                     f"report up to 35 % less abandonment; here callers who would hang up within a minute are "
                     f"never offered one (the offer waits for an estimated wait over "
                     f"{sc.callback.threshold:g} s) and a call-back keeps its place in line, so it moves no "
                     f"work out of the peak.")
        k += 2
    lines += ["",
              "definitions: answered % = answered / offered calls (the agency's taux de decroche); abandoned % "
              f"(excl. short) leaves out callers hanging up within {t.short_abandon:g} s; SL = answered within "
              f"{t.service_level[1]:g} s / (offered - short abandons); ASA = mean wait of answered calls, a "
              "call-back's wait running until the agent calls back; occupancy = time ringing, talking or in "
              "wrap-up / time logged in and not paused; agent-hours on shift = paid time, on the phones = minus planned "
              "breaks (a head-count found by simulation is of agents on the phones)."]
    return "\n".join(lines)
