"""The agents' feature codes over FastAGI: ``agent_login``, ``agent_logout``,
``agent_pause``, ``agent_ready``.

The agent is named by ``agent=`` or recognised by caller id (the directory's
``callerid`` numbers, then its id, then the last part of its dial string).
Every route sets ``ACD_AGENT``, ``ACD_AGENT_STATE`` (after the command) and
``ACD_DEFERRED``: ``1`` when a log-out or pause asked during a call waits for
the call (and its wrap-up) to be over -- the dialplan should then say so
rather than "logged out" -- else ``0``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Dict, Mapping

from ..adapters.asterisk.agi import AGISession
from ..errors import InvalidInput, UnknownAgent
from . import prompts
from .agi_routes import check_args
from .config import AgentEntry

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("AgentRoutes", "REASON")

REASON = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")


class AgentRoutes:
    def __init__(self, app: "Dispatcher") -> None:
        self.app = app

    def _agent_for(self, session: AGISession, args: Mapping[str, str]) -> AgentEntry:
        agents = self.app.agents
        agent = args.get("agent")
        if agent:
            entry = agents.get(agent)
            if entry is None:
                raise UnknownAgent(f"agent {agent!r} is not in the [[agents]] directory")
            return entry
        cid = session.env.callerid or ""
        directory = self.app.config.agents
        for a in directory:
            if cid in a.callerid:
                return a
        entry = agents.get(cid)
        if entry is not None:
            return entry
        for a in directory:
            if a.dial.rpartition("/")[2] == cid:
                return a
        raise UnknownAgent(f"no agent in the [[agents]] directory matches caller id {cid!r} (pass agent=...)")

    async def _done(self, session: AGISession, entry: AgentEntry, text: str, deferred: bool = False) -> None:
        await session.set_variable("ACD_AGENT", entry.id)
        await session.set_variable("ACD_AGENT_STATE", self.app.commands.agent_state(entry.id) or "logged_out")
        await session.set_variable("ACD_DEFERRED", "1" if deferred else "0")
        await session.set_variable("ACD_STATUS", "OK")
        await prompts.verbose(session, f"acd: agent {entry.id} {text}")

    async def login(self, session: AGISession, args: Dict[str, str]) -> None:
        """Log in (``agent=`` or the caller id; skills and queues from the directory)."""
        check_args("agent_login", args, ("agent",))
        entry = self._agent_for(session, args)
        self.app.login(entry.id)
        skills = ", ".join(f"{k}={v}" for k, v in sorted(entry.skills.items())) or "none"
        queues = ", ".join(entry.queues) if entry.queues is not None else "all"
        await self._done(session, entry, f"logged in (skills {skills}; queues {queues})")

    async def logout(self, session: AGISession, args: Dict[str, str]) -> None:
        """Log out; during a call (ringing or talking) once it is over: ``ACD_DEFERRED=1``."""
        check_args("agent_logout", args, ("agent",))
        entry = self._agent_for(session, args)
        deferred = self.app.on_call(entry.id)
        self.app.logout(entry.id)
        await self._done(session, entry, "logged out after the current call" if deferred else "logged out",
                         deferred)

    async def pause(self, session: AGISession, args: Dict[str, str]) -> None:
        """Pause (``reason=``, default ``break``); during a call once it and its wrap-up
        are over: ``ACD_DEFERRED=1``."""
        check_args("agent_pause", args, ("agent", "reason"))
        reason = args.get("reason") or "break"
        if not REASON.match(reason):
            raise InvalidInput(f"reason must be 1 to 64 letters, digits, '_', '.', '-', got {reason!r}")
        entry = self._agent_for(session, args)
        deferred = self.app.on_call(entry.id)
        self.app.pause(entry.id, reason)
        await self._done(session, entry, f"paused ({reason}){' after the current call' if deferred else ''}",
                         deferred)

    async def ready(self, session: AGISession, args: Dict[str, str]) -> None:
        """Ready again: ends a pause or the wrap-up; during a call, withdraws a pause or
        log-out asked for."""
        check_args("agent_ready", args, ("agent",))
        entry = self._agent_for(session, args)
        self.app.ready(entry.id)
        await self._done(session, entry, "ready")
