"""The compiled engine against the plain-Python oracle, on random command streams.

Every command is applied to both; the decisions (or the error type and
message) must be identical, and so must the snapshots and next deadlines.
Invariants are checked on the oracle after every step.
"""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import acd
from acd._reference import ReferenceEngine
from acd._validate import MAX_TIME

SKILLS = ("fr", "tech", "en")
AGENTS = tuple(f"a{i}" for i in range(7))
QUEUE_NAMES = ("gen", "tech", "vip", "cb", "nope")
# queues with queue-state rules (max_length, join_when_no_agents, leave_when_no_agents, if_wait_over)
RULE_QUEUES = ("small", "strict", "fast", "wait", "offer")
ALL_QUEUES = QUEUE_NAMES[:4] + RULE_QUEUES
# time steps chosen so that deadlines often coincide (ties must break the same way)
DT = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 61.0])
# calls that withdraw accepts, and the states it refuses
WITHDRAWABLE = ("waiting", "offered", "dialing_back", "callback_pending", "callback_retry", "scheduled")


def build_queues():
    return [
        acd.Queue("gen", wrap_up=0.0, announce_every=25),
        acd.Queue("tech", steps=(acd.RoutingStep(0, {"tech": 7}), acd.RoutingStep(20, {"tech": 1}),
                                 acd.RoutingStep(60, overflow="gen", priority_boost=1)),
                  max_wait=300, wrap_up=5, ageing=15, callback_risk=0.3, expected_patience=60),
        acd.Queue("vip", priority=5, steps=(acd.RoutingStep(0, {"fr": 5}), acd.RoutingStep(10, {"fr": 2})),
                  max_wait=40, wrap_up=2, service_level=(0.9, 20), cost=3.0, max_length=2),
        acd.Queue("cb", steps=(acd.RoutingStep(0, {"en": 2}), acd.RoutingStep(30, overflow="gen")),
                  max_wait=200, callback_threshold=0, announce_on_join=True, announce_every=30,
                  callback_attempts=2, callback_retry_delay=20, scheduled_boost=2, expected_handle_time=60),
        # queue-state rules: a short line that overflows to gen when nobody can take it, and empties
        # when the last agent who could goes; an agency that refuses callers nobody is there for and
        # sends long waits on; a line that turns long waits away or offers a call-back
        acd.Queue("small", steps=(acd.RoutingStep(0, {"fr": 3}),), max_length=1,
                  join_when_no_agents="overflow:gen", leave_when_no_agents=True, announce_on_join=True),
        acd.Queue("strict", steps=(acd.RoutingStep(0, {"tech": 5}), acd.RoutingStep(15, {"tech": 1})),
                  join_when_no_agents="refuse", leave_when_no_agents=True, max_wait=100,
                  if_wait_over={"seconds": 30, "then": "overflow:small"}, expected_handle_time=60),
        acd.Queue("fast", steps=(acd.RoutingStep(0, {"en": 6}),), max_length=2, max_wait=90),
        acd.Queue("wait", steps=(acd.RoutingStep(0, {"tech": 3}),), if_wait_over={"seconds": 20, "then": "exit"},
                  expected_handle_time=30),
        acd.Queue("offer", if_wait_over={"seconds": 10, "then": "offer_callback"}, max_length=4,
                  leave_when_no_agents=True, wrap_up=3),
    ]


