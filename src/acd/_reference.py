"""Plain-Python reference model of the engine: the test oracle.

Same API and semantics as the compiled :class:`acd._core.Engine` (see
``docs/engine.md``), written for obviousness, not speed: every choice is a
scan over all agents or all calls.  The differential hypothesis tests drive
both with the same commands and require identical decisions, errors and
snapshots.  It is not a fallback for users.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from . import errors
from ._core import Announce, Assign, DialBack, Exit, OfferCallback, Overflow
from ._validate import (agent_queues, agent_skills, call_requirements, check_id, check_now, check_reason,
                        engine_options, merge_requirements, check_window, check_call_choice, check_at,
                        check_preferred, check_preferred_for)
from .errors import InvalidInput
from .ewt import WaitEstimate, abandon_probability, ql_sum
from .patience import PatienceEstimate, exponential_mle
from .policy import Queue, check_join_targets_before, check_name, check_priority, check_targets

MASK64 = (1 << 64) - 1
NPRIO = 10


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


_CB_COUNTERS = ("offered", "accepted", "scheduled", "dialled", "reached", "failed", "cancelled", "gave_up")


def next_tick(t0: float, every: float, t: float, inclusive: bool) -> float:
    """First announcement time ``t0 + k*every`` (k >= 1) after ``t``, or at ``t`` when ``inclusive``.

    Float for float the same operations as the core's ``_next_tick``.  When ``every`` is below the
    float resolution at ``t`` (no grid point can be told apart), the next representable time."""
    x = (t - t0) / every
    if x < 4503599627370496.0:          # 2**52: k + 1.0 is exact
        k = float(math.floor(x)) if x >= 1.0 else 1.0
        for _ in range(4):              # the quotient's rounding: one step, two at most
            g = t0 + k * every
            if g > t or (inclusive and g == t):
                return g
            k += 1.0
    return t if inclusive else math.nextafter(t, math.inf)


class _Queue:
    def __init__(self, policy: Queue, index: int, now: float, window: int) -> None:
        self.policy = policy
        self.name = policy.name
        self.index = index
        self.steps = [(s.after, s.requirement_tuple, s.overflow, s.priority_boost) for s in policy.steps]
        self.counters = dict(entered=0, answered=0, abandoned=0, exited=0, overflowed=0, withdrawn=0, refused=0)
        self.callbacks = {k: 0 for k in _CB_COUNTERS}
        self.abandons = [0] * NPRIO
        self.exposure = [0.0] * NPRIO
        self.observations = [0] * NPRIO
        self.samples: Deque[Tuple[float, bool]] = deque(maxlen=window) if window else deque(maxlen=0)
        self.n_talk = 0
        self.talk_sum = 0.0
        self.les = 0.0
        # announcements: every announce_every seconds from t0, while a live caller waits (see _events);
        # next_tick is the next grid point not yet passed, or a stale one while nobody waits
        self.t0 = now
        self.next_tick = None if policy.announce_every is None else next_tick(now, policy.announce_every, now, False)

    def theta(self, prio: Optional[int] = None) -> float:
        if prio is not None:
            return (self.abandons[prio] + 1) / (self.exposure[prio] + self.policy.expected_patience)
        ab = 0
        ex = 0.0
        for p in range(NPRIO):
            ab += self.abandons[p]
            ex += self.exposure[p]
        return (ab + 1) / (ex + self.policy.expected_patience)

    def mu(self) -> float:
        return (self.n_talk + 1) / (self.talk_sum + self.policy.expected_handle_time)


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
        # a pause or log-out asked while ringing or talking, carried out when the call is over:
        # None, ("pause", reason) or ("logout", "")
        self.after_call: Optional[Tuple[str, str]] = None


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
        self.virtual = False      # a call-back: the caller hung up and keeps their place
        self.attempts = 0
        self.answered_at = 0.0
        self.timer: Optional[float] = None
        # held for its preferred agents (not in the general line): those still logged in, until `timer`
        self.held: Optional[List[_Agent]] = None


_BUSY_STATES = ("reserved", "busy", "wrap_up")
_STAFFED = ("available", "reserved", "busy", "wrap_up")
_IN_LINE = ("waiting", "callback_pending")


def _in_line(c: _Call) -> bool:
    """In the general line: waiting or a call-back pending, and not held for its preferred agents."""
    return c.state in _IN_LINE and c.held is None


class ReferenceEngine:
    """Oracle implementation of :class:`acd.Engine`."""

    def __init__(self, *, agent_strategy: str = "longest_idle", seed: int = 0, ring_no_answer: str = "pause",
                 no_answer_delay: float = 0.0, reject_delay: float = 0.0, call_choice: str = "priority_fifo",
                 patience_window: int = 4096) -> None:
        (self.agent_strategy, self.seed, self.rna_action, self.no_answer_delay,
         self.reject_delay) = engine_options(agent_strategy, seed, ring_no_answer, no_answer_delay, reject_delay)
        self.call_choice = check_call_choice(call_choice)
        self.patience_window = check_window(patience_window)
        self._rng = SplitMix64(seed)
        self._now = 0.0
        self._skills: Dict[str, int] = {}
        self._queues: Dict[str, _Queue] = {}
        self._queue_slots = 0     # queues ever added: a queue's index (tick tie-break), never reused
        self._agents: Dict[Any, _Agent] = {}
        self._calls: Dict[Any, _Call] = {}
        self._call_seq = 0
        self._agent_seq = 0
        self._offers = 0
        self._pending: List[Any] = []
        self._due = False         # inside _run_due: a deadline at t runs before the announcement tick at t
        self._dropped: List[_Agent] = []   # agents no longer staffed since the last leave_when_no_agents check

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
        check_targets(queue, self._queues)
        for s in queue.skills:
            self.add_skill(s)
        self._queues[queue.name] = _Queue(queue, self._queue_slots, self._now, self.patience_window)
        self._queue_slots += 1

    def update_queue(self, queue: Queue, now: float) -> List[Any]:
        """New policy for a configured queue, applied to the calls already in it (docs/reload.md)."""
        t = self._begin(now)
        if not isinstance(queue, Queue):
            raise InvalidInput(f"queue must be an acd.Queue, got {queue!r}")
        q = self._queue(queue.name)
        check_targets(queue, self._queues)
        order = list(self._queues)
        check_join_targets_before(queue, order.index(q.name), order)
        for s in queue.skills:
            self.add_skill(s)
        line = [c for c in self._calls.values() if c.state in _IN_LINE and c.queue is q]
        for c in line:
            if c.held is not None:   # its hold ends: it takes its place in the line with the others
                self._unhold(c)
        # the queue-state rules apply from now on: to joins, and when an agent next leaves
        q.policy = queue
        q.steps = [(s.after, s.requirement_tuple, s.overflow, s.priority_boost) for s in queue.steps]
        # a step index past the new steps (or now an overflow step): the last step a call can be at
        last = len(q.steps) - 1 - (1 if q.steps[-1][2] is not None else 0)
        for c in self._calls.values():
            if c.queue is q and c.step > last:
                c.step = last
        every = queue.announce_every
        q.next_tick = None if every is None else next_tick(q.t0, every, t, False)
        # back in line in line order, each as after a ring-no-answer: deadlines passed apply at once
        line.sort(key=lambda c: (-self._eff_priority(c, t), c.entry, c.seq))
        out: List[Any] = []
        for c in line:
            self._requeue(c, t, out)
        return self._finish(out)

    def remove_queue(self, queue: str, now: float) -> List[Any]:
        """Remove a queue nothing uses (no call, no overflow to it, no logged-in agent naming it)."""
        self._begin(now)
        q = self._queue(queue)
        n = sum(1 for c in self._calls.values() if c.queue is q)
        if n:
            raise errors.queue_in_use(q.name, f"{n} call(s) are in it (waiting, ringing, connected or call-backs)")
        for other in self._queues.values():
            if q.name in other.policy.overflow_targets:
                raise errors.queue_in_use(q.name, f"queue {other.name!r} overflows to it")
        for a in self._agents.values():
            if a.queues is not None and q.name in a.queues:
                raise errors.queue_in_use(q.name, f"logged-in agent {a.id!r} serves it (change its queues first)")
        del self._queues[q.name]
        return self._finish([])

    @property
    def skills(self) -> Tuple[str, ...]:
        return tuple(self._skills)

    @property
    def queues(self) -> Tuple[str, ...]:
        return tuple(self._queues)

    # ------------------------------------------------------------ helpers
    def _requirements(self, c: _Call) -> Tuple[Tuple[str, int], ...]:
        return merge_requirements(c.queue.steps[c.step][1], c.extra)

    def _eligible_req(self, a: _Agent, q: _Queue, req: Tuple[Tuple[str, int], ...]) -> bool:
        if a.queues is not None and q.name not in a.queues:
            return False
        return all(a.skills.get(s, 0) >= lvl for s, lvl in req)

    def _eligible(self, a: _Agent, c: _Call) -> bool:
        return self._eligible_req(a, c.queue, self._requirements(c))

    def _eff_priority(self, c: _Call, now: float) -> int:
        ageing = c.queue.policy.ageing
        if ageing is None:
            return c.priority
        return min(9, c.priority + int(math.floor((now - c.entry) / ageing)))

    def _deadline(self, c: _Call) -> Optional[float]:
        nxt = self._next_offset(c)
        return None if nxt is None else c.entry + nxt[0]

    def _next_offset(self, c: _Call) -> Optional[Tuple[float, bool]]:
        """Offset of the next time event of a call in line, and whether it is the max-wait exit
        (call-backs in line do not exit at max wait: nobody is on the line)."""
        steps = c.queue.steps
        step_off = steps[c.step + 1][0] if c.step + 1 < len(steps) else None
        mw = None if c.virtual else c.queue.policy.max_wait
        if mw is not None and (step_off is None or mw <= step_off):
            return (mw, True)
        if step_off is None:
            return None
        return (step_off, False)

    def _set_state(self, a: _Agent, state: str, now: float, reason: str = "") -> None:
        if a.state in _STAFFED and state not in _STAFFED:
            self._dropped.append(a)
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
        p = self._eff_priority(c, now)
        if self.call_choice == "service_level":
            return (-p, -((now - c.entry) / c.queue.policy.service_level[1]), c.seq)
        if self.call_choice == "cmu_theta":
            q = c.queue
            return (-(q.policy.cost * (p + 1) * q.mu() / q.theta(c.priority)), c.entry, c.seq)
        return (-p, c.entry, c.seq)

    def _observe(self, c: _Call, now: float, abandoned: bool) -> None:
        """A wait in queue ends: an abandonment, or a censored patience observation."""
        if c.virtual:
            return
        q = c.queue
        w = now - c.entry
        q.abandons[c.priority] += 1 if abandoned else 0
        q.exposure[c.priority] += w
        q.observations[c.priority] += 1
        if self.patience_window:
            q.samples.append((w, abandoned))

    def _assign(self, c: _Call, a: _Agent, now: float, out: List[Any]) -> None:
        assert a.state == "available" and c.state in _IN_LINE and self._eligible(a, c)
        self._set_state(a, "reserved", now)
        self._offers += 1
        a.last_offered = self._offers
        a.call = c
        c.agent = a
        c.queue.les = now - c.entry
        if c.virtual:
            c.state = "dialing_back"
            c.attempts += 1
            c.queue.callbacks["dialled"] += 1
            out.append(DialBack(c.id, a.id, c.queue.name, c.attempts))
        else:
            c.state = "offered"
            out.append(Assign(c.id, a.id, c.queue.name, now - c.arrival))

    def _dispatch_call(self, c: _Call, now: float, out: List[Any]) -> None:
        """A call in line looks for the best idle eligible agent."""
        best = None
        for a in self._agents.values():
            if a.state == "available" and self._eligible(a, c):
                if best is None or self._agent_rank(a, c) < self._agent_rank(best, c):
                    best = a
        if best is not None:
            self._assign(c, best, now, out)
        elif c.state == "waiting":
            self._arm_tick(c.queue, now)

    def _arm_tick(self, q: _Queue, t: float) -> None:
        """A live caller waits in q at t: if the announcement grid point kept is past (it went by while
        nobody waited), move to the first one after t -- at t itself while deadlines at t run, since
        ticks come after them."""
        nt = q.next_tick
        if nt is not None and (nt < t or (nt == t and not self._due)):
            q.next_tick = next_tick(q.t0, q.policy.announce_every, t, self._due)

    def _make_available(self, a: _Agent, now: float, out: List[Any]) -> None:
        """An agent becomes free: it takes the best eligible call in line, or idles;
        a pause or log-out it asked for during its call is carried out instead."""
        if a.after_call is not None:
            self._carry_out_after_call(a, now, out)
            return
        self._set_state(a, "available", now)
        a.call = None
        a.key = self._idle_key(a, now)
        held = [c for c in self._calls.values() if c.held is not None and a in c.held]
        if held:
            # a call waiting for this agent comes before the general line, first come first served
            c = min(held, key=lambda c: (c.entry, c.seq))
            self._unhold(c)
            self._assign(c, a, now, out)
            return
        self._take_best_call(a, now, out)

    def _take_best_call(self, a: _Agent, now: float, out: List[Any]) -> None:
        """Available agent a takes the best eligible call in line, if any."""
        best = None
        for c in self._calls.values():
            if _in_line(c) and self._eligible(a, c):
                if best is None or self._call_rank(c, now) < self._call_rank(best, now):
                    best = c
        if best is not None:
            self._assign(best, a, now, out)

    def _requeue(self, c: _Call, now: float, out: List[Any]) -> None:
        """Back to its line at its old rank.  Deadlines that passed while it
        was out of line (step changes, overflow, max wait) take effect now, in order."""
        c.state = "callback_pending" if c.virtual else "waiting"
        c.agent = None
        c.timer = None
        while True:
            d = self._deadline(c)
            if d is None or d > now:
                break
            if not self._apply_deadline(c, now, out):
                return
        self._dispatch_call(c, now, out)

    def _end_call(self, c: _Call) -> None:
        del self._calls[c.id]

    # ------------------------------------------------------------ estimates
    def _staffed_eligible(self, q: _Queue, req: Tuple[Tuple[str, int], ...]) -> int:
        return sum(1 for a in self._agents.values() if a.state in _STAFFED and self._eligible_req(a, q, req))

    def _ahead_of_new(self, q: _Queue, prio: int, now: float, exclude: Any = None) -> int:
        return sum(1 for c in self._calls.values()
                   if _in_line(c) and c.queue is q and c is not exclude and self._eff_priority(c, now) >= prio)

    def _estimate(self, q: _Queue, k: int, req: Tuple[Tuple[str, int], ...], now: float) -> WaitEstimate:
        s = self._staffed_eligible(q, req)
        mu = q.mu()
        theta = q.theta()
        ewt = ql_sum(s * mu, theta, k) if s > 0 else math.inf
        hol = 0.0
        for c in self._calls.values():
            if _in_line(c) and c.queue is q and now - c.entry > hol:
                hol = now - c.entry
        return WaitEstimate(ewt, k + 1, s, mu, theta, hol, q.les)

    def estimate_wait(self, queue: str, priority: Optional[int] = None, requirements: Any = None) -> WaitEstimate:
        """Predicted wait for a caller who would join ``queue`` now."""
        q = self._queue(queue)
        prio = q.policy.priority if priority is None else check_priority(priority)
        extra = call_requirements(requirements, self._skills)
        req = merge_requirements(q.steps[0][1], extra)
        return self._estimate(q, self._ahead_of_new(q, prio, self._now), req, self._now)

    def call_wait(self, call: Any) -> WaitEstimate:
        """Predicted remaining wait of a call in line (its place counted in priority-then-FIFO order)."""
        c = self._call(call)
        if c.state not in _IN_LINE:
            raise errors.bad_state("call", call, c.state, "estimate the wait of")
        now = self._now
        key = (-self._eff_priority(c, now), c.entry, c.seq)
        k = sum(1 for o in self._calls.values() if _in_line(o) and o.queue is c.queue
                and (-self._eff_priority(o, now), o.entry, o.seq) < key)
        return self._estimate(c.queue, k, self._requirements(c), now)

    def patience(self, queue: str, priority: Optional[int] = None) -> PatienceEstimate:
        q = self._queue(queue)
        if priority is None:
            ab, ob, ex = 0, 0, 0.0
            for p in range(NPRIO):
                ab += q.abandons[p]
                ob += q.observations[p]
                ex += q.exposure[p]
        else:
            p = check_priority(priority)
            ab, ob, ex = q.abandons[p], q.observations[p], q.exposure[p]
        return exponential_mle(ab, ob, ex, q.policy.expected_patience)

    def patience_samples(self, queue: str) -> List[Tuple[float, bool]]:
        return list(self._queue(queue).samples)

    def _on_join(self, c: _Call, now: float, out: List[Any]) -> None:
        q = c.queue
        pol = q.policy
        w = pol.if_wait_over    # past the admission rules: only its "offer_callback" action is left here
        if not (pol.announce_on_join or pol.callback_threshold is not None or pol.callback_risk is not None
                or w is not None):
            return
        est = self._estimate(q, self._ahead_of_new(q, c.priority, now, exclude=c), self._requirements(c), now)
        if pol.announce_on_join:
            out.append(Announce(c.id, q.name, est.position, est.ewt))
        if (pol.callback_threshold is not None and est.ewt > pol.callback_threshold) or \
                (pol.callback_risk is not None and abandon_probability(est.abandon_rate, est.ewt) > pol.callback_risk) \
                or (w is not None and w["then"] == "offer_callback" and est.ewt > w["seconds"]):
            q.callbacks["offered"] += 1
            out.append(OfferCallback(c.id, q.name, est.ewt))

    def _tick(self, q: _Queue, t: float, out: List[Any]) -> None:
        """Periodic announcement: every live caller of the queue hears its place and wait."""
        line = sorted((c for c in self._calls.values() if _in_line(c) and c.queue is q),
                      key=lambda c: (-self._eff_priority(c, t), c.entry, c.seq))
        for k, c in enumerate(line):
            if not c.virtual:
                est = self._estimate(q, k, self._requirements(c), t)
                out.append(Announce(c.id, q.name, k + 1, est.ewt))
        q.next_tick = next_tick(q.t0, q.policy.announce_every, t, False)

    # ------------------------------------------------------------ time
    def _events(self, now: Optional[float]):
        """All timed events (time, kind, seq, object); kind orders ties: agent timers,
        call deadlines, call timers (call-back retry, scheduled), announcement ticks."""
        for a in self._agents.values():
            if a.timer is not None:
                yield (a.timer, 0, a.seq, a)
        for c in self._calls.values():
            if _in_line(c):
                d = self._deadline(c)
                if d is not None:
                    yield (d, 1, c.seq, c)
            elif c.timer is not None:
                yield (c.timer, 2, c.seq, c)
        for q in self._queues.values():
            # ticks only while a live caller waits in the queue: nothing to announce otherwise
            if q.next_tick is not None and any(c.state == "waiting" and c.held is None and c.queue is q
                                                 for c in self._calls.values()):
                yield (q.next_tick, 3, q.index, q)

    def next_deadline(self) -> Optional[float]:
        best = None
        for ev in self._events(None):
            if best is None or ev[0] < best:
                best = ev[0]
        return best

    def _run_due(self, now: float) -> None:
        self._due = True
        try:
            self._run_due_events(now)
        finally:
            self._due = False

    def _run_due_events(self, now: float) -> None:
        out = self._pending
        while True:
            ev = None
            for e in self._events(now):
                if e[0] <= now and (ev is None or e[:3] < ev[:3]):
                    ev = e
            if ev is None:
                break
            t, kind, _, obj = ev
            self._now = t
            if kind == 0:
                self._make_available(obj, t, out)
            elif kind == 1:
                if self._apply_deadline(obj, t, out):
                    self._dispatch_call(obj, t, out)
            elif kind == 2:
                self._call_timer(obj, t, out)
            else:
                self._tick(obj, t, out)
            if self._dropped:
                self._leave_check(t, out)
        self._now = now

    def _call_timer(self, c: _Call, t: float, out: List[Any]) -> None:
        if c.state == "scheduled":
            self._enter_scheduled(c, t, out)
        elif c.held is not None:    # the hold for its preferred agents is over: the general line
            self._unhold(c)
            self._dispatch_call(c, t, out)
        else:  # callback_retry: back in line at its old rank
            self._requeue(c, t, out)

    def _enter_scheduled(self, c: _Call, t: float, out: List[Any]) -> None:
        q = c.queue
        c.state = "callback_pending"
        c.timer = None
        c.entry = t
        c.arrival = t
        c.priority = min(9, c.priority + q.policy.scheduled_boost)
        q.counters["entered"] += 1
        self._dispatch_call(c, t, out)

    def _apply_deadline(self, c: _Call, t: float, out: List[Any]) -> bool:
        """Apply the next time event of a call in line; False if the call left."""
        off, is_exit = self._next_offset(c)  # type: ignore[misc]
        q = c.queue
        if is_exit:
            self._observe(c, t, False)
            q.counters["exited"] += 1
            self._end_call(c)
            out.append(Exit(c.id, q.name, "max_wait"))
            return False
        step = q.steps[c.step + 1]
        if step[2] is not None:  # overflow
            self._observe(c, t, False)
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
        if self._dropped:
            self._leave_check(self._now, out)
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
        out: List[Any] = []
        if a.state in ("reserved", "busy"):
            a.after_call = ("logout", "")
        else:
            self._remove_agent(a, self._now, out)
        return self._finish(out)

    def _remove_agent(self, a: _Agent, now: float, out: List[Any]) -> None:
        """Log-out: the agent leaves; a call held only for it joins the general line (oldest first)."""
        if a.state in _STAFFED:
            self._dropped.append(a)
        del self._agents[a.id]
        self._release_holds(a, now, out)

    def _release_holds(self, a: _Agent, now: float, out: List[Any]) -> None:
        """The agent left or changed its skills: a call held for it and no other joins the general
        line (oldest first)."""
        held = sorted((c for c in self._calls.values() if c.held is not None and a in c.held),
                      key=lambda c: (c.entry, c.seq))
        for c in held:
            c.held.remove(a)  # type: ignore[union-attr]
            if not c.held:
                self._unhold(c)
                self._dispatch_call(c, now, out)

    def _carry_out_after_call(self, a: _Agent, now: float, out: List[Any]) -> None:
        assert a.after_call is not None
        what, reason = a.after_call
        a.after_call = None
        a.call = None
        if what == "logout":
            self._remove_agent(a, now, out)
        else:
            self._set_state(a, "paused", now, reason)

    def ready(self, agent: Any, now: float) -> List[Any]:
        t = self._begin(now)
        a = self._agent(agent)
        if a.state in ("reserved", "busy") and a.after_call is not None:
            a.after_call = None        # ringing or talking: withdraws the pause or log-out asked for
            return self._finish([])
        if a.state not in ("paused", "wrap_up"):
            raise errors.bad_state("agent", agent, a.state, "make ready")
        a.after_call = None
        out: List[Any] = []
        self._make_available(a, t, out)
        return self._finish(out)

    def pause(self, agent: Any, now: float, reason: str = "") -> List[Any]:
        t = self._begin(now)
        a = self._agent(agent)
        check_reason(reason)
        if a.state in ("reserved", "busy"):
            a.after_call = ("pause", reason)
            return self._finish([])
        a.after_call = None
        self._set_state(a, "paused", t, reason)
        return self._finish([])

    def set_agent(self, agent: Any, skills: Any, now: float, queues: Any = None) -> List[Any]:
        """New skills and served queues for a logged-in agent; state, idle rank, counters, call kept."""
        t = self._begin(now)
        a = self._agent(agent)
        pairs = agent_skills(skills, self._skills)
        qs = agent_queues(queues, self._queues)
        changed = (tuple(sorted(a.skills.items())), a.queues) != (pairs, qs)
        a.skills = dict(pairs)
        a.queues = qs
        out: List[Any] = []
        if changed:
            self._release_holds(a, t, out)
        if a.state == "available":
            self._take_best_call(a, t, out)
        return self._finish(out)

    def agent_state(self, agent: Any) -> str:
        a = self._agents.get(agent) if isinstance(agent, (str, int)) else None
        return "logged_out" if a is None else a.state

    # ------------------------------------------------------------ calls
    def _call(self, call: Any) -> _Call:
        try:
            return self._calls[call]
        except (KeyError, TypeError):
            raise errors.unknown_call(call) from None

    def _queue(self, queue: Any) -> _Queue:
        try:
            return self._queues[queue]
        except (KeyError, TypeError):
            raise errors.unknown_queue(queue) from None

    def _new_call(self, call: Any, q: _Queue, priority: Optional[int], requirements: Any, t: float) -> _Call:
        """Validate (in the core's order) and register a new call, not yet in line."""
        prio = q.policy.priority if priority is None else check_priority(priority)
        extra = call_requirements(requirements, self._skills)
        check_id("call", call)
        if call in self._calls:
            raise errors.duplicate_call(call)
        self._call_seq += 1
        c = _Call(call, self._call_seq, q, prio, extra, t)
        self._calls[call] = c
        return c

    def enqueue(self, call: Any, queue: str, now: float, priority: Optional[int] = None,
                requirements: Any = None, preferred: Any = None, preferred_for: Any = None) -> List[Any]:
        t = self._begin(now)
        q = self._queue(queue)
        pref = check_preferred(preferred)
        hold = check_preferred_for(preferred_for)
        c = self._new_call(call, q, priority, requirements, t)
        out: List[Any] = []
        self._join(c, t, out, pref, hold)
        return self._finish(out)

    def _hold(self, c: _Call, agents: List[_Agent], hold: float, t: float, out: List[Any]) -> None:
        """Offer the call to its preferred agents only: the best free one now, or the first of them to
        be free, until the hold ends -- never past its first routing step (a wider step is a reason
        to go wider) nor its maximum wait."""
        free = [a for a in agents if a.state == "available"]
        if free:
            self._assign(c, min(free, key=lambda a: self._agent_rank(a, c)), t, out)
            return
        nxt = self._next_offset(c)
        if nxt is not None and nxt[0] < hold:
            hold = nxt[0]
        c.held = agents
        c.timer = c.entry + hold

    def _unhold(self, c: _Call) -> None:
        c.held = None
        c.timer = None

    # ------------------------------------------------------------ queue-state rules
    def _join(self, c: _Call, t: float, out: List[Any], pref: Tuple[Any, ...] = (), hold: float = 0.0) -> None:
        """A live caller joins c.queue: the queue's admission rules (max_length, join_when_no_agents,
        if_wait_over), then the line; an overflow at join starts over in the target queue."""
        while True:
            q = c.queue
            pol = q.policy
            q.counters["entered"] += 1
            if pol.max_length is not None and \
                    sum(1 for o in self._calls.values()
                        if o.state == "waiting" and o.queue is q and o is not c) >= pol.max_length:
                self._refuse(c, "full", out)
                return
            if pol.join_when_no_agents != "accept" and self._staffed_eligible(q, self._requirements(c)) == 0:
                if pol.join_overflow is None:
                    self._refuse(c, "no_agents", out)
                    return
                self._overflow_at_join(c, pol.join_overflow, t, out)
                continue
            agents = [self._agents[p] for p in pref if p in self._agents and self._eligible(self._agents[p], c)]
            if agents:   # preferred agents (in the queue the call finally joins)
                self._hold(c, agents, hold, t, out)
            else:
                self._dispatch_call(c, t, out)
            if c.state != "waiting":
                return
            w = pol.if_wait_over
            if w is not None and w["then"] != "offer_callback":
                est = self._estimate(q, self._ahead_of_new(q, c.priority, t, exclude=c), self._requirements(c), t)
                if est.ewt > w["seconds"]:
                    if c.held is not None:
                        self._unhold(c)
                    if pol.wait_overflow is None:
                        self._refuse(c, "wait_too_long", out)
                        return
                    self._overflow_at_join(c, pol.wait_overflow, t, out)
                    continue
            self._on_join(c, t, out)
            return

    def _refuse(self, c: _Call, reason: str, out: List[Any]) -> None:
        """A joining caller is turned away: counted entered and refused; no patience observation."""
        c.queue.counters["refused"] += 1
        self._end_call(c)
        out.append(Exit(c.id, c.queue.name, reason))

    def _overflow_at_join(self, c: _Call, target: str, t: float, out: List[Any]) -> None:
        q = c.queue
        q.counters["overflowed"] += 1
        c.queue = self._queues[target]
        c.entry = t
        c.step = 0
        out.append(Overflow(c.id, q.name, target))

    def _leave_check(self, t: float, out: List[Any]) -> None:
        """leave_when_no_agents: agents stopped being staffed; the live callers in line that one of them
        could take, in a queue with the rule, whose requirements now find no staffed agent, leave
        (enqueue order)."""
        dropped = self._dropped
        self._dropped = []
        leaving = {}
        for a in dropped:
            for c in self._calls.values():
                # a call held for its preferred agents stays: they are logged in
                if c.state == "waiting" and c.held is None and c.queue.policy.leave_when_no_agents \
                        and c.seq not in leaving \
                        and self._eligible(a, c) and self._staffed_eligible(c.queue, self._requirements(c)) == 0:
                    leaving[c.seq] = c
        for seq in sorted(leaving):
            c = leaving[seq]
            self._observe(c, t, False)
            c.queue.counters["exited"] += 1
            self._end_call(c)
            out.append(Exit(c.id, c.queue.name, "no_agents"))

    def schedule_callback(self, call: Any, queue: str, at: float, now: float, priority: Optional[int] = None,
                          requirements: Any = None) -> List[Any]:
        t = self._begin(now)
        q = self._queue(queue)
        at_t = check_at(at, t)
        c = self._new_call(call, q, priority, requirements, t)
        c.virtual = True
        c.state = "scheduled"
        c.timer = at_t
        q.callbacks["scheduled"] += 1
        out: List[Any] = []
        if at_t <= t:
            self._enter_scheduled(c, t, out)
        return self._finish(out)

    def accept_callback(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c = self._call(call)
        if c.state != "waiting":
            raise errors.bad_state("call", call, c.state, "accept a call-back for")
        self._observe(c, t, False)
        c.virtual = True
        c.state = "callback_pending"
        c.queue.callbacks["accepted"] += 1
        out: List[Any] = []
        if c.held is not None:   # the hold ends: a call-back goes to the general line
            self._unhold(c)
            self._dispatch_call(c, t, out)
        return self._finish(out)

    def answer(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c = self._call(call)
        if c.state != "offered":
            raise errors.bad_state("call", call, c.state, "answer")
        self._connect(c, t)
        self._observe(c, t, False)
        return self._finish([])

    def _connect(self, c: _Call, t: float) -> None:
        a = c.agent
        assert a is not None
        c.state = "connected"
        c.answered_at = t
        self._set_state(a, "busy", t)
        a.call = c
        a.answered += 1
        c.queue.counters["answered"] += 1

    def callback_answered(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c = self._call(call)
        if c.state != "dialing_back":
            raise errors.bad_state("call", call, c.state, "report an answered call-back for")
        self._connect(c, t)
        c.queue.callbacks["reached"] += 1
        return self._finish([])

    def callback_failed(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c = self._call(call)
        if c.state != "dialing_back":
            raise errors.bad_state("call", call, c.state, "report a failed call-back for")
        a = c.agent
        assert a is not None
        q = c.queue
        out: List[Any] = []
        q.callbacks["failed"] += 1          # every dial-back that did not connect
        if c.attempts >= q.policy.callback_attempts:
            q.callbacks["gave_up"] += 1
            self._end_call(c)
            out.append(Exit(c.id, q.name, "callback_failed"))
        else:
            c.state = "callback_retry"
            c.agent = None
            c.timer = t + q.policy.callback_retry_delay
        self._make_available(a, t, out)
        return self._finish(out)

    def _release_offer(self, call: Any, action: str) -> Tuple[_Call, _Agent]:
        c = self._call(call)
        if c.state not in ("offered", "dialing_back"):
            raise errors.bad_state("call", call, c.state, action)
        a = c.agent
        assert a is not None
        if c.state == "dialing_back":
            c.attempts -= 1   # the agent failed, the caller was not dialled
            c.queue.callbacks["failed"] += 1   # ... but the dial-back attempt did not connect
        return c, a

    def ring_no_answer(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c, a = self._release_offer(call, "report ring-no-answer for")
        out: List[Any] = []
        if a.after_call is not None:      # the pause or log-out asked for replaces the engine's own
            self._carry_out_after_call(a, t, out)
            self._requeue(c, t, out)
            return self._finish(out)
        self._set_state(a, "paused", t, "ring_no_answer")
        a.call = None
        self._requeue(c, t, out)
        if self.rna_action == "ready":
            self._after_delay(a, self.no_answer_delay, t, out)
        return self._finish(out)

    def reject(self, call: Any, now: float) -> List[Any]:
        t = self._begin(now)
        c, a = self._release_offer(call, "reject")
        out: List[Any] = []
        if a.after_call is not None:      # the pause or log-out asked for replaces the engine's own
            self._carry_out_after_call(a, t, out)
            self._requeue(c, t, out)
            return self._finish(out)
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
        if c.state not in ("waiting", "offered", "callback_pending", "callback_retry", "scheduled"):
            raise errors.bad_state("call", call, c.state, "abandon")
        out: List[Any] = []
        if c.virtual:
            c.queue.callbacks["cancelled"] += 1
        else:
            c.queue.counters["abandoned"] += 1
            self._observe(c, t, True)
        self._end_call(c)
        if c.state == "offered":
            a = c.agent
            assert a is not None
            self._make_available(a, t, out)
        return self._finish(out)

    def withdraw(self, call: Any, now: float) -> List[Any]:
        """The call leaves for a reason that is not the caller's (its session died, a supervisor,
        a drain): it ends without feeding the patience estimate; a ringing agent is freed."""
        t = self._begin(now)
        c = self._call(call)
        if c.state not in ("waiting", "offered", "dialing_back", "callback_pending", "callback_retry", "scheduled"):
            raise errors.bad_state("call", call, c.state, "withdraw")
        q = c.queue
        if c.state == "dialing_back":
            q.callbacks["failed"] += 1      # the attempt did not connect ...
            q.callbacks["cancelled"] += 1   # ... and the call-back ends
        elif c.virtual:
            q.callbacks["cancelled"] += 1
        else:
            q.counters["withdrawn"] += 1
        self._end_call(c)
        out: List[Any] = []
        if c.state in ("offered", "dialing_back"):
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
        q = c.queue
        q.n_talk += 1
        q.talk_sum += t - c.answered_at
        self._end_call(c)
        out: List[Any] = []
        wrap = q.policy.wrap_up
        if wrap > 0:
            self._set_state(a, "wrap_up", t)
            a.call = None
            a.timer = t + wrap
        else:
            self._make_available(a, t, out)
        return self._finish(out)

    def call_state(self, call: Any) -> str:
        return self._call(call).state

    def calls(self) -> Dict[Any, str]:
        return {ident: c.state for ident, c in self._calls.items()}

    def waiting_count(self) -> int:
        return sum(1 for c in self._calls.values() if c.state == "waiting")   # held calls included

    # ------------------------------------------------------------ snapshot
    def snapshot(self) -> Dict[str, Any]:
        now = self._now
        queues: Dict[str, Any] = {}
        for name, q in self._queues.items():
            waiting = [c for c in self._calls.values() if c.state == "waiting" and c.queue is q]
            in_line = [c for c in waiting if c.held is None]
            by_state = dict(available=0, reserved=0, busy=0, wrap_up=0, paused=0)
            for a in self._agents.values():
                if a.queues is None or name in a.queues:
                    by_state[a.state] += 1
            cb = dict(q.callbacks)
            cb["pending"] = sum(1 for c in self._calls.values()
                                if c.virtual and c.queue is q and c.state != "connected")
            queues[name] = dict(
                waiting=len(waiting),
                held=len(waiting) - len(in_line),
                oldest_wait=max((now - c.entry for c in in_line), default=0.0),
                agents=by_state,
                callbacks=cb,
                **q.counters,
            )
        agents = {}
        for ident, a in self._agents.items():
            busy = a.busy_time + (now - a.since if a.state in _BUSY_STATES else 0.0)
            agents[ident] = dict(state=a.state, reason=a.reason, answered=a.answered, busy_time=busy,
                                 logged_in=now - a.login, call=None if a.call is None else a.call.id,
                                 after_call=None if a.after_call is None else a.after_call[0])
        return dict(now=now, queues=queues, agents=agents)
