"""The ``acd`` command.

    acd simulate SCENARIO.toml [--seed N] [--report DIR] [--no-progress] [--scale F] [--callback on|off]
    acd staff FORECAST.toml            # per-interval Erlang staffing of a forecast (or of a scenario)
    acd staff --rate 600 900 --aht 420 [--patience 180] [--sl 0.8 60] [--answer-rate 0.85]
    acd demo [--scale F] [--seed N] [--report DIR] [--no-progress]

``python -m acd`` is the same command.  Errors in the input (a bad scenario
field, a bad option) are printed as ``acd: error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import List, Optional, Sequence, TextIO

from .errors import AcdError

__all__ = ("main", "build_parser")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= v < 2 ** 63:
        raise argparse.ArgumentTypeError(f"must be in 0..2**63-1, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="acd", description="Automatic call distribution: simulate, staff, demo.")
    p.add_argument("--version", action="version", version=f"acd {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("simulate", help="simulate a scenario through the engine and print its KPIs",
                       description="Simulate SCENARIO (TOML) through the real engine; print the KPI table "
                                   "and optionally write an HTML report.")
    s.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file (see src/acd/data/public_agency.toml)")
    s.add_argument("--seed", type=_seed, default=None, help="random seed (default: the scenario's)")
    s.add_argument("--report", metavar="DIR", default=None, help="write DIR/index.html (charts, tables)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    s.add_argument("--scale", type=_positive_float, default=None,
                   help="multiply call volume and agent counts by F (e.g. 0.1 for a quick run)")
    s.add_argument("--callback", choices=("on", "off"), default=None,
                   help="force call-back offers on or off (default: as in the scenario)")
    s.add_argument("--intervals", action="store_true", help="also print the per-interval table")

    st = sub.add_parser("staff", help="Erlang staffing per interval for a forecast",
                        description="Agents needed per interval (Erlang A when patience is known, else "
                                    "Erlang C) to meet the service-level and answer-rate targets.")
    st.add_argument("forecast", nargs="?", metavar="FORECAST.toml",
                    help="forecast file ([[lines]] with calls per interval, aht, patience) or a scenario file")
    st.add_argument("--rate", type=float, nargs="+", metavar="CALLS_PER_HOUR",
                    help="arrival rate per interval in calls per hour (instead of a file)")
    st.add_argument("--aht", type=_positive_float, metavar="SECONDS", help="average handle time (talk + wrap-up)")
    st.add_argument("--patience", type=_positive_float, metavar="SECONDS", default=None,
                    help="mean caller patience (enables Erlang A)")
    st.add_argument("--interval", type=_positive_float, metavar="SECONDS", default=1800.0,
                    help="interval length for --rate (default 1800)")
    st.add_argument("--start", default="00:00", help="clock time of the first --rate interval (default 00:00)")
    st.add_argument("--sl", type=float, nargs=2, metavar=("FRACTION", "SECONDS"), default=None,
                    help="service-level target (default 0.8 60, or the file's)")
    st.add_argument("--answer-rate", type=float, default=None, metavar="FRACTION",
                    help="minimum share of calls answered (needs --patience)")
    st.add_argument("--max-occupancy", type=float, default=None, metavar="FRACTION",
                    help="cap on agent occupancy (e.g. 0.9)")

    d = sub.add_parser("demo", help="the public-agency peak day, staffed by Erlang, with and without call-backs",
                       description="Run the shipped public-agency scenario with the staffing `acd staff` "
                                   "recommends, with and without call-back offers; print both KPI tables and "
                                   "the difference; write an HTML report.")
    d.add_argument("--scale", type=_positive_float, default=1.0,
                   help="multiply the call volume by F before staffing (e.g. 0.1 for a quick run)")
    d.add_argument("--seed", type=_seed, default=None, help="random seed (default: the scenario's)")
    d.add_argument("--report", metavar="DIR", default="acd-report", help="report directory (default ./acd-report)")
    d.add_argument("--no-report", action="store_true", help="do not write the report")
    d.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    sv = sub.add_parser("serve", add_help=False,
                        help="run the dispatcher service for Asterisk (FastAGI, AMI, HTTP dashboard)",
                        description="acd serve --config acd.toml (see examples/asterisk/)")
    return p


# ---------------------------------------------------------------- commands

def _progress(label: str, enabled: bool, err: TextIO):
    from .sim.progress import ProgressBar
    return ProgressBar(label, stream=err, enabled=enabled) if enabled else None


def cmd_simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .sim import load_scenario, simulate
    from .sim.report import kpi_table, verdict, write_report
    sc = load_scenario(args.scenario)
    if args.scale is not None:
        sc = sc.scaled(args.scale)
    if args.callback is not None:
        sc = sc.with_callback(args.callback == "on")
    res = simulate(sc, args.seed, progress=_progress(f"simulating {sc.name}", not args.no_progress, err))
    out.write(f"{sc.name}: {len(res.records):,} calls, seed {res.seed}, {res.wall_time:.2f} s\n\n")
    out.write(kpi_table(res) + "\n\n" + verdict(res) + "\n")
    if args.intervals:
        from .sim.report import interval_table
        out.write("\n" + interval_table(res) + "\n")
    if args.report:
        path = write_report(args.report, [("run", res)], title=sc.name)
        out.write(f"\nreport: {path}\n")
    return 0


def cmd_staff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .errors import InvalidInput
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
    from .sim.report import comparison_table, kpi_table, verdict, write_report
    sc = bundled_scenario("public_agency")
    if args.scale != 1.0:
        sc = sc.scaled(args.scale)
    plan, staffed = demo_staffing(sc)
    out.write(f"{sc.name} (volume x{args.scale:g}: {sc.expected_calls:,.0f} calls expected)\n\n")
    out.write("staffing recommended by `acd staff` (agents on the phones per interval):\n")
    out.write(plan_table(plan) + "\n\n")
    show = not args.no_progress
    base = simulate(staffed.with_callback(False), args.seed, progress=_progress("without call-backs", show, err))
    cb = simulate(staffed.with_callback(True), args.seed, progress=_progress("with call-backs   ", show, err))
    out.write(f"== without call-back offers ({len(base.records):,} calls)\n{kpi_table(base)}\n{verdict(base)}\n\n")
    out.write(f"== with call-back offers ({len(cb.records):,} calls, offered by the {cb.counters['callback_mode']})\n"
              f"{kpi_table(cb)}\n{verdict(cb)}\n\n")
    out.write("== difference (with - without)\n" + comparison_table(base, cb) + "\n")
    if not args.no_report:
        path = write_report(args.report, [("without call-backs", base), ("with call-backs", cb)],
                            title=f"{sc.name} - Erlang staffing, with and without call-backs", plan=plan)
        out.write(f"\nreport: {path}\n")
    return 0


COMMANDS = {"simulate": cmd_simulate, "staff": cmd_staff, "demo": cmd_demo}  # `serve` is handed over in main()


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """Entry point of the ``acd`` command; returns the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:   # the service parses its own options (and --help)
        from .service import main as serve_main
        return serve_main(argv[1:], err=err)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args, out, err)
    except AcdError as e:
        err.write(f"acd: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        err.write("acd: interrupted\n")
        return 130
