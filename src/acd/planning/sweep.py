"""Sweeps: a grid of scenarios x staffing variants x call-back on/off x seeds, in parallel.

A sweep spec (TOML)::

    scenarios = ["public_agency", "my_day.toml"]   # bundled names or files (relative to the spec)
    staffing = [0.9, 1.0, 1.1, "erlang", "plan.csv"]
    callback = [false, true]
    seeds = 10                 # a count (seeds seed, seed+1, ...) or a list of seeds
    seed = 1                   # first seed when seeds is a count (default 1)
    confidence = 0.95

Staffing variants: a number multiplies every group's agents (count or
per-interval staffing, rounded up; the volume is unchanged; ``1.0`` is the
scenario as written); ``"erlang"`` staffs every line by Erlang and gives it
to its home group (what ``acd demo`` runs); a CSV file is a staffing table
as written by ``acd staff --simulate --format csv`` (``start``, ``line`` =
agent group, ``agents``).

Each cell is one :func:`acd.sim.simulate` of (scenario, staffing,
call-back, seed); it returns a small dict of KPIs, never the run itself.
Cells run in local processes (:class:`concurrent.futures.ProcessPoolExecutor`,
``jobs`` of them) or, given a scheduler address, on a Dask cluster
(``distributed.Client(address)``, ``client.map``): the same function with
the same inputs, so both give the same numbers.  Every variant uses the same
seeds (common random numbers: the same callers meet every staffing).

The result is one table: per (scenario, staffing, call-back) the mean over
seeds of service level, answer rate, abandonment, ASA, occupancy and
agent-hours with a Student-t confidence interval (the seeds are independent
days).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .._tables import TomlTable
from ..errors import AcdError, InvalidInput
from ..sim.scenario import Scenario, format_clock, parse_clock
from ._stats import check_confidence, mean_ci

__all__ = ("SweepSpec", "SweepResult", "SchedulerUnreachable", "load_sweep_spec", "sweep_spec_from_dict",
           "run_sweep", "run_cell", "KPIS", "cmd_sweep")

#: KPIs of a cell, in table order: key -> (column label, scale for the table, format)
KPIS = {
    "service_level": ("SL %", 100.0, "{:.1f}"),
    "answer_rate": ("answered %", 100.0, "{:.1f}"),
    "abandon": ("abandon %", 100.0, "{:.1f}"),
    "asa": ("ASA s", 1.0, "{:.1f}"),
    "occupancy": ("occupancy %", 100.0, "{:.1f}"),
    "agent_hours": ("agent-h", 1.0, "{:.0f}"),
}
MAX_CELLS = 1_000_000
_SHARES = ("service_level", "answer_rate", "abandon", "occupancy")


class SchedulerUnreachable(AcdError, ConnectionError):
    """The Dask scheduler given could not be reached in time."""


class _Table(TomlTable):
    document = "sweep spec"


@dataclass(frozen=True)
class SweepSpec:
    """The grid: ``scenarios`` ((label, Scenario) pairs), ``staffing`` variants (numbers, ``"erlang"`` or
    (label, {group: [agents per interval]}) tables), ``callback`` (bools), ``seeds``."""

    scenarios: Tuple[Tuple[str, Scenario], ...]
    staffing: Tuple[Any, ...] = (1.0,)
    callback: Tuple[bool, ...] = (False,)
    seeds: Tuple[int, ...] = tuple(range(1, 11))
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not self.scenarios:
            raise InvalidInput("scenarios must name at least one scenario")
        for i, v in enumerate(self.staffing):
            _check_variant(f"staffing[{i}]", v)
        if not self.staffing:
            raise InvalidInput("staffing must hold at least one variant")
        if not self.callback or any(not isinstance(c, bool) for c in self.callback):
            raise InvalidInput(f"callback must be a non-empty list of true/false, got {list(self.callback)!r}")
        if not self.seeds:
            raise InvalidInput("seeds must hold at least one seed")
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2 ** 63:
                raise InvalidInput(f"seeds must be ints in 0..2**63-1, got {s!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise InvalidInput(f"seeds must be distinct, got {list(self.seeds)!r}")
        check_confidence("confidence", self.confidence)
        n = self.n_cells
        if n > MAX_CELLS:
            raise InvalidInput(f"the grid has {n:,} cells, above the limit of {MAX_CELLS:,}")

    @property
    def n_cells(self) -> int:
        return len(self.scenarios) * len(self.staffing) * len(self.callback) * len(self.seeds)


def _check_variant(where: str, v: Any) -> None:
    if isinstance(v, bool):
        raise InvalidInput(f"{where} must be a factor, \"erlang\" or a staffing table, got {v!r}")
    if isinstance(v, (int, float)):
        if not (math.isfinite(v) and 0 < v <= 1000):
            raise InvalidInput(f"{where} must be a factor in (0, 1000], got {v!r}")
        return
    if v == "erlang":
        return
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], Mapping):
        return
    raise InvalidInput(f"{where} must be a factor, \"erlang\" or a staffing table, got {v!r}")


def _variant_label(v: Any) -> str:
    if isinstance(v, (int, float)):
        return f"x{v:g}"
    if v == "erlang":
        return "erlang"
    return str(v[0])


# ------------------------------------------------------------------ reading a spec

def _scenario(where: str, name: object, base: Optional[Path]) -> Tuple[str, Scenario]:
    from ..sim.scenario import _bundled_files, bundled_scenario, load_scenario
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where} must be a bundled scenario name or a file, got {name!r}")
    p = Path(name)
    if base is not None and not p.is_absolute():
        p = base / p
    if p.is_file():
        try:
            return name, load_scenario(p)
        except InvalidInput as e:
            raise InvalidInput(f"{where} ({name!r}): {e}") from None
    if name in _bundled_files():
        return name, bundled_scenario(name)
    raise InvalidInput(f"{where}: no scenario file nor bundled scenario named {name!r} "
                       f"(bundled: {', '.join(_bundled_files())})")


def read_staffing_table(where: str, path: Path) -> Dict[str, Dict[float, int]]:
    """``{group: {interval start (s): agents}}`` from a staffing CSV (``start``, ``line``, ``agents``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{where}: cannot read staffing table {str(path)!r}: {e}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"start", "line", "agents"} <= set(rows[0]):
        raise InvalidInput(f"{where}: staffing table {str(path)!r} needs the columns start, line, agents")
    out: Dict[str, Dict[float, int]] = {}
    for k, r in enumerate(rows):
        at = f"{where}: {path.name} row {k + 2}"
        try:
            n = int(r["agents"])
        except (TypeError, ValueError):
            raise InvalidInput(f"{at}: agents must be an int >= 0, got {r['agents']!r}") from None
        if n < 0:
            raise InvalidInput(f"{at}: agents must be an int >= 0, got {r['agents']!r}")
        out.setdefault(str(r["line"]), {})[parse_clock(f"{at}: start", r["start"])] = n
    return out


