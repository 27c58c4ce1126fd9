"""The post-call satisfaction survey: who is asked, what they answered, and the ``survey`` route.

Who: a share (``[survey] share``) of answered calls, chosen by a hash of the
call id (:func:`selected`), so that a retried route or a restarted service
asks the same callers.  ``enqueue`` tells the dialplan (``ACD_SURVEY=1``
with the agent it found); after the agent hangs up, the caller's side of
``Dial(...,g)`` runs the ``survey`` route.

What: a score 1..5 and, when ``[survey] solved`` is on, "was your problem
solved? 1 yes 2 no".  Each question waits ``timeout`` seconds for a digit and
is asked again ``retries`` times after no digit or a wrong one.  The outcome
is journaled as a ``survey`` note against the call, the agent who answered it
and its queue (both from the journal, not from the dialplan)::

    {"call": "1700000000.1", "agent": "1001", "queue": "support",
     "answered": true, "score": 4, "solved": true, "reason": "answered"}

``answered`` is false and ``score`` null when no valid score was given
(``reason``: ``no_input``, ``invalid``, ``hangup`` or ``failed`` -- a prompt
that could not be played); ``solved`` is null when not asked or not
answered.  :class:`acd.journal.calls.CallLog` turns notes into the call
records' ``csat`` / ``solved`` columns and :mod:`acd.kpi` into CSAT figures.
"""

from __future__ import annotations

import collections
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .._core import Assign
from ..adapters.asterisk.agi import AGICommandFailed, AGISession, ChannelHungUp
from . import prompts
from .logs import event

if TYPE_CHECKING:
    from .app import Dispatcher
    from .config import SurveyConfig

__all__ = ("NOTE_SURVEY", "SurveyLog", "Answered", "selected", "run_survey", "SCORES", "SOLVED")

log = logging.getLogger("acd.service")

NOTE_SURVEY = "survey"
SCORES = "12345"
SOLVED = {"1": True, "2": False}
#: answered calls remembered after they ended: a survey follows its call within seconds
KEEP_ENDED = 10_000
_ENDS = ("complete", "abandon", "withdraw")
_HANGUP_GRACE = 0.5   # seconds a failed GET DATA waits for Asterisk's HANGUP line


def selected(call: str, share: float) -> bool:
    """Whether ``call`` is in the surveyed ``share`` (0..1) of calls: a hash of its id, not a draw,
    so the answer is the same after a retry or a restart (and across nodes of a pair)."""
    digest = hashlib.blake2b(str(call).encode("utf-8"), digest_size=8, person=b"acd-survey").digest()
    return int.from_bytes(digest, "big") < share * 2.0 ** 64


@dataclass
class Answered:
    """An answered call as the survey needs it: who answered, in which queue, surveyed yet."""

    agent: str
    queue: str
    surveyed: bool = False


class SurveyLog:
    """Projection (see :mod:`.commands`): the agent and queue of answered calls, and which ones
    have their ``survey`` note -- the same after a restart as before it."""

    def __init__(self, keep: int = KEEP_ENDED) -> None:
        self.keep = keep
        self._offered: Dict[Any, Tuple[str, str]] = {}       # ringing call -> (agent, queue)
        self.live: Dict[Any, Answered] = {}                   # connected calls
        self.ended: "collections.OrderedDict[Any, Answered]" = collections.OrderedDict()

    def get(self, call: Any) -> Optional[Answered]:
        return self.live.get(call) or self.ended.get(call)

    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op == "note":
            if args and args[0] == NOTE_SURVEY and isinstance(args[1], dict):
                a = self.get(args[1].get("call"))
                if a is not None:
                    a.surveyed = True
            return
        call = args[0] if args else None
        if op == "answer":
            offer = self._offered.pop(call, None)
            if offer is not None:
                self.live[call] = Answered(*offer)
                self.ended.pop(call, None)   # the same id answered again: a new entry
        elif op in ("ring_no_answer", "reject"):
            self._offered.pop(call, None)
        elif op in _ENDS:
            self._offered.pop(call, None)
            a = self.live.pop(call, None)
            if a is not None:
                self.ended[call] = a
                self.ended.move_to_end(call)
                while len(self.ended) > self.keep:
                    self.ended.popitem(last=False)
        for d in decisions:
            if isinstance(d, Assign):     # DialBack (a call-back) is not surveyed: no caller channel
                self._offered[d.call] = (str(d.agent), d.queue)