def queue_variants():
    """New policies for live update_queue: shorter and longer steps, steps already passed, overflows
    (a cycle gen -> vip -> tech -> gen included), new max wait, ageing, announcements, call-backs."""
    R = acd.RoutingStep
    return {
        "gen": [acd.Queue("gen"),
                acd.Queue("gen", steps=(R(0, {"fr": 3}), R(5, {"fr": 1})), wrap_up=3, announce_every=10,
                          max_wait=30),
                acd.Queue("gen", steps=(R(0), R(15, overflow="vip", priority_boost=2)), ageing=5,
                          callback_threshold=10)],
        "tech": [acd.Queue("tech", steps=(acd.RoutingStep(0, {"tech": 1}),), wrap_up=0),
                 acd.Queue("tech", steps=(R(0, {"tech": 9}), R(2, {"tech": 5}), R(4, {"tech": 2}), R(8),
                                          R(12, overflow="cb")), max_wait=6, service_level=(0.5, 10)),
                 acd.Queue("tech", steps=(R(0, {"en": 1}), R(40, overflow="gen")), announce_on_join=True,
                           callback_attempts=1, callback_retry_delay=5)],
        "vip": [acd.Queue("vip", priority=2, steps=(R(0, {"fr": 1}),)),
                acd.Queue("vip", steps=(R(0, {"fr": 9}), R(3, overflow="tech")), ageing=2, cost=0.5,
                          announce_every=7)],
        "cb": [acd.Queue("cb", steps=(R(0, {"en": 2}),), scheduled_boost=0, callback_risk=0.1),
               acd.Queue("cb", steps=(R(0, {"en": 5}), R(1, {"en": 1}), R(2, overflow="gen")), max_wait=1,
                         announce_every=3)],
        # queue-state rules changed live: dropped, loosened, added; a join overflow to a queue
        # configured later (a loop could form: refused)
        "small": [acd.Queue("small", steps=(R(0, {"fr": 1}),), max_length=3),
                  acd.Queue("small", steps=(R(0, {"fr": 3}),), join_when_no_agents="overflow:offer")],
        "strict": [acd.Queue("strict", steps=(R(0, {"tech": 1}),), join_when_no_agents="accept",
                             if_wait_over={"seconds": 5, "then": "exit"})],
        "wait": [acd.Queue("wait", steps=(R(0, {"tech": 3}),), if_wait_over={"seconds": 20, "then": "overflow:strict"},
                           leave_when_no_agents=True, max_length=1)],
        "gen#rules": [acd.Queue("gen", leave_when_no_agents=True, max_length=3)],
        "nope": [acd.Queue("nope")],
        # an overflow target that is not configured: refused
        "bad": [acd.Queue("gen", steps=(R(0), R(5, overflow="nope")))],
    }


VARIANTS = queue_variants()
ORIGINAL = {q.name: q for q in build_queues()}


def outcome(fn, *args, **kw):
    try:
        return ("ok", fn(*args, **kw))
    except acd.AcdError as e:
        return ("error", type(e).__name__, str(e))


skills_st = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), min_size=1, max_size=3)
bad_skills_st = st.one_of(st.just({"tech": 0}), st.just({"tech": 11}), st.just({"martian": 3}), st.just(["x"]))
prio_st = st.one_of(st.none(), st.none(), st.none(), st.integers(0, 9), st.sampled_from([-1, 10, True, "3"]))
req_st = st.one_of(st.none(), st.none(), st.none(), st.none(),
                   st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=2),
                   st.sampled_from([{"klingon": 1}, {"fr": 12}]))
queue_st = st.sampled_from(("gen", "tech", "vip", "cb") * 4 + RULE_QUEUES * 3 + ("nope",))
# preferred agents (a returning caller's agent): often none, some logged out or unknown, a few bad
pref_st = st.one_of(st.none(), st.none(), st.none(),
                    st.lists(st.sampled_from(AGENTS + ("ghost",)), min_size=1, max_size=3).map(tuple),
                    st.lists(st.sampled_from(AGENTS), min_size=1, max_size=2),
                    st.sampled_from(["a1", ("",), (True,), tuple(f"x{i}" for i in range(17)), ("a1", 2.5)]))
pref_for_st = st.one_of(st.none(), st.none(), st.sampled_from([5, 15.0, 30, 100, 1000]),
                        st.sampled_from([0, -1, float("nan"), "10"]))


