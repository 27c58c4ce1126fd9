"""Forecasts of arrivals per interval from call records (``acd forecast``).

History comes from the production journal (:func:`acd.journal.calls.replay_journal`,
as ``acd report`` reads it), an Asterisk ``queue_log``
(:func:`acd.adapters.asterisk.queue_log.read_queue_log`) or a CSV of arrival
times; every reader gives a :class:`History`: one arrival per call with its
line, and where known its handle time, its wait and whether it abandoned.

The model, per line: calls of a day = **daily level** x **intraday profile**.

* level: Holt-Winters exponential smoothing (statsmodels'
  ``ExponentialSmoothing``: additive weekly season, no trend) on the daily
  totals when the fit has at least :data:`ETS_MIN_DAYS` days, else the mean of
  each weekday over the history (at least :data:`MIN_DAYS` days: every weekday
  seen once);
* profile: for each weekday, the share of that weekday's calls falling in
  each interval, pooled over the history (optionally weighted to the recent
  weeks).

Handle time is the mean talk + wrap-up of answered calls; patience the
maximum-likelihood mean of an exponential patience from censored waits
(:func:`acd.patience.exponential_mle`: abandons over the time callers spent
waiting), so that the output suits Erlang A.

:func:`backtest` holds out the last days, fits on the rest and compares: WAPE
= sum |actual - forecast| / sum actual, per interval of the day, over the
intervals and over daily totals, each beside its *Poisson floor*: the WAPE a
forecast knowing the true rates would still show, because arrivals are random.

Outputs: :meth:`DayForecast.forecast_toml` (read by :func:`acd.sim.plan.load_forecast`
and ``acd staff``), :meth:`DayForecast.calls_csv` (``start,line,calls``) and
:meth:`DayForecast.scenario_toml` (a simulator scenario whose arrivals and mix
come from the forecast).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import AcdError, InvalidInput

__all__ = ("History", "Counts", "LineForecast", "DayForecast", "Backtest", "read_history", "read_csv_history",
           "read_journal_history", "read_queue_log_history", "count_arrivals", "forecast_day", "backtest",
           "write_atomic", "WEEKDAYS", "ETS_MIN_DAYS", "MIN_DAYS", "CSV_COLUMNS")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: days of fit history from which the level is Holt-Winters' (4 weekly cycles: with fewer, its 9
#: parameters -- level, 7 seasonal states, smoothing -- are fitted to as many points)
ETS_MIN_DAYS = 28
#: the least fit history: every weekday seen once (the seasonal mean)
MIN_DAYS = 7
#: the farthest day a forecast reaches after the history
MAX_HORIZON = 366
CSV_COLUMNS = ("time", "queue", "handle", "abandoned", "wait")
_DEFAULT_LINE = "all"       # the line of a CSV without a queue column


# ---------------------------------------------------------------- history

@dataclass(frozen=True)
class History:
    """Arrivals, one per call: unix time, line, and what is known of the call (NaN: not known)."""

    source: str
    kind: str                       # "journal", "csv" or "queue_log"
    lines: Tuple[str, ...]
    time: np.ndarray                # unix seconds
    line: np.ndarray                # index into lines
    handle: np.ndarray              # talk + wrap-up of answered calls (s); NaN otherwise or unknown
    wait: np.ndarray                # time in queue until answered, abandoned or gone (s); NaN unknown
    abandoned: np.ndarray           # bool
    notes: Tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.time)

    def line_stats(self, name: str) -> Tuple[Optional[float], Optional[float]]:
        """``(aht, patience)`` of a line: mean handle time of its answered calls, and the mean of an
        exponential patience fitted to its waits (abandoned ones observed, the others censored);
        None where the history does not tell (no handle times, no waits, or no abandon)."""
        from ..patience import exponential_mle
        k = self.lines.index(name)
        mine = self.line == k
        h = self.handle[mine]
        h = h[~np.isnan(h)]
        aht = float(h.mean()) if len(h) and h.mean() > 0 else None
        w = self.wait[mine]
        known = ~np.isnan(w)
        patience = None
        if known.any():
            est = exponential_mle(int((self.abandoned[mine] & known).sum()), int(known.sum()),
                                  float(w[known].sum()), 0.0)
            patience = est.mean if math.isfinite(est.mean) and est.mean > 0 else None
        return aht, patience


def _history(source: str, kind: str, lines: Sequence[str], time: Any, line: Any, handle: Any, wait: Any,
             abandoned: Any, notes: Sequence[str] = ()) -> History:
    t = np.asarray(time, dtype=float)
    if not len(t):
        raise InvalidInput(f"history {source!r} holds no call: nothing to forecast from")
    order = np.argsort(t, kind="stable")
    return History(source, kind, tuple(lines), t[order], np.asarray(line, dtype=np.int64)[order],
                   np.asarray(handle, dtype=float)[order], np.asarray(wait, dtype=float)[order],
                   np.asarray(abandoned, dtype=bool)[order], tuple(notes))


def _from_call_log(log: Any, source: str, kind: str, notes: Sequence[str] = ()) -> History:
    """A History of what a :class:`acd.journal.calls.CallLog` (or the queue_log reader) collected."""
    from ..journal.calls import to_unix
    if not log.clock:
        raise InvalidInput(f"history {source!r} has no clock notes (written before acd journaled them): its "
                           "calls cannot be placed on the calendar")
    rec = log.records(close_open=True)          # a call still open at the end arrived all the same
    arrival = to_unix(rec["arrival"], log.clock)
    answered = ~np.isnan(rec["answered"])
    ended = to_unix(rec["ended"], log.clock)
    ans_at = to_unix(rec["answered"], log.clock)
    wait = np.where(answered, ans_at - arrival, ended - arrival)
    handle = np.where(rec["outcome"] == 0, rec["talk"] + rec["wrap"], np.nan)
    names = list(log.queue_names)
    q = rec["queue"].astype(np.int64)
    if (q < 0).any():                           # a queue the log never declared
        names.append("unknown")
        q = np.where(q < 0, len(names) - 1, q)
    return _history(source, kind, names, arrival, q, handle, np.maximum(wait, 0.0), rec["outcome"] == 1, notes)


def read_journal_history(path: str, *, schema: str = "acd") -> History:
    """The calls of the service's journal (SQLite file or ``postgresql://`` URL), replayed read-only
    as ``acd report`` does."""
    from ..errors import JournalError
    from ..journal.calls import CallLog, replay_journal
    journal: Any
    try:
        if path.startswith(("postgresql://", "postgres://")):
            from ..journal.postgres import PostgresJournal
            journal = PostgresJournal(path, schema=schema, read_only=True, timeout=10.0)
            path = journal.path                 # without its password
        else:
            from ..journal.sqlite import SqliteJournal
            journal = SqliteJournal(path, read_only=True)
    except JournalError as e:
        raise InvalidInput(f"history: {e}") from None
    try:
        log = replay_journal(journal, CallLog)
    finally:
        journal.close()
    return _from_call_log(log, path, "journal")


def read_queue_log_history(path: str) -> History:
    """The calls of an Asterisk ``queue_log`` (ENTERQUEUE: arrival; CONNECT, COMPLETE*: hold and talk;
    ABANDON, EXIT*: waits), through the reader of ``acd report --queue-log``."""
    from ..adapters.asterisk.queue_log import read_queue_log
    log = read_queue_log(path)
    notes = ["a queue_log has no wrap-up times: aht is talk time alone (--aht to give the handle time)"]
    if log.skipped:
        notes.append(f"{log.skipped} line(s) that are not queue_log lines were passed over")
    return _from_call_log(log, path, "queue_log", notes)


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"", "0", "false", "no", "n", "f"}


def _csv_time(text: str, where: str) -> float:
    t = text.strip()
    try:
        v = float(t)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(t.replace("Z", "+00:00") if t.endswith("Z") else t)
        except ValueError:
            raise InvalidInput(f"{where} time must be ISO 8601 or unix seconds, got {text!r}") from None
        if when.tzinfo is None:                 # history is kept in UTC (the intervals are local: --tz)
            when = when.replace(tzinfo=dt.timezone.utc)
        return when.timestamp()
    if not math.isfinite(v) or v < 0:
        raise InvalidInput(f"{where} time must be ISO 8601 or unix seconds, got {text!r}")
    return v


def _csv_seconds(text: str, where: str, column: str) -> float:
    t = text.strip()
    if not t:
        return math.nan
    try:
        v = float(t)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v >= 0):
        raise InvalidInput(f"{where} {column} must be seconds >= 0 (or empty), got {text!r}")
    return v


def read_csv_history(path: str) -> History:
    """A CSV of arrivals: a header with ``time`` (ISO 8601, UTC unless it gives an offset, or unix
    seconds) and optionally ``queue``, ``handle`` (talk + wrap-up, s, of an answered call),
    ``abandoned`` (1/0, true/false) and ``wait`` (s in queue: to the answer or the hang-up)."""
    try:
        f = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InvalidInput(f"history: no file at {path!r}") from None
    except OSError as e:
        raise InvalidInput(f"history: cannot read {path!r}: {e.strerror or e}") from None
    lines: Dict[str, int] = {}
    t, ln, handle, wait, ab = [], [], [], [], []
    with f:
        reader = csv.reader(f)
        try:
            header = [h.strip().lower() for h in next(reader, [])]
            if not header:
                raise InvalidInput(f"history {path!r} is empty: a CSV needs a header with a time column")
            for column in header:
                if column not in CSV_COLUMNS:
                    raise InvalidInput(f"history {path!r}: unknown column {column!r} (columns: "
                                       f"{', '.join(CSV_COLUMNS)})")
            if "time" not in header:
                raise InvalidInput(f"history {path!r}: the header needs a time column, got {header!r}")
            col = {c: i for i, c in enumerate(header)}
            for row in reader:
                if not any(c.strip() for c in row):
                    continue
                where = f"history {path!r} line {reader.line_num}:"
                if len(row) != len(header):
                    raise InvalidInput(f"{where} {len(row)} fields, the header has {len(header)}")
                t.append(_csv_time(row[col["time"]], where))
                name = row[col["queue"]].strip() if "queue" in col else _DEFAULT_LINE
                if not name:
                    raise InvalidInput(f"{where} queue must not be empty")
                ln.append(lines.setdefault(name, len(lines)))
                abandoned = False
                if "abandoned" in col:
                    a = row[col["abandoned"]].strip().lower()
                    if a not in _TRUE and a not in _FALSE:
                        raise InvalidInput(f"{where} abandoned must be 1/0, true/false or empty, got "
                                           f"{row[col['abandoned']]!r}")
                    abandoned = a in _TRUE
                ab.append(abandoned)
                h = _csv_seconds(row[col["handle"]], where, "handle") if "handle" in col else math.nan
                handle.append(math.nan if abandoned else h)
                wait.append(_csv_seconds(row[col["wait"]], where, "wait") if "wait" in col else math.nan)
        except csv.Error as e:
            raise InvalidInput(f"history {path!r} line {reader.line_num}: not valid CSV: {e}") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"history {path!r} is not UTF-8 text") from None
    return _history(path, "csv", list(lines), t, ln, handle, wait, ab)


def _sniff(path: str) -> str:
    if path.startswith(("postgresql://", "postgres://")):
        return "journal"
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        raise InvalidInput(f"history: no file at {path!r}") from None
    except OSError as e:
        raise InvalidInput(f"history: cannot read {path!r}: {e.strerror or e}") from None
    if head.startswith(b"SQLite format 3\x00"):
        return "journal"
    from ..adapters.asterisk.queue_log import parse_line
    first = head.decode("utf-8", "replace").splitlines()[:1]
    if first and "|" in first[0] and parse_line(first[0]) is not None:
        return "queue_log"
    return "csv"


KINDS = ("auto", "journal", "csv", "queue_log")


def read_history(source: str, *, kind: str = "auto", schema: str = "acd") -> History:
    """Read ``source`` as ``kind``; ``auto``: a ``postgresql://`` URL or an SQLite file is a journal, a
    file whose first line is ``TIME|CALLID|QUEUE|AGENT|EVENT...`` a queue_log, anything else a CSV."""
    kind = kind.replace("-", "_")
    if kind not in KINDS:
        raise InvalidInput(f"--input must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = _sniff(source)
    if kind == "journal":
        return read_journal_history(source, schema=schema)
    if kind == "queue_log":
        return read_queue_log_history(source)
    return read_csv_history(source)


# ---------------------------------------------------------------- counts per local day and interval

def _zone(tz: Optional[str]) -> Optional[dt.tzinfo]:
    if tz is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"--tz must be a time zone like Europe/Paris or UTC, got {tz!r}") from None


def _local_seconds(times: np.ndarray, zone: Optional[dt.tzinfo]) -> np.ndarray:
    """Unix times as seconds since 1970-01-01 00:00 *local* (``zone``; None: this machine's zone).
    Offsets are looked up once per quarter hour (zones change offset on quarter hours)."""
    q = np.floor(times / 900.0).astype(np.int64)
    uniq, inv = np.unique(q, return_inverse=True)
    off = np.empty(len(uniq))
    for i, b in enumerate(uniq.tolist()):
        when = dt.datetime.fromtimestamp(b * 900.0, tz=dt.timezone.utc)
        local = when.astimezone(zone) if zone is not None else when.astimezone()
        off[i] = local.utcoffset().total_seconds()    # type: ignore[union-attr]
    return times + off[inv]


_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Counts:
    """Arrivals per line, local day and interval of the day: ``calls[line, day, slot]``."""

    lines: Tuple[str, ...]
    first_day: dt.date
    interval: float
    calls: np.ndarray               # float, (lines, days, slots)

    @property
    def n_days(self) -> int:
        return self.calls.shape[1]

    @property
    def days(self) -> List[dt.date]:
        return [self.first_day + dt.timedelta(days=d) for d in range(self.n_days)]

    @property
    def weekdays(self) -> np.ndarray:
        return (np.arange(self.n_days) + self.first_day.weekday()) % 7

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.n_days - 1)

    def head(self, n_days: int) -> "Counts":
        return Counts(self.lines, self.first_day, self.interval, self.calls[:, :n_days])


def _check_interval(interval: float) -> float:
    if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval >= 60):
        raise InvalidInput(f"--interval must be at least 60 seconds, got {interval!r}")
    n = 86400.0 / interval
    if abs(n - round(n)) > 1e-9:
        raise InvalidInput(f"--interval must divide a day (86400 s) into whole intervals, got {interval:g} s")
    return float(interval)


def count_arrivals(history: History, *, interval: float = 1800.0, tz: Optional[str] = None) -> Counts:
    """Arrivals of every line per local day (``tz``; None: this machine's zone) and interval,
    every day from the first call's to the last call's (days without a call count 0)."""
    interval = _check_interval(interval)
    local = _local_seconds(history.time, _zone(tz))
    day = np.floor(local / 86400.0).astype(np.int64)
    slot = np.floor((local - day * 86400.0) / interval).astype(np.int64)
    n_slots = int(round(86400.0 / interval))
    first = int(day.min())
    n_days = int(day.max()) - first + 1
    calls = np.zeros((len(history.lines), n_days, n_slots))
    np.add.at(calls, (history.line, day - first, np.minimum(slot, n_slots - 1)), 1.0)
    return Counts(history.lines, _EPOCH + dt.timedelta(days=first), interval, calls)


# ---------------------------------------------------------------- the model

def _seasonal_mean(daily: np.ndarray, first_weekday: int, horizon: int) -> np.ndarray:
    wd = (np.arange(len(daily)) + first_weekday) % 7
    means = np.array([daily[wd == k].mean() if (wd == k).any() else 0.0 for k in range(7)])
    ahead = (np.arange(len(daily), len(daily) + horizon) + first_weekday) % 7
    return means[ahead]


def _level(daily: np.ndarray, first_weekday: int, horizon: int) -> Tuple[np.ndarray, str]:
    """Daily totals of the ``horizon`` days after ``daily``, and how they were obtained."""
    mean_name = f"seasonal mean (mean of each weekday over {len(daily)} days)"
    if len(daily) < ETS_MIN_DAYS or not daily.any() or np.ptp(daily) == 0:
        return _seasonal_mean(daily, first_weekday, horizon), mean_name
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]
    with warnings.catch_warnings(record=True) as caught:
        # a fit that does not converge (statsmodels warns) is not trusted: the seasonal mean instead
        warnings.simplefilter("always")
        try:
            fit = ExponentialSmoothing(daily, trend=None, seasonal="add", seasonal_periods=7,
                                       initialization_method="estimated").fit()
            out = np.asarray(fit.forecast(horizon), dtype=float)
        except (ValueError, np.linalg.LinAlgError) as e:
            return _seasonal_mean(daily, first_weekday, horizon), f"{mean_name}; Holt-Winters failed: {e}"
    if caught or not np.isfinite(out).all():
        why = str(caught[0].message).splitlines()[0] if caught else "non-finite forecast"
        return _seasonal_mean(daily, first_weekday, horizon), f"{mean_name}; Holt-Winters not used: {why}"
    return np.maximum(out, 0.0), f"Holt-Winters (additive weekly season, no trend) on {len(daily)} days"


def _profiles(calls: np.ndarray, weekdays: np.ndarray, half_life: Optional[float]) -> np.ndarray:
    """(7, slots): each weekday's share of its calls per interval, pooled over its days (a day with
    more calls weighs more), days weighted by ``0.5 ** (age / half_life)`` when a half-life is given."""
    n = calls.shape[0]
    w = np.ones(n) if half_life is None else 0.5 ** ((n - 1 - np.arange(n)) / half_life)
    out = np.zeros((7, calls.shape[1]))
    for k in range(7):
        sel = weekdays == k
        tot = (calls[sel] * w[sel, None]).sum(axis=0)
        if tot.sum() > 0:
            out[k] = tot / tot.sum()
    return out


@dataclass(frozen=True)
class _Fit:
    levels: np.ndarray              # (lines, horizon)
    methods: Tuple[str, ...]
    profiles: np.ndarray            # (lines, 7, slots)


def _fit(counts: Counts, horizon: int, half_life: Optional[float]) -> _Fit:
    if counts.n_days < MIN_DAYS:
        raise InvalidInput(f"history of {counts.n_days} day(s) is too short: the model needs at least "
                           f"{MIN_DAYS} days (every weekday once)")
    wd = counts.weekdays
    levels, methods, profs = [], [], []
    for k in range(len(counts.lines)):
        lv, how = _level(counts.calls[k].sum(axis=1), counts.first_day.weekday(), horizon)
        levels.append(lv)
        methods.append(how)
        profs.append(_profiles(counts.calls[k], wd, half_life))
    return _Fit(np.array(levels), tuple(methods), np.array(profs))


_lgamma = np.vectorize(math.lgamma, otypes=[float])


def _poisson_mad(mu: np.ndarray) -> np.ndarray:
    """E|X - mu| for X ~ Poisson(mu): 2 e^-mu mu^(m+1) / m!, m = floor(mu)."""
    mu = np.asarray(mu, dtype=float)
    m = np.floor(mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 2.0 * np.exp((m + 1) * np.log(mu) - mu - _lgamma(m + 1))
    return np.where(mu > 0, out, 0.0)


def _wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    s = float(np.sum(actual))
    return float(np.sum(np.abs(actual - forecast))) / s if s > 0 else math.nan


# ---------------------------------------------------------------- back-test

@dataclass(frozen=True)
class Backtest:
    """The last ``len(days)`` days forecast from the days before them, against what arrived."""

    lines: Tuple[str, ...]
    fit_days: Tuple[dt.date, dt.date, int]      # first, last, count
    days: Tuple[dt.date, ...]
    interval: float
    actual: np.ndarray              # (lines, days, slots)
    forecast: np.ndarray            # (lines, days, slots)
    methods: Tuple[str, ...]

    @property
    def wape(self) -> float:
        """Over every line, day and interval: the share of the calls the forecast missed (in absolute)."""
        return _wape(self.actual, self.forecast)

    @property
    def floor(self) -> float:
        """The WAPE a forecast of the true rates would show on average (Poisson noise alone), taking
        the forecast as those rates."""
        s = float(self.actual.sum())
        return float(_poisson_mad(self.forecast).sum()) / s if s > 0 else math.nan

    @property
    def daily_wape(self) -> float:
        """The same on the daily totals of each line (the level alone)."""
        return _wape(self.actual.sum(axis=2), self.forecast.sum(axis=2))

    @property
    def daily_floor(self) -> float:
        s = float(self.actual.sum())
        return float(_poisson_mad(self.forecast.sum(axis=2)).sum()) / s if s > 0 else math.nan

    def per_slot(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per interval of the day, over lines and days: actual, forecast, WAPE, Poisson floor."""
        a = self.actual.sum(axis=(0, 1))
        f = self.forecast.sum(axis=(0, 1))
        err = np.abs(self.actual - self.forecast).sum(axis=(0, 1))
        mad = _poisson_mad(self.forecast).sum(axis=(0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return a, f, np.where(a > 0, err / a, np.nan), np.where(a > 0, mad / a, np.nan)

    def line_wape(self, name: str) -> Tuple[float, float]:
        """(interval WAPE, daily WAPE) of one line."""
        k = self.lines.index(name)
        return _wape(self.actual[k], self.forecast[k]), _wape(self.actual[k].sum(axis=1),
                                                                self.forecast[k].sum(axis=1))

    def table(self) -> str:
        from ..sim.scenario import format_clock
        a0, a1, n = self.fit_days
        out = [f"back-test: fitted on {a0} - {a1} ({n} days), forecast the last {len(self.days)} days "
               f"{self.days[0]} - {self.days[-1]}"]
        for name, how in zip(self.lines, self.methods):
            out.append(f"  level of {name}: {how}")
        out.append("WAPE = sum |actual - forecast| / sum actual; floor: the WAPE of a perfect forecast (Poisson "
                   "noise alone)")
        rows = [["", "actual", "forecast", "WAPE %", "floor %"]]
        pct = lambda v: "-" if math.isnan(v) else f"{v * 100:.1f}"    # noqa: E731
        rows.append(["all, per interval", f"{self.actual.sum():,.0f}", f"{self.forecast.sum():,.0f}",
                     pct(self.wape), pct(self.floor)])
        rows.append(["all, daily", "", "", pct(self.daily_wape), pct(self.daily_floor)])
        if len(self.lines) > 1:
            for k, name in enumerate(self.lines):
                wi, wdaily = self.line_wape(name)
                rows.append([f"{name}, per interval / daily", f"{self.actual[k].sum():,.0f}",
                             f"{self.forecast[k].sum():,.0f}", f"{pct(wi)} / {pct(wdaily)}", ""])
        out.append(_grid(rows))
        a, f, w, fl = self.per_slot()
        rows = [["interval", "actual", "forecast", "WAPE %", "floor %"]]
        for s in np.flatnonzero((a > 0) | (f > 0)):
            rows.append([format_clock(s * self.interval), f"{a[s]:,.0f}", f"{f[s]:,.1f}", pct(w[s]), pct(fl[s])])
        out += ["", f"per interval of the day (all lines, the {len(self.days)} days together)", _grid(rows)]
        return "\n".join(out)


def _grid(rows: List[List[str]]) -> str:
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)).rstrip()
                     for r in rows)


