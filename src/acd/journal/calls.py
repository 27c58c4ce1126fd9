"""Call records of production, rebuilt from a journal (the input of ``acd report``).

:class:`CallLog` is a projection like the service's counters: an observer
that sees every journal record with the decisions its replay produced, and
keeps one :data:`acd.kpi.CALL_RECORD` row per call that entered a queue and
one :data:`acd.kpi.AGENT_INTERVAL` row per stretch an agent spent in one
state -- the same columns the simulator writes, so :mod:`acd.kpi` measures
real days and simulated ones with the same code.

Field by field (``now`` is the command's time, in engine time: seconds that
resume where the journal stopped at each restart; :func:`to_unix` places
them on the wall clock by the ``clock`` notes the service journals at each
start):

* ``arrival``: the ``enqueue``; ``queue``: the queue it entered (overflows set
  ``overflowed``); ``priority``: the enqueue's (0 when it gave none).
* ``answered``: ``answer`` (``callback_answered`` for a call-back: the
  customer picked up); ``agent``: who answered; ``talk``: ``ended - answered``.
* ``ended`` and ``outcome``: ``complete`` (answered), ``abandon`` (abandoned;
  a call-back whose dial-back failed for good: ``Exit`` with reason
  ``callback_failed``), ``Exit`` (exited), ``withdraw`` (exited: the PBX took
  the call away).  ``wrap``: the wrap-up of the queue that answered.
* ``cb_offered``: the engine decided ``OfferCallback``; ``cb_accepted``:
  ``accept_callback`` or ``schedule_callback``; ``cb_dialled``: a
  ``DialBack``; ``cb_reached``: ``callback_answered``.
* ``transferred`` stays False: the journal does not say which call a new
  entry continues.
* ``surveyed``, ``csat``, ``solved``: the service's ``survey`` note about the
  call (journaled after the call ended; it goes to the call's latest entry):
  ``csat`` is its ``score`` (NaN when none was given), ``solved`` 1.0 / 0.0
  for its ``solved`` true / false (NaN when not asked or not answered).

A call id that enters again after its call ended is a new row (a caller
retrying, an AGI session withdrawn and re-entered).  Calls still open when
the journal ends are left out of :meth:`CallLog.records` and counted in
:attr:`CallLog.open_calls`, unless ``close_open`` asks for the simulator's
rule (ended at the last record: exited, or call-back failed).

A live reader (the service's wallboard) builds it with ``keep=False``: ended
calls and finished agent stretches are then dropped instead of kept, so that
memory follows the calls open now, and ``listener(fact, call)`` hears each
fact as it becomes known (``"enter"``, ``"answer"``, ``"end"``, with the
:class:`CallFacts` of the call).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:   # numpy loads with the results only: the service reads this module live without it
    import numpy as np

from .._core import Assign, DialBack, Exit, OfferCallback, Overflow
from .engine import NOW_AT as _NOW_AT

__all__ = ("CallLog", "CallFacts", "WallClock", "replay_journal", "to_unix")

# kpi's codes (acd.kpi.OUTCOMES / AGENT_STATES), written out: kpi imports numpy-heavy modules lazily
_ANSWERED, _ABANDONED, _EXITED, _CB_FAILED = 0, 1, 2, 3
_AGENT_CODE = {"available": 0, "reserved": 1, "busy": 2, "wrap_up": 3, "paused": 4}

_AGENT_OPS = ("login", "logout", "ready", "pause", "set_agent")


class CallFacts:
    """What the journal says of one call so far (engine times; NaN: not yet)."""

    __slots__ = ("id", "queue", "queue_now", "priority", "arrival", "answered", "ended", "outcome", "agent",
                 "wrap", "overflowed", "transferred", "cb_offered", "cb_accepted", "cb_dialled", "cb_reached",
                 "surveyed", "csat", "solved")

    def __init__(self, call_id: Any, queue: str, priority: int, arrival: float) -> None:
        self.id = call_id
        self.queue = self.queue_now = queue
        self.priority = priority
        self.arrival = arrival
        self.answered = math.nan
        self.ended = math.nan
        self.outcome = -1
        self.agent: Any = None
        self.wrap = 0.0
        self.overflowed = self.transferred = False
        self.cb_offered = self.cb_accepted = self.cb_dialled = self.cb_reached = False
        self.surveyed = False
        self.csat = self.solved = math.nan


class CallLog:
    """Observer ``(seq, op, args, decisions)`` building call records and agent intervals.

    ``engine``: the engine the records are replayed into, read after each
    record for the agents' states (None: no agent intervals).
    """

    def __init__(self, engine: Any = None, *, keep: bool = True,
                 listener: Optional[Callable[[str, CallFacts], None]] = None) -> None:
        self.engine = engine
        self.keep = keep
        self.listener = listener
        self.queue_names: List[str] = []
        self._wrap: Dict[str, float] = {}
        #: queue -> its service-level time (seconds), as configured
        self.service_levels: Dict[str, float] = {}
        self._calls: List[CallFacts] = []
        self._open: Dict[Any, CallFacts] = {}
        self._latest: Dict[Any, CallFacts] = {}              # call id -> its latest entry (survey notes)
        self.agent_names: List[Any] = []
        self._agent_index: Dict[Any, int] = {}
        self._agent_state: Dict[Any, Tuple[str, float]] = {}   # logged-in agent -> (state, since)
        self._intervals: List[Tuple[int, int, float, float]] = []
        self._wrap_until: Dict[Any, float] = {}              # agent -> end of its wrap-up (an engine timer)
        self._offered: set[Any] = set()                       # agents offered a call by this record
        #: ``(queue, unix time)`` of each call refused outside opening hours (its "closed" notes)
        self.closed: List[Tuple[str, float]] = []
        #: ``(queue, reason, engine time)`` of each Exit decision (max_wait, callback_failed, and the
        #: queue-state rules' full, no_agents, wait_too_long: docs/queue-rules.md)
        self.exits: List[Tuple[str, str, float]] = []
        #: ``(engine time, unix time)`` of each start of the service (its "clock" notes)
        self.clock: List[Tuple[float, float]] = []
        self.first: Optional[float] = None                    # engine time of the first timed record
        self.last = 0.0                                       # ... and of the last one

    # -- the observer
    def __call__(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op in ("add_queue", "update_queue"):
            q = args[0]
            if op == "add_queue":
                self.queue_names.append(q["name"])
            self._wrap[q["name"]] = float(q.get("wrap_up") or 0.0)
            if q.get("service_level"):
                self.service_levels[q["name"]] = float(q["service_level"][1])
            if op == "add_queue":
                return
        if op == "note":
            if args and args[0] == "clock" and isinstance(args[1], dict):
                self.clock.append((float(args[1]["engine"]), float(args[1]["unix"])))
            elif args and args[0] == "survey" and isinstance(args[1], dict):
                self._survey(args[1])
            elif args and args[0] == "closed" and isinstance(args[1], dict) and "unix" in args[1]:
                self.closed.append((str(args[1].get("queue", "")), float(args[1]["unix"])))
            return
        at = _NOW_AT.get(op)
        if at is None:
            return                                             # skills
        now = float(args[at])
        self.last = max(self.last, now)
        if self.first is None:
            self.first = now
        touched: List[Any] = []
        if op == "enqueue":
            self._tell("enter", self._enter(args[0], args[1], args[3] if len(args) > 3 else None, now))
        elif op == "schedule_callback":
            booked = self._enter(args[0], args[1], args[4] if len(args) > 4 else None, now)
            booked.cb_accepted = True
            self._tell("enter", booked)
        elif op in _AGENT_OPS:
            touched.append(args[0])
        elif op in ("update_queue", "remove_queue"):
            pass                                               # live reconfiguration: its decisions below
        else:
            c = self._open.get(args[0]) if op != "advance" else None
            if c is not None:
                touched.append(c.agent)
                if op == "answer":
                    c.answered = now
                    self._tell("answer", c)
                elif op == "callback_answered":
                    c.answered = now
                    c.cb_reached = True
                    self._tell("answer", c)
                elif op == "accept_callback":
                    c.cb_accepted = True
                elif op == "complete":
                    self._end(c, now, _ANSWERED)
                    c.wrap = self._wrap.get(c.queue_now, 0.0)
                    if c.agent is not None:
                        self._wrap_until[c.agent] = now + c.wrap
                elif op == "abandon":
                    self._end(c, now, _ABANDONED)
                elif op == "withdraw":
                    self._end(c, now, _EXITED)
        for d in decisions:
            fc = self._open.get(d.call)
            if isinstance(d, (Assign, DialBack)):
                touched.append(d.agent)
                self._offered.add(d.agent)     # a new offer starts a new stretch, even ringing again
                if fc is not None:
                    fc.agent = d.agent
                    fc.queue_now = d.queue
                    fc.cb_dialled |= isinstance(d, DialBack)
            elif fc is None:
                continue
            elif isinstance(d, Overflow):
                fc.overflowed = True
                fc.queue_now = d.to_queue
            elif isinstance(d, Exit):
                self.exits.append((d.queue, d.reason, now))
                failed = fc.cb_accepted and d.reason == "callback_failed"
                self._end(fc, now, _CB_FAILED if failed else _EXITED)
            elif isinstance(d, OfferCallback):
                fc.cb_offered = True
        if self.engine is not None:
            if op == "advance":   # timers: wrap-ups and ring time-outs end, pauses after a no-answer
                touched.extend(a for a, (s, _) in self._agent_state.items() if s in ("reserved", "wrap_up", "paused"))
            for a in touched:
                if a is not None:
                    self._agent_now(a, now)
        self._offered.clear()

    def _enter(self, call_id: Any, queue: str, priority: Any, now: float) -> CallFacts:
        c = CallFacts(call_id, queue, int(priority) if priority is not None else 0, now)
        if self.keep:
            self._calls.append(c)
            self._latest[call_id] = c
        self._open[call_id] = c
        return c

    def _survey(self, note: Dict[str, Any]) -> None:
        """A ``survey`` note: the scores of the call's latest entry (ended by then, as a rule)."""
        c = self._latest.get(note.get("call"))
        if c is None:
            return
        score, solved = note.get("score"), note.get("solved")
        c.surveyed = True
        c.csat = float(score) if isinstance(score, int) and not isinstance(score, bool) else math.nan
        c.solved = float(solved) if isinstance(solved, bool) else math.nan

    def _tell(self, fact: str, c: CallFacts) -> None:
        if self.listener is not None:
            self.listener(fact, c)

    def _end(self, c: CallFacts, now: float, outcome: int) -> None:
        c.ended = now
        c.outcome = outcome
        self._open.pop(c.id, None)
        self._tell("end", c)

    def _agent_now(self, agent: Any, now: float) -> None:
        state = self.engine.agent_state(agent)
        old = self._agent_state.get(agent)
        if old is not None and old[0] == state and not (state == "reserved" and agent in self._offered):
            return
        if old is not None:
            end = now
            if old[0] == "wrap_up":   # it ended on the engine's timer, maybe before this record
                end = max(old[1], min(now, self._wrap_until.get(agent, now)))
                if end < now and state != "logged_out":   # the stretch between: available
                    self._close(agent, "wrap_up", old[1], end)
                    old = ("available", end)
                    end = now
                    if state == "available":
                        self._agent_state[agent] = old
                        return
            self._close(agent, old[0], old[1], end)
        if state == "logged_out":
            self._agent_state.pop(agent, None)
        else:
            self._agent_state[agent] = (state, now)

    def _close(self, agent: Any, state: str, start: float, end: float) -> None:
        if end > start and self.keep:
            self._intervals.append((self._agent_slot(agent), _AGENT_CODE[state], start, end))

    def _agent_slot(self, agent: Any) -> int:
        slot = self._agent_index.get(agent)
        if slot is None:
            slot = self._agent_index[agent] = len(self.agent_names)
            self.agent_names.append(agent)
        return slot

    # -- live reads
    def open_call(self, call_id: Any) -> Optional[CallFacts]:
        """The facts of a call still open (waiting, ringing, connected, waiting for a call-back)."""
        return self._open.get(call_id)

    def agent_since(self, agent: Any, now: float) -> Optional[Tuple[str, float]]:
        """``(state, since)`` of a logged-in agent at engine time ``now`` (None: logged out).
        A wrap-up whose timer fell before ``now`` is ``available`` since that timer."""
        got = self._agent_state.get(agent)
        if got is None:
            return None
        state, since = got
        if state == "wrap_up":
            until = self._wrap_until.get(agent)
            if until is not None and until <= now:
                return "available", max(since, until)
        return got

    # -- results
    @property
    def open_calls(self) -> int:
        """Calls still waiting, ringing, connected or waiting for a call-back at the last record."""
        return len(self._open)

    def call_ids(self, close_open: bool = False) -> List[Any]:
        return [c.id for c in self._calls if close_open or c.outcome >= 0]

    def records(self, close_open: bool = False) -> np.ndarray:
        """The calls as a :data:`acd.kpi.CALL_RECORD` array, in the order they entered."""
        import numpy as np

        from ..sim.records import call_record_array

        rows = [c for c in self._calls if close_open or c.outcome >= 0]
        qindex = {q: i for i, q in enumerate(self.queue_names)}
        # calls still open (close_open): the simulator's rule, ended at the last record
        ended = [c.ended if c.outcome >= 0 else self.last for c in rows]
        outcome = [c.outcome if c.outcome >= 0 else (_CB_FAILED if c.cb_accepted else _EXITED) for c in rows]
        answered = np.array([c.answered for c in rows], dtype=float)
        out = call_record_array(
            len(rows), call=np.arange(len(rows)), queue=[qindex.get(c.queue, -1) for c in rows],
            priority=[c.priority for c in rows], arrival=[c.arrival for c in rows], answered=answered,
            ended=ended, outcome=outcome,
            agent=[self._agent_slot(c.agent) if o == _ANSWERED and c.agent is not None else -1
                   for c, o in zip(rows, outcome)],
            wrap=[c.wrap for c in rows], overflowed=[c.overflowed for c in rows],
            transferred=[c.transferred for c in rows],
            cb_offered=[c.cb_offered for c in rows], cb_accepted=[c.cb_accepted for c in rows],
            cb_dialled=[c.cb_dialled for c in rows], cb_reached=[c.cb_reached for c in rows],
            surveyed=[c.surveyed for c in rows], csat=[c.csat for c in rows], solved=[c.solved for c in rows])
        talk = out["talk"]
        np.subtract(out["ended"], out["answered"], out=talk)
        talk[np.isnan(talk)] = 0.0
        return out

    def agent_intervals(self, until: Optional[float] = None) -> np.ndarray:
        """The agents' states as :data:`acd.kpi.AGENT_INTERVAL` rows; agents still logged in
        are counted up to ``until`` (default: the last record)."""
        import numpy as np

        from ..kpi import AGENT_INTERVAL

        end = self.last if until is None else until
        rows = list(self._intervals)
        for a, (state, since) in self._agent_state.items():
            slot = self._agent_slot(a)
            if state == "wrap_up":       # its timer may fall before the end: available after it
                wrapped = max(since, min(end, self._wrap_until.get(a, end)))
                if wrapped > since:
                    rows.append((slot, _AGENT_CODE[state], since, wrapped))
                state, since = "available", wrapped
            if end > since:
                rows.append((slot, _AGENT_CODE[state], since, end))
        out = np.zeros(len(rows), dtype=AGENT_INTERVAL)
        if rows:
            arr = np.array(rows, dtype=float)
            out["agent"], out["state"], out["start"], out["end"] = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
        return out