@settings(stateful_step_count=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
class DifferentialMachine(RuleBasedStateMachine):
    @initialize(strategy=st.sampled_from(acd.AGENT_STRATEGIES), seed=st.integers(0, 2**64 - 1),
                rna=st.sampled_from(["pause", "ready"]), nad=st.sampled_from([0.0, 3.0]),
                rjd=st.sampled_from([0.0, 4.0]), levels=st.lists(st.integers(1, 10), min_size=4, max_size=4),
                choice=st.sampled_from(acd.CALL_CHOICES), window=st.sampled_from([0, 3, 4096]))
    def setup(self, strategy, seed, rna, nad, rjd, levels, choice, window):
        kw = dict(agent_strategy=strategy, seed=seed, ring_no_answer=rna, no_answer_delay=nad, reject_delay=rjd,
                  call_choice=choice, patience_window=window)
        self.core = acd.Engine(**kw)
        self.ref = ReferenceEngine(**kw)
        for e in (self.core, self.ref):
            e.add_skill("en")
            for q in build_queues():
                e.add_queue(q)
        self.now = 0.0
        self.next_call = 0
        self.live = set()       # calls the test believes are in the engine
        self.ended = 0          # calls that ended
        self.ever = 0           # calls enqueued
        self.joining = None     # the call being enqueued: it may be refused (Exit) at once
        self.reconfigured = False   # a queue's policy was replaced (update_queue)
        self.removed_cb = {}        # call-back counters of removed queues (callbacks_add_up)
        # two agents who can take most calls, so that assignments are frequent
        self.both("login", "a5", {"fr": levels[0], "tech": levels[1], "en": 3}, 0.0)
        self.both("login", "a6", {"fr": levels[2], "tech": levels[3]}, 0.0, queues=["tech", "vip", "cb"])

    def both(self, name, *args, **kw):
        a = outcome(getattr(self.core, name), *args, **kw)
        b = outcome(getattr(self.ref, name), *args, **kw)
        assert a == b, (name, args, kw, a, b)
        event(f"{name}: {a[0]}")
        if a[0] == "ok" and isinstance(a[1], list):
            # a reconfiguration may leave an agent with a call it is no longer eligible for (offered by a
            # deadline just before it, whose decision comes with it): eligibility is checked elsewhere
            self.observe(a[1], check_eligible=name not in ("set_agent", "update_queue"))
        else:
            # a failed command may still have run deadlines that fell due; their
            # decisions wait in the engine for the next command: collect them now
            assert self.core.now == self.ref.now
            self.both("advance", self.ref.now)
        return a

    def observe(self, decisions, check_eligible=True):
        for d in decisions:
            event(f"decision {type(d).__name__}")
            if not check_eligible:
                if isinstance(d, acd.Exit):
                    self.end(d.call)
                continue
            if isinstance(d, acd.Assign):
                if d.call not in self.ref._calls:
                    continue  # delivered late (after a failed command) and ended since
                c = self.ref._calls[d.call]
                ag = self.ref._agents.get(d.agent)
                if c.agent is ag and ag is not None:   # still its agent at the end of the command
                    assert ag.call is c
                    assert self.ref._eligible(ag, c), d
            elif isinstance(d, acd.Exit):
                event(f"exit {d.reason}")
                self.end(d.call)
            elif isinstance(d, acd.DialBack):
                if d.call in self.ref._calls and self.ref._calls[d.call].agent is not None:
                    c = self.ref._calls[d.call]
                    if c.agent.id == d.agent:
                        assert c.virtual and self.ref._eligible(c.agent, c)

    def end(self, call):
        if call == self.joining and call not in self.live:   # refused on joining
            self.joining = None
            self.ended += 1
            return
        assert call in self.live, call   # a call that ends twice is no longer live the second time
        self.live.discard(call)
        self.ended += 1

    def tick(self, dt):
        self.now += dt
        return self.now

    # ------------------------------------------------------------ agents
    @rule(agent=st.sampled_from(AGENTS), skills=st.one_of(skills_st, skills_st, skills_st, bad_skills_st),
          queues=st.one_of(st.none(), st.none(), st.lists(st.sampled_from(QUEUE_NAMES[:3] + ("small", "strict")), max_size=2),
                           st.just(["nope"])),
          paused=st.one_of(st.none(), st.none(), st.just("training")), dt=DT)
    def login(self, agent, skills, queues, paused, dt):
        self.both("login", agent, skills, self.tick(dt), queues=queues, paused=paused)

    @rule(data=st.data(), skills=st.one_of(skills_st, skills_st, skills_st, skills_st, bad_skills_st),
          queues=st.one_of(st.none(), st.none(), st.lists(st.sampled_from(QUEUE_NAMES[:4]), max_size=2),
                           st.just(["nope"])), dt=DT)
    def set_agent(self, data, skills, queues, dt):
        """Live reconfiguration of an agent (any state): new skills and queues, rank and call kept."""
        agent = data.draw(st.sampled_from(sorted(self.ref._agents) * 6 + ["ghost", "a0"]))
        r = self.both("set_agent", agent, skills, self.tick(dt), queues=queues)
        if r[0] == "ok":
            event(f"set_agent ok: {self.ref.agent_state(agent)}, {len(r[1])} decisions")

    @rule(data=st.data(), dt=DT)
    def update_queue(self, data, dt):
        """Live reconfiguration of a queue: the new rules reach the calls already in it."""
        name = data.draw(st.sampled_from(sorted(VARIANTS)))
        queue = data.draw(st.sampled_from(VARIANTS[name] + ([ORIGINAL[name]] if name in ORIGINAL else [])))
        if self.both("update_queue", queue, self.tick(dt))[0] == "ok":
            self.reconfigured = True

    @rule(name=st.sampled_from(QUEUE_NAMES), dt=DT)
    def remove_queue(self, name, dt):
        """Refused (InvalidState) while anything uses the queue, else it is gone (its counters too)."""
        before = self.ref.snapshot()["queues"].get(name)
        if self.both("remove_queue", name, self.tick(dt))[0] == "ok":
            for k, v in before["callbacks"].items():
                self.removed_cb[k] = self.removed_cb.get(k, 0) + v

    @rule(name=st.sampled_from(QUEUE_NAMES[:4]))
    def add_queue_again(self, name):
        """A removed queue configured again (DuplicateId while it exists, UnknownQueue for a missing target)."""
        a = outcome(self.core.add_queue, ORIGINAL[name])
        b = outcome(self.ref.add_queue, ORIGINAL[name])
        assert a == b, (a, b)

    @rule(agent=st.sampled_from(AGENTS + ("ghost",)), dt=DT)
    def logout(self, agent, dt):
        self.both("logout", agent, self.tick(dt))

    @rule(agent=st.sampled_from(AGENTS), dt=DT)
    def ready(self, agent, dt):
        self.both("ready", agent, self.tick(dt))

    @rule(agent=st.sampled_from(AGENTS), reason=st.sampled_from(["lunch", "", "meeting"]), dt=DT)
    def pause(self, agent, reason, dt):
        self.both("pause", agent, self.tick(dt), reason=reason)

    @rule(data=st.data(), what=st.sampled_from(["pause", "logout", "ready"]), dt=DT)
    def request_during_call(self, data, what, dt):
        """Pause, log-out or ready from an agent who rings or talks: deferred to the end of the call."""
        busy = sorted(a for a, info in self.ref.snapshot()["agents"].items() if info["state"] in ("reserved", "busy"))
        if not busy:
            return
        agent = data.draw(st.sampled_from(busy))
        self.both(what, agent, self.tick(dt))

    # ------------------------------------------------------------ calls
    @rule(queue=queue_st, priority=prio_st, req=req_st, dt=DT, reuse=st.sampled_from([False] * 5 + [True]),
          preferred=pref_st, preferred_for=pref_for_st)
    def enqueue(self, queue, priority, req, dt, reuse, preferred=None, preferred_for=None):
        if reuse and self.live:
            call = sorted(self.live)[0]
        else:
            call = f"c{self.next_call}"
        kw = {}
        if preferred is not None or preferred_for is not None:
            kw = dict(preferred=preferred, preferred_for=preferred_for)
        # the call being enqueued: it may be refused at once (Exit); a reused id may also end before
        # (a deadline in the same command) and then be enqueued anew
        self.joining = call
        r = self.both("enqueue", call, queue, self.tick(dt), priority=priority, requirements=req, **kw)
        if r[0] == "ok" and call in self.ref._calls and self.ref._calls[call].held is not None:
            event("held for preferred agents")
        if r[0] == "ok":
            self.next_call += 1
            self.ever += 1
            if call in self.ref._calls:
                self.live.add(call)
        self.joining = None

    @precondition(lambda self: any(a.state != "available" for a in self.ref._agents.values()))
    @rule(data=st.data(), queue=queue_st, dt=DT, preferred_for=st.sampled_from([None, 5, 15.0, 30, 1000]),
          extra=st.sampled_from([(), (), ("ghost",), ("a0", "a1")]))
    def enqueue_returning(self, data, queue, dt, preferred_for, extra):
        """A returning caller whose agent is busy or paused: the call is held for that agent."""
        agent = data.draw(st.sampled_from(sorted(a.id for a in self.ref._agents.values() if a.state != "available")))
        self.enqueue(queue, None, None, dt, False, preferred=(agent,) + extra, preferred_for=preferred_for)

    def pick(self, data, states):
        cands = sorted(c for c in self.live if self.ref._calls[c].state in states) or sorted(self.live)
        return data.draw(st.sampled_from(cands + ["c-none"]))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def answer(self, data, dt):
        self.both("answer", self.pick(data, ("offered",)), self.tick(dt))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def complete(self, data, dt):
        call = self.pick(data, ("connected",))
        if self.both("complete", call, self.tick(dt))[0] == "ok":
            self.end(call)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def abandon(self, data, dt):
        call = self.pick(data, ("waiting", "offered", "callback_pending", "callback_retry", "scheduled"))
        if self.both("abandon", call, self.tick(dt))[0] == "ok":
            self.end(call)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT, refused=st.sampled_from([False] * 4 + [True]))
    def withdraw(self, data, dt, refused):
        """The call leaves for a reason not its own (session died, supervisor, drain)."""
        call = self.pick(data, ("connected",) if refused else WITHDRAWABLE)
        if self.both("withdraw", call, self.tick(dt))[0] == "ok":
            self.end(call)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def ring_no_answer(self, data, dt):
        self.both("ring_no_answer", self.pick(data, ("offered", "dialing_back")), self.tick(dt))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def reject(self, data, dt):
        self.both("reject", self.pick(data, ("offered", "dialing_back")), self.tick(dt))

    # ------------------------------------------------------------ call-backs
    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def accept_callback(self, data, dt):
        self.both("accept_callback", self.pick(data, ("waiting",)), self.tick(dt))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def callback_answered(self, data, dt):
        self.both("callback_answered", self.pick(data, ("dialing_back",)), self.tick(dt))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), dt=DT)
    def callback_failed(self, data, dt):
        self.both("callback_failed", self.pick(data, ("dialing_back",)), self.tick(dt))

    @rule(queue=queue_st, priority=prio_st, req=req_st, dt=DT,
          delay=st.sampled_from([0.0, 5.0, 45.0, -1.0, 2e10, float("inf")]))
    def schedule_callback(self, queue, priority, req, dt, delay):
        call = f"c{self.next_call}"
        now = self.tick(dt)
        r = self.both("schedule_callback", call, queue, now + delay, now, priority=priority, requirements=req)
        if r[0] == "ok":
            self.next_call += 1
            self.live.add(call)
            self.ever += 1

    @rule(queue=queue_st, priority=prio_st, req=req_st)
    def estimate(self, queue, priority, req):
        a = outcome(self.core.estimate_wait, queue, priority=priority, requirements=req)
        b = outcome(self.ref.estimate_wait, queue, priority=priority, requirements=req)
        assert a == b

    # ------------------------------------------------------------ time
    @rule(dt=DT)
    def advance(self, dt):
        self.both("advance", self.tick(dt))

    @rule(back=st.sampled_from([0.5, 100.0]))
    def time_backwards(self, back):
        r = self.both("advance", self.now - back)
        assert r[0] == "error" and r[1] == "TimeWentBackwards"

    @rule(bad=st.sampled_from([float("nan"), float("inf"), float("-inf"), "10", None,
                               # beyond MAX_TIME: a millisecond timestamp, the next float, ints
                               1.7e12, MAX_TIME * (1 + 2**-52), 10**13, 10**400]),
          op=st.sampled_from(["advance", "login", "enqueue"]))
    def bad_now(self, bad, op):
        if op == "advance":
            r = self.both("advance", bad)
        elif op == "login":
            r = self.both("login", "a0", {"fr": 1}, bad)
        else:
            r = self.both("enqueue", f"c{self.next_call}", "gen", bad)
        assert r[0] == "error" and r[1] == "InvalidInput" and "at most 1e+10" in r[2], r

    @precondition(lambda self: hasattr(self, "ref") and not any(
        (c.state == "waiting" and c.queue.name != "vip") or
        # after a live reconfiguration (vip may announce, queues may overflow in a cycle): no call in line
        (self.reconfigured and c.state in ("waiting", "callback_pending", "callback_retry", "scheduled"))
        for c in self.ref._calls.values()))
    @rule(dt=st.sampled_from([1e6, 1e9]), then=st.sampled_from(["advance", "enqueue"]))
    def jump(self, dt, then):
        """A large step in time.  Work must not grow with the time skipped: only when no live caller
        waits in a queue that announces (or overflows into one) -- announcements to a waiting caller
        are real work, one per announce_every seconds.  Callers in vip exit at max wait."""
        if self.now + dt > MAX_TIME - 1e6:
            return
        event(f"jump {dt:g}")
        if then == "advance":
            self.both("advance", self.tick(dt))
        else:
            self.enqueue("gen", None, None, dt, False)

    # ------------------------------------------------------------ invariants
    @invariant()
    def same_state(self):
        if not hasattr(self, "core"):
            return
        assert self.core.snapshot() == self.ref.snapshot()
        assert self.core.next_deadline() == self.ref.next_deadline()
        assert self.core.waiting_count() == self.ref.waiting_count()
        assert self.core.calls() == self.ref.calls()
        for a in AGENTS:
            assert self.core.agent_state(a) == self.ref.agent_state(a)
        for c in self.ref._calls:
            assert self.core.call_state(c) == self.ref.call_state(c)
            assert outcome(self.core.call_wait, c) == outcome(self.ref.call_wait, c)
        assert self.core.queues == self.ref.queues
        for q in ALL_QUEUES:
            assert repr(outcome(self.core.patience, q)) == repr(outcome(self.ref.patience, q))
            assert repr(outcome(self.core.patience, q, priority=5)) == repr(outcome(self.ref.patience, q, priority=5))
            assert outcome(self.core.patience_samples, q) == outcome(self.ref.patience_samples, q)
            assert outcome(self.core.estimate_wait, q) == outcome(self.ref.estimate_wait, q)

    @invariant()
    def no_call_lost(self):
        if not hasattr(self, "core"):
            return
        assert not self.ref._pending
        assert set(self.ref._calls) == self.live
        assert len(self.live) + self.ended == self.ever

    @invariant()
    def callbacks_add_up(self):
        """Per queue, every dial-back is reached, failed or still dialling; over all queues (a call-back
        may overflow), every call-back accepted or scheduled is reached, given up, cancelled or pending."""
        if not hasattr(self, "core"):
            return
        snap = self.ref.snapshot()["queues"]
        for name, q in snap.items():
            cb = q["callbacks"]
            dialling = sum(1 for c in self.ref._calls.values() if c.state == "dialing_back" and c.queue.name == name)
            assert cb["dialled"] == cb["reached"] + cb["failed"] + dialling, (name, cb, dialling)
        gone = self.removed_cb
        began = sum(q["callbacks"]["accepted"] + q["callbacks"]["scheduled"] for q in snap.values())
        began += gone.get("accepted", 0) + gone.get("scheduled", 0)
        ended = sum(q["callbacks"][k] for q in snap.values() for k in ("reached", "gave_up", "cancelled", "pending"))
        ended += sum(gone.get(k, 0) for k in ("reached", "gave_up", "cancelled"))   # pending: 0 when removed
        assert began == ended, snap

    @invariant()
    def one_call_per_agent(self):
        if not hasattr(self, "core"):
            return
        holders = [c.agent.id for c in self.ref._calls.values() if c.agent is not None]
        assert len(holders) == len(set(holders))
        for c in self.ref._calls.values():
            assert (c.agent is not None) == (c.state in ("offered", "connected", "dialing_back"))

    @invariant()
    def work_conserving(self):
        """No idle agent is eligible for a waiting call (after deadlines up to now ran)."""
        if not hasattr(self, "core"):
            return
        idle = [a for a in self.ref._agents.values() if a.state == "available"]
        for c in self.ref._calls.values():
            if c.held is not None:
                # held for its preferred agents: none of them is free, every one is still logged in
                assert c.held and not any(a.state == "available" for a in c.held), c.id
                assert all(self.ref._agents.get(a.id) is a for a in c.held), c.id
            elif c.state in ("waiting", "callback_pending"):
                assert not any(self.ref._eligible(a, c) for a in idle), c.id


TestDifferential = DifferentialMachine.TestCase
