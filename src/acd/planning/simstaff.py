"""Multi-skill staffing by simulation: the fewest agents per group and interval meeting every queue's targets.

Erlang formulas size one queue with one pool of identical agents; with
skills-based routing, routing steps, overflows and priorities the queues
share agents and Erlang is no longer exact.  :func:`staff_by_simulation`
searches the head-count of every (agent group, interval) with the simulator
(the real engine routes every call):

* **Targets** (per queue, judged per interval on the calls *arriving* in that
  interval): service level ``answered within T / (offered - short abandons)``
  (the headline SL of ``acd simulate``) and answer rate ``answered /
  offered``; by default the scenario's ``[targets]``.  Intervals where a
  queue gets fewer than ``min_calls`` calls over all replications are not
  judged (too few calls to tell anything).
* **Common random numbers**: every candidate staffing is simulated with the
  same ``replications`` seeds.  The simulator draws every call (arrival,
  type, talk, patience, ring) before it looks at the agents, so two
  staffings see exactly the same callers: differences are the staffing's,
  not noise, and the search is a deterministic function of the staffing.
* **Confidence**: a KPI's estimate is the ratio of its totals over the
  replications, with a Student-t interval at ``confidence`` (see
  :mod:`acd.planning._stats`).  With ``criterion="bound"`` (default) a
  target is met only when the *lower end* of that interval reaches it, so a
  plan is not accepted on luck; the price is a little over-staffing that
  shrinks as ``replications`` grow.  ``criterion="mean"`` judges the
  estimate itself (what Erlang does with its exact values).
* **Search**: start from Erlang (A with patience, else C) per queue, given to
  the queue's first group able to take its calls at once.  *Add phase*:
  while a judged (queue, interval) misses, take the earliest such interval
  (backlog flows forward: fixing it first helps the next ones), worst queue
  first, and add one agent to whichever group able to take that queue's
  calls reduces the miss most (tried one by one); if none helps, the
  previous interval is tried (the backlog may come from there); a cell that
  no added agent helps is reported as unattainable.  *Removal phase*: for
  every (group, interval) try one agent fewer (then 2, 4... while it works)
  and keep the removal when every target still holds; passes repeat until
  one removes nothing.  The result is locally minimal: removing any single
  agent anywhere breaks a target.  ``max_evaluations`` bounds the number of
  staffings simulated (each ``replications`` runs); results are cached.

Pauses of the groups are dropped: the head-count is of agents on the phones
(breaks and absence are the roster's shrinkage).  ``shrinkage`` only turns
``agents`` into ``scheduled`` (divided by ``1 - shrinkage``, rounded up).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InvalidInput
from ..sim.scenario import Scenario, format_clock
from ._stats import check_confidence, check_replications, ratio_ci

__all__ = ("staff_by_simulation", "SimStaffing", "CSV_COLUMNS", "cmd_staff_simulate", "load_scenario_arg")

_SCENARIO_TARGET = "scenario"          # default of the target arguments: the scenario's own

#: CSV columns of :meth:`SimStaffing.to_csv` (the staffing table contract, plus the intervals)
CSV_COLUMNS = ("start", "end", "line", "queue", "calls", "agents", "scheduled",
               "service_level", "service_level_lo", "service_level_hi",
               "answer_rate", "answer_rate_lo", "answer_rate_hi",
               "abandon", "abandon_lo", "abandon_hi", "asa", "asa_lo", "asa_hi",
               "occupancy", "occupancy_lo", "occupancy_hi", "bound")

# records outcome codes (acd.kpi.CALL_RECORD)
_ANSWERED, _ABANDONED = 0, 1
# per (queue, interval) counts of a run, in this order
_OFFERED, _SHORT, _WITHIN, _ANS, _ABN_LONG, _WAIT = range(6)


@dataclass(frozen=True)
class _Targets:
    service_level: Optional[Tuple[float, float]]
    answer_rate: Optional[float]
    short_abandon: float
    sl_seconds: float            # T of the reported service level (the scenario's when SL is no target)

    def as_dict(self) -> Dict[str, Any]:
        return {"service_level": None if self.service_level is None else list(self.service_level),
                "answer_rate": self.answer_rate, "short_abandon": self.short_abandon,
                "service_level_seconds": self.sl_seconds}


def _resolve_targets(sc: Scenario, service_level: Any, answer_rate: Any) -> _Targets:
    t = sc.targets
    if isinstance(service_level, str) and service_level == _SCENARIO_TARGET:
        sl: Optional[Tuple[float, float]] = t.service_level
    elif service_level is None:
        sl = None
    else:
        if not isinstance(service_level, (list, tuple)) or len(service_level) != 2:
            raise InvalidInput(f"service_level must be (fraction, seconds) or None, got {service_level!r}")
        f, s = service_level
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise InvalidInput(f"service_level fraction must be in (0, 1], got {f!r}")
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < math.inf:
            raise InvalidInput(f"service_level seconds must be a positive number, got {s!r}")
        sl = (float(f), float(s))
    if isinstance(answer_rate, str) and answer_rate == _SCENARIO_TARGET:
        ar: Optional[float] = t.answer_rate
    elif answer_rate is None:
        ar = None
    else:
        if isinstance(answer_rate, bool) or not isinstance(answer_rate, (int, float)) or not 0 < answer_rate <= 1:
            raise InvalidInput(f"answer_rate must be in (0, 1], got {answer_rate!r}")
        ar = float(answer_rate)
    if sl is None and ar is None:
        raise InvalidInput("staffing by simulation needs a target: service_level or answer_rate (both are None)")
    return _Targets(sl, ar, t.short_abandon, sl[1] if sl is not None else t.service_level[1])


# ------------------------------------------------------------------ who can take a queue's calls

def _qualifies(g: Any, q: Any, steps: Sequence[Any]) -> bool:
    if g.queues is not None and q.name not in g.queues:
        return False
    return any(all(g.skills.get(k, 0) >= v for k, v in s.requirements.items()) for s in steps)


def _candidates(sc: Scenario, dedupe: bool = True) -> Dict[str, List[int]]:
    """Per queue, the groups an added agent of which can help it: those taking its calls at once (first
    routing step); else at a later step; else those of the queues it overflows to."""
    out: Dict[str, List[int]] = {}
    by_name = {q.name: q for q in sc.queues}
    for q in sc.queues:
        plain = [s for s in q.steps if s.overflow is None]
        first = [gi for gi, g in enumerate(sc.agents) if plain[:1] and _qualifies(g, q, plain[:1])]
        later = [gi for gi, g in enumerate(sc.agents) if gi not in first and _qualifies(g, q, plain)]
        cands = first or later
        if not cands:
            for t in q.overflow_targets:
                tq = by_name[t]
                tsteps = [s for s in tq.steps if s.overflow is None]
                cands += [gi for gi, g in enumerate(sc.agents) if gi not in cands and _qualifies(g, tq, tsteps)]
        # a queue's home groups (listing it first) come first: the tie-breaker of the add phase;
        # of groups alike (same skills and queues) only the first is tried: an agent of one is worth one of the other
        def home_first(gi: int, qn: str = q.name) -> Tuple[int, int]:
            qs = sc.agents[gi].queues
            return (0 if qs and qs[0] == qn else 1, gi)
        cands.sort(key=home_first)
        seen = set()
        alike = []
        for gi in cands:
            g = sc.agents[gi]
            sig = (tuple(sorted(g.skills.items())), g.queues)
            if sig not in seen or not dedupe:
                seen.add(sig)
                alike.append(gi)
        out[q.name] = alike
    return out


def _home_queue(sc: Scenario, cands: Mapping[str, List[int]], gi: int) -> Optional[int]:
    g = sc.agents[gi]
    names = sc.queue_names
    if g.queues:
        return names.index(g.queues[0])
    for qi, qn in enumerate(names):
        if gi in cands[qn]:
            return qi
    return None


def _erlang_start(sc: Scenario, tg: _Targets, cands: Mapping[str, List[int]]) -> np.ndarray:
    """Erlang A (or C) agents per queue and interval, given to the queue's first candidate group."""
    from .. import erlang
    x = np.zeros((len(sc.agents), sc.n_intervals), dtype=np.int64)
    loads = sc.queue_load()
    for q in sc.queues:
        calls, talk, patience = loads[q.name]
        if not cands[q.name] or talk <= 0:
            continue
        rates = np.asarray(calls, dtype=float) / sc.interval
        pat = None if math.isinf(patience) else patience
        sl = None if tg.service_level is None else (min(tg.service_level[0], 0.999), tg.service_level[1])
        max_ab = None
        if tg.answer_rate is not None and pat is not None and 0.0 < 1.0 - tg.answer_rate < 1.0:
            max_ab = 1.0 - tg.answer_rate
        if sl is None and max_ab is None:
            sl = (0.8, 60.0)     # only a starting point: the search corrects it
        # the targets alone: the simulation judges the plan, so Erlang's safety caps would only start it high
        n = erlang.staff_intervals(rates, talk + q.wrap_up, service_level=sl, max_abandon=max_ab, patience=pat,
                                   max_occupancy=None, min_over_load=False)
        x[cands[q.name][0]] += n
    return x


