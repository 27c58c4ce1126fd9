"""A plain-text progress bar on stderr (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ("ProgressBar",)


class ProgressBar:
    """Call with a fraction in [0, 1]; redraws at most every ``min_interval`` seconds.

    On a terminal the bar is redrawn in place (``\\r``); otherwise one line
    is printed per 25 % so that logs stay readable.
    """

    def __init__(self, label: str, stream: Optional[TextIO] = None, width: int = 30, min_interval: float = 0.1,
                 enabled: bool = True):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self.enabled = enabled
        self._last = -1.0
        self._last_draw = 0.0
        self._t0 = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._done = False

    def __call__(self, fraction: float) -> None:
        if not self.enabled or self._done:
            return
        f = min(max(float(fraction), 0.0), 1.0)
        now = time.perf_counter()
        if self._tty:
            if f < 1.0 and now - self._last_draw < self.min_interval:
                return
            filled = int(round(f * self.width))
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {f * 100:5.1f}%  {now - self._t0:5.1f} s")
            if f >= 1.0:
                self.stream.write("\n")
                self._done = True
            self.stream.flush()
        else:
            step = int(f * 4)
            if step > int(self._last * 4) or self._last < 0:
                self.stream.write(f"{self.label}: {step * 25}%\n")
                self.stream.flush()
            if f >= 1.0:
                self._done = True
        self._last = f
        self._last_draw = now