def backtest(counts: Counts, holdout: int = 14, *, half_life: Optional[float] = None) -> Backtest:
    """Fit on all days but the last ``holdout``, forecast those, compare."""
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 1:
        raise InvalidInput(f"--holdout must be a whole number of days >= 1, got {holdout!r}")
    if counts.n_days - holdout < MIN_DAYS:
        raise InvalidInput(f"--holdout {holdout}: the history has {counts.n_days} day(s), the back-test needs "
                           f"at least {holdout + MIN_DAYS} ({MIN_DAYS} to fit, {holdout} held out)")
    n_fit = counts.n_days - holdout
    fit = _fit(counts.head(n_fit), holdout, half_life)
    wd = counts.weekdays[n_fit:]
    fc = fit.levels[:, :, None] * fit.profiles[:, wd, :]
    days = counts.days
    return Backtest(counts.lines, (days[0], days[n_fit - 1], n_fit), tuple(days[n_fit:]), counts.interval,
                    counts.calls[:, n_fit:], fc, fit.methods)


# ---------------------------------------------------------------- the forecast of one day

@dataclass(frozen=True)
class LineForecast:
    name: str
    calls: Tuple[float, ...]        # every interval of the day, from 00:00
    level: float                    # calls of the day
    method: str
    aht: Optional[float]            # seconds (None: the history has no handle times)
    patience: Optional[float]       # seconds (None: unknown, or nobody abandoned)