async def _ask(session: AGISession, cfg: "SurveyConfig", prompt: str, valid: str) -> Tuple[Optional[str], str]:
    """One question: (the digit, "answered") or (None, why: ``no_input`` / ``invalid``).
    ChannelHungUp and AGICommandFailed go to the caller."""
    why = "no_input"
    for attempt in range(1 + cfg.retries):
        if attempt and why == "invalid":
            await prompts.play(session, cfg.invalid)
        digits = await session.get_data(prompt, timeout=cfg.timeout, max_digits=1)
        if digits and digits in valid:
            return digits, "answered"
        why = "invalid" if digits else "no_input"
    return None, why


async def run_survey(app: "Dispatcher", session: AGISession, call: str) -> None:
    """The ``survey`` route's work once its arguments are checked (see CallRoutes.survey)."""
    cfg = app.config.survey
    skip = ""
    answered = app.survey.get(call)
    state = app.commands.call_state(call)
    if not cfg.enabled:
        skip = "the survey is disabled ([survey] enabled = false)"
    elif call in app.ledger.entries:
        skip = "a call-back (its caller's channel is gone)"
    elif answered is None:
        skip = "not an answered call (or answered too long ago)"
    elif answered.surveyed:
        skip = "already surveyed"
    elif not selected(call, cfg.share):
        skip = f"not in the surveyed share ({cfg.share:g})"
    if skip:
        await session.set_variable("ACD_SURVEY_STATUS", "SKIPPED")
        await prompts.verbose(session, f"acd: call {call}: no survey: {skip}")
        return
    assert answered is not None
    if state == "connected":
        # the caller's side runs this after Dial returned: the agent has hung up, the talk is over
        app.complete(call)
    note: Dict[str, Any] = {"call": call, "agent": answered.agent, "queue": answered.queue, "answered": False,
                            "score": None, "solved": None, "reason": "no_input"}
    try:
        try:
            score, note["reason"] = await _ask(session, cfg, cfg.question, SCORES)
            if score is not None:
                note.update(answered=True, score=int(score))
                if cfg.solved:
                    yes_no, _ = await _ask(session, cfg, cfg.solved_question, "".join(SOLVED))
                    note["solved"] = SOLVED.get(yes_no or "")
        except AGICommandFailed as exc:
            # Asterisk answers a hang-up during GET DATA with result=-1, its HANGUP line a moment
            # later (tests/data/asterisk22/agi-10); a missing sound file gives -1 too, and no HANGUP
            note["reason"] = "hangup" if await session.wait_hangup(_HANGUP_GRACE) else "failed"
            if note["reason"] == "failed":
                event(log, logging.WARNING, "survey_failed", f"survey of call {call}: {exc}", call=call)
    except ChannelHungUp:
        note["reason"] = "hangup"
        _journal(app, note)
        raise
    _journal(app, note)
    if note["reason"] == "hangup" or session.hung_up:
        raise ChannelHungUp(f"call {call}: caller hung up during the survey")
    if note["answered"]:
        await prompts.play(session, cfg.thanks)
    await session.set_variable("ACD_SURVEY_STATUS", "ANSWERED" if note["answered"] else "NOT_ANSWERED")
    await session.set_variable("ACD_SURVEY_SCORE", str(note["score"] or ""))
    await prompts.verbose(session, f"acd: call {call} survey: {note['reason']}, score {note['score']}")


def _journal(app: "Dispatcher", note: Dict[str, Any]) -> None:
    app.commands.note(NOTE_SURVEY, note)
    event(log, logging.INFO, "survey", f"call {note['call']} survey: {note['reason']}"
          f"{'' if note['score'] is None else ', score ' + str(note['score'])}", **note)
