"""Plain-Python reference model of the engine: the test oracle.

Same API and semantics as the compiled :class:`acd._core.Engine` (see
``docs/engine.md``), written for obviousness, not speed: every choice is a
scan over all agents or all waiting calls.  The differential hypothesis tests
drive both with the same commands and require identical decisions, errors and
snapshots.  It is not a fallback for users.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from . import errors
from ._core import Assign, Exit, Overflow
from ._validate import (agent_queues, agent_skills, call_requirements, check_id, check_now, check_reason,
                        engine_options, merge_requirements)
from .errors import InvalidInput
from .policy import Queue, check_name, check_priority

MASK64 = (1 << 64) - 1


class SplitMix64:
    """The seeded generator both engines use (splitmix64, 53-bit uniforms)."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def uniform(self) -> float:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z = z ^ (z >> 31)
        return (z >> 11) * (1.0 / 9007199254740992.0)


class _Queue:
    def __init__(self, policy: Queue) -> None:
        self.policy = policy
        self.name = policy.name
        self.steps = [(s.after, s.requirement_tuple, s.overflow, s.priority_boost) for s in policy.steps]
        self.counters = dict(entered=0, answered=0, abandoned=0, exited=0, overflowed=0)


class _Agent:
    def __init__(self, ident: Any, seq: int, skills: Dict[str, int], queues: Optional[Tuple[str, ...]],
                 now: float) -> None:
        self.id = ident
        self.seq = seq
        self.skills = skills
        self.queues = queues
        self.state = "available"
        self.reason = ""
        self.since = now          # time of the last state change
        self.login = now
        self.key = 0.0            # idle ordering key, fixed when it became available
        self.timer: Optional[float] = None
        self.call: Any = None
        self.answered = 0
        self.busy_time = 0.0      # reserved + busy + wrap-up
        self.last_offered = 0


class _Call:
    def __init__(self, ident: Any, seq: int, queue: _Queue, priority: int,
                 extra: Tuple[Tuple[str, int], ...], now: float) -> None:
        self.id = ident
        self.seq = seq
        self.queue = queue
        self.priority = priority
        self.extra = extra
        self.arrival = now
        self.entry = now
        self.step = 0
        self.state = "waiting"
        self.agent: Optional[_Agent] = None


_BUSY_STATES = ("reserved", "busy", "wrap_up")