@dataclass(frozen=True)
class DayForecast:
    date: dt.date
    interval: float
    lines: Tuple[LineForecast, ...]
    first_slot: int                 # the open span: intervals where the history saw calls that weekday
    end_slot: int
    source: str
    kind: str
    tz: str
    history_days: Tuple[dt.date, dt.date]
    notes: Tuple[str, ...] = ()
    backtest: Optional[Backtest] = None

    @property
    def start(self) -> float:
        return self.first_slot * self.interval

    @property
    def end(self) -> float:
        return self.end_slot * self.interval

    def calls(self, line: str) -> List[float]:
        """The line's calls per interval of the open span."""
        ln = next(x for x in self.lines if x.name == line)
        return list(ln.calls[self.first_slot:self.end_slot])

    @property
    def total(self) -> List[float]:
        return [sum(c) for c in zip(*(self.calls(ln.name) for ln in self.lines))]

    def _heading(self) -> List[str]:
        h = [f"acd forecast for {self.date} ({_WEEKDAY_NAMES[self.date.weekday()]}), intervals in {self.tz} time",
             f"from {self.source} ({self.kind}): {self.history_days[0]} - {self.history_days[1]}"]
        for ln in self.lines:
            h.append(f"{ln.name}: {ln.level:,.0f} calls; level: {ln.method}")
        if self.backtest is not None:
            b = self.backtest
            h.append(f"back-test on the last {len(b.days)} days: WAPE {b.wape * 100:.1f} % per interval "
                     f"(Poisson floor {b.floor * 100:.1f} %), {b.daily_wape * 100:.1f} % on daily totals")
        h += [f"note: {n}" for n in self.notes]
        return h

    def _check_staffable(self, aht: Optional[float]) -> Dict[str, float]:
        out = {}
        for ln in self.lines:
            a = aht if aht is not None else ln.aht
            if a is None:
                raise InvalidInput(f"the history gives no handle time for line {ln.name!r}: give --aht SECONDS")
            out[ln.name] = a
        return out

    def forecast_toml(self, *, aht: Optional[float] = None, service_level: Tuple[float, float] = (0.8, 60.0)) -> str:
        """The forecast file ``acd staff`` reads (:func:`acd.sim.plan.load_forecast`); ``aht``
        replaces every line's handle time."""
        from ..sim.scenario import format_clock
        ahts = self._check_staffable(aht)
        out = [f"# {h}" for h in self._heading()]
        out += ["", f"start = {_toml(format_clock(self.start))}", f"interval = {_toml(_whole(self.interval))}",
                f"service_level = {_toml(list(service_level))}"]
        for ln in self.lines:
            out += ["", "[[lines]]", f"name = {_toml(ln.name)}",
                    f"calls = {_toml([round(c, 2) for c in self.calls(ln.name)])}",
                    f"aht = {_toml(round(ahts[ln.name], 1))}"]
            if ln.patience is not None:
                out.append(f"patience = {_toml(round(ln.patience, 1))}")
        return "\n".join(out) + "\n"

    def calls_csv(self) -> str:
        """``start,line,calls``: one row per interval of the open span and line."""
        from ..sim.scenario import format_clock
        rows = ["start,line,calls"]
        for s in range(self.first_slot, self.end_slot):
            for ln in self.lines:
                name = ln.name if not re.search(r'[",\r\n]', ln.name) else '"' + ln.name.replace('"', '""') + '"'
                rows.append(f"{format_clock(s * self.interval)},{name},{round(ln.calls[s], 2):g}")
        return "\n".join(rows) + "\n"

    def scenario_toml(self, base: Union[str, Path, Mapping[str, Any]]) -> str:
        """``base`` (a scenario file or its parsed table) with the forecast's span, interval and
        arrivals; with several lines, every call type's share is rescaled so that each queue gets its
        line's part of the calls (the split between call types of one queue kept).  A single line
        whose name is no queue of the base keeps the base's mix.  Per-interval staffing of the base
        is dropped when the number of intervals changes.  Comments of the base are not kept."""
        import tomllib

        from ..sim.scenario import format_clock, scenario_from_dict
        if isinstance(base, Mapping):
            data, where = dict(base), "the base scenario"
        else:
            where = f"base scenario {str(base)!r}"
            try:
                data = tomllib.loads(Path(base).read_text(encoding="utf-8"))
            except OSError as e:
                raise InvalidInput(f"--scenario: cannot read {str(base)!r}: {e.strerror or e}") from None
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise InvalidInput(f"--scenario: {str(base)!r} is not valid TOML: {e}") from None
        try:
            scenario_from_dict(data)
        except AcdError as e:
            raise InvalidInput(f"--scenario: {where}: {e}") from None
        n = self.end_slot - self.first_slot
        data["start"], data["end"] = format_clock(self.start), format_clock(self.end)
        data["interval"] = _whole(self.interval)
        data["arrivals"] = {"per_interval": [round(c, 2) for c in self.total]}
        data["description"] = (f"{data.get('description', '')} -- arrivals of acd forecast for {self.date} "
                               f"({_WEEKDAY_NAMES[self.date.weekday()]})").lstrip(" -")
        queues = {q.get("name") for q in data.get("queues", [])}
        cts = [dict(c) for c in data.get("call_types", [])]
        names = [ln.name for ln in self.lines]
        if len(names) > 1 or names[0] in queues:
            total = sum(ln.level for ln in self.lines) or 1.0
            for name in names:
                if name not in queues:
                    raise InvalidInput(f"--scenario: forecast line {name!r} is no queue of {where} "
                                       f"(queues: {', '.join(sorted(map(str, queues)))})")
                if not any(c.get("queue") == name for c in cts):
                    raise InvalidInput(f"--scenario: no call type of {where} enters queue {name!r}")
            level = {ln.name: ln.level for ln in self.lines}
            for q in queues:
                mine = [c for c in cts if c.get("queue") == q]
                tot = sum(float(c.get("share", 0)) for c in mine)
                for c in mine:
                    part = level.get(q, 0.0) / total
                    c["share"] = round(part * float(c.get("share", 0)) / tot if tot > 0 else part / len(mine), 6)
            data["call_types"] = cts
        groups = []
        for g in data.get("agents", []):
            g = dict(g)
            if "staffing" in g and len(g["staffing"]) != n:
                del g["staffing"]                   # sized for other intervals: the group's count applies
                g.setdefault("count", 1)
            groups.append(g)
        data["agents"] = groups
        text = "\n".join(f"# {h}" for h in self._heading()) + "\n\n" + _toml_document(data)
        try:
            scenario_from_dict(tomllib.loads(text))     # what is written loads back
        except AcdError as e:
            raise InvalidInput(f"--scenario: the forecast does not fit {where}: {e}") from None
        return text

    def table(self) -> str:
        from ..sim.scenario import format_clock
        rows = [["interval"] + [ln.name for ln in self.lines] + (["total"] if len(self.lines) > 1 else [])]
        for s in range(self.first_slot, self.end_slot):
            r = [format_clock(s * self.interval)] + [f"{ln.calls[s]:,.1f}" for ln in self.lines]
            if len(self.lines) > 1:
                r.append(f"{sum(ln.calls[s] for ln in self.lines):,.1f}")
            rows.append(r)
        rows.append(["calls"] + [f"{ln.level:,.0f}" for ln in self.lines] +
                    ([f"{sum(ln.level for ln in self.lines):,.0f}"] if len(self.lines) > 1 else []))
        rows.append(["aht s"] + ["-" if ln.aht is None else f"{ln.aht:.0f}" for ln in self.lines] +
                    ([""] if len(self.lines) > 1 else []))
        rows.append(["patience s"] + ["-" if ln.patience is None else f"{ln.patience:.0f}" for ln in self.lines] +
                    ([""] if len(self.lines) > 1 else []))
        return "\n".join(self._heading()[:1]) + "\n" + _grid(rows)


