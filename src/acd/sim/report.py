"""Terminal tables and the self-contained HTML report of simulation runs.

The KPI tables are :func:`acd.kpi.format_table` of :func:`acd.kpi.summary`;
the report (``DIR/index.html``, no external file, no script) adds inline SVG
charts drawn by :mod:`acd.sim.svg`: calls waiting over time, service level
and abandonment per interval, offered and answered calls per interval,
agents logged in and working, and, for the demo, the staffing plan.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .._paths import check_output_dir, write_text
from ..errors import InvalidInput
from .scenario import format_clock
from .simulator import SimResult
from .svg import bar_chart, line_chart

__all__ = ("kpi_table", "interval_table", "headline", "verdict", "comparison_table", "interval_series",
           "write_report", "check_report_dir", "render_report")

# ---------------------------------------------------------------- numbers

def kpi_table(res: SimResult) -> str:
    """The KPI table of one run (``acd.kpi.format_table`` of its summary)."""
    from .. import kpi
    return kpi.format_table(res.summary())


def interval_table(res: SimResult) -> str:
    """The per-interval KPI table of one run."""
    from .. import kpi
    return kpi.format_table(res.per_interval())


#: headline figures: label -> (kpi indicator of the "all" column, scale, format)
_HEADLINE = (
    ("calls offered", "offered", 1.0, "{:.0f}"),
    ("answered %", "answer_rate", 100.0, "{:.1f}"),
    ("abandoned % (excl. short)", "abandon_rate_excl_short", 100.0, "{:.1f}"),
    ("SL % (answered within T / offered excl. short)", "sl_offered_excl_short", 100.0, "{:.1f}"),
    ("SL % of answered calls", "sl_answered", 100.0, "{:.1f}"),
    ("ASA s", "asa", 1.0, "{:.1f}"),
    ("max answer wait s", "max_answer_wait", 1.0, "{:.0f}"),
    ("exited", "exited", 1.0, "{:.0f}"),
    ("call-backs offered", "cb_offered", 1.0, "{:.0f}"),
    ("call-backs accepted", "cb_accepted", 1.0, "{:.0f}"),
    ("call-backs reached", "cb_reached", 1.0, "{:.0f}"),
    ("call-backs failed", "callback_failed", 1.0, "{:.0f}"),
    ("occupancy %", "occupancy", 100.0, "{:.1f}"),
)


def headline(res: SimResult) -> Dict[str, float]:
    """A few whole-run figures (the ``"all"`` column of :func:`acd.kpi.summary`), for comparisons."""
    s = res.summary()["all"]
    return {label: float(s[key]) * scale for label, key, scale, _ in _HEADLINE}


def verdict(res: SimResult) -> str:
    """One line grading the run against the scenario's targets."""
    s = res.summary()["all"]
    t = res.scenario.targets
    ar = s["answer_rate"]
    sl = s["sl_offered_excl_short"]
    grade = "excellent" if ar >= t.answer_rate_excellent else ("met" if ar >= t.answer_rate else "missed")
    sl_ok = "met" if sl >= t.service_level[0] else "missed"
    return (f"answer rate {ar * 100:.1f} % (target {t.answer_rate * 100:.0f} %, excellent "
            f"{t.answer_rate_excellent * 100:.0f} %): {grade}; service level {sl * 100:.1f} % within "
            f"{t.service_level[1]:g} s (target {t.service_level[0] * 100:.0f} %): {sl_ok}")


def comparison_table(a: SimResult, b: SimResult, labels: Tuple[str, str] = ("without", "with")) -> str:
    """Side-by-side headline figures of two runs and their difference (b - a)."""
    ha, hb = headline(a), headline(b)
    w = max(len(k) for k in ha)
    lines = [f"{'':<{w}}  {labels[0]:>10}  {labels[1]:>10}  {'difference':>10}"]
    for label, _key, _scale, fmt in _HEADLINE:
        x, y = ha[label], hb[label]
        d = y - x
        ds = "-" if d != d else ("+" if d > 0 else "") + fmt.format(d)
        xs = "-" if x != x else fmt.format(x)
        ys = "-" if y != y else fmt.format(y)
        lines.append(f"{label:<{w}}  {xs:>10}  {ys:>10}  {ds:>10}")
    return "\n".join(lines)


