"""Nothing waits for ever: offers and dials whose outcome never arrives.

Once a second :class:`Watchdog` looks at

* **offers** (``Assign``) with no ``dial_result`` after ``[service]
  dial_report_timeout`` seconds (the dialplan's AGI client died, Asterisk
  restarted, a custom dialplan forgot to report): with AMI, the caller's
  channel decides -- gone: withdrawn; bridged: answered; still ringing:
  released; without AMI the offer is released as a ring-no-answer (the call
  goes back in line at its place, the agent follows the engine's
  ring-no-answer rule);
* **dials in doubt** (a call-back's agent leg whose outcome was not received,
  or replayed from the journal): looked up in Asterisk once the ring time plus
  a margin has passed, and again every few seconds while it cannot be;
* **the journal coming back** after a write failure: a reconciliation pass,
  since what Asterisk reported meanwhile was refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Dict

from ..errors import AcdError
from .logs import event

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("Watchdog", "DIAL_MARGIN")

log = logging.getLogger("acd.service")

#: seconds past the call-back ring time before a dial in doubt is looked up
DIAL_MARGIN = 10.0
_RETRY_LOOKUP = 5.0


class Watchdog:
    def __init__(self, app: "Dispatcher", interval: float = 1.0) -> None:
        self.app = app
        self.interval = interval
        self.offers: Dict[Any, float] = {}      # offered call -> clock time of its offer
        self._journal_was_up = True
        self._warned: set = set()
        self._next_lookup = 0.0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the watch
                log.exception("watchdog check failed")

    async def check(self) -> None:
        app = self.app
        if not app.accepting:
            return
        now = app.clock()
        up = app.commands.journal_up
        if not up:
            try:       # the journal retries a write once its back-off has passed: recovery needs no traffic
                app.advance()
            except AcdError:    # still down: try again next time
                pass
            up = app.commands.journal_up
        if up and not self._journal_was_up:
            event(log, logging.WARNING, "journal_recovered", "the journal accepts writes again; reconciling "
                  "with Asterisk (reports refused meanwhile are looked up)")
            asyncio.get_running_loop().create_task(app.reconciler.run("journal recovered"))
        self._journal_was_up = up
        if not up:
            return
        await self._offers(now)
        self._dials(now)

    async def _offers(self, now: float) -> None:
        app = self.app
        limit = app.config.service.dial_report_timeout
        late = []
        for call, since in list(self.offers.items()):
            if app.commands.call_state(call) != "offered":
                del self.offers[call]
            elif now - since >= limit:
                late.append(call)
        if not late:
            return
        channels = await app.reconciler.channels()
        for call in late:
            if self.offers.pop(call, None) is None or app.commands.call_state(call) != "offered":
                continue
            ch = channels.get(str(call)) if channels is not None else None
            if ch is not None and ch.get("Application") == "Dial" and not ch.get("BridgeId"):
                # Asterisk still rings the agent: the dialplan's Dial() timeout is longer than ours
                self.offers[call] = now
                if call not in self._warned:
                    self._warned.add(call)
                    event(log, logging.WARNING, "dial_still_ringing", f"call {call}: no dial_result after "
                          f"{limit:g} s but Asterisk is still dialling the agent; waiting for it (set [service] "
                          "dial_report_timeout above the dialplan's Dial() timeout)", call=call)
                continue
            if channels is not None and ch is None:
                app.try_command("withdraw", call, f"no dial_result within {limit:g} s and the caller is gone")
            elif ch is not None and ch.get("BridgeId"):
                app.try_command("answer", call, f"no dial_result within {limit:g} s but the caller is bridged")
            else:
                app.waiters.detach(str(call), app.call_queue.get(call, ""), None)
                app.try_command("ring_no_answer", call, f"no dial_result within {limit:g} s "
                                f"({'the caller still rings' if ch is not None else 'Asterisk cannot be asked'})")

    def _dials(self, now: float) -> None:
        app = self.app
        if app.ami is None or now < self._next_lookup:
            return
        due = app.config.callback.ring_timeout + DIAL_MARGIN
        for call, dial in app.ledger.dials():
            if dial.phase in ("replayed", "in_doubt", "ringing") and now - dial.since >= due \
                    and app.commands.call_state(call) == "dialing_back":
                self._next_lookup = now + (_RETRY_LOOKUP if app.ami.connected else 6 * _RETRY_LOOKUP)
                if app.ami.connected:
                    asyncio.get_running_loop().create_task(app.reconciler.run("call-back dial in doubt"))
                else:
                    event(log, logging.WARNING, "dial_unresolved", f"call-back {call}: dial {dial.id} is in doubt "
                          "and AMI is down; the agent stays reserved until Asterisk can be asked (end it from "
                          "the supervisor API if needed)", call=call, dial=dial.id)
                return