def _target(last: dt.date, for_date: Union[str, dt.date, None], weekday: Optional[str]) -> dt.date:
    if for_date is not None and weekday is not None:
        raise InvalidInput("give --for DATE or --weekday DAY, not both")
    if weekday is not None:
        w = str(weekday).strip().lower()[:3]
        if w not in WEEKDAYS:
            raise InvalidInput(f"--weekday must be one of {', '.join(WEEKDAYS)}, got {weekday!r}")
        return last + dt.timedelta(days=(WEEKDAYS.index(w) - last.weekday() - 1) % 7 + 1)
    if for_date is None:
        return last + dt.timedelta(days=1)
    if isinstance(for_date, dt.date):
        day = for_date
    else:
        try:
            day = dt.date.fromisoformat(str(for_date).strip())
        except ValueError:
            raise InvalidInput(f"--for must be a date like 2026-12-07, got {for_date!r}") from None
    if not last < day <= last + dt.timedelta(days=MAX_HORIZON):
        raise InvalidInput(f"--for must be a day after the history (which ends {last}) and at most "
                           f"{MAX_HORIZON} days after it, got {str(for_date)!r}")
    return day


def _partial_days(counts: Counts) -> List[str]:
    """Notes on a first or last day with under half the calls of its weekday's other days: a history
    cut in the middle of a day (a live journal) counts that day short, biasing the level and the
    back-test."""
    daily = counts.calls.sum(axis=(0, 2))
    wd = counts.weekdays
    out = []
    for d, which in ((0, "first"), (counts.n_days - 1, "last")):
        others = daily[(wd == wd[d]) & (np.arange(counts.n_days) != d)]
        if len(others) and daily[d] < 0.5 * others.mean():
            out.append(f"the {which} day of the history ({counts.days[d]}) has {daily[d]:.0f} calls, under half "
                       f"the {others.mean():.0f} of its weekday's other days: a partial day? (it biases the "
                       "level and the back-test)")
    return out