def sweep_spec_from_dict(data: Mapping[str, Any], base_dir: Union[str, Path, None] = None) -> SweepSpec:
    """A :class:`SweepSpec` from plain data (a parsed spec); files are relative to ``base_dir``."""
    base = Path(base_dir) if base_dir is not None else None
    t = _Table("", data)
    names = t.pop("scenarios")
    if isinstance(names, str) or not isinstance(names, list) or not names:
        raise InvalidInput(f"scenarios must be a non-empty list of names or files, got {names!r}")
    scenarios = tuple(_scenario(f"scenarios[{i}]", n, base) for i, n in enumerate(names))
    labels = [lab for lab, _ in scenarios]
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"scenarios must be distinct, got {names!r}")
    raw_st = t.pop("staffing", [1.0])
    if not isinstance(raw_st, list):
        raw_st = [raw_st]
    staffing: List[Any] = []
    for i, v in enumerate(raw_st):
        where = f"staffing[{i}]"
        if isinstance(v, str) and v != "erlang":
            p = Path(v)
            if base is not None and not p.is_absolute():
                p = base / p
            if not p.is_file():
                raise InvalidInput(f"{where} must be a factor, \"erlang\" or a staffing CSV file, got {v!r}")
            staffing.append((v, read_staffing_table(where, p)))
            continue
        _check_variant(where, v)
        staffing.append(float(v) if isinstance(v, (int, float)) else v)
    cb = t.pop("callback", [False])
    if isinstance(cb, bool):
        cb = [cb]
    if not isinstance(cb, list) or not cb or any(not isinstance(c, bool) for c in cb):
        raise InvalidInput(f"callback must be true, false or a list of them, got {cb!r}")
    seeds_raw = t.pop("seeds", 10)
    first = t.pop("seed", 1)
    if isinstance(seeds_raw, list):
        seeds = tuple(seeds_raw)
    elif isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool) and 1 <= seeds_raw <= 100_000:
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first < 2 ** 63 - seeds_raw:
            raise InvalidInput(f"seed must be an int in 0..2**63-1-seeds, got {first!r}")
        seeds = tuple(range(first, first + seeds_raw))
    else:
        raise InvalidInput(f"seeds must be a count in 1..100000 or a list of seeds, got {seeds_raw!r}")
    conf = t.pop("confidence", 0.95)
    t.done()
    # staffing tables are checked against every scenario now, not in a worker
    for lab, sc in scenarios:
        for v in staffing:
            _apply_staffing(sc, v, lab)
    return SweepSpec(scenarios=scenarios, staffing=tuple(staffing), callback=tuple(dict.fromkeys(cb)),
                     seeds=seeds, confidence=conf)


