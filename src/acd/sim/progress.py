"""A plain-text progress bar on stderr, with elapsed time, ETA and rate (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ("ProgressBar", "duration")


def duration(seconds: float) -> str:
    """``12.3 s``, ``2 min 05 s``, ``1 h 02 min``."""
    s = max(0.0, seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class ProgressBar:
    """Call with a fraction in [0, 1]; redraws at most every ``min_interval`` seconds.

    On a terminal the bar is redrawn in place (``\\r``), from the moment it is
    created ("starting": a big run prepares its calls before the first step);
    otherwise one line is printed per 25 % so that logs stay readable.  The
    ETA assumes the rest goes at the pace so far.  ``total`` (e.g. the
    expected calls) with ``unit`` adds a rate, ``total * fraction`` per
    second: approximate when the fraction is of simulated time, not of work.
    """

    def __init__(self, label: str, stream: Optional[TextIO] = None, width: int = 30, min_interval: float = 0.1,
                 enabled: bool = True, total: Optional[float] = None, unit: str = "calls"):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self.enabled = enabled
        self.total = total
        self.unit = unit
        self._last = -1.0
        self._last_draw = 0.0
        self._t0 = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._done = False
        self._width_drawn = 0
        if self.enabled and self._tty:
            self._draw(0.0, self._t0, "starting")

    def _rate(self, f: float, elapsed: float) -> str:
        if not self.total or elapsed <= 0 or f <= 0:
            return ""
        return f", ~{self.total * f / elapsed:,.0f} {self.unit}/s"

    def _status(self, f: float, elapsed: float) -> str:
        if f >= 1.0:
            return f"{duration(elapsed)}{self._rate(f, elapsed)}"
        if f < 0.005 or elapsed < 0.2:
            return f"{duration(elapsed)}"
        return f"{duration(elapsed)}, ETA {duration(elapsed * (1 - f) / f)}{self._rate(f, elapsed)}"

    def _draw(self, f: float, now: float, status: str) -> None:
        filled = int(round(f * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {f * 100:5.1f}%  {status}"
        pad = " " * max(0, self._width_drawn - len(line))  # wipe the end of a longer line before
        self._width_drawn = len(line)
        self.stream.write(f"\r{line}{pad}")
        if f >= 1.0:
            self.stream.write("\n")
            self._done = True
        self.stream.flush()
        self._last_draw = now

    def __call__(self, fraction: float) -> None:
        if not self.enabled or self._done:
            return
        f = min(max(float(fraction), 0.0), 1.0)
        now = time.perf_counter()
        elapsed = now - self._t0
        if self._tty:
            if f < 1.0 and now - self._last_draw < self.min_interval:
                return
            self._draw(f, now, self._status(f, elapsed))
        else:
            step = int(f * 4)
            if step > int(self._last * 4) or self._last < 0:
                self.stream.write(f"{self.label}: {step * 25}% ({self._status(step / 4, elapsed)})\n")
                self.stream.flush()
            if f >= 1.0:
                self._done = True
        self._last = f
