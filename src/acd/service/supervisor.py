"""Supervisor actions: unstick an agent or a call by hand.

Reconciliation and the watchdog end what Asterisk says is gone; a supervisor
sometimes knows better (a phone unplugged, a call-back number that will never
answer).  Every action is ordinary journaled engine commands plus a
``supervisor`` note naming the action, its target, who asked and what was
done, so that a report of the day shows it.

* :meth:`Supervisor.end_call` -- connected: completed; ringing: withdrawn (the
  agent is freed); a call-back being dialled: failed (retried per the queue's
  policy); waiting or a call-back not yet dialled: withdrawn.
* :meth:`Supervisor.logout` / :meth:`Supervisor.ready` -- at once, even when
  the agent holds a call: that call is ended first as above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from ..errors import AcdError, InvalidState, UnknownAgent, unknown_call

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("Supervisor",)

_END = {"connected": "complete", "offered": "withdraw", "dialing_back": "callback_failed", "waiting": "withdraw",
        "callback_pending": "withdraw", "callback_retry": "withdraw", "scheduled": "withdraw"}


class Supervisor:
    def __init__(self, app: "Dispatcher") -> None:
        self.app = app

    def end_call(self, call: str, by: str) -> Dict[str, Any]:
        did = self._end(call)
        return self._record("end_call", {"call": call}, by, did)

    def logout(self, agent: str, by: str) -> Dict[str, Any]:
        did = self._free(agent)
        self.app.logout(agent)
        did.append({"op": "logout", "agent": agent})
        return self._record("logout", {"agent": agent}, by, did)

    def ready(self, agent: str, by: str) -> Dict[str, Any]:
        did = self._free(agent)
        if self.app.commands.agent_state(agent) in ("paused", "wrap_up"):
            self.app.ready(agent)
            did.append({"op": "ready", "agent": agent})
        elif not did and self.app.commands.agent_state(agent) == "available":
            raise InvalidState(f"agent {agent!r} is already available")
        return self._record("ready", {"agent": agent}, by, did)

    def _free(self, agent: str) -> List[Dict[str, Any]]:
        """End the call an agent holds (if any)."""
        app = self.app
        if app.commands.agent_state(agent) in (None, "logged_out"):
            raise UnknownAgent(f"agent {agent!r} is not logged in")
        assert app.engine is not None
        held = app.engine.snapshot()["agents"].get(agent, {}).get("call")
        return self._end(str(held)) if held is not None else []

    def _end(self, call: str) -> List[Dict[str, Any]]:
        app = self.app
        state = app.commands.call_state(call)
        if state is None:
            raise unknown_call(call)
        op = _END.get(state)
        if op is None:
            raise InvalidState(f"cannot end call {call!r}: it is {state}")
        app.waiters.drop(call)
        app.command(op, call)
        return [{"op": op, "call": call, "was": state}]

    def _record(self, action: str, target: Dict[str, Any], by: str, did: List[Dict[str, Any]]) -> Dict[str, Any]:
        note = {"action": action, **target, "by": by, "did": did}
        try:
            self.app.commands.note("supervisor", note)
        except AcdError:
            pass   # the commands are journaled; only the audit line is missing (the journal just failed)
        return note
