"""Behaviour and error cases of the engine, on both implementations."""

from __future__ import annotations

import copy
import pickle

import pytest

import acd
from acd import Assign, Exit, Overflow, Queue, RoutingStep
from acd._reference import ReferenceEngine


def test_compiled_core_is_loaded():
    import acd._core as core

    assert core.__file__.endswith((".so", ".pyd")), core.__file__
    assert acd.Engine is core.Engine


def make(engine_cls, **kw):
    e = engine_cls(**kw)
    e.add_skill("fr")
    e.add_queue(Queue("general", wrap_up=0.0))
    e.add_queue(Queue("support",
                      steps=(RoutingStep(0, {"tech": 7}), RoutingStep(30, {"tech": 1}),
                             RoutingStep(120, overflow="general", priority_boost=1)),
                      wrap_up=10.0, max_wait=600))
    return e


# ---------------------------------------------------------------- dispatch

def test_call_waits_then_goes_to_agent_who_becomes_ready(engine_cls):
    e = make(engine_cls)
    assert e.enqueue("c1", "general", 1.0) == []
    assert e.call_state("c1") == "waiting"
    assert e.login("a1", {"fr": 3}, 2.0) == [Assign("c1", "a1", "general", 1.0)]
    assert e.call_state("c1") == "offered"
    assert e.agent_state("a1") == "reserved"
    assert e.answer("c1", 3.0) == []
    assert e.agent_state("a1") == "busy"
    assert e.complete("c1", 10.0) == []
    assert e.agent_state("a1") == "available"
    with pytest.raises(acd.UnknownCall):
        e.call_state("c1")


def test_requirements_relax_with_routing_steps(engine_cls):
    e = make(engine_cls)
    e.login("junior", {"tech": 3}, 0.0)
    assert e.enqueue("c1", "support", 0.0) == []          # needs tech >= 7 first
    assert e.next_deadline() == 30.0
    assert e.advance(29.9) == []
    assert e.advance(30.0) == [Assign("c1", "junior", "support", 30.0)]


def test_expert_preferred_before_relaxation(engine_cls):
    e = make(engine_cls)
    e.login("junior", {"tech": 3}, 0.0)
    e.login("expert", {"tech": 9}, 1.0)
    assert e.enqueue("c1", "support", 2.0) == [Assign("c1", "expert", "support", 0.0)]


def test_overflow_moves_call_and_keeps_total_wait(engine_cls):
    e = make(engine_cls)
    e.enqueue("c1", "support", 0.0)
    out = e.advance(120.0)
    assert out == [Overflow("c1", "support", "general")]
    assert e.login("a", {}, 125.0) == [Assign("c1", "a", "general", 125.0)]
    snap = e.snapshot()["queues"]
    assert snap["support"]["overflowed"] == 1 and snap["general"]["entered"] == 1