# ------------------------------------------------------------------ one staffing, R replications

def _group_of_agents(sc: Scenario, names: Sequence[str]) -> np.ndarray:
    index = {g.name: gi for gi, g in enumerate(sc.agents)}
    return np.asarray([index[n.rsplit("-", 1)[0]] for n in names], dtype=np.int64)


def _run_counts(sc: Scenario, seed: int, tg: _Targets, record_agents: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Counts per (queue, interval) of one run: shape (6, Q, I); with ``record_agents`` also the agents'
    working and staffed seconds per (group, interval): shape (2, G, I)."""
    from ..sim.simulator import simulate
    res = simulate(sc, seed, sample_every=max(sc.end - sc.start, 1.0), record_agents=record_agents,
                   max_memory=2 ** 62)
    r = res.records
    nq, ni = len(sc.queues), sc.n_intervals
    k = np.floor((r["arrival"] - sc.start) / sc.interval)
    keep = (k >= 0) & (k < ni)
    r = r[keep]
    cell = r["queue"].astype(np.int64) * ni + k[keep].astype(np.int64)
    ans = r["outcome"] == _ANSWERED
    abn = r["outcome"] == _ABANDONED
    wait_ans = np.where(ans, r["answered"] - r["arrival"], 0.0)
    wait_abn = r["ended"] - r["arrival"]
    short = abn & (wait_abn < tg.short_abandon)
    sl_t = tg.sl_seconds
    out = np.empty((6, nq * ni))
    size = nq * ni
    out[_OFFERED] = np.bincount(cell, minlength=size)
    out[_SHORT] = np.bincount(cell, weights=short, minlength=size)
    out[_WITHIN] = np.bincount(cell, weights=ans & (wait_ans <= sl_t), minlength=size)
    out[_ANS] = np.bincount(cell, weights=ans, minlength=size)
    out[_ABN_LONG] = np.bincount(cell, weights=abn & ~short, minlength=size)
    out[_WAIT] = np.bincount(cell, weights=wait_ans, minlength=size)
    occ = None
    if record_agents:
        iv = res.agent_intervals
        grp = _group_of_agents(sc, res.agent_names)[iv["agent"]]
        st = iv["state"]
        occ = np.zeros((2, len(sc.agents), ni))
        work = (st >= 1) & (st <= 3)             # reserved, busy, wrap-up
        staffed = work | (st == 0)               # ... or available (paused time left out)
        for i in range(ni):
            a = sc.start + i * sc.interval
            ov = np.clip(np.minimum(iv["end"], a + sc.interval) - np.maximum(iv["start"], a), 0.0, None)
            occ[0, :, i] = np.bincount(grp[work], weights=ov[work], minlength=len(sc.agents))
            occ[1, :, i] = np.bincount(grp[staffed], weights=ov[staffed], minlength=len(sc.agents))
    return out.reshape(6, nq, ni), occ


class _Evaluator:
    """Simulates a staffing with the common seeds and grades it; cached by staffing."""

    def __init__(self, sc: Scenario, seeds: Sequence[int], tg: _Targets, confidence: float, criterion: str,
                 min_calls: float, max_evaluations: int, progress: Optional[Callable[[int, int], None]]):
        self.sc = sc
        self.seeds = list(seeds)
        self.tg = tg
        self.confidence = confidence
        self.criterion = criterion
        self.min_calls = min_calls
        self.max_evaluations = max_evaluations
        self.progress = progress
        self.cache: Dict[bytes, np.ndarray] = {}
        self.evaluations = 0
        self.simulations = 0

    @property
    def exhausted(self) -> bool:
        return self.evaluations >= self.max_evaluations

    def scenario(self, x: np.ndarray) -> Scenario:
        return self.sc.with_staffing({g.name: [int(v) for v in x[gi]] for gi, g in enumerate(self.sc.agents)})

    def counts(self, x: np.ndarray, record_agents: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        sc = self.scenario(x)
        runs = [_run_counts(sc, s, self.tg, record_agents) for s in self.seeds]
        self.simulations += len(runs)
        c = np.stack([r[0] for r in runs])
        occ = np.stack([r[1] for r in runs]) if record_agents else None   # type: ignore[misc]
        return c, occ

    def shortfall(self, x: np.ndarray) -> np.ndarray:
        """Per (queue, interval): how far the judged KPI is below each target, summed (0: met or not judged)."""
        key = x.tobytes()
        if key in self.cache:
            return self.cache[key]
        c, _ = self.counts(x)
        self.evaluations += 1
        if self.progress is not None:
            self.progress(self.evaluations, self.simulations)
        sf = np.zeros(c.shape[2:])
        judged = c[:, _OFFERED].sum(axis=0) >= self.min_calls
        use = 1 if self.criterion == "bound" else 0
        if self.tg.service_level is not None:
            stat = ratio_ci(c[:, _WITHIN], c[:, _OFFERED] - c[:, _SHORT], self.confidence)[use]
            sf += np.where(judged, np.maximum(0.0, self.tg.service_level[0] - np.nan_to_num(stat)), 0.0)
        if self.tg.answer_rate is not None:
            stat = ratio_ci(c[:, _ANS], c[:, _OFFERED], self.confidence)[use]
            sf += np.where(judged, np.maximum(0.0, self.tg.answer_rate - np.nan_to_num(stat)), 0.0)
        self.cache[key] = sf
        return sf


# ------------------------------------------------------------------ result

@dataclass
class SimStaffing:
    """What :func:`staff_by_simulation` found.

    ``staffing``: agents per group and interval (``{group: [n per interval]}``);
    ``scenario``: the input scenario with that staffing (pauses dropped);
    ``kpi``: per (queue, interval) ``{name: (estimate, lo, hi)}`` arrays of shape
    (queues, intervals) for ``service_level``, ``answer_rate``, ``abandon``
    (excl. short abandons), ``asa``, and ``calls`` (mean offered per day);
    ``occupancy``: (estimate, lo, hi) per (group, interval); ``met``: every
    judged target holds; ``unattainable``: (queue, interval start) cells no
    added agent improved; ``complete``: the search ended before
    ``max_evaluations``.
    """

    scenario: Scenario
    staffing: Dict[str, List[int]]
    targets: Dict[str, Any]
    replications: int
    seeds: List[int]
    confidence: float
    criterion: str
    start_staffing: Dict[str, List[int]]
    kpi: Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]
    occupancy: Tuple[np.ndarray, np.ndarray, np.ndarray]
    judged: np.ndarray
    met: bool
    unattainable: List[Tuple[str, float]]
    complete: bool
    evaluations: int
    simulations: int
    seconds: float
    shrinkage: float = 0.0
    day_kpi: Dict[str, Dict[str, Tuple[float, float, float]]] = field(default_factory=dict)

    # ---- tables
    def _scheduled(self, n: int) -> int:
        from ..erlang import _with_shrinkage
        return _with_shrinkage(n, self.shrinkage)

    def rows(self) -> List[Dict[str, Any]]:
        """One row per (interval, agent group): its head-count and its home queue's KPIs (CSV_COLUMNS)."""
        sc = self.scenario
        cands = _candidates(sc, dedupe=False)
        homes = [_home_queue(sc, cands, gi) for gi in range(len(sc.agents))]
        out = []
        for i, start in enumerate(sc.interval_starts):
            for gi, g in enumerate(sc.agents):
                qi = homes[gi]
                n = self.staffing[g.name][i]
                row: Dict[str, Any] = {"start": format_clock(start), "end": format_clock(start + sc.interval),
                                       "line": g.name, "queue": sc.queue_names[qi] if qi is not None else "",
                                       "calls": _num(self.kpi["calls"][0][qi, i]) if qi is not None else 0.0,
                                       "agents": n, "scheduled": self._scheduled(n)}
                for name, col in (("service_level", "service_level"), ("answer_rate", "answer_rate"),
                                  ("abandon", "abandon"), ("asa", "asa")):
                    est, lo, hi = self.kpi[name]
                    ok = qi is not None
                    row[col] = _num(est[qi, i]) if ok else None
                    row[col + "_lo"] = _num(lo[qi, i]) if ok else None
                    row[col + "_hi"] = _num(hi[qi, i]) if ok else None
                oe, ol, oh = self.occupancy
                row["occupancy"], row["occupancy_lo"], row["occupancy_hi"] = (_num(oe[gi, i]), _num(ol[gi, i]),
                                                                              _num(oh[gi, i]))
                row["bound"] = self._bound(qi, i)
                out.append(row)
        return out

    def _bound(self, qi: Optional[int], i: int) -> str:
        """The home queue's target closest to failing in this interval (its smallest margin), '' if none judged."""
        if qi is None or not self.judged[qi, i]:
            return ""
        margins = []
        sl = self.targets["service_level"]
        if sl is not None:
            margins.append((self.kpi["service_level"][1][qi, i] - sl[0], "service_level"))
        ar = self.targets["answer_rate"]
        if ar is not None:
            margins.append((self.kpi["answer_rate"][1][qi, i] - ar, "answer_rate"))
        margins = [(m, n) for m, n in margins if m == m]
        return min(margins)[1] if margins else ""

    def queue_rows(self) -> List[Dict[str, Any]]:
        """One row per (interval, queue): the KPIs with their intervals and whether its targets are met."""
        sc = self.scenario
        out = []
        for i, start in enumerate(sc.interval_starts):
            for qi, qn in enumerate(sc.queue_names):
                row: Dict[str, Any] = {"start": format_clock(start), "end": format_clock(start + sc.interval),
                                       "queue": qn, "calls": _num(self.kpi["calls"][0][qi, i]),
                                       "judged": bool(self.judged[qi, i])}
                for name in ("service_level", "answer_rate", "abandon", "asa"):
                    est, lo, hi = self.kpi[name]
                    row[name], row[name + "_lo"], row[name + "_hi"] = _num(est[qi, i]), _num(lo[qi, i]), _num(hi[qi, i])
                row["met"] = bool(self._cell_met(qi, i))
                out.append(row)
        return out

    def _cell_met(self, qi: int, i: int) -> bool:
        if not self.judged[qi, i]:
            return True
        use = 1 if self.criterion == "bound" else 0
        sl, ar = self.targets["service_level"], self.targets["answer_rate"]
        ok = True
        if sl is not None:
            ok = ok and self.kpi["service_level"][use][qi, i] >= sl[0]
        if ar is not None:
            ok = ok and self.kpi["answer_rate"][use][qi, i] >= ar
        return bool(ok)

    def totals(self) -> Dict[str, Any]:
        sc = self.scenario
        hours = sc.interval / 3600.0
        per_group = {g: round(sum(v) * hours, 6) for g, v in self.staffing.items()}
        return {"agent_hours": round(sum(per_group.values()), 6), "agent_hours_by_group": per_group,
                "scheduled_hours": round(sum(self._scheduled(n) for v in self.staffing.values() for n in v) * hours, 6),
                "queues": {q: {k: [_num(v) for v in t] for k, t in d.items()} for q, d in self.day_kpi.items()},
                "met": self.met, "unattainable": [[q, format_clock(s)] for q, s in self.unattainable],
                "complete": self.complete, "evaluations": self.evaluations, "simulations": self.simulations,
                "seconds": round(self.seconds, 3)}

    def to_dict(self) -> Dict[str, Any]:
        return {"scenario": self.scenario.name, "interval": self.scenario.interval,
                "targets": dict(self.targets, criterion=self.criterion, confidence=self.confidence),
                "replications": self.replications, "seeds": self.seeds,
                "rows": self.rows(), "queues": self.queue_rows(), "totals": self.totals()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in self.rows():
            w.writerow({k: ("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]))
                        for k in CSV_COLUMNS})
        return buf.getvalue()

    def table(self) -> str:
        """Head-count per interval and group, then each queue's day KPIs with their intervals."""
        sc = self.scenario
        names = [g.name for g in sc.agents]
        w = [5] + [max(len(n), 3) for n in names] + [5]
        lines = ["  ".join([f"{'start':<5}"] + [f"{n:>{wi}}" for n, wi in zip(names, w[1:])] + [f"{'total':>5}"])]
        for i, start in enumerate(sc.interval_starts):
            counts = [self.staffing[n][i] for n in names]
            lines.append("  ".join([f"{format_clock(start):<5}"] + [f"{c:>{wi}}" for c, wi in zip(counts, w[1:])]
                                   + [f"{sum(counts):>5}"]))
        tot = self.totals()
        lines.append("")
        lines.append(f"agent-hours {tot['agent_hours']:g}; {self.replications} replications (seeds "
                     f"{self.seeds[0]}..{self.seeds[-1]}), {self.confidence * 100:g} % intervals, target met when "
                     f"{'its lower bound' if self.criterion == 'bound' else 'the estimate'} reaches it")
        lines.append(f"{'queue':<16} {'calls':>7}  {'service level':>22}  {'answer rate':>22}  {'ASA s':>18}")
        for q, d in self.day_kpi.items():
            def ci(t: Tuple[float, float, float], pct: bool) -> str:
                f = 100.0 if pct else 1.0
                return f"{t[0] * f:6.1f} [{t[1] * f:6.1f}, {t[2] * f:6.1f}]" if t[0] == t[0] else "-"
            lines.append(f"{q:<16} {d['calls'][0]:>7.0f}  {ci(d['service_level'], True):>22}  "
                         f"{ci(d['answer_rate'], True):>22}  {ci(d['asa'], False):>18}")
        state = "all judged targets met" if self.met else "targets NOT met at " + ", ".join(
            f"{q} {format_clock(s)}" for q, s in self.unattainable) if self.unattainable else "targets NOT met"
        lines.append(f"{state}; {self.evaluations} staffings simulated ({self.simulations} runs) in "
                     f"{self.seconds:.1f} s{'' if self.complete else ', search stopped by max_evaluations'}")
        return "\n".join(lines)


def _targets_text(t: Mapping[str, Any]) -> str:
    parts = []
    if t["service_level"] is not None:
        parts.append(f"service level {t['service_level'][0] * 100:g} % within {t['service_level'][1]:g} s")
    if t["answer_rate"] is not None:
        parts.append(f"answer rate {t['answer_rate'] * 100:g} %")
    return " and ".join(parts)


def _num(v: Any) -> Optional[float]:
    f = float(v)
    return None if math.isnan(f) or math.isinf(f) else f


# ------------------------------------------------------------------ the search

def staff_by_simulation(scenario: Scenario, *, service_level: Any = _SCENARIO_TARGET,
                        answer_rate: Any = _SCENARIO_TARGET, replications: int = 10, seed: Optional[int] = None,
                        confidence: float = 0.95, criterion: str = "bound", min_calls: float = 20.0,
                        max_evaluations: int = 2000, shrinkage: float = 0.0,
                        start: Optional[Mapping[str, Sequence[int]]] = None,
                        progress: Optional[Callable[[int, int], None]] = None) -> SimStaffing:
    """The fewest agents per group and interval meeting every queue's targets in every interval (see module doc).

    ``service_level`` ``(fraction, seconds)`` and ``answer_rate``: the targets,
    by default the scenario's; ``None`` drops one.  ``replications`` runs per
    staffing, seeds ``seed, seed + 1, ...`` (default the scenario's seed).
    ``start``: a starting staffing ``{group: [n per interval]}`` instead of
    Erlang's.  ``progress(evaluations, simulations)`` is called after each
    staffing simulated.
    """
    t0 = time.perf_counter()
    if not isinstance(scenario, Scenario):
        raise InvalidInput(f"scenario must be an acd.sim.Scenario, got {scenario!r}")
    tg = _resolve_targets(scenario, service_level, answer_rate)
    reps = check_replications("replications", replications)
    conf = check_confidence("confidence", confidence)
    if criterion not in ("bound", "mean"):
        raise InvalidInput(f"criterion must be 'bound' or 'mean', got {criterion!r}")
    base_seed = scenario.seed if seed is None else seed
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) or not 0 <= base_seed < 2 ** 63 - reps:
        raise InvalidInput(f"seed must be an int in 0..2**63-1-replications, got {seed!r}")
    if isinstance(min_calls, bool) or not isinstance(min_calls, (int, float)) or not 0 <= min_calls < math.inf:
        raise InvalidInput(f"min_calls must be a number >= 0, got {min_calls!r}")
    if isinstance(max_evaluations, bool) or not isinstance(max_evaluations, int) or max_evaluations < 1:
        raise InvalidInput(f"max_evaluations must be an int >= 1, got {max_evaluations!r}")
    if isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float)) or not 0 <= shrinkage < 1:
        raise InvalidInput(f"shrinkage must be in [0, 1), got {shrinkage!r}")
    # the decision variables replace every group's schedule; pauses are shrinkage, not head-count
    sc = scenario.replace(agents=tuple(dataclasses.replace(g, pauses=(), staffing=(0,) * scenario.n_intervals)
                                       for g in scenario.agents))
    cands = _candidates(sc)
    nq, ni, ng = len(sc.queues), sc.n_intervals, len(sc.agents)
    if start is not None:
        x = np.zeros((ng, ni), dtype=np.int64)
        names = [g.name for g in sc.agents]
        for gname, v in start.items():
            if gname not in names:
                raise InvalidInput(f"start names an unknown agent group {gname!r}")
            if len(v) != ni or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0 for n in v):
                raise InvalidInput(f"start[{gname!r}] must be {ni} agent counts >= 0, got {v!r}")
            x[names.index(gname)] = v
    else:
        x = _erlang_start(sc, tg, cands)
    x0 = x.copy()
    ev = _Evaluator(sc, [base_seed + r for r in range(reps)], tg, conf, criterion, float(min_calls),
                    max_evaluations, progress)
    qnames = sc.queue_names

    # ---- add phase
    sf = ev.shortfall(x)
    unattainable: Dict[Tuple[int, int], float] = {}
    while not ev.exhausted:
        miss = [(i, -sf[q, i], q) for q in range(nq) for i in range(ni) if sf[q, i] > 0 and (q, i) not in unattainable]
        if not miss:
            break
        i, _neg, q = min(miss)
        best: Optional[Tuple[Tuple[float, float], np.ndarray, np.ndarray]] = None
        for where in (i, i - 1):           # this interval, else the one whose backlog it inherits
            if where < 0:
                continue
            for gi in cands[qnames[q]]:
                if ev.exhausted:
                    break
                x2 = x.copy()
                x2[gi, where] += 1
                sf2 = ev.shortfall(x2)
                key = (float(sf2[q, i]), float(sf2.sum()))
                if best is None or key < best[0]:
                    best = (key, x2, sf2)
            if best is not None and best[0][0] < sf[q, i] - 1e-12:
                break
        if best is None:
            break
        if best[0][0] < sf[q, i] - 1e-12:
            x, sf = best[1], best[2]
        else:
            unattainable[(q, i)] = float(sf[q, i])   # no agent helps: noise or a structural limit

    # ---- removal phase: one fewer (then 2, 4, ...) while every target still holds
    def feasible(s: np.ndarray) -> bool:
        for (qq, ii), ref in unattainable.items():
            if s[qq, ii] > ref + 1e-12:
                return False
        m = s > 0
        for (qq, ii) in unattainable:
            m[qq, ii] = False
        return not m.any()

    if feasible(sf):
        changed = True
        while changed and not ev.exhausted:
            changed = False
            for i in reversed(range(ni)):
                for gi in range(ng):
                    step = 1
                    while x[gi, i] > 0 and not ev.exhausted:
                        step = min(step, int(x[gi, i]))
                        x2 = x.copy()
                        x2[gi, i] -= step
                        sf2 = ev.shortfall(x2)
                        if feasible(sf2):
                            x, sf = x2, sf2
                            changed = True
                            step *= 2
                        elif step > 1:
                            step = 1
                        else:
                            break
    complete = not ev.exhausted

    # ---- the result, simulated once more with the agents' time recorded (occupancy)
    c, occ = ev.counts(x, record_agents=True)
    assert occ is not None
    kpi = {"service_level": ratio_ci(c[:, _WITHIN], c[:, _OFFERED] - c[:, _SHORT], conf),
           "answer_rate": ratio_ci(c[:, _ANS], c[:, _OFFERED], conf),
           "abandon": ratio_ci(c[:, _ABN_LONG], c[:, _OFFERED] - c[:, _SHORT], conf),
           "asa": ratio_ci(c[:, _WAIT], c[:, _ANS], conf, clip=(0.0, math.inf)),
           "calls": (c[:, _OFFERED].mean(axis=0),) * 3}
    day: Dict[str, Dict[str, Tuple[float, float, float]]] = {}
    cd = c.sum(axis=3)      # (R, counts, Q): the whole day per queue
    for qi, qn in enumerate(qnames):
        day[qn] = {"calls": (float(cd[:, _OFFERED, qi].mean()),) * 3}
        for name, (num, den, clip) in {"service_level": (_WITHIN, None, (0.0, 1.0)),
                                       "answer_rate": (_ANS, _OFFERED, (0.0, 1.0)),
                                       "abandon": (_ABN_LONG, None, (0.0, 1.0)),
                                       "asa": (_WAIT, _ANS, (0.0, math.inf))}.items():
            d = cd[:, _OFFERED, qi] - cd[:, _SHORT, qi] if den is None else cd[:, den, qi]
            e, lo, hi = ratio_ci(cd[:, num, qi], d, conf, clip=clip)
            day[qn][name] = (float(e), float(lo), float(hi))
    judged = c[:, _OFFERED].sum(axis=0) >= min_calls
    staffing = {g.name: [int(v) for v in x[gi]] for gi, g in enumerate(sc.agents)}
    result = SimStaffing(
        scenario=ev.scenario(x), staffing=staffing, targets=tg.as_dict(), replications=reps, seeds=ev.seeds,
        confidence=conf, criterion=criterion,
        start_staffing={g.name: [int(v) for v in x0[gi]] for gi, g in enumerate(sc.agents)},
        kpi=kpi, occupancy=ratio_ci(occ[:, 0], occ[:, 1], conf), judged=judged, met=False,
        unattainable=[(qnames[q], sc.start + i * sc.interval) for q, i in sorted(unattainable, key=lambda k: (k[1], k[0]))],
        complete=complete, evaluations=ev.evaluations, simulations=ev.simulations,
        seconds=0.0, shrinkage=float(shrinkage), day_kpi=day)
    result.met = all(result._cell_met(q, i) for q in range(nq) for i in range(ni))
    result.seconds = time.perf_counter() - t0
    return result


