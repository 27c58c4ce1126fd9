"""``acd report``: the indicators of real days, from a production journal.

The journal is replayed read-only (:func:`.calls.replay_journal`, beside a
running service if need be) into call records and agent intervals
(:class:`.calls.CallLog`), which go through :mod:`acd.kpi` -- the code that
measures simulated days.  Times are placed on the wall clock by the journal's
``clock`` notes (one per start of the service) and shown in local time,
counted from midnight of the first day reported (so a second day's 09:00 is
33:00); a journal without clock notes (written before they existed) is
reported in engine seconds.

``acd report --queue-log FILE`` gives the same report from an Asterisk
``queue_log`` (app_queue's, to measure a system before switching, or the one
``acd serve`` writes): the times are the file's own, unix seconds.

Output formats: ``table`` (for a terminal), ``csv`` (one section per table,
an indicator per column, the kpi names as headers), ``json`` (the kpi
names: ``offered``, ``answered``, ``abandoned``...) and ``html`` (one page with
the simulator report's charts: :mod:`.report_html`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import InvalidInput, JournalError
from .calls import CallLog, replay_journal, to_unix

__all__ = ("DayReport", "load_day_report", "load_queue_log_report", "day_report", "FORMATS")

FORMATS = ("table", "csv", "json", "html")


@dataclass
class DayReport:
    journal: str
    queue_names: List[str]
    records: np.ndarray
    agent_intervals: np.ndarray
    agent_names: List[Any]
    origin: Optional[float]     # unix time of t = 0 (local midnight of the first day); None: engine seconds
    open_calls: int
    interval: float
    sl_threshold: float
    short_abandon: float
    notes: List[str] = field(default_factory=list)     # what the reader could not give, for the heading
    closed: Dict[str, int] = field(default_factory=dict)   # queue -> calls refused outside opening hours
    #: queue -> Exit reason -> calls (max_wait, callback_failed, full, no_agents, wait_too_long)
    exits: Dict[str, Dict[str, int]] = field(default_factory=dict)

    def _opts(self) -> Dict[str, Any]:
        return {"sl_threshold": self.sl_threshold, "short_abandon": self.short_abandon}

    def summary(self) -> Dict[str, Dict[str, Any]]:
        from .. import kpi
        return kpi.summary(self.records, self.queue_names, agent_intervals=self.agent_intervals, **self._opts())

    def per_interval(self) -> Dict[str, np.ndarray]:
        from .. import kpi
        if not len(self.records):
            return {}
        return kpi.per_interval(self.records, self.queue_names, self.interval,
                                agent_intervals=self.agent_intervals, **self._opts())

    def per_agent(self) -> Dict[str, np.ndarray]:
        from .. import kpi
        return kpi.per_agent(self.records, self.agent_intervals)

    def heading(self) -> str:
        if not len(self.records):
            span = "no call"
        elif self.origin is None:
            span = (f"engine time {self.records['arrival'].min():.0f}-{self.records['ended'].max():.0f} s "
                    "(no clock notes in this journal: written before acd journaled them)")
        else:
            a = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.origin + float(self.records["arrival"].min())))
            b = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.origin + float(self.records["ended"].max())))
            span = f"{a} - {b} (local time)"
        still = f"; {self.open_calls} call(s) still in progress, not counted" if self.open_calls else ""
        if self.closed:
            still += "; outside opening hours (not offered): " + ", ".join(
                f"{n} for {q}" for q, n in sorted(self.closed.items()))
        if self.exits:
            still += "; exits by reason: " + ", ".join(
                f"{q} " + " ".join(f"{r} {n}" for r, n in sorted(by.items())) for q, by in sorted(self.exits.items()))
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        return (f"{self.journal}: {len(self.records):,} calls, {span}; service level within "
                f"{self.sl_threshold:g} s, short abandons under {self.short_abandon:g} s{still}{notes}")

    def render(self, fmt: str = "table") -> str:
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        if fmt == "csv":
            return self._csv()
        if fmt == "html":
            from .report_html import render_day_html
            return render_day_html(self)
        from .. import kpi
        parts = [self.heading(), "", kpi.format_table(self.summary())]
        per = self.per_interval()
        if per:
            parts += ["", f"per interval of {self.interval / 60:g} min", kpi.format_table(per)]
        agents = self.per_agent()
        if len(agents["agent"]):
            parts += ["", "per agent", kpi.format_table(agents, agent_names=self.agent_names)]
        return "\n".join(parts) + "\n"

    def to_dict(self) -> Dict[str, Any]:
        per = self.per_interval()
        agents = self.per_agent()
        return {
            "journal": self.journal, "calls": int(len(self.records)), "open_calls": self.open_calls,
            "notes": list(self.notes), "closed": dict(self.closed),
            "exits": {q: dict(by) for q, by in self.exits.items()},
            "origin_unix": self.origin, "interval": self.interval, "sl_threshold": self.sl_threshold,
            "short_abandon": self.short_abandon,
            "summary": {g: {k: _json(v) for k, v in ind.items()} for g, ind in self.summary().items()},
            "per_interval": [{k: _json(per[k][i]) for k in per} for i in range(len(per.get("start", ())))],
            "per_agent": [{**{k: _json(agents[k][i]) for k in agents},
                           "agent": _json(self.agent_names[int(agents["agent"][i])])}
                          for i in range(len(agents["agent"]))],
        }

    def _csv(self) -> str:
        d = self.to_dict()
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["# summary"])
        names = list(next(iter(d["summary"].values())))
        w.writerow(["group"] + names)
        for g, ind in d["summary"].items():
            w.writerow([g] + [_cell(ind[n]) for n in names])
        for section in ("per_interval", "per_agent"):
            rows = d[section]
            if rows:
                w.writerow([])
                w.writerow([f"# {section}"])
                w.writerow(list(rows[0]))
                for row in rows:
                    w.writerow([_cell(v) for v in row.values()])
        return out.getvalue()


def _json(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) else f
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def _midnight(unix: float) -> float:
    t = time.localtime(unix)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def load_day_report(path: str, *, since: Optional[float] = None, until: Optional[float] = None,
                    interval: float = 1800.0, sl_threshold: Optional[float] = None,
                    short_abandon: float = 5.0, schema: str = "acd") -> DayReport:
    """Replay the journal at ``path`` -- an SQLite file, or a ``postgresql://`` URL and its
    ``schema`` -- read-only into a :class:`DayReport` of the calls
    that arrived in ``[since, until)`` (unix times; default: all).  ``sl_threshold``: default
    the journal's queues' service-level time when they share one, else 60 s."""
    journal: Any
    if path.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresJournal
        journal = PostgresJournal(path, schema=schema, read_only=True, timeout=10.0)
        path = journal.path                    # without its password
    else:
        from .sqlite import SqliteJournal
        journal = SqliteJournal(path, read_only=True)
    try:
        log = replay_journal(journal, CallLog)
    finally:
        journal.close()
    return day_report(log, path, since=since, until=until, interval=interval, sl_threshold=sl_threshold,
                      short_abandon=short_abandon)


def load_queue_log_report(path: str, *, since: Optional[float] = None, until: Optional[float] = None,
                          interval: float = 1800.0, sl_threshold: Optional[float] = None,
                          short_abandon: float = 5.0) -> DayReport:
    """The same report from an Asterisk ``queue_log`` (app_queue's, or the one ``acd serve``
    writes): :class:`acd.adapters.asterisk.queue_log.QueueLogReader`."""
    from ..adapters.asterisk.queue_log import read_queue_log

    log = read_queue_log(path)
    report = day_report(log, path, since=since, until=until, interval=interval, sl_threshold=sl_threshold,
                        short_abandon=short_abandon)
    report.notes = (["priorities and wrap-up times are not in a queue_log: aht is talk time alone"] +
                    ([f"{log.skipped} line(s) that are not queue_log lines were passed over"] if log.skipped else []))
    return report


def day_report(log: CallLog, path: str, *, since: Optional[float] = None, until: Optional[float] = None,
               interval: float = 1800.0, sl_threshold: Optional[float] = None,
               short_abandon: float = 5.0) -> DayReport:
    """A :class:`DayReport` of what a :class:`.calls.CallLog` (or a reader of its shape) collected."""
    rec = log.records()
    iv = log.agent_intervals()
    origin: Optional[float] = None
    if log.clock:
        for col in ("arrival", "answered", "ended"):
            rec[col] = to_unix(rec[col], log.clock)
        if len(iv):
            iv["start"] = to_unix(iv["start"], log.clock)
            iv["end"] = to_unix(iv["end"], log.clock)
        if since is not None or until is not None:
            keep = np.ones(len(rec), dtype=bool)
            if since is not None:
                keep &= rec["arrival"] >= since
            if until is not None:
                keep &= rec["arrival"] < until
            rec = rec[keep]
            lo = -math.inf if since is None else since
            hi = math.inf if until is None else until
            iv = iv[(iv["end"] > lo) & (iv["start"] < hi)]
            iv["start"] = np.maximum(iv["start"], lo)
            iv["end"] = np.minimum(iv["end"], hi)
        first = float(rec["arrival"].min()) if len(rec) else (since if since is not None else time.time())
        origin = _midnight(first)
        for col in ("arrival", "answered", "ended"):
            rec[col] -= origin
        iv["start"] -= origin
        iv["end"] -= origin
    elif since is not None or until is not None:
        raise JournalError(f"{path!r} has no clock notes (written before acd journaled them): --from/--to "
                           "cannot place its calls in time; report it whole")
    rec["call"] = np.arange(len(rec))
    if sl_threshold is None:
        shared = set(log.service_levels.values())
        sl_threshold = shared.pop() if len(shared) == 1 else 60.0
    closed: Dict[str, int] = {}
    for queue, at in log.closed:                     # unix times: --from/--to apply as they are
        if (since is None or at >= since) and (until is None or at < until):
            closed[queue] = closed.get(queue, 0) + 1
    exits: Dict[str, Dict[str, int]] = {}
    raw = list(getattr(log, "exits", ()))            # (queue, reason, engine time); a queue_log has none
    if raw:
        when = np.array([e[2] for e in raw], dtype=float)
        if log.clock:
            when = to_unix(when, log.clock)
        for (queue, reason, _), t in zip(raw, when):
            if (since is None or t >= since) and (until is None or t < until):
                by = exits.setdefault(queue, {})
                by[reason] = by.get(reason, 0) + 1
    return DayReport(journal=path, queue_names=list(log.queue_names), records=rec, agent_intervals=iv,
                     agent_names=list(log.agent_names), origin=origin, open_calls=log.open_calls,
                     interval=float(interval), sl_threshold=float(sl_threshold), short_abandon=float(short_abandon),
                     closed=closed, exits=exits)

