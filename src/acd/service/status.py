"""The read model: everything the HTTP pages show, as plain JSON-able data."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict

from ..adapters.asterisk.fastagi import SESSION_OUTCOMES
from .counters import WAIT_OUTCOMES, Counters

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("build_status",)


def build_status(app: "Dispatcher") -> Dict[str, Any]:
    eng = app.engine
    assert eng is not None
    snap = eng.snapshot()
    now = app.now() if app.accepting else snap["now"]
    lag = max(0.0, now - snap["now"])  # the engine's clock moves with commands only
    counters = app.counters
    queues: Dict[str, Any] = {}
    for name, q in snap["queues"].items():
        if q["waiting"]:
            q = {**q, "oldest_wait": q["oldest_wait"] + lag}
        ewt = eng.estimate_wait(name).ewt
        qdef = app.queue_defs.get(name)
        sl = counters.sl[name]
        # the journal's definition is the one in force (a changed configuration only warns)
        fraction, seconds = counters.targets.get(name) or (qdef.service_level if qdef is not None else (0.8, 60.0))
        queues[name] = {**q, "ewt": ewt if math.isfinite(ewt) else None,
                        "service_level": {"fraction": fraction, "seconds": seconds, "answered": sl.answered,
                                          "answered_within": sl.within, "abandoned": sl.abandoned,
                                          "measured": sl.measured},
                        "waits": _waits(counters, name)}
    agents = {}
    for agent, a in snap["agents"].items():
        entry = app.agents.get(str(agent))
        agents[str(agent)] = {**a, "call": None if a.get("call") is None else str(a["call"]),
                              "dial": entry.dial if entry is not None else None}
    fa = app.fastagi
    stats = fa.stats if fa is not None else None
    je = eng
    return {
        "now": now,
        "queues": queues,
        "agents": agents,
        "calls": {str(c): s for c, s in eng.calls().items()},
        "service": {
            "uptime": app.clock() - app.started_at,
            "started_unix": app.started_unix,
            "state": app.state,
            "decisions": dict(counters.decisions),
            "commands": dict(counters.commands),
            "command_errors": dict(app.commands.errors),
            "fastagi": {"active": fa.active_sessions if fa is not None else 0,
                        "accepted": stats.accepted if stats else 0, "completed": stats.completed if stats else 0,
                        "hangups": stats.hangups if stats else 0, "refused": stats.refused if stats else 0,
                        "errors": stats.errors if stats else 0, "dropped": getattr(stats, "dropped", 0),
                        "by_code": dict(stats.by_code) if stats else {},
                        "outcomes": dict(stats.outcomes) if stats else dict.fromkeys(SESSION_OUTCOMES, 0)},
            "ami": {"enabled": app.ami is not None, "connected": app.ami_connected,
                    "logins": app.ami.logins if app.ami is not None else 0,
                    "last_login_unix": app.ami.last_login_unix if app.ami is not None else None},
            "dialbacks_in_progress": len(app.dialler.tasks),
            "callbacks_known": len(app.ledger.entries),
            "callbacks_in_doubt": len(app.ledger.in_doubt()),
            "reconcile": {"passes": app.reconciler.passes, "last": app.reconciler.last,
                          "error": app.reconciler.error},
            "journal": {"path": app.config.journal.where, "replayed_at_start": app.commands.replayed,
                        "up": je.up, "error": None if je.up else je.last_error,
                        "last_seq": je.journal.last_seq, "applied_seq": je.applied,
                        "write_failures": je.write_failures, "last_write_unix": je.last_write_unix},
            "ha": _ha(app),
            # [webhooks] (outputs/webhooks.py): delivered / gave_up from the journal, retries by this process
            "webhooks": app.webhooks.status() if app.webhooks is not None else None,
        },
    }


def _waits(counters: Counters, queue: str) -> Dict[str, Any]:
    """The wait histograms of a queue: cumulative counts per bound (the +Inf bucket is ``count``)."""
    out: Dict[str, Any] = {}
    for outcome in WAIT_OUTCOMES:
        h = counters.waits.get((queue, outcome))
        if h is None:
            continue
        cum = h.cumulative()[:-1]
        out[outcome] = {"le": [le for le, _ in cum], "cumulative": [n for _, n in cum], "sum": h.sum,
                        "count": h.count}
    return out


def _ha(app: "Dispatcher") -> Dict[str, Any]:
    ha = app.ha
    if ha is None:   # a file journal: this node is the only one, so the primary
        return {"enabled": False, "role": "primary", "epoch": None, "node": None, "lag": 0.0, "error": None}
    lag = ha.lag
    return {"enabled": True, "role": ha.role, "epoch": ha.epoch, "node": ha.node,
            "lag": lag if math.isfinite(lag) else None, "lease": ha.lease, "error": ha.last_error,
            "deposed": ha.why_deposed}
