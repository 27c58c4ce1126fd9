"""``acd serve`` on the command line: arguments, logging, signals, exit status.

Exit status: 0 after a clean stop, 2 for a bad configuration, 1 when the
service cannot start (port in use, journal unreadable...).  SIGTERM or SIGINT
drains and stops (see :class:`~acd.service.app.Dispatcher`); a second signal
stops at once.  A primary deposed by a standby (PostgreSQL journal) stops
serving at once and starts again as a standby, in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import List, Optional, Sequence, TextIO

from ..errors import AcdError
from . import logs
from .app import Dispatcher
from .config import LOG_LEVELS, ServiceConfig, load_config
from .reload import reload_or_log

__all__ = ("main",)

log = logging.getLogger("acd.service")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="acd serve", description="Run the ACD for Asterisk: FastAGI, AMI, HTTP "
                                "dashboard and metrics, with a durable journal (SQLite, or PostgreSQL for a primary and its "
                                "standbys).",
                                epilog="example: acd serve --config examples/asterisk/acd.toml")
    p.add_argument("--config", required=True, metavar="PATH", help="TOML configuration (see examples/asterisk/acd.toml)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                   help="log level (default: [service] log_level, else info)")
    return p


async def _serve(cfg: ServiceConfig) -> int:
    dispatcher = Dispatcher(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: List[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            logs.event(log, logging.WARNING, "signal", f"received {name} again; stopping without waiting for calls",
                       signal=name)
            dispatcher.hurry()
            return
        logs.event(log, logging.INFO, "signal", f"received {name}; draining, then stopping", signal=name)
        stop.set()

    def on_hangup() -> None:
        # reload acd.toml (docs/reload.md): an invalid file is refused and logged, the old one kept
        logs.event(log, logging.INFO, "signal", "received SIGHUP; reloading the configuration", signal="SIGHUP")
        reload_or_log(dispatcher, "SIGHUP")

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    if hasattr(signal, "SIGHUP"):
        try:
            loop.add_signal_handler(signal.SIGHUP, on_hangup)
            installed.append(signal.SIGHUP)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        rejoining = False
        while True:
            try:
                deposed = await dispatcher.serve(stop)
            except (AcdError, OSError) as exc:
                if not rejoining:
                    logs.event(log, logging.ERROR, "start_failed", f"cannot start: {exc}")
                    return 1
                # a deposed node keeps trying to follow (the database may be what cut it off)
                logs.event(log, logging.WARNING, "rejoin_failed", f"cannot follow yet: {exc}; retrying in 1 s")
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
                if stop.is_set():
                    break
                dispatcher = Dispatcher(cfg)
                continue
            if not deposed or stop.is_set():
                break
            rejoining = True
            # a primary that lost the lead stopped without writing; it comes back as a standby (after a
            # pause: a node that cannot serve must not spin on taking the lead and failing)
            logs.event(log, logging.WARNING, "rejoin", "starting again as a standby of the new primary")
            try:
                await asyncio.wait_for(stop.wait(), cfg.ha.lease)
            except asyncio.TimeoutError:
                pass
            if stop.is_set():
                break
            dispatcher = Dispatcher(cfg)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 0


def main(argv: Optional[Sequence[str]] = None, *, err: Optional[TextIO] = None) -> int:
    """``acd serve --config PATH [--log-level LEVEL]``; returns the exit status.

    A leading ``"serve"`` in ``argv`` is accepted (``main(["serve", "--config", p])``).
    """
    err = sys.stderr if err is None else err
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["serve"]:
        args_in = args_in[1:]
    try:
        args = _parser().parse_args(args_in)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        cfg = load_config(args.config)
    except AcdError as exc:
        err.write(f"acd: error: {exc}\n")
        return 2
    level = args.log_level or cfg.service.log_level
    logger = logging.getLogger("acd")
    saved = (logger.level, logger.propagate)
    handler = logs.install(level, err)
    logger.propagate = False
    try:
        return asyncio.run(_serve(cfg))
    except KeyboardInterrupt:
        return 130
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
