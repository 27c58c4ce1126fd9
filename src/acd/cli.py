"""The ``acd`` command.

    acd simulate SCENARIO.toml [--seed N] [--report DIR [--force]] [--no-progress] [--scale F] [--callback on|off]
    acd staff FORECAST.toml            # per-interval Erlang staffing of a forecast (or of a scenario)
    acd staff --rate 600 900 --aht 420 [--patience 180] [--sl 0.8 60] [--answer-rate 0.85] [--asa 30]
    acd staff --calls-per-day 2400 --profile 1,2,4,3 | --calls-csv FILE  [--agents N,...] [--shrinkage 0.3]
              [--max-occupancy 0.9] [--allow-below-load] [--format table|csv|json]   (docs/staffing.md)
    acd demo [--scale F] [--seed N] [--report DIR] [--no-progress]
    acd staff --simulate SCENARIO [--replications R] [--format table|csv|json]   # multi-skill, by simulation
    acd sweep SPEC.toml [--jobs N | --scheduler tcp://host:port] [--format table|csv|json]
    acd scenarios                      # the bundled scenarios, one line each
    acd scenarios export NAME [PATH] [--force]
    acd report JOURNAL | --queue-log FILE [--from WHEN] [--to WHEN] [--interval 30m] [--format table|csv|json|html]
    acd forecast HISTORY [--for DATE | --weekday DAY] [--tz ZONE] [--holdout DAYS] [--format toml|csv]
                 [--scenario BASE.toml] [-o FILE [--force]]
    acd roster STAFF.csv|json [--shifts SHIFTS.toml] [--line NAME] [--format table|csv|json]
    acd serve --config acd.toml        # the service for Asterisk (its own options)

``python -m acd`` is the same command.  Errors in the input (a bad scenario
field, a bad option, a number out of its bounds, an output path that cannot
be written) are printed on one line as ``acd: error: ...`` with exit status 2,
before any work starts.

Bounds: ``--scale`` in (0, 1000]; a scenario has at most
:data:`acd.sim.scenario.MAX_AGENTS` agents, :data:`~acd.sim.scenario.MAX_CALLS`
expected calls and :data:`~acd.sim.scenario.MAX_INTERVALS` intervals, and must
fit in the available memory (or ``--max-memory``); a staffing line carries at
most :data:`acd.sim.plan.MAX_LOAD` erlangs per interval.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path
from typing import List, Optional, Sequence, TextIO

from .errors import AcdError, InvalidInput

__all__ = ("main", "build_parser")

MAX_SCALE = 1000.0


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal; text with line breaks (the examples) kept as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)
        self._action_max_length = 14    # room for "    scenarios" (argparse under-counts sub-commands' indent)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``acd simulate: error: ...``), exit status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    v = _number(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def _bounded(lo: float, hi: float, lo_open: bool = False):
    """A number in [lo, hi] (or (lo, hi] with ``lo_open``)."""
    def check(text: str) -> float:
        v = _number(text)
        if not ((v > lo if lo_open else v >= lo) and v <= hi):
            raise argparse.ArgumentTypeError(f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {text!r}")
        return v
    check.__name__ = "number"
    return check


_scale = _bounded(0.0, MAX_SCALE, lo_open=True)
_fraction = _bounded(0.0, 1.0)
_seconds = _bounded(0.0, 7 * 86400.0, lo_open=True)    # a week
_rate = _bounded(0.0, 1e9)                               # calls per hour


def _shrinkage(text: str) -> float:
    v = _number(text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return v


def _head_counts(text: str) -> List[int]:
    """``40`` or ``40,45,50``: agents, whole numbers >= 0."""
    out = []
    for part in text.split(","):
        try:
            v = int(part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be whole numbers like 40 or 40,45,50, got {text!r}") from None
        if not 0 <= v <= 10_000_000:
            raise argparse.ArgumentTypeError(f"must be between 0 and 10,000,000, got {part.strip()!r}")
        out.append(v)
    return out


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= v < 2 ** 63:
        raise argparse.ArgumentTypeError(f"must be in 0..2**63-1, got {text!r}")
    return v


def _memory(text: str) -> int:
    """``2G``, ``512M``, ``100000K`` or bytes."""
    t = text.strip().upper().removesuffix("B")
    mult = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}.get(t[-1:], 1)
    try:
        v = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a size like 2G or 512M, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive size like 2G or 512M, got {text!r}")
    return int(min(v, 2 ** 62))


def _when(end_of_day: bool):
    """A local date or date and time, as a unix time; a date alone is its midnight (the next one
    with ``end_of_day``)."""
    def parse(text: str) -> float:
        import datetime as dt
        try:
            when = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a date like 2026-12-01 or '2026-12-01 08:00', "
                                             f"got {text!r}") from None
        if end_of_day and len(text.strip()) <= 10:
            when += dt.timedelta(days=1)
        try:
            return when.timestamp()
        except (OverflowError, OSError, ValueError):
            raise argparse.ArgumentTypeError(f"is out of range: {text!r}") from None
    parse.__name__ = "date"
    return parse


def _days(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {text!r}") from None
    if not 2 <= n <= 50:
        raise argparse.ArgumentTypeError(f"must be 2..50, got {text!r}")
    return n


def _duration(text: str) -> float:
    """``30m``, ``1h``, ``90s`` or seconds; between 1 minute and a week."""
    t = text.strip().lower()
    mult = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(t[-1:], 1.0)
    try:
        v = float(t[:-1] if t[-1:] in "smh" and t else t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a span like 30m, 1h or 900, got {text!r}") from None
    if not (math.isfinite(v) and 60.0 <= v <= 7 * 86400.0):
        raise argparse.ArgumentTypeError(f"must be between 1 minute and a week, got {text!r}")
    return v


def _add_staff_simulate_arguments(st: argparse.ArgumentParser) -> None:
    """``acd staff --simulate SCENARIO`` and its options (acd.planning.simstaff)."""
    g = st.add_argument_group("staffing by simulation (multi-skill: agents per group and interval)")
    g.add_argument("--simulate", metavar="SCENARIO", default=None,
                   help="size every agent group of this scenario (file or bundled name) by simulation")
    g.add_argument("--replications", type=_replications, default=10, metavar="R",
                   help="simulated days per staffing tried, common seeds (2..10000, default 10)")
    g.add_argument("--confidence", type=_bounded(0.5, 0.999), default=0.95, metavar="LEVEL",
                   help="confidence of the intervals; a target is met when the lower end reaches it (default 0.95)")
    g.add_argument("--max-evaluations", type=_evaluations, default=2000, metavar="N",
                   help="at most N staffings simulated (default 2000)")
    g.add_argument("--seed", type=_seed, default=None, help="first seed (default: the scenario's)")
    g.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def _int_in(lo: int, hi: int):
    def check(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {text!r}")
        return v
    check.__name__ = "integer"
    return check


_replications = _int_in(2, 10_000)
_evaluations = _int_in(1, 1_000_000)


def _example(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {l}" for l in lines)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = _Parser(prog="acd", description="Automatic call distribution: forecast, staff, roster and simulate a "
                                         "contact centre, run the demo, or serve Asterisk.",
                epilog=_example("acd scenarios export public_agency my_day.toml",
                                "acd simulate my_day.toml --scale 0.1 --report my-report") +
                "\n\n'acd COMMAND --help' describes a command.")
    p.add_argument("--version", action="version", version=f"acd {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("simulate", help="simulate a scenario; print its KPIs (HTML report)",
                       description="Simulate SCENARIO (TOML) through the real engine; print the KPI table "
                                   "and optionally write an HTML report.  'acd scenarios' lists the bundled "
                                   "scenarios to start from.",
                       epilog=_example("acd scenarios export public_agency day.toml",
                                       "acd simulate day.toml --seed 7 --scale 0.1 --report day-report"))
    s.add_argument("scenario", metavar="SCENARIO.toml",
                   help="scenario file ('acd scenarios export NAME' writes one to edit)")
    s.add_argument("--seed", type=_seed, default=None, help="random seed (default: the scenario's)")
    s.add_argument("--report", metavar="DIR", default=None, help="write DIR/index.html (charts, tables)")
    s.add_argument("--force", action="store_true", help="overwrite an existing DIR/index.html")
    s.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    s.add_argument("--scale", type=_scale, default=None,
                   help=f"multiply call volume and agent counts by F, 0 < F <= {MAX_SCALE:g} (e.g. 0.1 for a "
                        "quick run)")
    s.add_argument("--callback", choices=("on", "off"), default=None,
                   help="force call-back offers on or off (default: as in the scenario)")
    s.add_argument("--intervals", action="store_true", help="also print the per-interval table")
    s.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                   help="refuse a run estimated to need more (e.g. 2G; default: the available memory)")

    st = sub.add_parser("staff", help="staffing per interval: Erlang, or by simulation",
                        description="Agents needed per interval (Erlang A when patience is known, else "
                                    "Erlang C) to meet the targets, or with --agents the service the given "
                                    "head-counts give.  Safe by default: occupancy at most 90 % and more "
                                    "agents than the offered load (docs/staffing.md).",
                        epilog=_example("acd staff --rate 600 900 1200 --aht 420 --patience 180 --start 09:00",
                                        "acd staff forecast.toml --sl 0.8 20 --shrinkage 0.3 --format csv",
                                        "acd staff --calls-per-day 2400 --profile 1,2,4,4,3,2 --start 08:00 "
                                        "--aht 300 --patience 120",
                                        "acd staff --calls-csv calls.csv --aht 300 --agents 40 --format json",
                                        "acd staff --simulate public_agency --answer-rate 0.85 --sl 0 60"))
    src = st.add_argument_group("input (one of)")
    src.add_argument("forecast", nargs="?", metavar="FORECAST.toml",
                     help="forecast file ([[lines]] with calls per interval, aht, patience) or a scenario file")
    src.add_argument("--rate", type=_rate, nargs="+", metavar="CALLS_PER_HOUR",
                     help="arrival rate per interval in calls per hour, 0..1e9")
    src.add_argument("--calls-per-day", type=_rate, metavar="N",
                     help="calls in the day, shared among the intervals by --profile")
    src.add_argument("--profile", metavar="W1,W2,...|FILE",
                     help="intraday weights, one per interval (relative; a file: one per line or CSV, last column)")
    src.add_argument("--calls-csv", metavar="FILE",
                     help="calls per interval: CSV with header start,calls and optionally line (start HH:MM)")
    src.add_argument("--aht", type=_seconds, metavar="SECONDS",
                     help="average handle time (talk + wrap-up), up to a week (not with FORECAST.toml)")
    src.add_argument("--patience", type=_seconds, metavar="SECONDS", default=None,
                     help="mean caller patience (enables Erlang A), up to a week")
    src.add_argument("--interval", type=_seconds, metavar="SECONDS", default=None,
                     help="interval length (default 1800; --calls-csv: the spacing of its starts)")
    src.add_argument("--start", default=None,
                     help="clock time of the first interval for --rate and --profile (default 00:00)")
    tg = st.add_argument_group("targets (each overrides the file's)")
    tg.add_argument("--sl", type=_number, nargs=2, metavar=("FRACTION", "SECONDS"), default=None,
                    help="service level: FRACTION of offered calls answered within SECONDS (default 0.8 60; "
                         "fraction 0: no target)")
    tg.add_argument("--answer-rate", type=_fraction, default=None, metavar="FRACTION",
                    help="minimum share of calls answered (needs patience; 0: no target; below 1 with patience)")
    tg.add_argument("--asa", type=_seconds, default=None, metavar="SECONDS",
                    help="maximum average speed of answer (mean wait of answered calls)")
    tg.add_argument("--max-occupancy", type=_bounded(0.0, 1.0, lo_open=True), default=None, metavar="FRACTION",
                    help="cap on agent occupancy (default 0.9; 1: no cap)")
    tg.add_argument("--allow-below-load", action="store_true",
                    help="drop the floor of more agents than the offered load (Erlang A only)")
    pl = st.add_argument_group("planning and output")
    pl.add_argument("--agents", type=_head_counts, default=None, metavar="N|N1,N2,...",
                    help="evaluate these agents on the phones (one, or one per interval; each line) "
                         "instead of searching")
    pl.add_argument("--shrinkage", type=_shrinkage, default=0.0, metavar="FRACTION",
                    help="share of paid time off the phones, 0 <= F < 1: scheduled = agents / (1 - F)")
    pl.add_argument("--fte-hours", type=_bounded(0.0, 24.0, lo_open=True), default=7.0, metavar="HOURS",
                    help="paid hours of one FTE per day (default 7, a 35 h week)")
    pl.add_argument("--format", choices=("table", "csv", "json"), default="table",
                    help="output format (default table)")
    _add_staff_simulate_arguments(st)

    d = sub.add_parser("demo", help="the agency's day today, with acd, and the staff it needs",
                       description="Answer the bundled public agency's question on simulated days: its peak day "
                                   "today (too few agents), the same agents with acd's routing, then with "
                                   "call-back offers, then the head-count acd finds by simulation for 85 %% and "
                                   "92 %% of calls answered, with and without call-backs; one page of figures "
                                   "with their definitions, and an HTML report.",
                       epilog=_example("acd demo --scale 0.1 --report demo-report"))
    # every figure of the demo is several simulated days and each target a staffing search: kept to 10x
    d.add_argument("--scale", type=_bounded(0.0, 10.0, lo_open=True), default=1.0,
                   help="multiply the call volume and the agents by F, 0 < F <= 10 (e.g. 0.1 for a quick run)")
    d.add_argument("--seed", type=_seed, default=None,
                   help="first random seed; the days use SEED..SEED+DAYS-1 (default: the scenario's)")
    d.add_argument("--days", type=_days, default=5, metavar="N",
                   help="simulated days per figure, 2..50 (default 5): means with 95 %% intervals")
    d.add_argument("--report", metavar="DIR", default=None,
                   help="report directory (default ./acd-report, rewritten on every run)")
    d.add_argument("--force", action="store_true", help="overwrite an existing DIR/index.html")
    d.add_argument("--no-report", action="store_true", help="do not write the report")
    d.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    d.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                   help="refuse a run estimated to need more (e.g. 2G; default: the available memory)")

    sc = sub.add_parser("scenarios", help="list the bundled scenarios, or export one to edit",
                        description="Without arguments: the scenarios shipped with acd, one line each.  "
                                    "'export NAME [PATH]' writes one (with its comments) to PATH (default "
                                    "NAME.toml) to edit and run with 'acd simulate'.",
                        epilog=_example("acd scenarios", "acd scenarios export public_agency my_day.toml",
                                        "acd simulate my_day.toml"))
    scs = sc.add_subparsers(dest="action", metavar="ACTION")
    scs.add_parser("list", help="the bundled scenarios (the default)", description="The bundled scenarios.",
                   epilog=_example("acd scenarios list"))
    ex = scs.add_parser("export", help="write a bundled scenario to a file",
                        description="Write the bundled scenario NAME to PATH (default ./NAME.toml).",
                        epilog=_example("acd scenarios export public_agency my_day.toml"))
    ex.add_argument("name", metavar="NAME", help="a name listed by 'acd scenarios'")
    ex.add_argument("path", metavar="PATH", nargs="?", default=None, help="file to write (default NAME.toml)")
    ex.add_argument("--force", action="store_true", help="overwrite PATH if it exists")

    r = sub.add_parser("report", help="indicators of real days, from a production journal",
                       description="Replay the journal of 'acd serve' (read-only; it may be serving) and print "
                                   "the indicators the simulator gives -- answer rate, service level (both "
                                   "definitions), ASA, AHT, abandonment, call-backs, occupancy -- for all calls, "
                                   "per queue, per interval and per agent.  Times are local.",
                       epilog=_example("acd report /var/lib/acd/journal.sqlite3 --from 2026-12-01 --to 2026-12-01",
                                       "acd report journal.sqlite3 --interval 15m --format csv > day.csv",
                                       "acd report --queue-log /var/log/asterisk/queue_log --from 2026-12-01"))
    r.add_argument("journal", metavar="JOURNAL", nargs="?", default=None,
                   help="the service's journal: its SQLite file ([journal] path) or its postgresql:// URL "
                        "([journal] url; the password from PGPASSWORD or ~/.pgpass)")
    r.add_argument("--schema", default="acd", help="the PostgreSQL journal's schema ([journal] schema)")
    r.add_argument("--queue-log", metavar="FILE", default=None,
                   help="instead of a journal: an Asterisk queue_log (app_queue's, or the one acd serve writes)")
    r.add_argument("--from", dest="since", metavar="WHEN", type=_when(False), default=None,
                   help="calls that arrived from WHEN on: 2026-12-01 or '2026-12-01 08:00' (local time)")
    r.add_argument("--to", dest="until", metavar="WHEN", type=_when(True), default=None,
                   help="... and before WHEN; a date alone means the end of that day")
    r.add_argument("--interval", type=_duration, default=1800.0, metavar="SPAN",
                   help="length of the per-interval rows: 30m (default), 15m, 1h or seconds")
    r.add_argument("--format", choices=("table", "csv", "json", "html"), default="table",
                   help="table (default), csv, json, or html (one page with charts: > day.html)")
    r.add_argument("--sl-threshold", type=_seconds, default=None, metavar="S",
                   help="service level: answered within S seconds (default: the queues' own, if they share "
                        "one, else 60)")
    r.add_argument("--short-abandon", type=_bounded(0.0, 3600.0), default=5.0, metavar="S",
                   help="abandons before S seconds are counted apart (default 5)")

    fc = sub.add_parser("forecast", help="forecast calls per interval from history, with a back-test",
                        description="Calls per interval of one day, per line (daily level by weekday x intraday "
                                    "profile), from a production journal, an Asterisk queue_log or a CSV of "
                                    "arrival times; prints a back-test of the last days (WAPE).  Writes the "
                                    "forecast file 'acd staff' reads, a CSV, or a scenario (docs/forecast.md).",
                        epilog=_example("acd forecast journal.sqlite3 --weekday mon --tz Europe/Paris -o mon.toml",
                                        "acd staff mon.toml",
                                        "acd forecast calls.csv --for 2026-12-07 --format csv > day.csv",
                                        "acd forecast queue_log --scenario day.toml -o forecast_day.toml"))
    fc.add_argument("history", metavar="HISTORY",
                    help="journal (SQLite file or postgresql:// URL), queue_log file, or CSV (time[,queue,handle,"
                         "abandoned,wait])")
    fc.add_argument("--input", choices=("auto", "journal", "csv", "queue-log"), default="auto",
                    help="what HISTORY is (default: recognised from its content)")
    fc.add_argument("--schema", default="acd", help="the PostgreSQL journal's schema ([journal] schema)")
    fc.add_argument("--for", dest="for_date", metavar="DATE", default=None,
                    help="the day to forecast, e.g. 2026-12-07 (default: the next open day after the history)")
    fc.add_argument("--weekday", metavar="DAY", default=None, help="instead of --for: the next mon, tue, ... sun")
    fc.add_argument("--tz", metavar="ZONE", default=None,
                    help="time zone of the intervals, e.g. Europe/Paris (default: this machine's, as acd report)")
    fc.add_argument("--interval", type=_duration, default=1800.0, metavar="SPAN",
                    help="interval length: 30m (default), 15m, 1h; must divide a day")
    fc.add_argument("--holdout", type=_seed, default=14, metavar="DAYS",
                    help="back-test on the last DAYS days (default 14; 0: no back-test)")
    fc.add_argument("--aht", type=_seconds, default=None, metavar="SECONDS",
                    help="handle time of every line (default: the history's mean talk + wrap-up)")
    fc.add_argument("--format", choices=("toml", "csv"), default="toml",
                    help="toml: the file 'acd staff' reads (default); csv: start,line,calls")
    fc.add_argument("--scenario", metavar="BASE.toml", default=None,
                    help="write BASE (a scenario) with the forecast's span, arrivals and mix instead")
    fc.add_argument("-o", "--output", metavar="FILE", default=None, help="write FILE (default: standard output)")
    fc.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    sw = sub.add_parser("sweep", help="simulate a grid of scenarios x staffing x seeds, in parallel",
                        description="Simulate every cell of a grid (scenarios, staffing variants, call-back on/off, "
                                    "seeds) in local processes, or on a Dask cluster with --scheduler; print one "
                                    "table of means with confidence intervals over the seeds (docs/sweep.md).",
                        epilog=_example("acd sweep grid.toml --jobs 2",
                                        "acd sweep --scenario public_agency --staffing 0.9 1 1.1 --callback off on "
                                        "--seeds 10",
                                        "acd sweep grid.toml --scheduler tcp://10.0.0.5:8786 --format csv"))
    sw.add_argument("spec", metavar="SPEC.toml", nargs="?", default=None,
                    help="sweep spec (scenarios, staffing, callback, seeds); the flags below replace its fields")
    sw.add_argument("--scenario", nargs="+", metavar="NAME_OR_FILE", default=None,
                    help="scenarios: bundled names or files")
    sw.add_argument("--staffing", nargs="+", metavar="VARIANT", default=None,
                    help="staffing variants: factors on every group's agents, 'erlang', or staffing CSV files")
    sw.add_argument("--callback", nargs="+", choices=("on", "off"), default=None, help="call-back offers")
    sw.add_argument("--seeds", type=_int_in(1, 100_000), default=None, metavar="N", help="seeds per variant")
    sw.add_argument("--seed", type=_seed, default=None, help="first seed (default 1)")
    sw.add_argument("--jobs", type=_int_in(1, 4096), default=None, metavar="N",
                    help="local worker processes (default: the CPU count; 1: no worker process)")
    sw.add_argument("--scheduler", metavar="ADDRESS", default=None,
                    help="run on this Dask scheduler (tcp://host:port) instead of local processes")
    sw.add_argument("--scheduler-timeout", type=_bounded(0.0, 3600.0, lo_open=True), default=10.0, metavar="S",
                    help="give up connecting to the scheduler after S seconds (default 10)")
    sw.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    ro = sub.add_parser("roster", help="shifts covering per-interval requirements, fewest paid hours",
                        description="Shifts (type, start, breaks, count) covering every interval's requirement "
                                    "with the fewest paid hours: an integer program solved by HiGHS (scipy).  "
                                    "Reads the CSV or JSON of 'acd staff', or a CSV start,agents.",
                        epilog=_example("acd staff forecast.toml --format csv > staff.csv",
                                        "acd roster staff.csv --shifts shifts.toml"))
    ro.add_argument("requirements", metavar="STAFF", help="requirements: CSV or JSON of 'acd staff'")
    ro.add_argument("--shifts", metavar="FILE", default=None,
                    help="shift types (TOML, docs/roster.md); default: 8h paid full time with a 30-min "
                         "unpaid lunch, 4h part time, starting on any interval")
    ro.add_argument("--line", metavar="NAME", default=None,
                    help="roster this line only (default: the sum of all lines)")
    ro.add_argument("--need", choices=("auto", "agents", "scheduled"), default="auto",
                    help="column to cover (default: scheduled if present, else agents)")
    ro.add_argument("--interval", type=_duration, default=None, metavar="SPAN",
                    help="interval length when the file cannot tell (one row, no end column)")
    ro.add_argument("--time-limit", type=_bounded(0.0, 86400.0, lo_open=True), default=60.0, metavar="S",
                    help="solver time limit in seconds (default 60); the best roster found is reported")
    ro.add_argument("--format", choices=("table", "csv", "json"), default="table", help="table (default), csv, json")

    sub.add_parser("serve", add_help=False,
                   help="run the service for Asterisk (FastAGI, AMI, dashboard)",
                   description="acd serve --config acd.toml ('acd serve --help' for its options)")
    return p


# ---------------------------------------------------------------- commands

@contextlib.contextmanager
def _step(label: str, enabled: bool, err: TextIO):
    """One line on stderr for a step without a fraction to show: its label, then its time."""
    import time
    t0 = time.perf_counter()
    if enabled:
        err.write(f"{label} ... ")
        err.flush()
    try:
        yield
    finally:
        if enabled:
            from .sim.progress import duration
            err.write(f"{duration(time.perf_counter() - t0)}\n")
            err.flush()


def _progress(label: str, enabled: bool, err: TextIO, calls: Optional[float] = None):
    from .sim.progress import ProgressBar
    return ProgressBar(label, stream=err, enabled=enabled, total=calls) if enabled else None


def cmd_simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .sim import load_scenario, simulate
    from .sim.report import kpi_table, verdict, write_report
    from .sim.report import check_report_dir
    from .sim.simulator import check_memory
    if args.report:
        check_report_dir(args.report, force=args.force)
    sc = load_scenario(args.scenario)
    if args.scale is not None:
        sc = sc.scaled(args.scale)
    if args.callback is not None:
        sc = sc.with_callback(args.callback == "on")
    check_memory(sc, args.max_memory)
    bar = _progress(f"simulating {sc.name}", not args.no_progress, err, sc.expected_calls)
    res = simulate(sc, args.seed, progress=bar,
                   max_memory=args.max_memory)
    out.write(f"{sc.name}: {len(res.records):,} calls, seed {res.seed}, {res.wall_time:.2f} s\n\n")
    out.write(kpi_table(res) + "\n\n" + verdict(res) + "\n")
    if args.intervals:
        from .sim.report import interval_table
        out.write("\n" + interval_table(res) + "\n")
    if args.report:
        with _step("writing the report", not args.no_progress, err):
            path = write_report(args.report, [("run", res)], title=sc.name, force=args.force)
        out.write(f"\nreport: {path}\n")
    return 0


def _profile_weights(text: str) -> List[float]:
    from .sim.plan import load_profile
    parts = [p.strip() for p in text.split(",")]
    try:
        weights = [float(p) for p in parts]
    except ValueError:
        if Path(text).exists() or len(parts) == 1:
            return load_profile(text, what="--profile")
        raise InvalidInput(f"--profile must be weights like 1,2,4,2 or a file, got {text!r}") from None
    bad = [p for p, w in zip(parts, weights) if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise InvalidInput(f"--profile weights must be finite numbers >= 0, got {bad[0]!r}")
    return weights


def _staff_forecast_input(args: argparse.Namespace):
    from .sim.plan import forecast_from_args, forecast_from_profile, load_calls_csv, load_forecast
    sources = [name for name, given in (("FORECAST.toml", args.forecast is not None), ("--rate", args.rate is not None),
                                        ("--calls-per-day", args.calls_per_day is not None),
                                        ("--calls-csv", args.calls_csv is not None)) if given]
    if len(sources) != 1:
        raise InvalidInput("staff needs one input: a FORECAST.toml file, --rate, --calls-per-day with --profile, "
                           "or --calls-csv" + (f" (got {' and '.join(sources)})" if sources else ""))
    src = sources[0]
    if args.profile is not None and src != "--calls-per-day":
        raise InvalidInput("--profile goes with --calls-per-day")
    if src == "FORECAST.toml":
        for flag, v in (("--aht", args.aht), ("--patience", args.patience), ("--interval", args.interval),
                        ("--start", args.start)):
            if v is not None:
                raise InvalidInput(f"{flag} is for --rate, --calls-per-day and --calls-csv; a FORECAST.toml "
                                   f"gives its own")
        return load_forecast(args.forecast)
    if args.aht is None:
        raise InvalidInput(f"{src} needs --aht (average handle time in seconds)")
    if args.answer_rate and args.patience is None:
        raise InvalidInput("--answer-rate needs --patience (without it callers never abandon: erlang c)")
    start = "00:00" if args.start is None else args.start
    if src == "--rate":
        return forecast_from_args(args.rate, args.aht, patience=args.patience,
                                  interval=1800.0 if args.interval is None else args.interval, start=start)
    if src == "--calls-per-day":
        if args.profile is None:
            raise InvalidInput("--calls-per-day needs --profile (the share of each interval, e.g. 1,2,4,4,2)")
        return forecast_from_profile(args.calls_per_day, _profile_weights(args.profile), args.aht,
                                     patience=args.patience, start=start, name="--calls-per-day",
                                     interval=1800.0 if args.interval is None else args.interval)
    if args.start is not None:
        raise InvalidInput("--start is not for --calls-csv: its start column gives the times")
    return load_calls_csv(args.calls_csv, args.aht, patience=args.patience, interval=args.interval,
                          what="--calls-csv")


def cmd_staff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.simulate is not None:     # multi-skill staffing by simulation (acd.planning)
        from .planning.simstaff import cmd_staff_simulate
        return cmd_staff_simulate(args, out, err)
    from .sim.plan import evaluate_forecast, plan_csv, plan_json, plan_table, staff_forecast
    fc = _staff_forecast_input(args)
    # targets that can never be met are refused here, in the words of the flags typed
    sl = None
    if args.sl is not None:
        frac, secs = args.sl
        typed = f"--sl {frac:g} {secs:g}"
        if not 0.0 <= frac <= 1.0 or secs < 0:
            raise InvalidInput(f"{typed}: the fraction must be in [0, 1] and the seconds >= 0")
        if frac == 1.0:
            raise InvalidInput(f"{typed} can never be met: some calls always wait longer than {secs:g} s "
                               f"(use a fraction below 1, e.g. 0.99)")
        sl = "none" if frac == 0.0 else (frac, secs)
    if args.answer_rate == 1.0:
        impatient = [ln for ln in fc.lines if ln.patience is not None]
        if impatient:
            raise InvalidInput(f"--answer-rate 1.0 can never be met: line {impatient[0].name!r} has a finite "
                               f"patience ({impatient[0].patience:g} s), so some callers always hang up first "
                               f"(use a value below 1, e.g. 0.99, or 0 for no answer-rate target)")
    fc = fc.with_targets(service_level=sl, answer_rate=args.answer_rate, max_occupancy=args.max_occupancy,
                         max_asa=args.asa, min_over_load=False if args.allow_below_load else None)
    if args.agents is not None:
        plan = evaluate_forecast(fc, args.agents, shrinkage=args.shrinkage, name="--agents")
    else:
        plan = staff_forecast(fc, shrinkage=args.shrinkage)
    if args.format == "csv":
        out.write(plan_csv(plan))
    elif args.format == "json":
        out.write(plan_json(plan, args.fte_hours))
    else:
        out.write(plan_table(plan, args.fte_hours) + "\n")
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .planning.agency_day import render_study, run_study
    from .sim import bundled_scenario
    from .sim.report import check_report_dir, write_report
    from .sim.simulator import check_memory
    # the default directory is the demo's own output, rewritten on every run; one the user names is not
    report, force = (args.report, args.force) if args.report is not None else ("acd-report", True)
    if not args.no_report:
        check_report_dir(report, force=force)
    sc = bundled_scenario("public_agency")
    if args.scale != 1.0:
        sc = sc.scaled(args.scale)
    check_memory(sc, args.max_memory)
    first = sc.seed if args.seed is None else args.seed
    if first + args.days > 2 ** 63:
        raise InvalidInput(f"--seed {first} leaves no room for --days {args.days} (seeds must stay below 2**63)")
    seeds = tuple(range(first, first + args.days))
    show = not args.no_progress
    last = [""]

    def progress(label: str) -> None:
        if show and label != last[0]:
            err.write(f"{'' if not last[0] else chr(10)}simulating {label} ({len(seeds)} days)")
            err.flush()
        last[0] = label
    st = run_study(sc, seeds=seeds, progress=progress)
    if show and last[0]:
        err.write("\n")
    out.write(render_study(st) + "\n")
    if not args.no_report:
        with _step("writing the report", show, err):
            path = write_report(report, [(c.label, c.runs[0]) for c in st.columns],
                                title=f"{sc.name} - today, acd's routing, call-backs, the head-count needed",
                                force=force)
        out.write(f"\nreport: {path} (one simulated day per column: seed {seeds[0]})\n")
    return 0


def cmd_scenarios(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._paths import check_output_file, write_text
    from .sim.scenario import bundled_scenario_text, bundled_scenarios
    if args.action in (None, "list"):
        rows = bundled_scenarios()
        w = max((len(n) for n, _ in rows), default=0)
        for name, desc in rows:
            out.write(f"{name:<{w}}  {desc}\n")
        out.write("\n'acd scenarios export NAME [PATH]' writes one to edit; 'acd simulate PATH' runs it.\n")
        return 0
    text = bundled_scenario_text(args.name)
    path = check_output_file(args.path if args.path is not None else f"{args.name}.toml", force=args.force,
                             what="scenario file")
    write_text(path, text, what="scenario file")
    out.write(f"wrote {path}; run it with: acd simulate {path}\n")
    return 0


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .journal.report import load_day_report, load_queue_log_report
    if (args.journal is None) == (args.queue_log is None):
        raise InvalidInput("report: give a JOURNAL or --queue-log FILE (one of them)")
    if args.since is not None and args.until is not None and args.until <= args.since:
        raise InvalidInput("--to must be after --from")
    opts = dict(since=args.since, until=args.until, interval=args.interval, sl_threshold=args.sl_threshold,
                short_abandon=args.short_abandon)
    if args.queue_log is not None:
        report = load_queue_log_report(args.queue_log, **opts)
    else:
        report = load_day_report(args.journal, schema=args.schema, **opts)
    out.write(report.render(args.format))
    return 0


def cmd_forecast(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .planning.forecast import forecast_day, read_history, write_atomic
    if args.scenario is not None and args.format != "toml":
        raise InvalidInput("--scenario writes a scenario (TOML): it does not go with --format csv")
    if args.output is not None:
        from ._paths import check_output_file
        check_output_file(args.output, force=args.force, what="forecast file")
    history = read_history(args.history, kind=args.input, schema=args.schema)
    fc = forecast_day(history, for_date=args.for_date, weekday=args.weekday, interval=args.interval, tz=args.tz,
                      holdout=args.holdout)
    text = (fc.scenario_toml(args.scenario) if args.scenario is not None else
            fc.calls_csv() if args.format == "csv" else fc.forecast_toml(aht=args.aht))
    # the back-test and the table go where the forecast does not
    info = out if args.output is not None else err
    info.write((fc.backtest.table() + "\n\n" if fc.backtest is not None else "") + fc.table() + "\n")
    if args.output is None:
        out.write(text)
        return 0
    path = write_atomic(args.output, text, what="forecast file")
    how = f"acd simulate {path}" if args.scenario is not None else f"acd staff {path}" if args.format == "toml" else ""
    out.write(f"\nwrote {path}" + (f"; use it with: {how}" if how else "") + "\n")
    return 0


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .planning.sweep import cmd_sweep as run
    return run(args, out, err)


def cmd_roster(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .planning.roster import DEFAULT_SHIFTS, load_shifts, read_requirements, solve_roster
    req = read_requirements(args.requirements, line=args.line, need=args.need,
                            interval=None if args.interval is None else int(args.interval))
    types = load_shifts(args.shifts) if args.shifts else DEFAULT_SHIFTS
    out.write(solve_roster(req, types, time_limit=args.time_limit).render(args.format))
    return 0


COMMANDS = {"simulate": cmd_simulate, "staff": cmd_staff, "demo": cmd_demo, "scenarios": cmd_scenarios,
            "report": cmd_report, "forecast": cmd_forecast, "sweep": cmd_sweep,
            "roster": cmd_roster}  # `serve` is handed over in main()


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Entry point of the ``acd`` command; returns the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:   # the service parses its own options (and --help)
        from .service import main as serve_main
        return serve_main(argv[1:], err=err)
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as e:          # --help, --version, or a one-line usage error
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        return COMMANDS[args.command](args, out, err)
    except AcdError as e:
        err.write(f"acd: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        err.write("acd: interrupted\n")
        return 130
