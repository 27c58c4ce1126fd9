"""Build the simulator's outputs as :mod:`acd.kpi` arrays (``CALL_RECORD``, ``AGENT_INTERVAL``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..kpi import AGENT_INTERVAL, AGENT_STATES, CALL_RECORD

__all__ = ("AGENT_STATES", "call_record_array", "agent_interval_array")


def call_record_array(n: int, **columns: Any) -> np.ndarray:
    """``n`` rows of :data:`acd.kpi.CALL_RECORD`, filled column by column (missing columns stay 0,
    the survey's scores NaN: no survey)."""
    out = np.zeros(n, dtype=CALL_RECORD)
    out["csat"] = out["solved"] = np.nan
    for name in CALL_RECORD.names or ():
        if name in columns:
            out[name] = columns[name]
    return out


def agent_interval_array(agent: Sequence[int], state: Sequence[int], start: Sequence[float],
                         end: Sequence[float]) -> np.ndarray:
    """Rows of :data:`acd.kpi.AGENT_INTERVAL` from parallel lists (states numbered as ``kpi.AGENT_STATES``)."""
    out = np.zeros(len(agent), dtype=AGENT_INTERVAL)
    out["agent"] = agent
    out["state"] = state
    out["start"] = start
    out["end"] = end
    return out
