"""Structured logs for ``acd serve``: one JSON object per line.

Each line holds ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``
and ``msg``, plus the structured fields a log call passes as
``extra={"acd": {...}}`` (``event``, ``call``, ``agent``, ``queue``...), and
``exc`` with the traceback when there is one.  Example::

    {"ts": "2024-05-02T08:15:03.120Z", "level": "info", "logger": "acd.service",
     "msg": "call 1714637703.12 assigned to agent 1001", "event": "assign",
     "call": "1714637703.12", "agent": "1001", "queue": "support", "wait": 42.1}
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from typing import IO, Any, Optional

__all__ = ("JSONFormatter", "install", "event")

_RESERVED = ("ts", "level", "logger", "msg", "exc")


class JSONFormatter(logging.Formatter):
    """Format records as single-line JSON objects."""

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc)
        out: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "acd", None)
        if isinstance(fields, dict):
            for k, v in fields.items():
                if k not in _RESERVED:
                    out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False, allow_nan=True)


def install(level: str = "info", stream: Optional[IO[str]] = None) -> logging.Handler:
    """Send every ``acd`` log record to ``stream`` (stderr) as JSON lines; return the
    handler so that the caller can remove it (``logging.getLogger("acd").removeHandler``)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("acd")
    logger.addHandler(handler)
    logger.setLevel(getattr(logging, level.upper()))
    return handler


def event(logger: logging.Logger, level: int, name: str, msg: str, **fields: Any) -> None:
    """Log ``msg`` with the structured fields ``event=name`` and ``fields``."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"acd": {"event": name, **fields}})
