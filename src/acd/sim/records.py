"""Build the simulator's outputs as :mod:`acd.kpi` arrays (``CALL_RECORD``, ``AGENT_INTERVAL``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ("AGENT_STATES", "call_record_array", "agent_interval_array")

#: simulator agent-state codes, in the order the simulator numbers them
AGENT_STATES = ("available", "reserved", "busy", "wrap_up", "paused")


def call_record_array(n: int, **columns: Any) -> np.ndarray:
    """``n`` rows of :data:`acd.kpi.CALL_RECORD`, filled column by column."""
    from ..kpi import CALL_RECORD
    out = np.zeros(n, dtype=CALL_RECORD)
    for name in CALL_RECORD.names:
        if name in columns:
            out[name] = columns[name]
    return out


def _state_codes() -> np.ndarray:
    """kpi's code for each simulator state (kpi may number states its own way)."""
    from .. import kpi
    names = getattr(kpi, "AGENT_STATES", None)
    if names is None:
        return np.arange(len(AGENT_STATES))
    return np.array([list(names).index(s) for s in AGENT_STATES])


def agent_interval_array(agent: Sequence[int], state: Sequence[int], start: Sequence[float],
                         end: Sequence[float]) -> np.ndarray:
    """Rows of :data:`acd.kpi.AGENT_INTERVAL` from parallel lists."""
    from ..kpi import AGENT_INTERVAL
    out = np.zeros(len(agent), dtype=AGENT_INTERVAL)
    out["agent"] = agent
    out["state"] = _state_codes()[np.asarray(state, dtype=np.int64)] if len(state) else []
    out["start"] = start
    out["end"] = end
    return out