class ReferenceEngine:
    """Oracle implementation of :class:`acd.Engine`."""

    def __init__(self, *, agent_strategy: str = "longest_idle", seed: int = 0, ring_no_answer: str = "pause",
                 no_answer_delay: float = 0.0, reject_delay: float = 0.0) -> None:
        (self.agent_strategy, self.seed, self.rna_action, self.no_answer_delay,
         self.reject_delay) = engine_options(agent_strategy, seed, ring_no_answer, no_answer_delay, reject_delay)
        self._rng = SplitMix64(seed)
        self._now = 0.0
        self._skills: Dict[str, int] = {}
        self._queues: Dict[str, _Queue] = {}
        self._agents: Dict[Any, _Agent] = {}
        self._calls: Dict[Any, _Call] = {}
        self._call_seq = 0
        self._agent_seq = 0
        self._offers = 0
        self._pending: List[Any] = []

    # ------------------------------------------------------------ configuration
    @property
    def now(self) -> float:
        return self._now

    def add_skill(self, name: str) -> None:
        check_name("skill name", name)
        if name not in self._skills:
            self._skills[name] = len(self._skills)

    def add_queue(self, queue: Queue) -> None:
        if not isinstance(queue, Queue):
            raise InvalidInput(f"queue must be an acd.Queue, got {queue!r}")
        if queue.name in self._queues:
            raise errors.DuplicateId(f"queue {queue.name!r} is already configured")
        for target in queue.overflow_targets:
            if target not in self._queues:
                raise errors.unknown_queue(target)
        for s in queue.skills:
            self.add_skill(s)
        self._queues[queue.name] = _Queue(queue)

    @property
    def skills(self) -> Tuple[str, ...]:
        return tuple(self._skills)

    @property
    def queues(self) -> Tuple[str, ...]:
        return tuple(self._queues)

    # ------------------------------------------------------------ helpers
    def _requirements(self, c: _Call) -> Tuple[Tuple[str, int], ...]:
        return merge_requirements(c.queue.steps[c.step][1], c.extra)

    def _eligible(self, a: _Agent, c: _Call) -> bool:
        if a.queues is not None and c.queue.name not in a.queues:
            return False
        return all(a.skills.get(s, 0) >= lvl for s, lvl in self._requirements(c))

    def _eff_priority(self, c: _Call, now: float) -> int:
        ageing = c.queue.policy.ageing
        if ageing is None:
            return c.priority
        return min(9, c.priority + int(math.floor((now - c.entry) / ageing)))

    def _deadline(self, c: _Call) -> Optional[float]:
        """Offset of the next time event of a waiting call, and whether it is the max-wait exit."""
        nxt = self._next_offset(c)
        return None if nxt is None else c.entry + nxt[0]

    def _next_offset(self, c: _Call) -> Optional[Tuple[float, bool]]:
        steps = c.queue.steps
        step_off = steps[c.step + 1][0] if c.step + 1 < len(steps) else None
        mw = c.queue.policy.max_wait
        if mw is not None and (step_off is None or mw <= step_off):
            return (mw, True)
        if step_off is None:
            return None
        return (step_off, False)

    def _set_state(self, a: _Agent, state: str, now: float, reason: str = "") -> None:
        if a.state in _BUSY_STATES:
            a.busy_time += now - a.since
        a.state = state
        a.reason = reason
        a.since = now
        a.timer = None

    def _idle_key(self, a: _Agent, now: float) -> float:
        s = self.agent_strategy
        if s == "least_occupied":
            logged = now - a.login
            return a.busy_time / logged if logged > 0 else 0.0
        if s == "round_robin":
            return float(a.last_offered)
        if s == "fewest_calls":
            return float(a.answered)
        if s == "random":
            return self._rng.uniform()
        return now  # longest_idle, highest_level: idle since

    def _agent_rank(self, a: _Agent, c: _Call) -> Tuple[Any, ...]:
        if self.agent_strategy == "highest_level":
            score = sum(a.skills.get(s, 0) for s, _ in self._requirements(c))
            return (-score, a.key, a.seq)
        return (a.key, a.seq)

    def _call_rank(self, c: _Call, now: float) -> Tuple[Any, ...]:
        return (-self._eff_priority(c, now), c.entry, c.seq)

    def _assign(self, c: _Call, a: _Agent, now: float, out: List[Any]) -> None:
        assert a.state == "available" and c.state == "waiting" and self._eligible(a, c)
        self._set_state(a, "reserved", now)
        self._offers += 1
        a.last_offered = self._offers
        a.call = c
        c.state = "offered"
        c.agent = a
        out.append(Assign(c.id, a.id, c.queue.name, now - c.arrival))

    def _dispatch_call(self, c: _Call, now: float, out: List[Any]) -> None:
        """A call (waiting) looks for the best idle eligible agent."""
        best = None
        for a in self._agents.values():
            if a.state == "available" and self._eligible(a, c):
                if best is None or self._agent_rank(a, c) < self._agent_rank(best, c):
                    best = a
        if best is not None:
            self._assign(c, best, now, out)

    def _make_available(self, a: _Agent, now: float, out: List[Any]) -> None:
        """An agent becomes free: it takes the best eligible waiting call, or idles."""
        self._set_state(a, "available", now)
        a.call = None
        a.key = self._idle_key(a, now)
        best = None
        for c in self._calls.values():
            if c.state == "waiting" and self._eligible(a, c):
                if best is None or self._call_rank(c, now) < self._call_rank(best, now):
                    best = c
        if best is not None:
            self._assign(best, a, now, out)

    def _requeue(self, c: _Call, now: float, out: List[Any]) -> None:
        """Back to its line at its old rank.  Deadlines that passed while it
        rang (step changes, overflow, max wait) take effect now, in order."""
        c.state = "waiting"
        c.agent = None
        while True:
            d = self._deadline(c)
            if d is None or d > now:
                break
            if not self._apply_deadline(c, now, out):
                return
        self._dispatch_call(c, now, out)

    def _end_call(self, c: _Call) -> None:
        del self._calls[c.id]

    # ------------------------------------------------------------ time
    def next_deadline(self) -> Optional[float]:
        best = None
        for a in self._agents.values():
            if a.timer is not None and (best is None or a.timer < best):
                best = a.timer
        for c in self._calls.values():
            if c.state == "waiting":
                d = self._deadline(c)
                if d is not None and (best is None or d < best):
                    best = d
        return best

    def _run_due(self, now: float) -> None:
        out = self._pending
        while True:
            ev = None
            for a in self._agents.values():
                if a.timer is not None and a.timer <= now:
                    k = (a.timer, 0, a.seq)
                    if ev is None or k < ev[0]:
                        ev = (k, a)
            for c in self._calls.values():
                if c.state == "waiting":
                    d = self._deadline(c)
                    if d is not None and d <= now:
                        k = (d, 1, c.seq)
                        if ev is None or k < ev[0]:
                            ev = (k, c)
            if ev is None:
                break
            (t, kind, _), obj = ev
            self._now = t
            if kind == 0:
                self._make_available(obj, t, out)
            else:
                self._call_deadline(obj, t, out)
        self._now = now

    def _call_deadline(self, c: _Call, t: float, out: List[Any]) -> None:
        if self._apply_deadline(c, t, out):
            self._dispatch_call(c, t, out)

    def _apply_deadline(self, c: _Call, t: float, out: List[Any]) -> bool:
        """Apply a waiting call's next time event; False if the call left."""
        off, is_exit = self._next_offset(c)  # type: ignore[misc]
        q = c.queue
        if is_exit:
            q.counters["exited"] += 1
            self._end_call(c)
            out.append(Exit(c.id, q.name, "max_wait"))
            return False
        step = q.steps[c.step + 1]
        if step[2] is not None:  # overflow
            target = self._queues[step[2]]
            q.counters["overflowed"] += 1
            c.queue = target
            c.entry = t
            c.step = 0
            c.priority = min(9, c.priority + step[3])
            target.counters["entered"] += 1
            out.append(Overflow(c.id, q.name, target.name))
        else:
            c.step += 1
        return True

    def _begin(self, now: object) -> float:
        t = check_now(now, self._now)
        self._run_due(t)
        return t

    def _finish(self, out: List[Any]) -> List[Any]:
        res = self._pending
        res.extend(out)
        self._pending = []
        return res

    def advance(self, now: float) -> List[Any]:
        self._begin(now)
        return self._finish([])

    # ------------------------------------------------------------ agents
    def _agent(self, agent: Any) -> _Agent:
        try:
            return self._agents[agent]
        except (KeyError, TypeError):
            raise errors.unknown_agent(agent) from None

    def login(self, agent: Any, skills: Any, now: float, queues: Any = None, paused: Optional[str] = None) -> List[Any]:
        t = self._begin(now)
        check_id("agent", agent)
        pairs = agent_skills(skills, self._skills)
        qs = agent_queues(queues, self._queues)
        if paused is not None:
            check_reason(paused)
        if agent in self._agents:
            raise errors.duplicate_agent(agent)
        self._agent_seq += 1
        a = _Agent(agent, self._agent_seq, dict(pairs), qs, t)
        self._agents[agent] = a
        out: List[Any] = []
        if paused is not None:
            a.state = "paused"
            a.reason = paused
        else:
            self._make_available(a, t, out)
        return self._finish(out)

    def logout(self, agent: Any, now: float) -> List[Any]:
        self._begin(now)
        a = self._agent(agent)
        if a.state in ("reserved", "busy"):
            raise errors.bad_state("agent", agent, a.state, "log out")
        del self._agents[agent]
        return self._finish([])

    def ready(self, agent: Any, now: float) -> List[Any]:
        t = self._begin(now)
        a = self._agent(agent)
        if a.state not in ("paused", "wrap_up"):
            raise errors.bad_state("agent", agent, a.state, "make ready")
        out: List[Any] = []
        self._make_available(a, t, out)
        return self._finish(out)

    def pause(self, agent: Any, now: float, reason: str = "") -> List[Any]:
        t = self._begin(now)
        a = self._agent(agent)
        check_reason(reason)
        if a.state not in ("available", "wrap_up", "paused"):
            raise errors.bad_state("agent", agent, a.state, "pause")
        self._set_state(a, "paused", t, reason)
        return self._finish([])

    def agent_state(self, agent: Any) -> str:
        a = self._agents.get(agent) if isinstance(agent, (str, int)) else None
        return "logged_out" if a is None else a.state

    # ------------------------------------------------------------ calls
    def _call(self, call: Any) -> _Call:
        try:
            return self._calls[call]
        except (KeyError, TypeError):
            raise errors.unknown_call(call) from None

    def enqueue(self, call: Any, queue: str, now: float, priority: Optional[int] = None,
                requirements: Any = None) -> List[Any]:
        t = self._begin(now)
        try:
            q = self._queues[queue]
        except (KeyError, TypeError):
            raise errors.unknown_queue(queue) from None
        prio = q.policy.priority if priority is None else check_priority(priority)
        extra = call_requirements(requirements, self._skills)
        check_id("call", call)
        if call in self._calls:
            raise errors.duplicate_call(call)
        self._call_seq += 1
        c = _Call(call, self._call_seq, q, prio, extra, t)
        self._calls[call] = c
        q.counters["entered"] += 1
        out: List[Any] = []
        self._dispatch_call(c, t, out)
        return self._finish(out)

    def answer(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c = self._call(call)
        if c.state != "offered":
            raise errors.bad_state("call", call, c.state, "answer")
        a = c.agent
        assert a is not None
        c.state = "connected"
        self._set_state(a, "busy", t)
        a.call = c
        a.answered += 1
        c.queue.counters["answered"] += 1
        return self._finish([])

    def _release_offer(self, call: Any, action: str, t: float) -> Tuple[_Call, _Agent]:
        c = self._call(call)
        if c.state != "offered":
            raise errors.bad_state("call", call, c.state, action)
        a = c.agent
        assert a is not None
        return c, a

    def ring_no_answer(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c, a = self._release_offer(call, "report ring-no-answer for", t)
        out: List[Any] = []
        self._set_state(a, "paused", t, "ring_no_answer")
        a.call = None
        self._requeue(c, t, out)
        if self.rna_action == "ready":
            self._after_delay(a, self.no_answer_delay, t, out)
        return self._finish(out)

    def reject(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c, a = self._release_offer(call, "reject", t)
        out: List[Any] = []
        self._set_state(a, "paused", t, "rejected")
        a.call = None
        self._requeue(c, t, out)
        self._after_delay(a, self.reject_delay, t, out)
        return self._finish(out)

    def _after_delay(self, a: _Agent, delay: float, t: float, out: List[Any]) -> None:
        if delay > 0:
            a.timer = t + delay
        else:
            self._make_available(a, t, out)

    def abandon(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c = self._call(call)
        if c.state not in ("waiting", "offered"):
            raise errors.bad_state("call", call, c.state, "abandon")
        out: List[Any] = []
        c.queue.counters["abandoned"] += 1
        self._end_call(c)
        if c.state == "offered":
            a = c.agent
            assert a is not None
            self._make_available(a, t, out)
        return self._finish(out)

    def complete(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c = self._call(call)
        if c.state != "connected":
            raise errors.bad_state("call", call, c.state, "complete")
        a = c.agent
        assert a is not None
        self._end_call(c)
        out: List[Any] = []
        wrap = c.queue.policy.wrap_up
        if wrap > 0:
            self._set_state(a, "wrap_up", t)
            a.call = None
            a.timer = t + wrap
        else:
            self._make_available(a, t, out)
        return self._finish(out)

    def call_state(self, call: Any) -> str:
        return self._call(call).state

    def waiting_count(self) -> int:
        return sum(1 for c in self._calls.values() if c.state == "waiting")

    # ------------------------------------------------------------ snapshot
    def snapshot(self) -> Dict[str, Any]:
        now = self._now
        queues: Dict[str, Any] = {}
        for name, q in self._queues.items():
            waiting = [c for c in self._calls.values() if c.state == "waiting" and c.queue is q]
            by_state = dict(available=0, reserved=0, busy=0, wrap_up=0, paused=0)
            for a in self._agents.values():
                if a.queues is None or name in a.queues:
                    by_state[a.state] += 1
            queues[name] = dict(
                waiting=len(waiting),
                oldest_wait=max((now - c.entry for c in waiting), default=0.0),
                agents=by_state,
                **q.counters,
            )
        agents = {}
        for ident, a in self._agents.items():
            busy = a.busy_time + (now - a.since if a.state in _BUSY_STATES else 0.0)
            agents[ident] = dict(state=a.state, reason=a.reason, answered=a.answered, busy_time=busy,
                                 logged_in=now - a.login, call=None if a.call is None else a.call.id)
        return dict(now=now, queues=queues, agents=agents)