def load_sweep_spec(path: Union[str, Path]) -> SweepSpec:
    """Read and check a sweep spec TOML file (scenario and staffing files relative to it)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"cannot read sweep spec {str(p)!r}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"sweep spec {str(p)!r} is not valid TOML: {e}") from None
    return sweep_spec_from_dict(data, p.parent)


# ------------------------------------------------------------------ one cell

def _apply_staffing(sc: Scenario, v: Any, label: str = "") -> Scenario:
    if isinstance(v, float):
        if v == 1.0:
            return sc

        def n(x: int) -> int:
            return 0 if x == 0 else max(1, math.ceil(x * v - 1e-9))
        return sc.replace(agents=tuple(dataclasses.replace(
            g, count=n(g.count), staffing=None if g.staffing is None else tuple(n(x) for x in g.staffing))
            for g in sc.agents))
    if v == "erlang":
        from ..sim.plan import erlang_staffing
        return erlang_staffing(sc)[1]
    name, table = v
    starts = sc.interval_starts
    staffing: Dict[str, List[int]] = {}
    for group, by_start in table.items():
        if group not in {g.name for g in sc.agents}:
            raise InvalidInput(f"staffing table {name!r} names agent group {group!r}, unknown in scenario {label!r}")
        bad = [s for s in by_start if s not in starts]
        if bad:
            raise InvalidInput(f"staffing table {name!r}: start {format_clock(bad[0])} is not an interval start "
                               f"of scenario {label!r}")
        staffing[group] = [by_start.get(s, 0) for s in starts]
    return sc.with_staffing(staffing)


def run_cell(scenario: Scenario, seed: int) -> Dict[str, float]:
    """KPIs of one simulated day (a pure function of its arguments: what the workers run)."""
    from ..sim.simulator import simulate
    res = simulate(scenario, seed, sample_every=max(scenario.end - scenario.start, 1.0))
    s = res.summary()["all"]
    iv = res.agent_intervals
    hours = float((iv["end"] - iv["start"]).sum()) / 3600.0 if len(iv) else 0.0
    return {"offered": float(s["offered"]), "answered": float(s["answered"]),
            "service_level": float(s["sl_offered_excl_short"]), "answer_rate": float(s["answer_rate"]),
            "abandon": float(s["abandon_rate_excl_short"]), "asa": float(s["asa"]),
            "occupancy": float(s["occupancy"]), "agent_hours": hours}


# ------------------------------------------------------------------ the run

@dataclass
class SweepResult:
    """``cells``: one dict per cell (``scenario``, ``staffing``, ``callback``, ``seed`` and the KPIs), in grid
    order; ``rows``: per (scenario, staffing, callback) each KPI's ``mean``, ``lo``, ``hi`` over the seeds."""

    spec: SweepSpec
    cells: List[Dict[str, Any]]
    rows: List[Dict[str, Any]]
    engine: str
    seconds: float

    def to_csv(self) -> str:
        cols = ["scenario", "staffing", "callback", "runs", "offered"]
        for k in KPIS:
            cols += [k, f"{k}_lo", f"{k}_hi"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({c: ("" if r[c] is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]))
                        for c in cols})
        return buf.getvalue()

    def to_json(self) -> str:
        doc = {"confidence": self.spec.confidence, "seeds": list(self.spec.seeds), "engine": self.engine,
               "seconds": round(self.seconds, 3), "rows": self.rows, "cells": self.cells}
        return json.dumps(_finite(doc), indent=1, allow_nan=False) + "\n"

    def table(self) -> str:
        head = ["scenario", "staffing", "callback", "runs"] + [KPIS[k][0] for k in KPIS]
        body = []
        for r in self.rows:
            line = [r["scenario"], r["staffing"], "on" if r["callback"] else "off", str(r["runs"])]
            for k, (_lab, scale, fmt) in KPIS.items():
                m, lo, hi = r[k], r[f"{k}_lo"], r[f"{k}_hi"]
                if m is None:
                    line.append("-")
                elif lo is None:
                    line.append(fmt.format(m * scale))
                else:
                    line.append(f"{fmt.format(m * scale)} [{fmt.format(lo * scale)}, {fmt.format(hi * scale)}]")
            body.append(line)
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        fmt_line = "  ".join(f"{{:{'<' if i < 3 else '>'}{w}}}" for i, w in enumerate(widths))
        out = [fmt_line.format(*head)] + [fmt_line.format(*b) for b in body]
        out.append(f"\n{len(self.cells)} runs ({self.engine}) in {self.seconds:.1f} s; means over "
                   f"{len(self.spec.seeds)} seeds with {self.spec.confidence * 100:g} % confidence intervals")
        return "\n".join(out)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def _grid(spec: SweepSpec) -> Tuple[List[Tuple[str, str, bool]], List[Scenario], List[Tuple[int, int]]]:
    """The variants (labels), their scenarios, and the cells as (variant index, seed)."""
    variants, scenarios = [], []
    for lab, sc in spec.scenarios:
        for v in spec.staffing:
            staffed = _apply_staffing(sc, v, lab)
            for cb in spec.callback:
                variants.append((lab, _variant_label(v), cb))
                scenarios.append(staffed.with_callback(cb))
    cells = [(k, s) for k in range(len(variants)) for s in spec.seeds]
    return variants, scenarios, cells


