"""Call-backs: the ledger of numbers and attempts, and the dialler (AMI Originate).

**Ledger.**  A caller who accepts a call-back leaves a number; the service
journals it as a ``callback_number`` note before the engine command, and
:class:`CallbackLedger` (a projection, see :mod:`.commands`) keeps, per
call, the number, the queue, the dials made so far and the current dial.
Everything in it comes from the journal, so a restart finds it as it was.

**Exactly once.**  Every dial gets a channel id derived from the journal:
``acd-<journal id>-<seq>-<k>``, the record whose decisions held the
``DialBack`` and its rank among them.  The Originate sets it as the agent
leg's ``ChannelId`` (and ``ACD_CALLBACK_ID`` for the dialplan), so the leg
can be found in Asterisk after a restart or a lost AMI link, instead of
being dialled again.  A dial whose outcome was not received (the process
stopped, the link dropped) is *in doubt*: it is resolved by looking the
channel up (:mod:`.reconcile`), never by dialling again.  A late answer is
honoured: an agent leg reported answered while the engine still has the
call-back dialling is connected; reported for a dial the service had given
up on, it ends the pending retry (the customer was reached).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .._core import DialBack, Exit
from ..adapters.asterisk.ami import AMIError, AMIOriginateFailed, AMIOutcomeUnknown
from ..errors import AcdError, InvalidInput, ProtocolError
from ..journal import CALL_COMMANDS
from .logs import event

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("CallbackLedger", "CallbackEntry", "Dial", "Dialler", "NUMBER", "NOTE_NUMBER", "NOTE_NOT_REACHED")

log = logging.getLogger("acd.service")

NUMBER = re.compile(r"\+?[0-9]{2,24}\Z")
NOTE_NUMBER = "callback_number"
#: the agent's leg answered but the customer did not: ``{call, status, attempts, retry}``, before the complete
NOTE_NOT_REACHED = "callback_not_reached"
_RELEASED = ("callback_failed", "ring_no_answer", "reject")


@dataclass
class Dial:
    """One dial of the agent's leg."""

    id: str                 # the Originate's ChannelId
    attempt: int            # the engine's DialBack.attempt
    agent: str
    queue: str
    seq: int                # the journal record that decided it
    #: what this process knows: "replayed" (decided before a restart: look it up), "waiting" (to be sent),
    #: "sending" (Originate in flight), "in_doubt" (sent, outcome unknown), "answered"
    phase: str = "replayed"
    since: float = 0.0      # clock time of the last phase change


@dataclass
class CallbackEntry:
    call: Any
    number: str
    queue: str
    attempts: int = 0                    # agent legs dialled for this call-back, retries included
    dial: Optional[Dial] = None
    history: List[str] = field(default_factory=list)   # ids of earlier dials (late reports)


class CallbackLedger:
    """Per call-back: number, queue, dials; a projection of the journal."""

    def __init__(self) -> None:
        self.entries: Dict[Any, CallbackEntry] = {}
        self.by_dial: Dict[str, Any] = {}
        self.journal_id = "0"
        self.live = False          # False while replaying: dials found then are "replayed"
        self.clock = lambda: 0.0

    def apply(self, seq: int, op: str, args: Tuple[Any, ...], decisions: List[Any]) -> None:
        if op == "note":
            if args[0] == NOTE_NUMBER and isinstance(args[1], dict):
                d = args[1]
                old = self.entries.get(d["call"])
                new = CallbackEntry(d["call"], d["number"], d["queue"], int(d.get("attempts", 0)))
                if old is not None:
                    new.history = old.history
                self.entries[d["call"]] = new
            return
        call = args[0] if op in CALL_COMMANDS else None
        entry = self.entries.get(call) if call is not None else None
        if op in ("complete", "abandon", "withdraw"):
            self._forget(call)
        elif entry is not None and op in _RELEASED:
            self._end_dial(entry)
        elif entry is not None and op == "callback_answered" and entry.dial is not None:
            entry.dial.phase = "answered"
        for k, d in enumerate(decisions):
            if isinstance(d, DialBack):
                e = self.entries.get(d.call)
                if e is None:
                    continue
                self._end_dial(e)
                e.attempts += 1
                e.dial = Dial(f"acd-{self.journal_id}-{seq}-{k}", d.attempt, str(d.agent), d.queue, seq,
                              "waiting" if self.live else "replayed", self.clock())
                self.by_dial[e.dial.id] = d.call
            elif isinstance(d, Exit):
                self._forget(d.call)

    def _end_dial(self, entry: CallbackEntry) -> None:
        if entry.dial is not None:
            self.by_dial.pop(entry.dial.id, None)
            entry.history = (entry.history + [entry.dial.id])[-8:]
            entry.dial = None

    def _forget(self, call: Any) -> None:
        entry = self.entries.pop(call, None)
        if entry is not None and entry.dial is not None:
            self.by_dial.pop(entry.dial.id, None)

    def dials(self) -> List[Tuple[Any, Dial]]:
        return [(c, e.dial) for c, e in self.entries.items() if e.dial is not None]

    def in_doubt(self) -> List[Tuple[Any, Dial]]:
        return [(c, d) for c, d in self.dials() if d.phase in ("replayed", "in_doubt")]