def interval_series(res: SimResult) -> Dict[str, np.ndarray]:
    """:func:`acd.kpi.per_interval` of the run on the scenario's intervals (calls by arrival time)."""
    return res.per_interval()


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:820px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}.muted{color:#777;font-size:12px}
figure{margin:1em 0}
"""


def _clock_ticks(x0: float, x1: float) -> List[float]:
    """Whole hours (or half hours, or every two hours) between x0 and x1."""
    span = x1 - x0
    step = 1800.0 if span <= 4 * 3600 else (3600.0 if span <= 12 * 3600 else 7200.0)
    first = math.ceil(x0 / step) * step
    return [first + k * step for k in range(int((x1 - first) // step) + 1)]


def _pct(v: float) -> str:
    return f"{v * 100:.0f} %"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render_report(runs: Sequence[Tuple[str, SimResult]], *, title: str = "acd simulation report",
                  plan: Any = None) -> str:
    """The HTML text of a report on one or more runs of the same scenario."""
    if not runs:
        raise ValueError("render_report needs at least one run")
    sc = runs[0][1].scenario
    t = sc.targets
    sl_target = t.service_level
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(sc.description or sc.name)}</p>",
             f"<p class='muted'>{format_clock(sc.start)}-{format_clock(sc.end)}, {sc.n_intervals} intervals of "
             f"{sc.interval / 60:g} min, {sc.expected_calls:,.0f} calls expected; targets: "
             f"{_pct(sl_target[0])} answered within {sl_target[1]:g} s, answer rate at least "
             f"{_pct(t.answer_rate)} ({_pct(t.answer_rate_excellent)} excellent). Generated "
             f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by acd.</p>"]
    # headline figures
    heads = [(label, headline(res)) for label, res in runs]
    rows = []
    for label_h, _key, _scale, fmt in _HEADLINE:
        rows.append([label_h] + ["-" if h[label_h] != h[label_h] else fmt.format(h[label_h]) for _, h in heads])
    parts.append("<h2>Headline</h2>" + _html_table([""] + [label for label, _ in heads], rows))
    parts.append("<ul>" + "".join(f"<li>{html.escape(label)}: {html.escape(verdict(res))}</li>" for label, res in runs)
                 + "</ul>")
    for label, res in runs:
        parts.append(f"<p class='muted'>{html.escape(label)}: seed {res.seed}, {len(res.records):,} calls, "
                     f"{res.events:,} events, {res.wall_time:.2f} s, call-backs: "
                     f"{html.escape(str(res.counters.get('callback_mode')))}</p>")

    # charts
    starts = sc.interval_starts
    cats = [format_clock(s) for s in starts]
    series = [(label, interval_series(res)) for label, res in runs]
    every = max(1, len(cats) // 18)
    parts.append("<h2>Charts</h2>")
    # waiting calls over time
    if len(runs) == 1:
        res = runs[0][1]
        s = res.samples
        lines = [("all queues", s["waiting"].sum(axis=1).astype(float).tolist())]
        if s["waiting"].shape[1] > 1:
            lines += [(q, s["waiting"][:, i].astype(float).tolist()) for i, q in enumerate(res.queue_names)]
        xs = s["t"].tolist()
        parts.append(f"<figure>{line_chart('Callers waiting (on hold)', xs, lines, y_label='calls', x_fmt=format_clock, step=True, x_ticks=_clock_ticks(xs[0], xs[-1]) if xs else None)}</figure>")
    else:
        # runs may sample at different times: plot each on its own x, sharing the first run's axis
        base = runs[0][1].samples["t"]
        lines = []
        for label, res in runs:
            s = res.samples
            y = np.interp(base, s["t"], s["waiting"].sum(axis=1)) if len(s["t"]) else np.zeros_like(base)
            lines.append((label, y.tolist()))
        parts.append(f"<figure>{line_chart('Callers waiting (on hold), all queues', base.tolist(), lines, y_label='calls', x_fmt=format_clock, step=True, x_ticks=_clock_ticks(base[0], base[-1]) if len(base) else None)}</figure>")
    parts.append("<figure>" + line_chart(
        f"Service level per interval (answered within {sl_target[1]:g} s / offered excl. short abandons)",
        list(range(len(cats))), [(label, (ser["sl_offered_excl_short"] * 100).tolist()) for label, ser in series],
        y_label="% of calls", x_fmt=lambda v: cats[min(int(round(v)), len(cats) - 1)] if cats else "",
        x_ticks=list(range(0, len(cats), every if every > 1 else (2 if len(cats) > 12 else 1))), target=(f"target {_pct(sl_target[0])}", sl_target[0] * 100), y_max=100) + "</figure>")
    parts.append("<figure>" + bar_chart(
        "Abandonment per interval (excl. short abandons)", cats,
        [(label, (ser["abandon_rate_excl_short"] * 100).tolist()) for label, ser in series],
        y_label="% of calls", target=(f"limit {_pct(1 - t.answer_rate)}", (1 - t.answer_rate) * 100),
        label_every=every) + "</figure>")
    offered_series = [("offered", series[0][1]["offered"].tolist())] + \
                     [(f"answered ({label})" if len(runs) > 1 else "answered", ser["answered"].tolist())
                      for label, ser in series]
    parts.append("<figure>" + bar_chart("Calls per interval", cats, offered_series, y_label="calls",
                                        label_every=every) + "</figure>")
    agent_lines = []
    base = runs[0][1].samples["t"]
    for label, res in runs:
        s = res.samples
        suffix = f" ({label})" if len(runs) > 1 else ""
        agent_lines.append((f"logged in{suffix}", np.interp(base, s["t"], s["logged_in"]).tolist()))
        agent_lines.append((f"on calls{suffix}", np.interp(base, s["t"], s["working"]).tolist()))
    parts.append("<figure>" + line_chart("Agents", base.tolist(), agent_lines, y_label="agents", x_fmt=format_clock,
                                         step=True, x_ticks=_clock_ticks(base[0], base[-1]) if len(base) else None)
                 + "</figure>")

    # staffing plan
    if plan is not None:
        from .plan import plan_rows
        header, prow = plan_rows(plan)
        parts.append("<h2>Staffing (Erlang)</h2>" + _html_table(header, prow))

    # per-interval and KPI tables (acd.kpi)
    from .. import kpi
    for label, res in runs:
        parts.append(f"<h2>Per interval - {html.escape(label)}</h2>"
                     f"<pre>{html.escape(kpi.format_table(interval_series(res)))}</pre>")
        parts.append(f"<h2>KPI - {html.escape(label)}</h2><pre>{html.escape(kpi_table(res))}</pre>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(directory: Union[str, Path], runs: Sequence[Tuple[str, SimResult]], *,
                 title: str = "acd simulation report", plan: Any = None, force: bool = True) -> Path:
    """Write ``directory/index.html`` (``directory`` created if its parent exists); return its path.

    With ``force=False`` an existing ``index.html`` is not overwritten.  A path
    that cannot be written (missing parent directory, no permission, a file
    where the directory should be, an existing report without ``force``)
    raises :class:`acd.errors.InvalidInput` naming it; :func:`check_report_dir`
    makes the same checks before a run starts.
    """
    p = check_report_dir(directory, force=force)
    text = render_report(runs, title=title, plan=plan)
    try:
        p.parent.mkdir(exist_ok=True)
    except OSError as e:
        raise InvalidInput(f"cannot create report directory {str(p.parent)!r}: {e.strerror or e}") from None
    write_text(p, text, what="report")
    return p


def check_report_dir(directory: Union[str, Path], *, force: bool = False) -> Path:
    """The report file ``directory/index.html``, checked writable (see :func:`write_report`); nothing is created."""
    return check_output_dir(directory, "index.html", force=force, what="report")