def run_sweep(spec: SweepSpec, *, scheduler: Optional[str] = None, jobs: Optional[int] = None,
              timeout: float = 10.0, progress: Optional[Callable[[float], None]] = None) -> SweepResult:
    """Run every cell of ``spec``: in ``jobs`` local processes (default the CPU count; 1: in this process), or
    on the Dask cluster whose scheduler is at ``scheduler`` (``tcp://host:port``; reached within ``timeout``
    seconds or :class:`SchedulerUnreachable`).  ``progress`` gets the fraction of cells done."""
    if not isinstance(spec, SweepSpec):
        raise InvalidInput(f"spec must be a SweepSpec, got {spec!r}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 4096):
        raise InvalidInput(f"jobs must be an int in 1..4096, got {jobs!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise InvalidInput(f"timeout must be in (0, 3600] seconds, got {timeout!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler and ":" not in scheduler):
        raise InvalidInput(f"scheduler must be an address like tcp://127.0.0.1:8786, got {scheduler!r}")
    t0 = time.perf_counter()
    variants, scenarios, cells = _grid(spec)
    results: List[Optional[Dict[str, float]]] = [None] * len(cells)
    done = 0

    def tick() -> None:
        if progress is not None:
            progress(done / len(cells))

    if scheduler is not None:
        engine = f"dask {scheduler}"
        client = _connect(scheduler, timeout)
        try:
            from distributed import as_completed
            # each scenario is shipped once; cells refer to it
            shipped = client.scatter(scenarios)
            futures = client.map(run_cell, [shipped[k] for k, _ in cells], [s for _, s in cells], pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            for fut, value in as_completed(futures, with_results=True, loop=client.loop):
                results[index[fut.key]] = value
                done += 1
                tick()
        finally:
            client.close()
    elif jobs == 1:
        engine = "this process"
        for i, (k, s) in enumerate(cells):
            results[i] = run_cell(scenarios[k], s)
            done += 1
            tick()
    else:
        import concurrent.futures as cf
        import multiprocessing
        n = jobs or os.cpu_count() or 1
        engine = f"{n} local processes"
        # spawn: a fresh interpreter per worker, safe whatever threads this process runs (a Dask client...)
        with cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            futs = {pool.submit(run_cell, scenarios[k], s): i for i, (k, s) in enumerate(cells)}
            try:
                for f in cf.as_completed(futs):
                    results[futs[f]] = f.result()
                    done += 1
                    tick()
            except cf.process.BrokenProcessPool as e:
                # a worker died (killed, out of memory, or a script without an `if __name__ == "__main__"` guard)
                raise AcdError(f"sweep: a local worker process died ({e}); try --jobs 1 to see why") from None
    out_cells: List[Dict[str, Any]] = []
    for (k, seed), r in zip(cells, results):
        assert r is not None
        lab, st, cb = variants[k]
        out_cells.append({"scenario": lab, "staffing": st, "callback": cb, "seed": seed, **r})
    rows = []
    per = len(spec.seeds)
    for k, (lab, st, cb) in enumerate(variants):
        mine = out_cells[k * per:(k + 1) * per]
        row: Dict[str, Any] = {"scenario": lab, "staffing": st, "callback": cb, "runs": len(mine),
                               "offered": sum(c["offered"] for c in mine) / len(mine)}
        for key in KPIS:
            m, lo, hi = mean_ci(np.asarray([c[key] for c in mine], dtype=float), spec.confidence)
            # the interval of a share stays in [0, 1], of a time or a count above 0
            top = 1.0 if key in _SHARES else math.inf
            lo, hi = max(lo, 0.0) if lo == lo else lo, min(hi, top) if hi == hi else hi
            row[key], row[f"{key}_lo"], row[f"{key}_hi"] = (None if x != x else x for x in (m, lo, hi))
        rows.append(row)
    return SweepResult(spec=spec, cells=out_cells, rows=rows, engine=engine, seconds=time.perf_counter() - t0)


def _connect(address: str, timeout: float) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise InvalidInput("--scheduler needs Dask (pip install acd[planning])") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise SchedulerUnreachable(f"--scheduler {address!r}: no Dask scheduler answered within {timeout:g} s "
                                   f"({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------ the command

def cmd_sweep(args: Any, out: Any, err: Any) -> int:
    """``acd sweep SPEC.toml``: the results table (table, CSV or JSON)."""
    data: Dict[str, Any] = {}
    base: Optional[Path] = None
    if args.spec is not None:
        p = Path(args.spec)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise InvalidInput(f"cannot read sweep spec {str(p)!r}: {e.strerror or e}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InvalidInput(f"sweep spec {str(p)!r} is not valid TOML: {e}") from None
        base = p.parent
    # flags replace the spec's fields
    if args.scenario:
        data["scenarios"] = list(args.scenario)
    if args.staffing:
        data["staffing"] = [_factor_or_text(v) for v in args.staffing]
    if args.callback:
        data["callback"] = [v == "on" for v in args.callback]
    if args.seeds is not None:
        data["seeds"] = args.seeds
    if args.seed is not None:
        data["seed"] = args.seed
    if "scenarios" not in data:
        raise InvalidInput("sweep needs a SPEC.toml or --scenario")
    spec = sweep_spec_from_dict(data, base)
    from ..sim.progress import ProgressBar
    bar = None if args.no_progress else ProgressBar(f"sweep of {spec.n_cells} runs", stream=err,
                                                    total=spec.n_cells, unit="runs")
    res = run_sweep(spec, scheduler=args.scheduler, jobs=args.jobs, timeout=args.scheduler_timeout, progress=bar)
    out.write(res.to_json() if args.format == "json" else res.to_csv() if args.format == "csv"
              else res.table() + "\n")
    return 0


def _factor_or_text(v: str) -> Any:
    try:
        return float(v)
    except ValueError:
        return v
