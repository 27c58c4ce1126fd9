"""The wallboard's read model: one JSON document of what a supervisor watches, kept current.

:class:`LiveView` wires the parts: an :class:`~.events.EventBus` told of
every live journal record (:class:`~.events.JournalEvents`) and of health
changes (:class:`~.events.HealthWatch`), today's figures (:class:`~.today.Today`),
and :meth:`LiveView.state`, built from :func:`~.status.build_status` plus those
figures, cached per bus event (every open stream sends the same bytes).

Ages (``oldest_wait``, a caller's ``wait``, an agent's ``in_state``) are seconds
at ``server_time``; the page adds the time passed since it received them.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from .events import EventBus, HealthWatch, JournalEvents
from .today import INTERVAL, Today

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("LiveView", "service_alarms", "MAX_CALLERS", "FORMAT")

#: the state's format version (``"format"``): bumped when a field changes meaning
FORMAT = 1
#: waiting callers listed (the longest waits first); ``callers.total`` counts them all
MAX_CALLERS = 200
_IN_LINE = {"waiting": "live", "callback_pending": "call-back", "callback_retry": "call-back",
            "scheduled": "scheduled call-back", "dialing_back": "call-back dialling"}
_ON_CALL = ("reserved", "busy")


def service_alarms(svc: Mapping[str, Any]) -> List[Dict[str, str]]:
    """The service's own alarms, worst first: ``{"level": "critical" | "warning", "code", "text"}``."""
    out: List[Dict[str, str]] = []

    def add(level: str, code: str, text: str) -> None:
        out.append({"level": level, "code": code, "text": text})

    ha = svc.get("ha") or {}
    if ha.get("role") == "standby":
        lag = ha.get("lag")
        add("warning", "standby", f"STANDBY NODE {ha.get('node')}: this page follows the primary's journal "
            f"({'never caught up' if lag is None else f'{lag:.1f} s behind'}); calls are served by the primary")
    elif ha.get("role") == "deposed":
        add("critical", "deposed", f"NO LONGER PRIMARY: {ha.get('deposed')}; this node restarts as a standby")
    journal = svc["journal"]
    if not journal["up"] and ha.get("role", "primary") == "primary":
        add("critical", "journal_down", f"JOURNAL DOWN: calls are refused ({journal['error']})")
    ami = svc["ami"]
    if ami["enabled"] and not ami["connected"]:
        add("critical", "ami_down", "AMI NOT CONNECTED: no call-backs are dialled, hang-ups between calls are not seen")
    if svc["reconcile"]["error"]:
        add("critical", "reconcile", f"RECONCILIATION IMPOSSIBLE: {svc['reconcile']['error']}")
    if svc["state"] == "draining":
        add("warning", "draining", "STOPPING: new calls are refused while calls in progress end")
    if svc["callbacks_in_doubt"]:
        add("warning", "callbacks_in_doubt",
            f"{svc['callbacks_in_doubt']} call-back(s) in doubt: looked up in Asterisk before any retry")
    return out


def _ratio(num: int, den: int) -> Optional[float]:
    return num / den if den else None