def forecast_day(history: History, *, for_date: Union[str, dt.date, None] = None, weekday: Optional[str] = None,
                 interval: float = 1800.0, tz: Optional[str] = None, holdout: int = 14,
                 half_life: Optional[float] = None) -> DayForecast:
    """The forecast of one day (``for_date``, or the next ``weekday`` after the history, default the day
    after it -- or the first after it on a weekday the history has calls) from all the history, with the back-test of the last ``holdout`` days (0: none).

    ``tz``: the zone of the intervals (None: this machine's zone); ``half_life``: profile weights
    halve every that many days back (None: every day weighs the same)."""
    counts = count_arrivals(history, interval=interval, tz=tz)
    day = _target(counts.last_day, for_date, weekday)
    if for_date is None and weekday is None:    # the day after the history, or the next one open
        busy = {int(w) for w in counts.weekdays[counts.calls.sum(axis=(0, 2)) > 0]}
        while day.weekday() not in busy:
            day += dt.timedelta(days=1)
    bt = backtest(counts, holdout, half_life=half_life) if holdout else None
    horizon = (day - counts.last_day).days
    fit = _fit(counts, horizon, half_life)
    w = day.weekday()
    lines = []
    for k, name in enumerate(counts.lines):
        level = float(fit.levels[k, -1])
        calls = tuple(float(x) for x in level * fit.profiles[k, w])
        aht, patience = history.line_stats(name)
        lines.append(LineForecast(name, calls, level, fit.methods[k], aht, patience))
    seen = np.flatnonzero(fit.profiles[:, w, :].sum(axis=0) > 0)
    if not len(seen):
        raise InvalidInput(f"--for {day}: the history has no call on a {_WEEKDAY_NAMES[w]}: nothing to forecast "
                           f"(closed that day?)")
    notes = list(history.notes) + _partial_days(counts)
    zone = tz if tz is not None else (dt.datetime.now().astimezone().tzname() or "local")
    return DayForecast(day, counts.interval, tuple(lines), int(seen[0]), int(seen[-1]) + 1, history.source,
                       history.kind, zone, (counts.first_day, counts.last_day), tuple(notes), bt)