def test_max_wait_exit(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q", max_wait=60))
    e.enqueue("c1", "q", 0.0)
    assert e.next_deadline() == 60.0
    # a command after the deadline reports the exit that fell due before it
    assert e.enqueue("c2", "q", 61.0) == [Exit("c1", "q", "max_wait")]
    assert e.waiting_count() == 1
    assert e.snapshot()["queues"]["q"]["exited"] == 1


def test_priority_then_fifo(engine_cls):
    e = make(engine_cls)
    e.enqueue("low1", "general", 0.0, priority=1)
    e.enqueue("high", "general", 1.0, priority=5)
    e.enqueue("low2", "general", 2.0, priority=1)
    assert e.login("a", {}, 3.0) == [Assign("high", "a", "general", 2.0)]
    e.answer("high", 3.0)
    assert e.complete("high", 4.0) == [Assign("low1", "a", "general", 4.0)]


def test_priority_ageing(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("old", ageing=10.0))
    e.add_queue(Queue("new"))
    e.enqueue("aged", "old", 0.0, priority=1)        # priority 1 + 5 after 50 s
    e.enqueue("fresh", "new", 49.0, priority=5)
    assert e.login("a", {}, 50.0) == [Assign("aged", "a", "old", 50.0)]


def test_queue_default_priority_and_call_requirements(engine_cls):
    e = make(engine_cls)
    e.add_queue(Queue("vip", priority=7))
    e.enqueue("normal", "general", 0.0)
    e.enqueue("vip1", "vip", 1.0)
    e.enqueue("french", "general", 2.0, priority=9, requirements={"fr": 5})
    assert e.login("a", {"fr": 2}, 3.0) == [Assign("vip1", "a", "vip", 2.0)]
    assert e.login("b", {"fr": 6}, 3.0) == [Assign("french", "b", "general", 1.0)]


def test_agent_queue_membership(engine_cls):
    e = make(engine_cls)
    e.login("a", {"tech": 9}, 0.0, queues=["general"])
    assert e.enqueue("c1", "support", 1.0) == []
    snap = e.snapshot()["queues"]
    assert snap["support"]["agents"]["available"] == 0
    assert snap["general"]["agents"]["available"] == 1


def test_wrap_up_then_next_call(engine_cls):
    e = make(engine_cls)
    e.login("a", {"tech": 8}, 0.0)
    e.enqueue("c1", "support", 0.0)
    e.answer("c1", 1.0)
    e.enqueue("c2", "support", 2.0)
    assert e.complete("c1", 5.0) == []
    assert e.agent_state("a") == "wrap_up"
    assert e.next_deadline() == 15.0
    assert e.advance(15.0) == [Assign("c2", "a", "support", 13.0)]


def test_ready_ends_wrap_up_early(engine_cls):
    e = make(engine_cls)
    e.login("a", {"tech": 8}, 0.0)
    e.enqueue("c1", "support", 0.0)
    e.answer("c1", 1.0)
    e.complete("c1", 5.0)
    assert e.ready("a", 6.0) == []
    assert e.agent_state("a") == "available"
    assert e.next_deadline() is None


def test_ring_no_answer_requeues_at_head_and_pauses_agent(engine_cls):
    e = make(engine_cls)
    e.login("a", {}, 0.0)
    e.enqueue("c1", "general", 1.0)
    e.enqueue("c2", "general", 2.0)
    assert e.ring_no_answer("c1", 20.0) == []
    assert e.agent_state("a") == "paused"
    assert e.snapshot()["agents"]["a"]["reason"] == "ring_no_answer"
    assert e.login("b", {}, 21.0) == [Assign("c1", "b", "general", 20.0)]


def test_ring_no_answer_ready_after_delay(engine_cls):
    e = make(engine_cls, ring_no_answer="ready", no_answer_delay=5.0)
    e.login("a", {}, 0.0)
    e.enqueue("c1", "general", 1.0)
    e.ring_no_answer("c1", 10.0)
    assert e.agent_state("a") == "paused"
    assert e.advance(15.0) == [Assign("c1", "a", "general", 14.0)]


def test_reject_with_delay_gives_call_to_other_agent(engine_cls):
    e = make(engine_cls, reject_delay=30.0)
    e.login("a", {}, 0.0)
    e.enqueue("c1", "general", 1.0)
    e.login("b", {}, 2.0)
    assert e.reject("c1", 3.0) == [Assign("c1", "b", "general", 2.0)]
    assert e.snapshot()["agents"]["a"]["reason"] == "rejected"
    assert e.advance(33.0) == []
    assert e.agent_state("a") == "available"


def test_abandon_while_ringing_frees_agent(engine_cls):
    e = make(engine_cls)
    e.login("a", {}, 0.0)
    e.enqueue("c1", "general", 1.0)
    e.enqueue("c2", "general", 2.0)
    assert e.abandon("c1", 3.0) == [Assign("c2", "a", "general", 1.0)]
    assert e.snapshot()["queues"]["general"]["abandoned"] == 1


def test_ids_can_be_reused_after_the_call_ends(engine_cls):
    e = make(engine_cls)
    e.enqueue(42, "general", 0.0)
    e.abandon(42, 1.0)
    assert e.enqueue(42, "general", 2.0) == []


@pytest.mark.parametrize("strategy,expected", [
    ("longest_idle", "a1"),       # idle since 0
    ("highest_level", "a3"),      # tech 9
    ("fewest_calls", "a2"),       # answered none, a1 answered one
    ("round_robin", "a2"),        # never offered, then login order
])
def test_agent_strategies(engine_cls, strategy, expected):
    e = engine_cls(agent_strategy=strategy)
    e.add_queue(Queue("q", steps=(RoutingStep(0, {"tech": 1}),)))
    e.login("a1", {"tech": 2}, 0.0)
    e.enqueue("warm", "q", 0.0)
    e.answer("warm", 0.0)
    e.complete("warm", 1.0)          # a1 idle again since 1.0
    e.login("a2", {"tech": 5}, 2.0)
    e.login("a3", {"tech": 9}, 3.0)
    if strategy == "longest_idle":
        expected = "a1"
    out = e.enqueue("c", "q", 4.0)
    assert out == [Assign("c", expected, "q", 0.0)]


def test_least_occupied(engine_cls):
    e = engine_cls(agent_strategy="least_occupied")
    e.add_queue(Queue("q"))
    e.login("busy", {}, 0.0)
    e.enqueue("c0", "q", 0.0)
    e.answer("c0", 0.0)
    e.login("fresh", {}, 5.0)
    e.complete("c0", 10.0)           # busy: 100 % occupied when it became available
    assert e.enqueue("c1", "q", 11.0) == [Assign("c1", "fresh", "q", 0.0)]


def test_random_strategy_is_seeded(engine_cls):
    def picks(seed):
        e = engine_cls(agent_strategy="random", seed=seed)
        e.add_queue(Queue("q"))
        for i in range(10):
            e.login(f"a{i}", {}, 0.0)
        return [e.enqueue(f"c{i}", "q", 1.0)[0].agent for i in range(10)]
    assert picks(1) == picks(1)
    assert picks(1) != picks(2)


def test_random_is_identical_across_implementations():
    def picks(cls):
        e = cls(agent_strategy="random", seed=7)
        e.add_queue(Queue("q"))
        for i in range(20):
            e.login(f"a{i}", {}, 0.0)
        return [e.enqueue(f"c{i}", "q", 1.0)[0].agent for i in range(20)]
    assert picks(acd.Engine) == picks(ReferenceEngine)


def test_snapshot_counts(engine_cls):
    e = make(engine_cls)
    e.login("a", {"tech": 8}, 0.0)
    e.login("p", {}, 0.0, paused="training")
    e.enqueue("c1", "support", 0.0)
    e.enqueue("c2", "support", 5.0)
    s = e.snapshot()
    q = s["queues"]["support"]
    assert q["waiting"] == 1 and q["oldest_wait"] == 0.0 and q["entered"] == 2
    assert q["agents"] == dict(available=0, reserved=1, busy=0, wrap_up=0, paused=1)
    assert s["agents"]["p"]["reason"] == "training"
    assert s["agents"]["a"]["call"] == "c1"
    e.advance(9.0)
    assert e.snapshot()["queues"]["support"]["oldest_wait"] == 4.0


def test_replay_equals_individual_commands():
    cmds = [("login", "a", {}, 0.0), ("enqueue", "c1", "general", 1.0), ("enqueue", "c2", "general", 2.0),
            ("answer", "c1", 3.0), ("complete", "c1", 4.0), ("abandon", "c2", 4.5), ("advance", 10.0)]
    e1 = make(acd.Engine)
    e2 = make(ReferenceEngine)
    out = e1.replay(cmds)
    assert out == [Assign("c1", "a", "general", 0.0), Assign("c2", "a", "general", 2.0)]
    ref = [d for c in cmds for d in getattr(e2, c[0])(*c[1:])]
    assert out == ref
    assert e1.snapshot() == e2.snapshot()


def test_decisions_are_values():
    a = Assign("c", "a", "q", 1.5)
    assert a == Assign("c", "a", "q", 1.5) and a != Assign("c", "a", "q", 2.0)
    assert hash(a) == hash(Assign("c", "a", "q", 1.5))
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.copy(Exit("c", "q", "max_wait")) == Exit("c", "q", "max_wait")
    assert "Overflow(call='c'" in repr(Overflow("c", "a", "b"))
    with pytest.raises(AttributeError):
        a.agent = "x"
    match a:
        case Assign(call, agent, queue, wait):
            assert (call, agent, queue, wait) == ("c", "a", "q", 1.5)


# ---------------------------------------------------------------- errors

def state_of(e):
    return (e.snapshot(), e.next_deadline(), e.waiting_count())


@pytest.mark.parametrize("bad_call,exc,msg", [
    (lambda e: e.login("x", {"tech": 0}, 1.0), acd.InvalidInput, "level of skill 'tech' must be an int in 1..10, got 0"),
    (lambda e: e.login("x", {"tech": 11}, 1.0), acd.InvalidInput, "got 11"),
    (lambda e: e.login("x", {"cooking": 3}, 1.0), acd.UnknownSkill, "unknown skill 'cooking'"),
    (lambda e: e.login("x", {}, 1.0, queues=["nope"]), acd.UnknownQueue, "unknown queue 'nope'"),
    (lambda e: e.login("a", {}, 1.0), acd.DuplicateId, "agent 'a' is already logged in"),
    (lambda e: e.login(None, {}, 1.0), acd.InvalidInput, "agent id must be"),
    (lambda e: e.logout("ghost", 1.0), acd.UnknownAgent, "unknown agent 'ghost'"),
    (lambda e: e.ready("a", 1.0), acd.InvalidState, "cannot make ready agent 'a': it is busy"),
    (lambda e: e.ready("idle", 1.0), acd.InvalidState, "it is available"),
    (lambda e: e.pause("a", 1.0, reason=3), acd.InvalidInput, "reason must be a printable str"),
    (lambda e: e.pause("idle", 1.0, reason=3), acd.InvalidInput, "reason must be a printable str"),
    (lambda e: e.pause("idle", 1.0, reason="lunch\x00"), acd.InvalidInput, "reason must be a printable str"),
    (lambda e: e.pause("idle", 1.0, reason="a\nb"), acd.InvalidInput, "reason must be a printable str"),
    (lambda e: e.enqueue("c9", "nope", 1.0), acd.UnknownQueue, "unknown queue 'nope'"),
    (lambda e: e.enqueue("c9", "general", 1.0, priority=-1), acd.InvalidInput,
     "priority must be an int in 0..9, got -1"),
    (lambda e: e.enqueue("c9", "general", 1.0, priority=10), acd.InvalidInput, "got 10"),
    (lambda e: e.enqueue("c9", "general", 1.0, priority=2.0), acd.InvalidInput, "got 2.0"),
    (lambda e: e.enqueue("c9", "general", 1.0, requirements={"zz": 1}), acd.UnknownSkill, "unknown skill 'zz'"),
    (lambda e: e.enqueue("c9", "general", 1.0, requirements={"fr": 0}), acd.InvalidInput, "got 0"),
    (lambda e: e.enqueue("c1", "general", 1.0), acd.DuplicateId, "call id 'c1' is already in use"),
    (lambda e: e.enqueue(["x"], "general", 1.0), acd.InvalidInput, "call id must be"),
    (lambda e: e.enqueue("", "general", 1.0), acd.InvalidInput, "call id must be"),
    (lambda e: e.answer("nope", 1.0), acd.UnknownCall, "unknown call 'nope'"),
    (lambda e: e.answer("c1", 1.0), acd.InvalidState, "cannot answer call 'c1': it is connected"),
    (lambda e: e.complete("c2", 1.0), acd.InvalidState, "cannot complete call 'c2': it is waiting"),
    (lambda e: e.abandon("c1", 1.0), acd.InvalidState, "cannot abandon call 'c1': it is connected"),
    (lambda e: e.ring_no_answer("c2", 1.0), acd.InvalidState, "it is waiting"),
    (lambda e: e.reject("c2", 1.0), acd.InvalidState, "it is waiting"),
    (lambda e: e.advance(0.5), acd.TimeWentBackwards, "now must not go backwards: got 0.5, engine time is 1.0"),
    (lambda e: e.advance(float("nan")), acd.InvalidInput, "now must be a finite number"),
    (lambda e: e.advance("2"), acd.InvalidInput, "got '2'"),
    (lambda e: e.enqueue("c9", "general", None), acd.InvalidInput, "got None"),
])
def test_errors_leave_engine_unchanged(engine_cls, bad_call, exc, msg):
    e = make(engine_cls)
    e.login("a", {}, 0.0)
    e.enqueue("c1", "general", 0.0)
    e.answer("c1", 0.5)
    e.enqueue("c2", "general", 1.0)
    e.login("idle", {"fr": 1}, 1.0, queues=["support"])
    before = state_of(e)
    with pytest.raises(exc) as info:
        bad_call(e)
    assert msg in str(info.value)
    assert isinstance(info.value, acd.AcdError)
    assert state_of(e) == before


def test_error_after_due_deadline_keeps_its_decisions(engine_cls):
    """A failing command still lets time pass; the decisions come with the next command."""
    e = engine_cls()
    e.add_queue(Queue("q", max_wait=10))
    e.enqueue("c1", "q", 0.0)
    with pytest.raises(acd.UnknownAgent):
        e.ready("ghost", 20.0)
    assert e.advance(20.0) == [Exit("c1", "q", "max_wait")]


@pytest.mark.parametrize("kw,msg", [
    (dict(agent_strategy="fastest"), "agent_strategy must be one of"),
    (dict(seed=-1), "seed must be an int"),
    (dict(ring_no_answer="hangup"), "ring_no_answer must be one of"),
    (dict(no_answer_delay=-1), "no_answer_delay must be"),
    (dict(reject_delay=float("inf")), "reject_delay must be"),
])
def test_bad_engine_options(engine_cls, kw, msg):
    with pytest.raises(acd.InvalidInput, match=msg):
        engine_cls(**kw)


def test_queue_configuration_errors(engine_cls):
    e = engine_cls()
    with pytest.raises(acd.UnknownQueue):
        e.add_queue(Queue("a", steps=(RoutingStep(0), RoutingStep(10, overflow="b"))))
    e.add_queue(Queue("b"))
    with pytest.raises(acd.DuplicateId):
        e.add_queue(Queue("b"))
    with pytest.raises(acd.InvalidInput):
        e.add_queue("b")


@pytest.mark.parametrize("kw,msg", [
    (dict(steps=()), "at least one"),
    (dict(steps=(RoutingStep(5),)), "must start at after=0"),
    (dict(steps=(RoutingStep(0), RoutingStep(0))), "strictly increasing"),
    (dict(steps=(RoutingStep(0), RoutingStep(5, overflow="x"), RoutingStep(9))), "must be the last"),
    (dict(steps=(RoutingStep(0), RoutingStep(5, overflow="q"))), "cannot overflow to itself"),
    (dict(priority=10), "priority must be an int in 0..9"),
    (dict(service_level=(1.5, 60)), "service_level fraction"),
    (dict(wrap_up=-1), "wrap_up must be"),
    (dict(max_wait=0), "max_wait must be a positive"),
    (dict(ageing=float("nan")), "ageing must be"),
])
def test_queue_validation(kw, msg):
    with pytest.raises(acd.InvalidInput, match=msg):
        Queue("q", **kw)


def test_routing_step_validation():
    with pytest.raises(acd.InvalidInput, match="level of skill 'tech'"):
        RoutingStep(0, {"tech": 0})
    with pytest.raises(acd.InvalidInput, match="after must be"):
        RoutingStep(-1)
    with pytest.raises(acd.InvalidInput, match="overflow step has no requirements"):
        RoutingStep(5, {"tech": 1}, overflow="x")
    with pytest.raises(acd.InvalidInput, match="priority_boost applies"):
        RoutingStep(5, priority_boost=1)


def test_id_table_with_colliding_hashes_matches_oracle():
    """Ids whose hashes share their low bits make long probe chains; deletions must keep them intact."""
    import random

    rnd = random.Random(4)
    core, ref = acd.Engine(), ReferenceEngine()
    for e in (core, ref):
        e.add_queue(Queue("q"))
    live = []
    t = 0.0
    for step in range(6000):
        t += 0.01
        if live and rnd.random() < 0.45:
            victim = live.pop(rnd.randrange(len(live)))
            assert core.abandon(victim, t) == ref.abandon(victim, t)
        else:
            ident = rnd.choice([rnd.randrange(50) << 24, f"uid-{step}", step])
            if ident in live:
                with pytest.raises(acd.DuplicateId):
                    core.enqueue(ident, "q", t)
                continue
            live.append(ident)
            core.enqueue(ident, "q", t)
            ref.enqueue(ident, "q", t)
    assert core.calls() == ref.calls()
    for ident in live:
        assert core.call_state(ident) == "waiting"
    # the id table follows dict semantics: 3.0 == 3 finds call 3
    if 3 not in live:
        core.enqueue(3, "q", t)
        ref.enqueue(3, "q", t)
    assert core.call_state(3.0) == ref.call_state(3.0) == "waiting"


# ---------------------------------------------------------------- pause / log-out after the call

def after_call(e, agent):
    return e.snapshot()["agents"][agent]["after_call"]


def talking(engine_cls, queue="general"):
    """Agent 'a' talking to c1 on ``queue`` (general: no wrap-up; support: 10 s), c2 waiting behind."""
    e = make(engine_cls)
    skills = {"fr": 1} if queue == "general" else {"tech": 7}
    e.add_skill("tech")
    e.login("a", skills, 0.0)
    assert e.enqueue("c1", queue, 0.0)[0].agent == "a"
    e.answer("c1", 0.5)
    assert e.enqueue("c2", queue, 1.0) == []
    return e


def test_pause_while_talking_takes_effect_when_the_call_ends(engine_cls):
    e = talking(engine_cls)
    assert e.pause("a", 2.0, "lunch") == []
    assert e.agent_state("a") == "busy" and after_call(e, "a") == "pause"
    assert e.complete("c1", 3.0) == []          # c2 is not offered to a
    assert e.agent_state("a") == "paused" and after_call(e, "a") is None
    assert e.snapshot()["agents"]["a"]["reason"] == "lunch"
    assert e.call_state("c2") == "waiting"
    assert e.ready("a", 4.0)[0].call == "c2"


def test_pause_while_talking_waits_for_the_wrap_up(engine_cls):
    e = talking(engine_cls, "support")
    e.pause("a", 2.0, "break")
    assert e.complete("c1", 3.0) == []
    assert e.agent_state("a") == "wrap_up"
    assert e.next_deadline() == 13.0
    assert e.advance(13.0) == []
    assert e.agent_state("a") == "paused"
    assert e.call_state("c2") == "waiting"


def test_logout_while_talking_and_latest_request_wins(engine_cls):
    e = talking(engine_cls)
    e.pause("a", 2.0, "x")
    e.logout("a", 2.5)
    assert after_call(e, "a") == "logout"
    e.complete("c1", 3.0)
    assert e.agent_state("a") == "logged_out"
    e2 = talking(engine_cls)
    e2.logout("a", 2.0)
    e2.pause("a", 2.5, "y")
    e2.complete("c1", 3.0)
    assert e2.agent_state("a") == "paused"


def test_ready_withdraws_the_request(engine_cls):
    e = talking(engine_cls)
    e.logout("a", 2.0)
    assert e.ready("a", 2.5) == []
    assert after_call(e, "a") is None and e.agent_state("a") == "busy"
    assert e.complete("c1", 3.0)[0].call == "c2"
    # in wrap-up, ready also withdraws a request made during the call
    e2 = talking(engine_cls, "support")
    e2.pause("a", 2.0)
    e2.complete("c1", 3.0)
    assert e2.ready("a", 4.0)[0].call == "c2"
    assert after_call(e2, "a") is None


def test_request_while_ringing(engine_cls):
    e = make(engine_cls)
    e.login("a", {}, 0.0)
    e.enqueue("c1", "general", 0.0)            # a rings
    e.pause("a", 1.0, "coffee")
    assert e.abandon("c1", 2.0) == []           # the caller hangs up: a pauses
    assert e.agent_state("a") == "paused"
    # ring-no-answer / reject: the agent's request replaces the engine's own pause, the call goes back
    for report in ("ring_no_answer", "reject"):
        for request in ("pause", "logout"):
            e = make(engine_cls, ring_no_answer="ready", no_answer_delay=5.0, reject_delay=5.0)
            e.login("a", {}, 0.0)
            e.enqueue("c1", "general", 0.0)
            getattr(e, request)("a", 1.0)
            assert getattr(e, report)("c1", 2.0) == []
            assert e.call_state("c1") == "waiting"
            assert e.agent_state("a") == ("paused" if request == "pause" else "logged_out")
            assert e.next_deadline() is None        # no delay timer: a stays paused until ready


# ---------------------------------------------------------------- queue-state rules (docs/queue-rules.md)

def rules_engine(engine_cls, **rules):
    e = engine_cls()
    e.add_skill("fr")
    e.add_queue(Queue("general"))
    e.add_queue(Queue("front", steps=(RoutingStep(0, {"fr": 5}),), **rules))
    return e


def test_max_length_refuses_a_full_queue(engine_cls):
    e = rules_engine(engine_cls, max_length=2)
    assert e.enqueue("c1", "front", 0.0) == []
    assert e.enqueue("c2", "front", 1.0) == []
    assert e.enqueue("c3", "front", 2.0) == [Exit("c3", "front", "full")]
    assert e.call_state("c1") == "waiting" and "c3" not in e.calls()
    q = e.snapshot()["queues"]["front"]
    assert (q["entered"], q["refused"], q["waiting"], q["exited"]) == (3, 1, 2, 0)
    assert e.patience_samples("front") == []   # no patience observation for a refused caller
    # a call-back in line does not count toward the length
    e.accept_callback("c1", 3.0)
    assert e.enqueue("c4", "front", 4.0) == []
    assert e.enqueue("c3", "front", 5.0) == [Exit("c3", "front", "full")]   # the id was forgotten: reusable


def test_max_length_counts_callers_in_line_not_those_ringing(engine_cls):
    e = rules_engine(engine_cls, max_length=1)
    e.login("a1", {"fr": 5}, 0.0)
    assert e.enqueue("c1", "front", 1.0) == [Assign("c1", "a1", "front", 0.0)]
    assert e.enqueue("c2", "front", 1.0) == []
    assert e.enqueue("c3", "front", 1.0) == [Exit("c3", "front", "full")]


def test_join_when_no_agents_refuse(engine_cls):
    e = rules_engine(engine_cls, join_when_no_agents="refuse")
    assert e.enqueue("c1", "front", 0.0) == [Exit("c1", "front", "no_agents")]
    e.login("a1", {"fr": 3}, 1.0)            # not eligible: level 3 < 5
    assert e.enqueue("c2", "front", 1.0) == [Exit("c2", "front", "no_agents")]
    e.login("a2", {"fr": 6}, 2.0, paused="training")   # eligible but paused: not staffed
    assert e.enqueue("c3", "front", 2.0) == [Exit("c3", "front", "no_agents")]
    e.ready("a2", 3.0)
    assert e.enqueue("c4", "front", 3.0) == [Assign("c4", "a2", "front", 0.0)]
    assert e.enqueue("c5", "front", 3.0) == []    # a2 rings: staffed, so c5 waits
    assert e.snapshot()["queues"]["front"]["refused"] == 3


def test_join_when_no_agents_overflow_and_the_target_rules_apply(engine_cls):
    e = engine_cls()
    e.add_skill("fr")
    e.add_queue(Queue("last", max_length=1))
    e.add_queue(Queue("general", join_when_no_agents="overflow:last"))
    e.add_queue(Queue("front", steps=(RoutingStep(0, {"fr": 5}),), join_when_no_agents="overflow:general"))
    assert e.enqueue("c1", "front", 0.0) == [Overflow("c1", "front", "general"), Overflow("c1", "general", "last")]
    assert e.call_state("c1") == "waiting"
    assert e.enqueue("c2", "front", 1.0) == [Overflow("c2", "front", "general"), Overflow("c2", "general", "last"),
                                              Exit("c2", "last", "full")]
    snap = e.snapshot()["queues"]
    assert (snap["front"]["entered"], snap["front"]["overflowed"]) == (2, 2)
    assert (snap["last"]["entered"], snap["last"]["refused"], snap["last"]["waiting"]) == (2, 1, 1)
    e.login("a1", {"fr": 1}, 2.0)   # takes c1 in last; now general has a staffed agent
    assert e.enqueue("c3", "front", 3.0) == [Overflow("c3", "front", "general")]
    assert e.call_state("c3") == "waiting"


def test_overflow_target_must_exist_before(engine_cls):
    e = engine_cls()
    with pytest.raises(acd.UnknownQueue, match="join_when_no_agents overflows to 'later'"):
        e.add_queue(Queue("front", join_when_no_agents="overflow:later"))
    with pytest.raises(acd.UnknownQueue, match="if_wait_over overflows to 'later'"):
        e.add_queue(Queue("front", if_wait_over={"seconds": 10, "then": "overflow:later"}))
    assert e.queues == ()


def test_leave_when_no_agents_on_pause_and_logout(engine_cls):
    e = rules_engine(engine_cls, leave_when_no_agents=True)
    e.add_queue(Queue("keep", steps=(RoutingStep(0, {"fr": 5}),)))
    e.login("a1", {"fr": 5}, 0.0)
    e.login("a2", {"fr": 9}, 0.0)
    e.enqueue("x1", "front", 0.0)
    e.enqueue("x2", "front", 0.0)           # both agents ring
    e.answer("x1", 1.0)
    e.answer("x2", 1.0)
    assert e.enqueue("c1", "front", 2.0) == []
    assert e.enqueue("c2", "keep", 2.0) == []
    assert e.enqueue("c3", "front", 3.0) == []
    e.accept_callback("c3", 4.0)            # a call-back stays in line
    assert e.pause("a1", 5.0) == []         # deferred: a1 is talking
    assert e.complete("x1", 6.0) == []      # a1 paused now, a2 still talks: staffed
    assert e.logout("a2", 7.0) == []        # deferred too
    assert e.complete("x2", 10.0) == [Exit("c1", "front", "no_agents")]
    assert e.calls() == {"c2": "waiting", "c3": "callback_pending"}
    q = e.snapshot()["queues"]["front"]
    assert (q["exited"], q["refused"], q["waiting"]) == (1, 0, 0)
    assert e.patience_samples("front")[-1] == (8.0, False)    # a censored wait, as at max wait
    e.withdraw("c2", 10.5)
    e.withdraw("c3", 10.5)
    # a caller who joins with nobody staffed stays (join_when_no_agents="accept")
    assert e.enqueue("c4", "front", 11.0) == []
    e.login("a3", {"fr": 5}, 12.0, paused="x")
    e.ready("a3", 13.0)   # takes c4
    assert e.enqueue("c5", "front", 14.0) == []
    assert e.pause("a3", 15.0) == []        # a3 rings for c4: deferred
    # the rung call is back in line when its agent's pause takes effect: both leave, in enqueue order
    assert e.ring_no_answer("c4", 16.0) == [Exit("c4", "front", "no_agents"), Exit("c5", "front", "no_agents")]
    assert e.calls() == {}


def test_leave_when_no_agents_immediate_pause(engine_cls):
    e = rules_engine(engine_cls, leave_when_no_agents=True)
    e.login("a1", {"fr": 5}, 0.0)
    e.login("a2", {"fr": 5}, 0.0, paused="lunch")
    e.pause("a1", 0.0)
    assert e.enqueue("c1", "front", 1.0) == []
    assert e.enqueue("c2", "front", 2.0) == []
    e.ready("a2", 3.0)                       # takes c1
    assert e.pause("a1", 4.0) == []          # already paused: nothing changes
    assert e.logout("a2", 5.0) == []         # a2 rings: deferred
    assert e.abandon("c1", 6.0) == [Exit("c2", "front", "no_agents")]
    assert e.calls() == {}


def test_leave_when_no_agents_at_a_timer(engine_cls):
    e = engine_cls(ring_no_answer="pause")
    e.add_skill("fr")
    e.add_queue(Queue("front", steps=(RoutingStep(0, {"fr": 5}),), leave_when_no_agents=True, wrap_up=10))
    e.login("a1", {"fr": 5}, 0.0)
    e.enqueue("x", "front", 0.0)
    e.answer("x", 1.0)
    assert e.enqueue("c1", "front", 2.0) == []
    e.complete("x", 3.0)                     # wrap-up until 13
    assert e.pause("a1", 4.0) == [Exit("c1", "front", "no_agents")]   # pause in wrap-up acts at once


def test_if_wait_over_exit_overflow_and_offer(engine_cls):
    for then, expected in (("exit", [Exit("c2", "front", "wait_too_long")]),
                           ("overflow:general", [Overflow("c2", "front", "general")]),
                           ("offer_callback", None)):
        e = rules_engine(engine_cls, if_wait_over={"seconds": 100, "then": then}, expected_handle_time=300)
        e.login("a1", {"fr": 5}, 0.0)
        e.enqueue("c1", "front", 0.0)            # taken at once: no estimate
        est = e.estimate_wait("front")
        assert est.ewt > 100
        out = e.enqueue("c2", "front", 1.0)
        if expected is None:
            assert [type(d).__name__ for d in out] == ["OfferCallback"]
            assert out[0].ewt == est.ewt and e.call_state("c2") == "waiting"
            assert e.snapshot()["queues"]["front"]["callbacks"]["offered"] == 1
        else:
            assert out == expected
            assert e.snapshot()["queues"]["front"]["refused"] == (1 if then == "exit" else 0)
    e = rules_engine(engine_cls, if_wait_over={"seconds": 1000, "then": "exit"})
    e.login("a1", {"fr": 5}, 0.0)
    e.enqueue("c1", "front", 0.0)
    assert e.enqueue("c2", "front", 1.0) == []   # about 300 s: below the threshold


def test_if_wait_over_with_nobody_staffed_is_infinite(engine_cls):
    e = rules_engine(engine_cls, if_wait_over={"seconds": 0, "then": "exit"})
    assert e.enqueue("c1", "front", 0.0) == [Exit("c1", "front", "wait_too_long")]


def test_queue_rules_in_replay():
    """replay's fast path (complete, abandon) runs the leave check as the commands do."""
    e = rules_engine(acd.Engine, max_length=1, leave_when_no_agents=True)
    out = e.replay([("login", "a1", {"fr": 5}, 0.0), ("enqueue", "x", "front", 0.0), ("answer", "x", 1.0),
                    ("enqueue", "c1", "front", 2.0), ("enqueue", "c2", "front", 2.0), ("pause", "a1", 3.0),
                    ("complete", "x", 4.0)])
    assert out == [Assign("x", "a1", "front", 0.0), Exit("c2", "front", "full"), Exit("c1", "front", "no_agents")]


@pytest.mark.parametrize("kw,message", [
    (dict(max_length=0), "max_length must be None (unlimited) or an int in 1..1000000000, got 0"),
    (dict(max_length=True), "max_length must be None"),
    (dict(max_length=2.0), "max_length must be None"),
    (dict(join_when_no_agents="reject"), "join_when_no_agents must be \"accept\" | \"refuse\" | "
                                         "\"overflow:<queue>\", got 'reject'"),
    (dict(join_when_no_agents=None), "join_when_no_agents must be"),
    (dict(join_when_no_agents="overflow:"), "join_when_no_agents overflow queue must be a non-empty"),
    (dict(join_when_no_agents="overflow:q"), "join_when_no_agents: queue 'q' cannot overflow to itself"),
    (dict(leave_when_no_agents=1), "leave_when_no_agents must be a bool, got 1"),
    (dict(if_wait_over=300), "if_wait_over must be None or a table"),
    (dict(if_wait_over={"seconds": 300}), "if_wait_over must be None or a table"),
    (dict(if_wait_over={"seconds": 300, "then": "exit", "x": 1}), "if_wait_over must be None or a table"),
    (dict(if_wait_over={"seconds": -1, "then": "exit"}), "if_wait_over seconds must be a non-negative"),
    (dict(if_wait_over={"seconds": "5", "then": "exit"}), "if_wait_over seconds must be a non-negative"),
    (dict(if_wait_over={"seconds": 5, "then": "hang_up"}),
     "if_wait_over then must be \"offer_callback\" | \"exit\" | \"overflow:<queue>\", got 'hang_up'"),
    (dict(if_wait_over={"seconds": 5, "then": "overflow:q"}), "cannot overflow to itself"),
])
def test_queue_rule_validation(kw, message):
    with pytest.raises(acd.InvalidInput) as info:
        Queue("q", **kw)
    assert message in str(info.value)


def test_queue_rules_from_dict_and_defaults():
    from acd.policy import queue_from_dict
    q = queue_from_dict({"name": "q", "max_length": 5, "join_when_no_agents": "refuse",
                         "leave_when_no_agents": True, "if_wait_over": {"seconds": 300, "then": "overflow:g"}})
    assert q.max_length == 5 and q.if_wait_over == {"seconds": 300.0, "then": "overflow:g"}
    assert q.overflow_targets == ("g",) and q.wait_overflow == "g" and q.join_overflow is None
    d = queue_from_dict({"name": "q"})
    assert (d.max_length, d.join_when_no_agents, d.leave_when_no_agents, d.if_wait_over) == (None, "accept", False,
                                                                                              None)


def test_queue_rules_in_the_journal_serialisation():
    from acd.journal.engine import _queue_to_dict
    from acd.policy import queue_from_dict
    q = Queue("q", max_length=3, join_when_no_agents="overflow:g", leave_when_no_agents=True,
              if_wait_over={"seconds": 60, "then": "exit"})
    d = _queue_to_dict(q)
    assert queue_from_dict(d) == q
    old = {k: v for k, v in d.items()
           if k not in ("max_length", "join_when_no_agents", "leave_when_no_agents", "if_wait_over")}
    assert queue_from_dict(old) == Queue("q")   # a journal written before the rules existed