# ------------------------------------------------------------------ the command

def load_scenario_arg(text: str, flag: str) -> Scenario:
    """A scenario file, or the name of a bundled scenario."""
    from pathlib import Path

    from ..sim.scenario import _bundled_files, bundled_scenario, load_scenario
    if text in _bundled_files() and not Path(text).exists():
        return bundled_scenario(text)
    if not Path(text).exists():
        raise InvalidInput(f"{flag}: no scenario file {text!r} (nor a bundled scenario: "
                           f"{', '.join(_bundled_files())})")
    return load_scenario(text)


def cmd_staff_simulate(args: Any, out: Any, err: Any) -> int:
    """``acd staff --simulate SCENARIO``: print the staffing found (table, CSV or JSON)."""
    if getattr(args, "forecast", None) is not None or getattr(args, "rate", None) is not None:
        raise InvalidInput("staff --simulate takes the scenario as its value: give no FORECAST.toml nor --rate")
    # the Erlang planner's inputs and targets have no meaning here: refused rather than ignored
    for flag, dest, unset in (("--calls-per-day", "calls_per_day", None), ("--profile", "profile", None),
                              ("--calls-csv", "calls_csv", None), ("--aht", "aht", None),
                              ("--patience", "patience", None), ("--interval", "interval", None),
                              ("--start", "start", None), ("--asa", "asa", None),
                              ("--max-occupancy", "max_occupancy", None), ("--agents", "agents", None),
                              ("--allow-below-load", "allow_below_load", False)):
        if getattr(args, dest, unset) not in (unset,):
            raise InvalidInput(f"{flag} does not go with --simulate (the scenario gives the calls, handle times, "
                               f"patience and agents)")
    sc = load_scenario_arg(args.simulate, "--simulate")
    sl: Any = _SCENARIO_TARGET
    ar: Any = _SCENARIO_TARGET
    if getattr(args, "sl", None) is not None or getattr(args, "answer_rate", None) is not None:
        # targets named on the command line replace the scenario's: only those are sized for
        # as in the Erlang planner, a fraction of 0 means no such target
        sl = tuple(args.sl) if args.sl is not None and args.sl[0] > 0 else None
        ar = args.answer_rate if args.answer_rate else None
    shrinkage = getattr(args, "shrinkage", None) or 0.0
    fmt = getattr(args, "format", None) or "table"
    if fmt not in ("table", "csv", "json"):
        raise InvalidInput(f"--format must be table, csv or json with --simulate, got {fmt!r}")
    quiet = bool(getattr(args, "no_progress", False))

    def progress(evaluations: int, simulations: int) -> None:
        if not quiet and evaluations % 25 == 0:
            err.write(f"staffing search: {evaluations} staffings, {simulations} runs\n")
            err.flush()

    res = staff_by_simulation(sc, service_level=sl, answer_rate=ar, replications=args.replications,
                              seed=args.seed, confidence=args.confidence, shrinkage=shrinkage,
                              max_evaluations=args.max_evaluations, progress=progress)
    if not quiet:
        err.write(f"staffing search: {res.evaluations} staffings, {res.simulations} runs, {res.seconds:.1f} s\n")
    if fmt == "json":
        out.write(res.to_json())
    elif fmt == "csv":
        out.write(res.to_csv())
    else:
        out.write(f"{sc.name}: agents per group and interval meeting {_targets_text(res.targets)} "
                  f"in every interval of every queue\n\n" + res.table() + "\n")
    if not res.met:
        err.write("acd: warning: some targets are not met (see the table)\n")
    return 0
