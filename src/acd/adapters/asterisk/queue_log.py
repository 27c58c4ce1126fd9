"""Asterisk's ``queue_log`` format: one line per queue event, read and written.

A line is ``TIME|CALLID|QUEUE|AGENT|EVENT|DATA1|DATA2|...``: ``TIME`` in unix
seconds, ``CALLID`` the caller channel's uniqueid (``NONE`` for pauses),
``QUEUE`` and ``AGENT`` ``NONE`` where they do not apply.  The events and data
fields as a real Asterisk 22.10.1 wrote them
(``tests/data/asterisk22/queue_log-app_queue.log``; docs/queue-log.md):

=====================  ====================================================
``ENTERQUEUE``         url | caller number | position (| caller name)
``CONNECT``            hold (s) | the answering member channel's uniqueid |
                       ring time of that member's last attempt (s)
``COMPLETECALLER``,    hold (s) | talk (s) | position at entry
``COMPLETEAGENT``
``ABANDON``,           position | position at entry | wait (s)
``EXITWITHTIMEOUT``,
``EXITEMPTY``
``EXITWITHKEY``        key | position | position at entry | wait (s)
``WITHDRAW``           position | position at entry | wait (s) | info
``RINGNOANSWER``,      ring time (**ms**)
``RINGCANCELED``
``BLINDTRANSFER``      exten | context | hold | talk | position at entry
``ATTENDEDTRANSFER``   kind | kind's field(s) | hold | talk | position
``ADDMEMBER``,         (empty, or ``PAUSED``); the agent field is the
``REMOVEMEMBER``       interface unless ``log_membername_as_agent = yes``
``PAUSEALL``,          reason; queue ``NONE``, then one ``PAUSE`` /
``UNPAUSEALL``         ``UNPAUSE`` line per queue of the member
``PAUSE``, ``UNPAUSE``  reason (the unpause's own)
``AGENTLOGIN``,        app_agent_pool's log-in and log-out
``AGENTLOGOFF``
=====================  ====================================================

app_queue has no word for what a call-back queue does, so ``acd`` adds
events of its own, named ``ACD...`` so that tools written for app_queue pass
over them: ``ACDCALLBACKOFFERED`` (estimated wait, s), ``ACDCALLBACKACCEPTED``
(position | position at entry | wait), ``ACDCALLBACKSCHEDULED`` (the slot,
unix s), ``ACDCALLBACKDIALLED`` (attempt; the agent rung for it),
``ACDCALLBACKREACHED`` and ``ACDCALLBACKFAILED`` (the call ends: no attempt
reached the customer).

:class:`QueueLogReader` turns a file into the call records and agent
intervals of :mod:`acd.kpi`, so that ``acd report --queue-log`` measures a
day of app_queue (or of ``acd``) with the code that measures ``acd``'s own.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from ...errors import InvalidInput
from ...journal.calls import _ABANDONED, _ANSWERED, _CB_FAILED, _EXITED, CallFacts, CallLog

__all__ = ("QueueLogLine", "parse_line", "format_line", "clean_field", "QueueLogReader", "read_queue_log",
           "ACD_EVENTS")

ACD_EVENTS = ("ACDCALLBACKOFFERED", "ACDCALLBACKACCEPTED", "ACDCALLBACKSCHEDULED", "ACDCALLBACKDIALLED",
              "ACDCALLBACKREACHED", "ACDCALLBACKFAILED")

# an exit in one queue then an entry in another, this close together (s), is one call overflowing
OVERFLOW_GAP = 2


class QueueLogLine(NamedTuple):
    time: int
    callid: str
    queue: str
    agent: str
    event: str
    data: Tuple[str, ...]


def parse_line(line: str) -> Optional[QueueLogLine]:
    """One line of a queue_log, or None if it is not one (a blank or garbled line)."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        return None
    try:
        t = int(parts[0].split(".", 1)[0])    # some set-ups write fractional times
    except ValueError:
        return None
    if not parts[4]:
        return None
    return QueueLogLine(t, parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


def clean_field(value: Any) -> str:
    """A value fit for one field: no separator, no line break (they would shift every field after)."""
    return str(value).replace("|", "_").replace("\n", " ").replace("\r", " ")


def format_line(t: float, callid: Any, queue: Any, agent: Any, event: str, *data: Any) -> str:
    """One line (with its newline); ``t`` is rounded down to the second, as Asterisk writes it."""
    fields = [str(int(math.floor(t))), clean_field(callid), _or_none(queue), _or_none(agent), event]
    fields += [clean_field(d) for d in data]
    return "|".join(fields) + "\n"


def _or_none(value: Any) -> str:
    return "NONE" if value is None or value == "" else clean_field(value)     # agent 0 is an agent


class QueueLogReader(CallLog):
    """Call records and agent intervals from queue_log lines (``feed`` them in file order).

    The results have :class:`~acd.journal.calls.CallLog`'s shape, in unix
    seconds (its ``clock`` is the identity).  What a queue_log does not hold:
    priorities (0), wrap-up times (0: ``aht`` is talk time alone), ring
    stretches of agents (their time ringing counts as available).  Agents are
    the file's member names; an agent first seen in a call or pause event
    counts as logged in from then (a file may start in the middle of a day).
    """

    def __init__(self) -> None:
        super().__init__(engine=None)
        self.clock = [(0.0, 0.0)]
        self.lines = 0
        self.skipped = 0                    # lines that are not queue_log lines
        self._exited: Dict[str, Tuple[CallFacts, int]] = {}   # callid -> (call, time) of its last exit
        self._member_of: Dict[str, Set[str]] = {}
        self._paused: Set[str] = set()
        self._talking: Set[str] = set()

    def feed(self, lines: Iterable[str]) -> None:
        for raw in lines:
            line = parse_line(raw)
            if line is None:
                if raw.strip():
                    self.skipped += 1
                continue
            self.lines += 1
            self._line(line)

    # -- one line
    def _line(self, ln: QueueLogLine) -> None:
        now = float(ln.time)
        self.last = max(self.last, now)
        if self.first is None:
            self.first = now
        ev = ln.event
        agent = ln.agent if ln.agent not in ("", "NONE") else None
        if ev == "ENTERQUEUE":
            self._enter_queue(ln, now)
            return
        if ev in ("AGENTLOGIN", "ADDMEMBER"):
            if agent is not None:
                self._member_of.setdefault(agent, set()).add(ln.queue)
                if ln.data[:1] == ("PAUSED",):             # added paused
                    self._paused.add(agent)
                self._agent_to(agent, self._resting(agent), now)
            return
        if ev in ("AGENTLOGOFF", "REMOVEMEMBER"):
            if agent is not None:
                queues = self._member_of.get(agent, set())
                queues.discard(ln.queue)
                if ev == "AGENTLOGOFF" or not queues:
                    self._member_of.pop(agent, None)
                    self._paused.discard(agent)
                    self._agent_to(agent, "logged_out", now)
            return
        if ev in ("PAUSE", "PAUSEALL", "UNPAUSE", "UNPAUSEALL"):
            if agent is not None:
                if ev.startswith("PAUSE"):
                    self._paused.add(agent)
                else:
                    self._paused.discard(agent)
                if agent not in self._talking:   # a pause during a call starts when it ends
                    self._agent_to(agent, self._resting(agent), now)
            return
        c = self._open.get(ln.callid)
        if c is None:
            return                              # a call that entered before the file starts, or not a call
        if ev == "CONNECT":
            if math.isnan(c.answered):
                c.answered = now
            if agent is not None:
                c.agent = agent
                self._talking.add(agent)
                self._agent_to(agent, "busy", now)
        elif ev in ("COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"):
            c.transferred = ev.endswith("TRANSFER")
            self._end(c, now, _ANSWERED)
            self._call_over(c.agent, now)
        elif ev == "ABANDON":
            self._end(c, now, _ABANDONED)
        elif ev in ("EXITWITHTIMEOUT", "EXITEMPTY"):
            self._end(c, now, _EXITED)
            self._exited[ln.callid] = (c, ln.time)
        elif ev in ("EXITWITHKEY", "WITHDRAW"):
            self._end(c, now, _EXITED)
        elif ev == "ACDCALLBACKOFFERED":
            c.cb_offered = True
        elif ev in ("ACDCALLBACKACCEPTED", "ACDCALLBACKSCHEDULED"):
            c.cb_accepted = True
        elif ev == "ACDCALLBACKDIALLED":
            c.cb_dialled = True
        elif ev == "ACDCALLBACKREACHED":
            c.cb_reached = True
        elif ev == "ACDCALLBACKFAILED":
            self._end(c, now, _CB_FAILED)

    def _enter_queue(self, ln: QueueLogLine, now: float) -> None:
        if ln.queue not in self.queue_names:
            self.queue_names.append(ln.queue)
        old = self._open.get(ln.callid)
        if old is not None:                     # entered again without leaving: a line is missing
            self._end(old, now, _EXITED)
        left = self._exited.pop(ln.callid, None)
        if left is not None and ln.time - left[1] <= OVERFLOW_GAP:
            c = left[0]                         # the same call, overflowing to another queue
            c.outcome, c.ended = -1, math.nan
            c.overflowed = True
            c.queue_now = ln.queue
            self._open[ln.callid] = c
            return
        self._enter(ln.callid, ln.queue, 0, now)

    # -- agents
    def _resting(self, agent: str) -> str:
        return "paused" if agent in self._paused else "available"

    def _call_over(self, agent: Any, now: float) -> None:
        if agent is not None and agent in self._talking:
            self._talking.discard(agent)
            self._agent_to(agent, self._resting(agent), now)

    def _agent_to(self, agent: str, state: str, now: float) -> None:
        old = self._agent_state.get(agent)
        if old is not None:
            if old[0] == state:
                return
            self._close(agent, old[0], old[1], now)
        else:
            self._agent_slot(agent)
        if state == "logged_out":
            self._agent_state.pop(agent, None)
        else:
            self._agent_state[agent] = (state, now)


def read_queue_log(path: str, *, encoding: str = "utf-8") -> QueueLogReader:
    """Read the queue_log file at ``path`` (lines that are not queue_log lines are counted and
    passed over, as tools reading a live file must)."""
    reader = QueueLogReader()
    try:
        with open(path, encoding=encoding, errors="replace", newline="") as f:
            reader.feed(f)
    except FileNotFoundError:
        raise InvalidInput(f"queue_log: no file at {path!r}") from None
    except IsADirectoryError:
        raise InvalidInput(f"queue_log: {path!r} is a directory, not a queue_log file") from None
    except OSError as exc:
        raise InvalidInput(f"queue_log: cannot read {path!r}: {exc.strerror or exc}") from None
    return reader
