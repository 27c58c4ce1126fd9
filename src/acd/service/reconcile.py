"""Reconciliation: the service mirrors the PBX, and the PBX is the truth.

The engine's view of calls and agents drifts from Asterisk's whenever a
message is lost -- a stop, a crash, an AMI outage, a dialplan that never
reported back.  :class:`Reconciler` lists the live channels
(``CoreShowChannels``) and the device states (``DeviceStateList``) and ends
what no longer exists, through ordinary journaled engine commands:

* a ringing (``offered``) call whose caller channel is gone is withdrawn (its
  agent is freed); one whose caller is bridged was answered (the report was
  lost): ``answer``;
* a ``connected`` call whose channel is gone is completed (the agent goes to
  wrap-up, then carries out a pause or log-out it asked for);
* a call-back being dialled (``dialing_back``) is looked up by its dial's
  ``ChannelId``: gone -> ``callback_failed`` (retried per the queue's policy),
  up -> ``callback_answered``, ringing -> left to ring (watched);
* a caller waiting in line with no AGI session whose channel is gone is
  withdrawn (the reason is the outage, not the caller's patience);
* an available agent whose device is unavailable is paused.

It runs at start, after every AMI (re)connection and after the journal comes
back.  Calls touched while the listing was in flight are left for the next
pass.  Each pass that changes something is journaled as a ``reconciled``
note (what, why), so that reports can tell.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from ..adapters.asterisk.ami import AMIError
from ..errors import AcdError, ProtocolError
from .logs import event

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("Reconciler",)

log = logging.getLogger("acd.service")

_UP = "6"   # ChannelState of an answered channel


class Reconciler:
    def __init__(self, app: "Dispatcher") -> None:
        self.app = app
        self._lock = asyncio.Lock()
        self.passes = 0
        self.last: Optional[Dict[str, Any]] = None
        self.error: Optional[str] = None   # why the last listing failed

    async def channels(self) -> Optional[Dict[str, Mapping[str, str]]]:
        """Live channels by Uniqueid, or None when Asterisk cannot be asked."""
        ami = self.app.ami
        if ami is None or not ami.connected:
            return None
        try:
            resp = await ami.action("CoreShowChannels")
        except (AMIError, ProtocolError) as exc:
            hint = (": give the manager user 'reporting' in its write permissions (manager.conf: "
                    "write = originate,call,reporting)" if "ermission" in str(exc) else "")
            self.error = f"cannot list Asterisk's channels: {exc}{hint}"
            event(log, logging.ERROR, "reconcile_failed", self.error)
            return None
        self.error = None
        return {ev["Uniqueid"]: ev for ev in resp.events if ev.get("Uniqueid")}

    async def run(self, why: str) -> bool:
        """One pass; False when Asterisk could not be asked (nothing was changed then)."""
        async with self._lock:
            start = self.app.clock()
            before = dict(self.app.commands.engine.calls()) if self.app.commands.engine is not None else {}
            channels = await self.channels()
            if channels is None or not self.app.accepting:
                return False
            actions = self._apply(channels, before, start)
            await self._devices()
            self.passes += 1
            self.last = {"why": why, "channels": len(channels), "actions": actions}
            if actions:
                event(log, logging.WARNING, "reconciled", f"reconciled with Asterisk ({why}): "
                      f"{len(actions)} change(s)", why=why, actions=actions)
                try:
                    self.app.commands.note("reconciled", {"why": why, "actions": actions})
                except AcdError:
                    pass
            else:
                event(log, logging.INFO, "reconciled", f"reconciled with Asterisk ({why}): nothing to change",
                      why=why, channels=len(channels))
            return True

    def _apply(self, channels: Mapping[str, Mapping[str, str]], before: Mapping[Any, str],
               start: float) -> List[Dict[str, Any]]:
        app = self.app
        actions: List[Dict[str, Any]] = []

        def do(op: str, call: Any, why: str) -> None:
            if app.try_command(op, call, why):
                actions.append({"call": str(call), "op": op, "why": why})

        for call, was in before.items():
            state = app.commands.call_state(call)
            if state != was or app.touched_since(call, start):
                continue   # moved while Asterisk was being asked: the next pass sees it
            key = str(call)
            if state == "waiting":
                w = app.waiters.get(key)
                if (w is None or w.session is None) and key not in channels:
                    app.waiters.drop(key)
                    do("withdraw", call, "its channel is gone and no AGI session holds it")
            elif state == "offered":
                ch = channels.get(key)
                if ch is None:
                    do("withdraw", call, "the caller's channel is gone while the agent rang")
                elif ch.get("BridgeId"):
                    do("answer", call, "the caller is bridged: the agent answered (the report was lost)")
            elif state == "connected":
                entry = app.ledger.entries.get(call)
                leg = entry.dial.id if entry is not None and entry.dial is not None else key
                if leg not in channels and key not in channels:
                    do("complete", call, "its channels are gone")
            elif state == "dialing_back":
                entry = app.ledger.entries.get(call)
                dial = entry.dial if entry is not None else None
                if dial is not None and dial.phase in ("sending", "waiting") and call in app.dialler.tasks:
                    continue   # this process is dialling it: the Originate's answer settles it
                if dial is None:
                    do("callback_failed", call, "no dial of it is known")
                    continue
                ch = channels.get(dial.id)
                if ch is None:
                    do("callback_failed", call, "its agent leg is gone (never answered)")
                elif ch.get("ChannelState") == _UP:
                    app.dialler.result(call, dial, None)
                    actions.append({"call": key, "op": "callback_answered", "why": "its agent leg is up"})
                else:
                    dial.phase, dial.since = "ringing", app.clock()   # watched: Hangup/Newstate, then timeout
        return actions

    async def _devices(self) -> None:
        ami = self.app.ami
        if ami is None or not ami.connected or not self.app.device_agents:
            return
        try:
            resp = await ami.action("DeviceStateList")
        except (AMIError, ProtocolError) as exc:
            log.debug("DeviceStateList failed: %s", exc)
            return
        for ev in resp.events:
            self.app.on_device_state(ev)