# ---------------------------------------------------------------- TOML and files

def _whole(x: float) -> Union[int, float]:
    return int(x) if float(x).is_integer() else x


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def _toml(v: Any) -> str:
    """A TOML value (inline): the types a parsed scenario holds."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)     # JSON's escapes are TOML basic-string escapes
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_toml(x)}" for k, x in v.items()) + " }"
    raise InvalidInput(f"cannot write {v!r} in TOML")


def _toml_document(data: Mapping[str, Any]) -> str:
    """Top-level keys first, then tables and arrays of tables (their own sub-tables inline)."""
    head, body = [], []
    for k, v in data.items():
        if isinstance(v, Mapping):
            body += ["", f"[{_key(k)}]"] + [f"{_key(str(a))} = {_toml(b)}" for a, b in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            for x in v:
                body += ["", f"[[{_key(k)}]]"] + [f"{_key(str(a))} = {_toml(b)}" for a, b in x.items()]
        else:
            head.append(f"{_key(k)} = {_toml(v)}")
    return "\n".join(head + body) + "\n"


def write_atomic(path: Union[str, Path], text: str, *, what: str = "output file") -> Path:
    """Write ``text`` to ``path`` through a temporary file in its directory, renamed over it: a reader
    sees the old file or the whole new one, never half of it."""
    p = Path(path)
    d = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise InvalidInput(f"cannot write {what} {str(p)!r}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InvalidInput(f"cannot write {what} {str(p)!r}: {e.strerror or e}") from None
    return p