class WallClock:
    """Engine times on the wall clock by the last ``clock`` note seen, for a projection that follows
    the journal in order (:func:`to_unix` places a whole array by every note)."""

    __slots__ = ("anchor",)

    def __init__(self) -> None:
        self.anchor: Optional[Tuple[float, float]] = None     # (engine time, unix time) of the last start

    def note(self, data: Dict[str, Any]) -> None:
        """A ``clock`` note's data: ``{"engine": ..., "unix": ...}``."""
        self.anchor = (float(data["engine"]), float(data["unix"]))

    def unix(self, engine_time: float) -> Optional[float]:
        """The unix time of ``engine_time``; None before the first note."""
        if self.anchor is None:
            return None
        return self.anchor[1] + (engine_time - self.anchor[0])


def to_unix(times: np.ndarray, clock: List[Tuple[float, float]]) -> np.ndarray:
    """Engine times as unix times, by the last clock anchor at or before each (the first one
    before it); NaN stays NaN.  ``clock`` must not be empty."""
    import numpy as np

    anchors = sorted(clock)
    eng = np.array([a[0] for a in anchors])
    unix = np.array([a[1] for a in anchors])
    t = np.asarray(times, dtype=float)
    k = np.clip(np.searchsorted(eng, t, side="right") - 1, 0, len(anchors) - 1)
    return unix[k] + (t - eng[k])


def replay_journal(journal: Any, make_observer: Any, engine_factory: Any = None, *,
                   upto: Optional[int] = None) -> Any:
    """Replay every durable record of ``journal`` (up to seq ``upto`` if given) into a fresh engine
    without writing anything; ``make_observer(engine)`` gives the observer that sees each record.
    Returns the observer."""
    from .._core import Engine
    from ..errors import JournalError
    from .engine import apply_record

    options = journal.get_meta("engine_options")
    if options is None:
        raise JournalError(f"{journal.path!r} holds no acd journal (no engine options)")
    engine = (engine_factory or Engine)(**options)
    observer = make_observer(engine)
    for seq, op, args in journal.records():
        if upto is not None and seq > upto:
            break
        observer(seq, op, args, apply_record(engine, journal.path, seq, op, args))
    return observer
