"""The ``acd`` command.

    acd simulate SCENARIO.toml [--seed N] [--report DIR [--force]] [--no-progress] [--scale F] [--callback on|off]
    acd staff FORECAST.toml            # per-interval Erlang staffing of a forecast (or of a scenario)
    acd staff --rate 600 900 --aht 420 [--patience 180] [--sl 0.8 60] [--answer-rate 0.85]
    acd demo [--scale F] [--seed N] [--report DIR] [--no-progress]
    acd scenarios                      # the bundled scenarios, one line each
    acd scenarios export NAME [PATH] [--force]
    acd report JOURNAL | --queue-log FILE [--from WHEN] [--to WHEN] [--interval 30m] [--format table|csv|json|html]
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


def _example(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {l}" for l in lines)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = _Parser(prog="acd", description="Automatic call distribution: simulate a contact centre, staff it by "
                                         "Erlang, run the demo, or serve Asterisk.",
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

    st = sub.add_parser("staff", help="Erlang staffing per interval for a forecast",
                        description="Agents needed per interval (Erlang A when patience is known, else "
                                    "Erlang C) to meet the service-level and answer-rate targets.",
                        epilog=_example("acd staff --rate 600 900 1200 --aht 420 --patience 180 --start 09:00",
                                        "acd staff forecast.toml --sl 0.8 20"))
    st.add_argument("forecast", nargs="?", metavar="FORECAST.toml",
                    help="forecast file ([[lines]] with calls per interval, aht, patience) or a scenario file")
    st.add_argument("--rate", type=_rate, nargs="+", metavar="CALLS_PER_HOUR",
                    help="arrival rate per interval in calls per hour, 0..1e9 (instead of a file)")
    st.add_argument("--aht", type=_seconds, metavar="SECONDS",
                    help="average handle time (talk + wrap-up), up to a week")
    st.add_argument("--patience", type=_seconds, metavar="SECONDS", default=None,
                    help="mean caller patience (enables Erlang A), up to a week")
    st.add_argument("--interval", type=_seconds, metavar="SECONDS", default=1800.0,
                    help="interval length for --rate (default 1800)")
    st.add_argument("--start", default="00:00", help="clock time of the first --rate interval (default 00:00)")
    st.add_argument("--sl", type=_number, nargs=2, metavar=("FRACTION", "SECONDS"), default=None,
                    help="service-level target (default 0.8 60, or the file's)")
    st.add_argument("--answer-rate", type=_fraction, default=None, metavar="FRACTION",
                    help="minimum share of calls answered (needs --patience)")
    st.add_argument("--max-occupancy", type=_fraction, default=None, metavar="FRACTION",
                    help="cap on agent occupancy (e.g. 0.9)")

    d = sub.add_parser("demo", help="the bundled peak day: Erlang staffing, call-backs on and off",
                       description="Run the bundled public-agency scenario with the staffing `acd staff` "
                                   "recommends, with and without call-back offers; print both KPI tables and "
                                   "the difference; write an HTML report.",
                       epilog=_example("acd demo --scale 0.1 --report demo-report"))
    d.add_argument("--scale", type=_scale, default=1.0,
                   help=f"multiply the call volume by F before staffing, 0 < F <= {MAX_SCALE:g} "
                        "(e.g. 0.1 for a quick run)")
    d.add_argument("--seed", type=_seed, default=None, help="random seed (default: the scenario's)")
    d.add_argument("--report", metavar="DIR", default=None,
                   help="report directory (default ./acd-report, rewritten on every run)")
    d.add_argument("--force", action="store_true", help="overwrite an existing DIR/index.html")
    d.add_argument("--no-report", action="store_true", help="do not write the report")
    d.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
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


def cmd_staff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .sim.plan import forecast_from_args, load_forecast, plan_table, staff_forecast
    if (args.forecast is None) == (args.rate is None):
        raise InvalidInput("staff needs either a FORECAST.toml file or --rate (not both)")
    if args.forecast is not None:
        fc = load_forecast(args.forecast)
        if args.sl is not None or args.answer_rate is not None or args.max_occupancy is not None:
            fc = fc.with_targets(service_level=tuple(args.sl) if args.sl else None, answer_rate=args.answer_rate,
                                 max_occupancy=args.max_occupancy)
    else:
        if args.aht is None:
            raise InvalidInput("--rate needs --aht (average handle time in seconds)")
        if args.answer_rate is not None and args.patience is None:
            raise InvalidInput("--answer-rate needs --patience (without it callers never abandon: erlang c)")
        fc = forecast_from_args(args.rate, args.aht, patience=args.patience, interval=args.interval,
                                start=args.start, service_level=tuple(args.sl) if args.sl else (0.8, 60.0),
                                answer_rate=args.answer_rate, max_occupancy=args.max_occupancy)
    plan = staff_forecast(fc)
    out.write(plan_table(plan) + "\n")
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .sim import bundled_scenario, simulate
    from .sim.plan import demo_staffing, plan_table
    from .sim.report import check_report_dir, comparison_table, kpi_table, verdict, write_report
    from .sim.simulator import check_memory
    # the default directory is the demo's own output, rewritten on every run; one the user names is not
    report, force = (args.report, args.force) if args.report is not None else ("acd-report", True)
    if not args.no_report:
        check_report_dir(report, force=force)
    sc = bundled_scenario("public_agency")
    if args.scale != 1.0:
        sc = sc.scaled(args.scale)
    check_memory(sc, args.max_memory)
    plan, staffed = demo_staffing(sc)
    check_memory(staffed, args.max_memory)
    out.write(f"{sc.name} (volume x{args.scale:g}: {sc.expected_calls:,.0f} calls expected)\n\n")
    out.write("staffing recommended by `acd staff` (agents on the phones per interval):\n")
    out.write(plan_table(plan) + "\n\n")
    show = not args.no_progress
    base = simulate(staffed.with_callback(False), args.seed, progress=_progress("simulating the day without call-backs", show, err,
                                                                              staffed.expected_calls),
                    max_memory=args.max_memory)
    cb = simulate(staffed.with_callback(True), args.seed, progress=_progress("simulating the day with call-backs   ", show, err,
                                                                          staffed.expected_calls),
                  max_memory=args.max_memory)
    out.write(f"== without call-back offers ({len(base.records):,} calls)\n{kpi_table(base)}\n{verdict(base)}\n\n")
    out.write(f"== with call-back offers ({len(cb.records):,} calls, offered by the {cb.counters['callback_mode']})\n"
              f"{kpi_table(cb)}\n{verdict(cb)}\n\n")
    out.write("== difference (with - without)\n" + comparison_table(base, cb) + "\n")
    if not args.no_report:
        with _step("writing the report", not args.no_progress, err):
            path = write_report(report, [("without call-backs", base), ("with call-backs", cb)],
                                title=f"{sc.name} - Erlang staffing, with and without call-backs", plan=plan,
                                force=force)
        out.write(f"\nreport: {path}\n")
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


def cmd_roster(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .planning.roster import DEFAULT_SHIFTS, load_shifts, read_requirements, solve_roster
    req = read_requirements(args.requirements, line=args.line, need=args.need,
                            interval=None if args.interval is None else int(args.interval))
    types = load_shifts(args.shifts) if args.shifts else DEFAULT_SHIFTS
    out.write(solve_roster(req, types, time_limit=args.time_limit).render(args.format))
    return 0


COMMANDS = {"simulate": cmd_simulate, "staff": cmd_staff, "demo": cmd_demo,
            "scenarios": cmd_scenarios, "report": cmd_report, "roster": cmd_roster}  # `serve` is handed over in main()


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
