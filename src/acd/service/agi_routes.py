"""The FastAGI routes of a call: ``enqueue``, ``dial_result``, ``call_end``, ``survey``, and
the call-back context's ``callback_answered`` and ``callback_result``.

Each route's docstring says what it does and which channel variables it sets;
``examples/asterisk/README.md`` has the same as a table, and
``examples/asterisk/extensions.conf`` shows where the dialplan calls each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from .._core import Announce, Assign, Exit, OfferCallback
from .._validate import MAX_PREFERRED
from ..adapters.asterisk.agi import AGICommandFailed, AGISession, ChannelHungUp
from ..errors import AcdError, DuplicateId, InvalidInput, InvalidState, Shutdown, UnknownCall, unknown_call, \
    unknown_queue
from . import prompts
from .callbacks import NOTE_NOT_REACHED, NUMBER
from .calls import RELEASE, CallWaiter
from .logs import event
from .survey import run_survey, selected

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("CallRoutes", "DIAL_STATUSES", "check_args", "int_arg")

log = logging.getLogger("acd.service")

#: ${DIALSTATUS} -> engine command for ``dial_result``
DIAL_STATUSES: Mapping[str, str] = {
    "ANSWER": "answer", "NOANSWER": "ring_no_answer", "BUSY": "reject", "CONGESTION": "reject",
    "CHANUNAVAIL": "reject", "DONTCALL": "reject", "TORTURE": "reject", "INVALIDARGS": "reject",
    "CANCEL": "abandon",
}
LIVE = ("waiting", "offered")
CALLBACK_STATES = ("callback_pending", "callback_retry", "scheduled", "dialing_back")
_REPORTABLE = CALLBACK_STATES + ("connected",)   # states a call-back report may name a stale dial in
_WAIT_SLICE = 5.0  # seconds between checks that an idle AGI link is still usable


def check_args(route: str, args: Mapping[str, str], allowed: Tuple[str, ...], prefix: str = "") -> None:
    unknown = sorted(k for k in args if k not in allowed and not (prefix and k.startswith(prefix)))
    if unknown:
        raise InvalidInput(f"unknown argument(s) {unknown!r} for {route} (allowed: {', '.join(allowed)}"
                           f"{', ' + prefix + '<skill>' if prefix else ''})")


def int_arg(name: str, value: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an int in {lo}..{hi}, got {value!r}") from None
    if not lo <= n <= hi:
        raise InvalidInput(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    return n


def call_arg(session: AGISession, args: Mapping[str, str], *, required: bool = False) -> str:
    call = args.get("call") or ("" if required else session.env.uniqueid)
    if not call:
        raise InvalidInput("argument 'call' is required (call=${ACD_CALL})" if required else
                           "no call id: the AGI environment has no agi_uniqueid and no call= argument was given")
    if len(call) > 128 or not call.isprintable():
        raise InvalidInput(f"call must be a printable id of at most 128 characters, got {call!r}")
    return call


class CallRoutes:
    def __init__(self, app: "Dispatcher") -> None:
        self.app = app

    # ------------------------------------------------------------ enqueue
    async def enqueue(self, session: AGISession, args: Dict[str, str]) -> None:
        """Put the caller in line and hold it until an agent is found.

        Args: ``queue`` (required for a new call), ``priority`` (0..9),
        ``skill_<name>=<level>`` extra requirements, ``call`` (default
        ``agi_uniqueid``), ``preferred`` (``last``: the agent who last answered this caller number,
        see ``[preferred]``; or agent ids separated by ``,``) and ``preferred_for`` (seconds the
        call waits for them, default ``[preferred] wait``).  Ends with ``ACD_STATUS``: ``OK`` (an agent is
        found: ``ACD_AGENT``, ``ACD_AGENT_DIAL``, ``ACD_QUEUE``, ``ACD_WAIT``, and with
        ``[survey]`` enabled ``ACD_SURVEY``: 1 when the caller is to be asked the survey once the
        agent hangs up, else 0),
        ``EXIT`` (``ACD_EXIT_REASON``: ``max_wait``, the queue-state rules' ``full``, ``no_agents`` and
        ``wait_too_long`` (docs/queue-rules.md), or ``closed`` with ``ACD_NEXT_OPEN``), ``CALLBACK`` (the
        caller accepted a call-back: hang up), or ``ERROR`` (``ACD_ERROR``:
        ``SHUTDOWN`` while the service drains, ``JOURNAL_ERROR`` while it
        cannot journal...).  A call put back in line by ``dial_result``
        resumes its place when ``enqueue`` runs again.
        """
        app = self.app
        check_args("enqueue", args, ("queue", "priority", "call", "preferred", "preferred_for"), prefix="skill_")
        call = call_arg(session, args)
        queue = args.get("queue", "")
        priority = None if not args.get("priority") else int_arg("priority", args["priority"], 0, 9)
        preferred = self._preferred(args.get("preferred", ""), session.env.callerid or "")
        preferred_for = None
        if args.get("preferred_for"):
            preferred_for = float(int_arg("preferred_for", args["preferred_for"], 1, 3600))
        requirements: Dict[str, int] = {}
        for key, value in args.items():
            if key.startswith("skill_"):
                name = key[len("skill_"):]
                requirements[name] = int_arg(f"level of skill {name!r}", value, 1, 10)
        state = app.commands.call_state(call)
        existing = app.waiters.get(call)
        resume = False
        if state is not None:
            detached = existing is not None and existing.session is None
            if state == "offered" and existing is None and call in app.counters.assigns:
                # offered just before a crash, the caller never heard it: hand the offer over again
                existing = CallWaiter(call, app.counters.assigns[call].queue, session.env.callerid, None)
                existing.push(app.counters.assigns[call])
                detached = True
            if (state == "waiting" and (existing is None or detached)) or (state == "offered" and detached):
                resume = True
            else:
                raise DuplicateId(f"call {call!r} is already {state} in the acd")
        else:
            if not queue:
                raise InvalidInput("argument 'queue' is required, e.g. agi://127.0.0.1:4573/enqueue?queue=support")
            assert app.engine is not None
            if queue not in app.engine.queues:
                raise unknown_queue(queue)
        if app.draining:
            if resume:
                app.waiters.drop(call)
                app.try_command("withdraw", call, "the service is stopping")
            raise Shutdown("the ACD is stopping: no new call is taken (the dialplan's fallback takes it)")
        if not resume and await self._closed(session, call, queue):
            return
        number = session.env.callerid
        if resume:  # attach at once: the detached waiter's timer must not fire now
            w = existing or CallWaiter(call, app.call_queue.get(call, queue), number, None)
            app.waiters.attach(call, w, session, number)
            event(log, logging.INFO, "resume", f"call {call} back on hold in queue {w.queue}", call=call,
                  queue=w.queue)
        else:
            await session.answer()
            if app.commands.call_state(call) is not None or call in app.waiters:
                raise DuplicateId(f"call {call!r} is already in the acd")
            w = CallWaiter(call, queue, number, session)
            app.waiters.add(w)
            try:
                app.enqueue(call, queue, priority, requirements or None, number=number or "",
                            preferred=preferred, preferred_for=preferred_for)
            except BaseException:
                app.waiters.drop(call)
                raise
        connected = False
        hung_up = False
        try:
            if resume:
                await session.answer()
            while True:
                d = await self._next_decision(w, session)
                if d is None:
                    hung_up = True
                    raise ChannelHungUp(f"call {call}: caller hung up while waiting")
                if d is RELEASE:
                    raise Shutdown("the ACD is stopping: callers on hold are handed back to the dialplan")
                if isinstance(d, Assign):
                    await prompts.music(session, w, app.config.prompts, False)
                    entry = app.agents.get(str(d.agent))
                    dial = entry.dial if entry is not None else ""
                    if entry is None:
                        event(log, logging.ERROR, "no_dial", f"agent {d.agent} is logged in but not in the "
                              "directory; ACD_AGENT_DIAL is empty", agent=d.agent, call=call)
                    await session.set_variable("ACD_AGENT", str(d.agent))
                    await session.set_variable("ACD_AGENT_DIAL", dial)
                    await session.set_variable("ACD_QUEUE", d.queue)
                    await session.set_variable("ACD_WAIT", int(round(d.wait)))
                    survey = app.config.survey
                    if survey.enabled:    # else unset, and the wire stays as before the survey existed
                        await session.set_variable("ACD_SURVEY", "1" if selected(call, survey.share) else "0")
                    await session.set_variable("ACD_STATUS", "OK")
                    connected = True
                    await prompts.verbose(session, f"acd: call {call} -> agent {d.agent} ({dial}) after "
                                                   f"{d.wait:.0f}s in {d.queue}")
                    return
                if isinstance(d, Exit):
                    await prompts.music(session, w, app.config.prompts, False)
                    await session.set_variable("ACD_QUEUE", d.queue)
                    await session.set_variable("ACD_EXIT_REASON", d.reason)
                    await session.set_variable("ACD_STATUS", "EXIT")
                    await prompts.verbose(session, f"acd: call {call} leaves {d.queue}: {d.reason}")
                    return
                if isinstance(d, Announce):
                    await prompts.announce(session, w, app.config.prompts, d)
                elif isinstance(d, OfferCallback):
                    if await self._offer_callback(session, w):
                        return
        except ChannelHungUp:
            hung_up = True
            raise
        finally:
            app.waiters.drop_if(call, w)
            if not connected and app.accepting and app.commands.call_state(call) in LIVE:
                # the caller's own choice counts as an abandon; anything else (the link broke,
                # the service stops) withdraws the call without feeding the patience estimate
                if hung_up:
                    app.try_command("abandon", call, "the caller hung up")
                else:
                    app.try_command("withdraw", call, "its AGI session ended without an outcome")

    def _preferred(self, value: str, number: str) -> Optional[List[str]]:
        """``preferred=last`` or ``preferred=1001,1002``: the agents the call is offered to first."""
        if not value:
            return None
        if value == "last":
            agent = self.app.last_agents.lookup(number, time.time())
            return [agent] if agent is not None else None
        ids = [v.strip() for v in value.split(",")]
        if not all(ids) or len(ids) > MAX_PREFERRED:
            raise InvalidInput(f"argument 'preferred' must be 'last' or up to {MAX_PREFERRED} agent ids separated "
                               f"by ',', got {value!r}")
        return ids

    async def _closed(self, session: AGISession, call: str, queue: str) -> bool:
        """Outside the queue's opening hours (``[[schedules]]``): ``ACD_STATUS=EXIT`` with
        ``ACD_EXIT_REASON=closed`` and ``ACD_NEXT_OPEN`` (unix seconds of the next opening, empty
        if none within a year) for the prompt; the call never enters the line, and a ``closed``
        note keeps it in the journal."""
        app = self.app
        sched = app.config.schedules.get(queue)
        now = time.time()
        if sched is None or sched.is_open(now):
            return False
        opens = sched.next_open(now)
        try:
            app.commands.note("closed", {"call": call, "queue": queue, "schedule": sched.name, "next_open": opens,
                                         "unix": now})
        except AcdError as exc:   # the caller still hears that the line is closed
            event(log, logging.WARNING, "closed_note_failed", f"call {call}: could not journal its closed-hours "
                  f"arrival: {exc}", call=call)
        event(log, logging.INFO, "closed", f"call {call}: queue {queue} is closed ({sched.name}); it opens "
              f"{'at ' + time.strftime('%Y-%m-%d %H:%M', time.localtime(opens)) if opens else 'not within a year'}",
              call=call, queue=queue, schedule=sched.name, next_open=opens)
        await session.set_variable("ACD_QUEUE", queue)
        await session.set_variable("ACD_EXIT_REASON", "closed")
        await session.set_variable("ACD_NEXT_OPEN", "" if opens is None else int(opens))
        await session.set_variable("ACD_STATUS", "EXIT")
        await prompts.verbose(session, f"acd: call {call}: queue {queue} is closed ({sched.name})")
        return True

    async def _next_decision(self, w: CallWaiter, session: AGISession) -> Any:
        """The next decision for this call, or None when the caller hangs up."""
        while True:
            d = w.pop()
            if d is not None:
                return d
            if session.hung_up or not session.usable:
                return None
            await prompts.music(session, w, self.app.config.prompts, True)
            if w.items:
                continue
            w.event.clear()
            got = asyncio.ensure_future(w.event.wait())
            gone = asyncio.ensure_future(session.wait_hangup())
            try:
                await asyncio.wait((got, gone), timeout=_WAIT_SLICE, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (got, gone):
                    t.cancel()
                await asyncio.gather(got, gone, return_exceptions=True)

    async def _offer_callback(self, session: AGISession, w: CallWaiter) -> bool:
        """Play the offer and read one digit; on the accept digit, keep the caller's place
        as a call-back (``ACD_STATUS=CALLBACK``).  True when accepted."""
        app = self.app
        call = w.call
        if app.ami is None:
            log.debug("call-back offer to %s skipped: [ami] is disabled", call)
            return False
        number = w.number or ""
        if not NUMBER.match(number):
            event(log, logging.INFO, "offer_skipped", f"call-back offer to {call} skipped: caller id {number!r} "
                  "cannot be dialled back", call=call)
            return False
        if w.has_terminal():
            return False
        cb = app.config.callback
        await prompts.music(session, w, app.config.prompts, False)
        try:
            digits = await session.get_data(app.config.prompts.callback_offer, timeout=cb.offer_timeout,
                                            max_digits=1)
        except AGICommandFailed as exc:
            event(log, logging.WARNING, "prompt_failed", f"call-back offer prompt failed: {exc}", call=call)
            digits = ""
        if digits != cb.accept_digit or w.has_terminal():
            return False
        try:
            app.remember_number(call, number, w.queue, 0)
            app.accept_callback(call)
        except (InvalidState, UnknownCall) as exc:
            event(log, logging.INFO, "offer_late", f"call-back for {call} not taken: {exc}", call=call)
            return False
        await session.set_variable("ACD_QUEUE", w.queue)
        await session.set_variable("ACD_STATUS", "CALLBACK")
        await prompts.verbose(session, f"acd: call {call} will be called back at {number}")
        await prompts.play(session, app.config.prompts.callback_accepted)
        return True

    # ------------------------------------------------------------ outcomes
    async def dial_result(self, session: AGISession, args: Dict[str, str]) -> None:
        """After ``Dial(${ACD_AGENT_DIAL})``: ``status=${DIALSTATUS}``, ``call`` (default
        ``agi_uniqueid``), ``agent=${ACD_AGENT}`` (the agent that was dialled: a report about
        an offer released meanwhile is recognised).  ANSWER -> answer (no-op when already connected);
        NOANSWER -> ring_no_answer; BUSY/CONGESTION/CHANUNAVAIL -> reject;
        CANCEL -> abandon.  When the call is back in line, sets ``ACD_REQUEUE=1``:
        the dialplan runs ``enqueue`` again and the caller keeps their place."""
        app = self.app
        check_args("dial_result", args, ("call", "status", "agent"))
        call = call_arg(session, args)
        status = args.get("status", "").upper()
        op = DIAL_STATUSES.get(status)
        if op is None:
            raise InvalidInput(f"status must be one of {sorted(DIAL_STATUSES)!r} (${{DIALSTATUS}}), got "
                               f"{args.get('status', '')!r}")
        state = app.commands.call_state(call)
        if state is None:
            raise unknown_call(call)
        requeue = False
        offered_to = app.offered_agent(call) if state in ("offered", "connected") else None
        stale = bool(args.get("agent")) and offered_to is not None and args["agent"] != offered_to
        if stale and op == "answer":
            # an agent whose offer had been released (dial_report_timeout) answered after all: the
            # caller talks to them, not to the agent the call was offered to since
            event(log, logging.ERROR, "late_answer", f"call {call} was answered by agent {args['agent']} after its "
                  f"offer was released (now offered to {offered_to}); it is withdrawn: raise "
                  "[service] dial_report_timeout above the dialplan's Dial() timeout", call=call,
                  agent=args["agent"])
            app.withdraw(call)
        elif stale:
            # the report of an earlier Dial (its offer was released meanwhile): the call is in line
            # again, offered to someone else; the dialplan's next enqueue picks that offer up
            requeue = state == "offered"
            if requeue:
                app.waiters.detach(call, app.call_queue.get(call, ""), session.env.callerid)
        elif op == "answer" and state == "connected":
            pass
        elif op in ("ring_no_answer", "reject") and state == "waiting":
            requeue = True          # released already (the offer timed out): it is in line
            app.waiters.detach(call, app.call_queue.get(call, ""), session.env.callerid)
        elif op in ("ring_no_answer", "reject"):
            fresh = call not in app.waiters
            app.waiters.detach(call, app.call_queue.get(call, ""), session.env.callerid)
            try:
                getattr(app, op)(call)
            except BaseException:
                if fresh:
                    app.waiters.drop(call)
                raise
            requeue = app.commands.call_state(call) in LIVE  # in line, or already offered to another agent
        else:
            getattr(app, op)(call)
        await session.set_variable("ACD_REQUEUE", "1" if requeue else "0")
        await prompts.verbose(session, f"acd: call {call}: dial status {status} -> {op}"
                                       f"{' (back in line)' if requeue else ''}")

    async def call_end(self, session: AGISession, args: Dict[str, str]) -> None:
        """From the ``h`` extension: ``call`` (default ``agi_uniqueid``), optional
        ``status=${DIALSTATUS}``, and in the call-back context ``attempt=${ACD_CALLBACK_ID}``.
        Connected -> complete (a call-back whose status is given and is not
        ANSWER did not reach the customer: see ``callback_result``); offered ->
        complete if status is ANSWER (answer first), else abandon; waiting ->
        abandon; a call-back still dialling -> its agent had answered (this
        ``h`` runs on the agent's leg): connected, then as above; pending
        call-backs and ended calls are left alone."""
        app = self.app
        check_args("call_end", args, ("call", "status", "attempt"))
        call = call_arg(session, args)
        status = args.get("status", "").upper()
        attempt = args.get("attempt", "")
        state = app.commands.call_state(call)
        # the caller's own channel ending (its h extension, maybe late) says nothing of a call-back
        # that is being dialled or talks on the agent's leg by now
        from_caller = session.env.uniqueid == call and not attempt
        if from_caller and call in app.ledger.entries and state in _REPORTABLE:
            what = f"kept ({state}: a call-back now)"
        elif state in _REPORTABLE and self._stale(call, attempt):
            what = self._late_report(call, attempt, status, state)
        elif state == "dialing_back":
            self._agent_leg_answered(call)
            what = self._callback_outcome(call, status)
        elif state == "connected":
            what = self._callback_outcome(call, status)
        elif state == "offered" and status == "ANSWER":
            app.answer_and_complete(call)
            what = "completed"
        elif state in LIVE:
            w = app.waiters.get(call)
            if w is None or w.session is None:
                app.waiters.drop(call)
                app.abandon(call)
                what = "abandoned"
            else:
                what = "still held by its enqueue session"
        elif state in CALLBACK_STATES:
            what = f"kept ({state})"
        else:
            what = "already ended"
        await prompts.verbose(session, f"acd: call {call} end: {what}")

    async def survey(self, session: AGISession, args: Dict[str, str]) -> None:
        """After an answered ``Dial(...,g)`` on the caller's channel, when ``ACD_SURVEY=1``:
        ``call`` (default ``agi_uniqueid``).  Completes the call if it is still connected (the
        agent hung up), asks the score 1..5 (and "solved?" when configured) and journals a
        ``survey`` note (see :mod:`.survey`).  Sets ``ACD_SURVEY_STATUS``: ``ANSWERED``
        (``ACD_SURVEY_SCORE``), ``NOT_ANSWERED``, or ``SKIPPED`` (not selected, not answered,
        already surveyed, survey disabled)."""
        check_args("survey", args, ("call",))
        await run_survey(self.app, session, call_arg(session, args))

    async def callback_answered(self, session: AGISession, args: Dict[str, str]) -> None:
        """First step of the call-back context (the agent answered the Originate):
        ``call=${ACD_CALL}``, ``attempt=${ACD_CALLBACK_ID}``.  Connects the call-back in
        the engine even when the Originate's own answer was lost (AMI down, restart)."""
        app = self.app
        check_args("callback_answered", args, ("call", "attempt"))
        call = call_arg(session, args, required=True)
        attempt = args.get("attempt", "")
        state = app.commands.call_state(call)
        if state in _REPORTABLE and self._stale(call, attempt):
            what = self._late_report(call, attempt, "ANSWER", state)
        elif state == "dialing_back":
            self._agent_leg_answered(call)
            what = "connected"
        else:
            what = f"{state or 'ended'}: nothing to do"
        await prompts.verbose(session, f"acd: call-back {call} answered by the agent: {what}")

    async def callback_result(self, session: AGISession, args: Dict[str, str]) -> None:
        """From the call-back context, after dialling the customer: ``call=${ACD_CALL}``,
        ``status=${DIALSTATUS}``, ``attempt=${ACD_CALLBACK_ID}``.  ANSWER: nothing to
        do (the call-back is connected; ``call_end`` completes it).  Otherwise the
        agent was reached but not the customer: the call is completed (the agent
        goes to wrap-up) and, unless the queue's ``callback_attempts`` are used up,
        a new call-back is scheduled ``callback_retry_delay`` seconds later (a log
        line at error level names the number when giving up)."""
        app = self.app
        check_args("callback_result", args, ("call", "status", "attempt"))
        call = call_arg(session, args, required=True)
        status = args.get("status", "").upper()
        attempt = args.get("attempt", "")
        state = app.commands.call_state(call)
        if state in _REPORTABLE and self._stale(call, attempt):
            what = self._late_report(call, attempt, status, state)
        else:
            if state == "dialing_back":
                self._agent_leg_answered(call)
                state = app.commands.call_state(call)
            if status == "ANSWER" or state != "connected":
                what = f"{status or 'no status'} ({state or 'ended'})"
            else:
                what = self._callback_not_reached(call, status)
        await prompts.verbose(session, f"acd: call-back {call}: {what}")

    # ------------------------------------------------------------ call-back helpers
    def _stale(self, call: str, attempt: str) -> bool:
        """A report naming a dial other than the current one (an earlier attempt)."""
        if not attempt:
            return False
        entry = self.app.ledger.entries.get(call)
        current = entry.dial.id if entry is not None and entry.dial is not None else None
        return attempt != current

    def _late_report(self, call: str, attempt: str, status: str, state: str) -> str:
        """An earlier dial reports after the service had given up on it."""
        entry = self.app.ledger.entries.get(call)
        known = entry is not None and attempt in entry.history
        if status == "ANSWER" and known and state in ("callback_pending", "callback_retry", "scheduled"):
            # the customer was reached after all: the retry must not dial them again
            event(log, logging.WARNING, "callback_late_answer", f"call-back {call}: dial {attempt}, given up "
                  "earlier, reached the customer; the pending retry is withdrawn", call=call, dial=attempt)
            self.app.withdraw(call)
            return "reached by an earlier dial; retry withdrawn"
        return f"report of dial {attempt!r} ignored (not the current dial; call is {state})"

    def _agent_leg_answered(self, call: str) -> None:
        app = self.app
        entry = app.ledger.entries.get(call)
        app.dialler.result(call, entry.dial if entry is not None else None, None)

    def _callback_outcome(self, call: str, status: str) -> str:
        if call in self.app.ledger.entries and status and status != "ANSWER":
            return self._callback_not_reached(call, status)
        if self.app.commands.call_state(call) != "connected":
            return f"{self.app.commands.call_state(call) or 'ended'}"
        self.app.complete(call)
        return "completed"

    def _callback_not_reached(self, call: str, status: str) -> str:
        app = self.app
        entry = app.ledger.entries.get(call)
        number = entry.number if entry is not None else None
        queue = entry.queue if entry is not None else app.call_queue.get(call, "")
        attempts = entry.attempts if entry is not None else 1
        qdef = app.queue_defs.get(queue)
        retry = bool(number and qdef is not None and attempts < qdef.callback_attempts)
        # journaled: without it, the complete below reads like a customer reached (webhooks, reports)
        app.commands.note(NOTE_NOT_REACHED, {"call": call, "status": status, "attempts": attempts, "retry": retry})
        app.complete(call)
        if retry and qdef is not None and number:
            app.schedule_callback(call, queue, qdef.callback_retry_delay, number, attempts=attempts)
            return f"customer not reached ({status}); retry in {qdef.callback_retry_delay:g}s"
        event(log, logging.ERROR, "callback_gave_up", f"call-back {call} of queue {queue}: customer {number} "
              f"not reached after {attempts} attempt(s); call by hand", call=call, queue=queue, number=number)
        return f"customer not reached ({status}); giving up after {attempts} attempt(s)"
