"""``acd report --format html``: one self-contained page (inline SVG, no script) of a real day.

The charts of the simulator's report, drawn from a :class:`~.report.DayReport`:
calls waiting over the day, calls, service level and abandonment per
interval, agents logged in and working; then the tables of ``acd report``.
"""

from __future__ import annotations

import datetime as _dt
import html
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from .report import DayReport

__all__ = ("render_day_html", "step_counts")


def step_counts(starts: np.ndarray, ends: np.ndarray) -> Tuple[List[float], List[float]]:
    """How many ``[start, end)`` stretches are open, as a step series ``(times, counts)``."""
    t = np.concatenate([starts, ends])
    d = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.lexsort((d, t))               # at one instant, ends before starts
    t, d = t[order], np.cumsum(d[order])
    if not len(t):
        return [], []
    last = np.r_[t[1:] != t[:-1], True]      # one point per instant, the count after it
    return t[last].tolist(), d[last].tolist()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def render_day_html(report: "DayReport") -> str:
    from .. import kpi
    from ..sim.report import _CSS, _clock_ticks, _html_table
    from ..sim.svg import bar_chart, line_chart

    title = f"acd report - {report.journal}"
    rec, iv = report.records, report.agent_intervals
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>Day report</h1>",
             f"<p>{html.escape(report.heading())}</p>",
             f"<p class='muted'>Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by acd report. Times are "
             f"{'local, from midnight of the first day' if report.origin is not None else 'engine seconds'}.</p>"]
    summary = report.summary()
    head = ["", "offered", "answered", "abandoned", "answer rate", "SL (offered)", "SL (answered)", "ASA", "AHT"]
    rows: List[Sequence[Any]] = []
    for group, ind in summary.items():
        rows.append([group, ind["offered"], ind["answered"], ind["abandoned"], _pct(ind["answer_rate"]),
                     _pct(ind["sl_offered"]), _pct(ind["sl_answered"]), _secs(ind["asa"]), _secs(ind["aht"])])
    parts.append("<h2>Headline</h2>" + _html_table(head, rows) +
                 f"<p class='muted'>SL (offered): answered within {report.sl_threshold:g} s / all offered calls; "
                 "SL (answered): ... / answered calls.</p>")
    if len(rec):
        parts.append("<h2>Charts</h2>")
        waits_end = np.where(np.isnan(rec["answered"]), rec["ended"], rec["answered"])
        xs, ys = step_counts(rec["arrival"], waits_end)
        if xs:
            parts.append("<figure>" + line_chart("Callers waiting (on hold or for a call-back)", xs, [("all", ys)],
                                                 y_label="calls", x_fmt=_clock, step=True,
                                                 x_ticks=_clock_ticks(xs[0], xs[-1])) + "</figure>")
        per = report.per_interval()
        cats = [_clock(s) for s in per["start"]]
        every = max(1, len(cats) // 18)
        parts.append("<figure>" + bar_chart("Calls per interval", cats, [
            ("offered", per["offered"].tolist()), ("answered", per["answered"].tolist()),
            ("abandoned", per["abandoned"].tolist())], y_label="calls", label_every=every) + "</figure>")
        parts.append("<figure>" + bar_chart(
            f"Service level per interval (answered within {report.sl_threshold:g} s / offered)", cats,
            [("service level", (per["sl_offered"] * 100).tolist())], y_label="% of calls", y_max=100,
            label_every=every) + "</figure>")
        parts.append("<figure>" + bar_chart("Abandonment per interval", cats,
                                            [("abandoned", (per["abandon_rate"] * 100).tolist())],
                                            y_label="% of calls", label_every=every) + "</figure>")
    if len(iv):
        lx, ly = step_counts(iv["start"], iv["end"])
        working = np.isin(iv["state"], (kpi.RESERVED, kpi.BUSY, kpi.WRAP_UP))
        wx, wy = step_counts(iv["start"][working], iv["end"][working])
        # both on the logged-in times: a step series holds its value until its next point
        idx = np.searchsorted(np.asarray(wx), lx, side="right") - 1
        wy_on = np.where(idx >= 0, np.asarray(wy + [0.0])[idx], 0.0) if wx else np.zeros(len(lx))
        parts.append("<figure>" + line_chart("Agents", lx, [("logged in", ly), ("on calls", wy_on.tolist())],
                                             y_label="agents", x_fmt=_clock, step=True,
                                             x_ticks=_clock_ticks(lx[0], lx[-1])) + "</figure>")
    parts.append(f"<h2>Indicators</h2><pre>{html.escape(kpi.format_table(summary))}</pre>")
    per = report.per_interval()
    if per:
        parts.append(f"<h2>Per interval of {report.interval / 60:g} min</h2>"
                     f"<pre>{html.escape(kpi.format_table(per))}</pre>")
    agents = report.per_agent()
    if len(agents["agent"]):
        parts.append("<h2>Per agent</h2><pre>" +
                     html.escape(kpi.format_table(agents, agent_names=report.agent_names)) + "</pre>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _pct(v: float) -> str:
    return "-" if v != v else f"{v * 100:.1f} %"


def _secs(v: float) -> str:
    return "-" if v != v else f"{v:.0f} s"
