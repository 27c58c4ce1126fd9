"""Live reload of ``acd.toml`` (SIGHUP, ``POST /api/reload``; docs/reload.md).

The new file is validated whole by :func:`~acd.service.config.load_config`; an invalid file is
refused and the running configuration kept.  The difference against the running configuration is
applied as journaled engine commands, in this order (each step may rely on the ones before):

1. skills the engine does not know yet (``add_skill``), queues new to it (``add_queue``, overflow
   targets first, as the loader orders them);
2. queues whose definition changed (``update_queue``) and logged-in agents whose skills or queues
   changed (``set_agent``), in one group commit;
3. queues no longer in the file (``remove_queue``, those no other queue overflows to first).  The
   engine refuses to remove a queue still in use (a call in it, an agent naming it): that queue is
   *kept*, running with its old definition, and the reply says why; a later reload tries again.

Sections read once at start (listen addresses, the journal, engine options, ...) are compared and
reported as ``needs_restart``; the running service keeps their old values.  The service's view of
the configuration (the :class:`Dispatcher`'s ``config``, directory and queue tables) is replaced
in one step, between two events of the loop, once the engine commands are durable.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..errors import AcdError, InvalidInput, InvalidState
from ..policy import Queue
from .commands import _META_QUEUES, queue_json
from .config import ServiceConfig, load_config
from .logs import event

if TYPE_CHECKING:
    from .app import Dispatcher

__all__ = ("LIVE_SECTIONS", "RESTART_SECTIONS", "reload_config", "plan")

log = logging.getLogger("acd.service")

#: sections a reload applies to the running service
LIVE_SECTIONS = ("skills", "queues", "agents", "prompts", "callback", "schedules", "survey", "preferred")
#: sections read once at start: a change is reported as needing a restart, and not applied
RESTART_SECTIONS = ("engine", "fastagi", "ami", "journal", "ha", "http", "service", "webhooks", "queue_log")


def _agent_profile(entry: Any) -> Tuple[Dict[str, int], Optional[List[str]]]:
    return dict(entry.skills), (sorted(entry.queues) if entry.queues is not None else None)


def _remove_args(name: str, now: float) -> Tuple[Any, ...]:
    return (name, now)


def plan(old: ServiceConfig, new: ServiceConfig, engine: Any, in_force: Dict[str, Any]) -> Dict[str, Any]:
    """What a reload from ``old`` to ``new`` does to ``engine`` (nothing applied yet).

    ``in_force``: the queue definitions (as JSON tables) the engine runs with, by name."""
    known_skills = set(engine.skills)
    skills = [s for s in list(new.skills) + [s for q in new.queues for s in q.skills] if s not in known_skills]
    skills = list(dict.fromkeys(skills))
    running = set(engine.queues)
    add = [q for q in new.queues if q.name not in running]
    update = [q for q in new.queues if q.name in running and in_force.get(q.name) != queue_json(q)]
    wanted = {q.name for q in new.queues}
    remove = [name for name in engine.queues if name not in wanted]
    old_agents = {a.id: a for a in old.agents}
    agents = []
    gone = []
    for a in new.agents:
        if engine.agent_state(a.id) == "logged_out":
            continue
        before = old_agents.get(a.id)
        if before is None or _agent_profile(before) != _agent_profile(a):
            agents.append(a)
    new_ids = {a.id for a in new.agents}
    for a in old.agents:
        if a.id not in new_ids and engine.agent_state(a.id) != "logged_out":
            gone.append(a.id)      # stays logged in as it was; cannot log in again
    restart = [name for name in RESTART_SECTIONS if getattr(old, name) != getattr(new, name)]
    return dict(skills=skills, add=add, update=update, agents=agents, remove=remove, gone=gone,
                needs_restart=restart)


def _removal_order(names: List[str], policies: Dict[str, Queue]) -> List[str]:
    """Queues to remove, those another queue to remove overflows to after that queue."""
    left = list(names)
    out: List[str] = []
    while left:
        free = [n for n in left if not any(n in policies[o].overflow_targets for o in left if o != n and o in policies)]
        if not free:          # a cycle among them: the engine refuses what it must
            free = left[:1]
        for n in free:
            left.remove(n)
            out.append(n)
    return out


def reload_config(app: "Dispatcher", by: str) -> Dict[str, Any]:
    """Reload the configuration file ``app`` was started with; returns what was done.

    Raises InvalidInput (the file is invalid: nothing changed) or InvalidState (no file, not serving)."""
    t0 = time.perf_counter()
    old = app.config
    if old.source is None:
        raise InvalidState("no configuration file to reload (the service was not started from one)")
    app.require_running()
    try:
        new = load_config(old.source)
    except InvalidInput as exc:
        event(log, logging.ERROR, "reload_refused", f"reload ({by}) refused, the running configuration is kept: {exc}",
              by=by, error=str(exc))
        raise
    cmds = app.commands
    je = cmds.engine
    assert je is not None
    stored: Dict[str, Any] = dict(je.journal.get_meta(_META_QUEUES, {}) or {})
    p = plan(old, new, je, stored)
    # 1. new skills and queues (configuration records of the journal)
    for s in p["skills"]:
        je.add_skill(s)
    for q in p["add"]:
        je.add_queue(q)
        stored[q.name] = queue_json(q)
    # 2. changed queues and logged-in agents: one group commit
    steps: List[Tuple[str, Any]] = []
    for q in p["update"]:
        steps.append(("update_queue", lambda now, q=q: (q, now)))
    for a in p["agents"]:
        skills, queues = _agent_profile(a)
        steps.append(("set_agent", lambda now, a=a, s=skills, qs=queues: (a.id, s, now, qs)))
    decisions: List[Any] = []
    if steps:
        decisions += cmds.run_all(steps)
    for q in p["update"]:
        stored[q.name] = queue_json(q)
    # 3. queues no longer configured
    policies = {q.name: q for q in old.queues}
    removed: List[str] = []
    kept: List[Dict[str, str]] = []
    for name in _removal_order(p["remove"], policies):
        try:
            decisions += cmds.run("remove_queue", functools.partial(_remove_args, name))
        except InvalidState as exc:
            kept.append({"queue": name, "reason": str(exc)})
            continue
        removed.append(name)
        stored.pop(name, None)
    je.journal.set_meta(_META_QUEUES, stored)
    # the running configuration: the new file, but the queues that could not go yet and the
    # sections that need a restart as they were
    kept_defs = tuple(q for q in old.queues if q.name in {k["queue"] for k in kept})
    running = new.replace(queues=tuple(new.queues) + kept_defs,
                          **{name: getattr(old, name) for name in p["needs_restart"]})
    app.apply_config(running)
    ms = (time.perf_counter() - t0) * 1000.0
    done = {
        "source": old.source,
        "skills_added": p["skills"],
        "queues_added": [q.name for q in p["add"]],
        "queues_updated": [q.name for q in p["update"]],
        "queues_removed": removed,
        "queues_kept": kept,
        "agents_updated": [a.id for a in p["agents"]],
        "agents_not_in_directory": p["gone"],
        "needs_restart": p["needs_restart"],
        "decisions": len(decisions),
        "milliseconds": round(ms, 3),
    }
    level = logging.WARNING if kept or p["needs_restart"] or p["gone"] else logging.INFO
    summary = (f"{len(p['add'])} queue(s) added, {len(p['update'])} updated, {len(removed)} removed, "
               f"{len(kept)} kept (in use), {len(p['agents'])} logged-in agent(s) updated")
    if p["needs_restart"]:
        summary += f"; needs a restart to apply: {', '.join(p['needs_restart'])}"
    event(log, level, "reload", f"configuration reloaded ({by}) in {ms:.1f} ms: {summary}", by=by, **{
        k: v for k, v in done.items() if k not in ("source",)})
    return done


def reload_or_log(app: "Dispatcher", by: str) -> Optional[Dict[str, Any]]:
    """For a signal handler: reload, never raising (a refusal is logged)."""
    try:
        return reload_config(app, by)
    except InvalidInput:
        return None                      # logged by reload_config
    except AcdError as exc:
        event(log, logging.ERROR, "reload_refused", f"reload ({by}) refused: {exc}", by=by, error=str(exc))
        return None
