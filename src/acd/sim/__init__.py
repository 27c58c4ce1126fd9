"""Discrete-event simulator driving the real :class:`acd.Engine`.

    from acd.sim import bundled_scenario, load_scenario, simulate
    sc = bundled_scenario("public_agency")      # or load_scenario("my_day.toml")
    res = simulate(sc, seed=1)
    res.records           # one acd.kpi.CALL_RECORD row per call
    res.summary()         # acd.kpi.summary with the scenario's targets

A :class:`Scenario` (TOML or dataclasses) describes queues, call types and
their mix, caller segments, time-varying Poisson arrivals per interval,
service and patience distributions, ring time, agent groups with skills,
shifts and pauses, and the call-back (virtual hold) offer.
"""

from .dists import Dist, dist_from_spec
from .scenario import (AgentGroup, Callback, CallType, Pause, Scenario, Segment, Targets, Transfer, bundled_scenario,
                       format_clock, load_scenario, parse_clock, scenario_from_dict)
from .simulator import CallbackPolicy, SimResult, VirtualHold, simulate

__all__ = (
    "Scenario",
    "CallType",
    "Transfer",
    "Segment",
    "AgentGroup",
    "Pause",
    "Callback",
    "Targets",
    "Dist",
    "dist_from_spec",
    "load_scenario",
    "scenario_from_dict",
    "bundled_scenario",
    "parse_clock",
    "format_clock",
    "simulate",
    "SimResult",
    "CallbackPolicy",
    "VirtualHold",
)