class Dialler:
    """Sends the Originate of each DialBack and reports its outcome to the engine."""

    def __init__(self, app: "Dispatcher") -> None:
        self.app = app
        self.tasks: Dict[Any, asyncio.Task[None]] = {}
        self.closed = False

    def start(self, d: DialBack) -> None:
        if self.closed:
            event(log, logging.WARNING, "dialback_deferred", f"call-back {d.call} not dialled: the service is "
                  "stopping; the next start finds it undialled and retries it", call=d.call)
            return
        entry = self.app.ledger.entries.get(d.call)
        dial = entry.dial if entry is not None else None
        task = asyncio.get_running_loop().create_task(self._dial(d, entry, dial), name=f"acd-dialback-{d.call}")
        self.tasks[d.call] = task
        call = d.call
        task.add_done_callback(lambda t: self._done(call, t))

    def _done(self, call: Any, task: "asyncio.Task[None]") -> None:
        if self.tasks.get(call) is task:
            del self.tasks[call]
        if not task.cancelled() and task.exception() is not None:
            log.error("call-back task failed", exc_info=task.exception(),
                      extra={"acd": {"event": "dialback_error", "call": call}})

    async def stop(self) -> None:
        """Cancel dials in flight: they stay in doubt (looked up at the next start), never failed."""
        self.closed = True
        tasks = list(self.tasks.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _dial(self, d: DialBack, entry: Optional[CallbackEntry], dial: Optional[Dial]) -> None:
        app = self.app
        cfg = app.config.callback
        agent = app.agents.get(str(d.agent))
        ami = app.ami
        why: Optional[str] = None
        if entry is None or dial is None:
            why = "no call-back number is known for this call"
        elif agent is None:
            why = f"agent {d.agent!r} is not in the [[agents]] directory (no dial string)"
        elif ami is None:
            why = "the asterisk manager is disabled ([ami] enabled = false)"
        else:
            if not ami.connected:
                try:
                    await ami.wait_connected(timeout=min(5.0, cfg.ring_timeout))
                except AMIError:
                    why = "not connected to the asterisk manager"   # nothing was sent: safe to retry
            if why is None:
                dial.phase, dial.since = "sending", app.clock()
                try:
                    await ami.originate(
                        agent.dial, context=cfg.context, exten=cfg.exten, priority=cfg.priority,
                        timeout=cfg.ring_timeout, caller_id=f'"call-back {d.queue}" <{entry.number}>',
                        variables={"ACD_CALL": str(d.call), "ACD_CALLBACK_NUMBER": entry.number,
                                   "ACD_QUEUE": d.queue, "ACD_AGENT": str(d.agent), "ACD_ATTEMPT": d.attempt,
                                   "ACD_CALLBACK_ID": dial.id},
                        fields={"ChannelId": dial.id, "OtherChannelId": f"{dial.id}-2"})
                except AMIOriginateFailed as exc:
                    why = f"the agent's leg failed: {exc}"
                except AMIOutcomeUnknown as exc:
                    self._in_doubt(d, dial, str(exc))
                    return
                except asyncio.CancelledError:
                    self._in_doubt(d, dial, "the service is stopping")
                    raise
                except (AMIError, ProtocolError, InvalidInput, OSError) as exc:
                    why = f"originate failed: {exc}"
        current = self.app.ledger.entries.get(d.call)
        if current is not entry or (entry is not None and entry.dial is not dial):
            return   # already settled by a report from the dialplan (callback_answered, call_end)
        self.result(d.call, dial, why)

    def _in_doubt(self, d: DialBack, dial: Dial, why: str) -> None:
        if dial.phase != "answered":
            dial.phase, dial.since = "in_doubt", self.app.clock()
        event(log, logging.WARNING, "dialback_in_doubt", f"call-back {d.call} (dial {dial.id}): outcome unknown "
              f"({why}); it is looked up in Asterisk before anything else is done", call=d.call, dial=dial.id)

    def result(self, call: Any, dial: Optional[Dial], why: Optional[str]) -> None:
        """The agent leg answered (``why`` None) or failed: tell the engine, once."""
        app = self.app
        if app.commands.call_state(call) != "dialing_back":
            return
        try:
            if why is None:
                if dial is not None:
                    dial.phase = "answered"
                app.callback_answered(call)
            else:
                event(log, logging.WARNING, "dialback_failed", f"call-back {call} (dial "
                      f"{dial.id if dial else '?'}) failed: {why}", call=call, why=why,
                      dial=dial.id if dial else None)
                app.callback_failed(call)
        except AcdError as exc:
            event(log, logging.WARNING, "dialback_unrecorded", f"call-back {call}: result not recorded: {exc}",
                  call=call)