class LiveView:
    def __init__(self, app: "Dispatcher", *, clock: Any = time.time) -> None:
        self.app = app
        self._unix = clock
        self.bus = EventBus()
        self.today = Today(app.commands.current, clock=clock)
        # the figures are updated before the bus says they changed; the replay at start is not news
        self.journal_events = JournalEvents(self.bus, lambda: app.commands.engine is not None)
        self.health = HealthWatch(self.bus, self.probe)
        self._cache: Optional[tuple[int, bytes]] = None
        app.commands.projections += [self.today, self.journal_events]

    def probe(self) -> Dict[str, Any]:
        """What the health watch compares between samples (cheap: no engine snapshot)."""
        app = self.app
        eng = app.engine
        lt = time.localtime(self._unix())
        return {"ami": app.ami_connected if app.ami is not None else None,
                "journal": bool(eng.up) if eng is not None else None, "state": app.state,
                "role": app.ha.role if app.ha is not None else "primary",
                "reconcile": app.reconciler.error, "in_doubt": len(app.ledger.in_doubt()),
                "day": (lt.tm_year, lt.tm_mon, lt.tm_mday)}

    # ------------------------------------------------------------------ state
    def state_json(self, fresh: bool = False) -> bytes:
        """:meth:`state` as compact JSON, built once per bus event (``fresh``: built now; a new
        stream's first state, whose ages must be of now, not of the last event)."""
        seq = self.bus.seq
        if fresh or self._cache is None or self._cache[0] != seq:
            self._cache = (seq, json.dumps(self.state(), separators=(",", ":"), allow_nan=False,
                                           default=str).encode())
        return self._cache[1]

    def state(self) -> Dict[str, Any]:
        app = self.app
        status = app.status()
        now = status["now"]                     # engine time, seconds
        unix = self._unix()
        today = self.today
        today.roll()
        lt = time.localtime(unix)
        midnight = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
        queues = []
        alarms = service_alarms(status["service"])
        for name, q in sorted(status["queues"].items()):
            day = today.queues.get(name)
            sl = q["service_level"]
            ag = q["agents"]
            logged_in = sum(int(v) for v in ag.values())
            offered = day.offered if day else 0
            answered = day.answered if day else 0
            within = day.answered_within if day else 0
            abandoned = day.abandoned if day else 0
            exited = day.exited if day else 0
            late = today.still_out(name, now)
            measured = _ratio(within, answered + abandoned + exited + late)
            sched = app.config.schedules.get(name)
            is_open = sched is None or sched.is_open(unix)
            queues.append({
                "open": is_open, "next_open": None if is_open or sched is None else sched.next_open(unix),
                "name": name, "waiting": q["waiting"], "oldest_wait": q["oldest_wait"] if q["waiting"] else None,
                "ewt": q["ewt"], "callbacks_pending": q["callbacks"].get("pending", 0),
                "agents": {"logged_in": logged_in, "available": ag.get("available", 0),
                           "on_call": sum(ag.get(s, 0) for s in _ON_CALL), "wrap_up": ag.get("wrap_up", 0),
                           "paused": ag.get("paused", 0)},
                "target": {"fraction": sl["fraction"], "seconds": sl["seconds"]},
                "today": {"offered": offered, "answered": answered, "answered_within": within,
                          "abandoned": abandoned, "exited": exited, "waiting_past_target": late,
                          "service_level": measured,
                          "answer_rate": _ratio(answered, answered + abandoned + exited),
                          "intervals": sorted([k, *v] for k, v in day.intervals.items()) if day else []},
            })
            if logged_in == 0 and (is_open or q["waiting"]):   # after hours an empty queue is the norm
                add = {"level": "critical" if q["waiting"] else "warning", "code": "no_agent", "queue": name,
                       "text": f"NO AGENT LOGGED IN for {name}" + (f": {q['waiting']} caller(s) waiting"
                                                                    if q["waiting"] else "")}
                alarms.append(add)
            if measured is not None and measured < sl["fraction"]:
                alarms.append({"level": "warning", "code": "service_level", "queue": name,
                               "text": f"SERVICE LEVEL {name}: {math.floor(measured * 100)} % today, target "
                                       f"{sl['fraction'] * 100:.0f} % in {sl['seconds']:g} s"})
        alarms.sort(key=lambda a: a["level"] != "critical")   # stable: critical first, each in its order
        return {
            "format": FORMAT, "seq": self.bus.seq, "server_time": unix, "engine_time": now,
            "day_start": midnight, "interval": INTERVAL,
            "current_interval": (lt.tm_hour * 60 + lt.tm_min) * 60 // INTERVAL,
            "service": self._service(status["service"]),
            "alarms": alarms, "queues": queues, "callers": self._callers(status, now),
            "agents": self._agents(status, now),
        }

    @staticmethod
    def _service(svc: Mapping[str, Any]) -> Dict[str, Any]:
        ami = svc["ami"]
        ha = svc.get("ha") or {}
        return {"state": svc["state"], "uptime": svc["uptime"], "role": ha.get("role", "primary"),
                "node": ha.get("node"),
                "ami": "disabled" if not ami["enabled"] else "connected" if ami["connected"] else "down",
                "journal": "up" if svc["journal"]["up"] else "down", "agi_sessions": svc["fastagi"]["active"]}

    def _callers(self, status: Mapping[str, Any], now: float) -> Dict[str, Any]:
        rows = []
        for call, st in status["calls"].items():
            kind = _IN_LINE.get(st)
            if kind is None:
                continue
            facts = self.today.open_call(call)
            queue = self.app.call_queue.get(call) or (facts.queue_now if facts is not None else None)
            rows.append({"call": call, "queue": queue, "kind": kind, "state": st,
                         "priority": facts.priority if facts is not None else None,
                         "wait": max(0.0, now - facts.arrival) if facts is not None else None})
        rows.sort(key=lambda r: -(r["wait"] if r["wait"] is not None else -1.0))
        return {"total": len(rows), "shown": rows[:MAX_CALLERS]}

    def _agents(self, status: Mapping[str, Any], now: float) -> List[Dict[str, Any]]:
        out = []
        for agent, a in sorted(status["agents"].items()):
            since = self.today.agent_since(agent, now)
            state = a["state"]
            reason = a.get("reason") or (f"{a['after_call']} after this call" if a.get("after_call") else "")
            out.append({"id": agent, "state": state, "reason": reason or None, "call": a.get("call"),
                        "answered": a.get("answered", 0), "dial": a.get("dial"),
                        "in_state": max(0.0, now - since[1]) if since is not None and since[0] == state else None})
        return out
