"""Live reconfiguration in the engine: set_agent, update_queue, remove_queue (docs/reload.md).

Both engines (compiled core and reference model) are held to the same examples here; the
differential machine (tests/test_differential.py) compares them on random streams.
"""

from __future__ import annotations

import pytest

import acd
from acd._reference import ReferenceEngine
from acd.journal import COMMANDS, JournaledEngine

R = acd.RoutingStep

ENGINES = pytest.mark.parametrize("make", [acd.Engine, ReferenceEngine], ids=["core", "reference"])


def base(make, **kw):
    e = make(**kw)
    e.add_skill("fr")
    e.add_skill("tech")
    e.add_queue(acd.Queue("general"))
    e.add_queue(acd.Queue("support", steps=(R(0, {"tech": 7}), R(30, {"tech": 3}), R(120, overflow="general")),
                          max_wait=600))
    return e


# ---------------------------------------------------------------- set_agent

@ENGINES
def test_set_agent_keeps_idle_rank(make):
    e = base(make)
    e.login("a1", {"fr": 1}, 0.0)
    e.login("a2", {"fr": 1}, 5.0)
    assert e.set_agent("a1", {"fr": 2, "tech": 1}, 10.0) == []   # another group, same (key, seq)
    # a1 has been idle longer: it still comes first
    assert e.enqueue("c1", "general", 11.0) == [acd.Assign("c1", "a1", "general", 0.0)]
    snap = e.snapshot()["agents"]["a1"]
    assert snap["state"] == "reserved" and snap["logged_in"] == 11.0


@ENGINES
def test_set_agent_dispatches_a_call_it_can_now_take(make):
    e = base(make)
    e.login("a1", {"tech": 2}, 0.0)
    assert e.enqueue("c1", "support", 1.0) == []
    out = e.set_agent("a1", {"tech": 8}, 2.0)
    assert out == [acd.Assign("c1", "a1", "support", 1.0)]


@ENGINES
def test_set_agent_queues_and_busy_agent_keeps_its_call(make):
    e = base(make)
    e.login("a1", {"fr": 1}, 0.0)
    e.enqueue("c1", "general", 1.0)
    e.answer("c1", 2.0)
    assert e.set_agent("a1", {"tech": 9}, 3.0, queues=["support"]) == []
    assert e.call_state("c1") == "connected" and e.agent_state("a1") == "busy"
    e.enqueue("c2", "general", 4.0)           # a1 no longer serves general
    assert e.complete("c1", 5.0) == []
    assert e.call_state("c2") == "waiting"
    assert e.enqueue("c3", "support", 6.0) == [acd.Assign("c3", "a1", "support", 0.0)]
    assert e.snapshot()["agents"]["a1"]["answered"] == 1


@ENGINES
@pytest.mark.parametrize("args, error, text", [
    (("ghost", {"fr": 1}), acd.UnknownAgent, "unknown agent 'ghost'"),
    (("a1", {"fr": 11}), acd.InvalidInput, "level of skill 'fr' must be an int in 1..10, got 11"),
    (("a1", {"martian": 1}), acd.UnknownSkill, "unknown skill 'martian'"),
    (("a1", {"fr": 1}, ["nope"]), acd.UnknownQueue, "unknown queue 'nope'"),
])
def test_set_agent_refused_changes_nothing(make, args, error, text):
    e = base(make)
    e.login("a1", {"fr": 1}, 0.0)
    before = e.snapshot()
    agent, skills, *queues = args
    with pytest.raises(error, match=text):
        e.set_agent(agent, skills, 0.0, *queues)
    assert e.snapshot() == before


# ---------------------------------------------------------------- update_queue

@ENGINES
def test_update_queue_reaches_waiting_calls_in_rank_order(make):
    e = base(make)
    e.login("a1", {"tech": 3}, 0.0)
    e.enqueue("c1", "support", 1.0)
    e.enqueue("c2", "support", 2.0, priority=5)
    e.enqueue("c3", "support", 3.0)
    assert e.waiting_count() == 3
    # requirements relaxed to tech 1 from the start: the agent takes the first call in line (priority 5)
    out = e.update_queue(acd.Queue("support", steps=(R(0, {"tech": 1}),)), 4.0)
    assert out == [acd.Assign("c2", "a1", "support", 2.0)]
    # back in line at its old rank (ahead of c1): the agent, free at once (reject_delay 0), takes it again
    assert e.reject("c2", 5.0) == [acd.Assign("c2", "a1", "support", 3.0)]


@ENGINES
def test_update_queue_applies_passed_deadlines_at_once(make):
    e = base(make)
    e.enqueue("c1", "support", 0.0)
    e.enqueue("c2", "support", 50.0)
    e.advance(60.0)
    # c1 waited 60 s (step 1), c2 10 s (step 0); new steps overflow after 40 s, max wait 55 s
    out = e.update_queue(acd.Queue("support", steps=(R(0, {"tech": 7}), R(40, overflow="general")),
                                   max_wait=55), 60.0)
    assert out == [acd.Overflow("c1", "support", "general")]
    assert e.call_state("c2") == "waiting"
    out = e.advance(90.0)
    assert out == [acd.Overflow("c2", "support", "general")]
    snap = e.snapshot()["queues"]
    assert snap["general"]["waiting"] == 2 and snap["support"]["overflowed"] == 2


@ENGINES
def test_update_queue_step_index_past_new_steps(make):
    e = base(make)
    e.login("a1", {"tech": 1}, 0.0, paused="x")
    e.enqueue("c1", "support", 0.0)
    e.advance(35.0)                               # c1 at step 1 (tech 3)
    e.update_queue(acd.Queue("support", steps=(R(0, {"tech": 1}),), max_wait=30), 35.0)
    # the only step left is step 0; max wait 30 s already passed: it exits at once
    assert e.calls() == {}
    assert e.snapshot()["queues"]["support"]["exited"] == 1


@ENGINES
def test_update_queue_new_settings_apply(make):
    e = base(make)
    e.login("a1", {"fr": 1}, 0.0)
    e.update_queue(acd.Queue("general", wrap_up=20, priority=4, announce_every=10), 0.0)
    e.enqueue("c1", "general", 1.0)
    e.answer("c1", 2.0)
    e.complete("c1", 3.0)
    assert e.agent_state("a1") == "wrap_up"
    assert e.next_deadline() == 23.0
    e.advance(23.0)
    e.pause("a1", 23.0)
    e.enqueue("c2", "general", 24.0)
    assert [type(d).__name__ for d in e.advance(30.0)] == ["Announce"]


@ENGINES
@pytest.mark.parametrize("queue, error, text", [
    ("support", acd.InvalidInput, "queue must be an acd.Queue, got 'support'"),
    (acd.Queue("nope"), acd.UnknownQueue, "unknown queue 'nope'"),
    (acd.Queue("support", steps=(R(0), R(5, overflow="nope"))), acd.UnknownQueue, "unknown queue 'nope'"),
])
def test_update_queue_refused_changes_nothing(make, queue, error, text):
    e = base(make)
    e.enqueue("c1", "support", 0.0)
    before = e.snapshot()
    with pytest.raises(error, match=text):
        e.update_queue(queue, 0.0)
    assert e.snapshot() == before and e.next_deadline() == 30.0


# ---------------------------------------------------------------- remove_queue

@ENGINES
def test_remove_queue_refused_while_used(make):
    e = base(make)
    e.add_queue(acd.Queue("spare"))
    e.login("a1", {"fr": 1}, 0.0, queues=["spare", "general"])
    e.schedule_callback("c1", "spare", 100.0, 0.0)
    with pytest.raises(acd.InvalidState, match=r"cannot remove queue 'spare': 1 call\(s\) are in it"):
        e.remove_queue("spare", 1.0)
    e.abandon("c1", 2.0)
    with pytest.raises(acd.InvalidState, match="cannot remove queue 'spare': logged-in agent 'a1' serves it"):
        e.remove_queue("spare", 3.0)
    with pytest.raises(acd.InvalidState, match="cannot remove queue 'general': queue 'support' overflows to it"):
        e.remove_queue("general", 3.0)
    with pytest.raises(acd.UnknownQueue, match="unknown queue 'nope'"):
        e.remove_queue("nope", 3.0)
    e.set_agent("a1", {"fr": 1}, 4.0, queues=["general"])
    assert e.remove_queue("spare", 5.0) == []
    assert e.queues == ("general", "support")
    assert "spare" not in e.snapshot()["queues"]
    with pytest.raises(acd.UnknownQueue):
        e.enqueue("c2", "spare", 6.0)
    e.add_queue(acd.Queue("spare", priority=3))      # configured again: a fresh queue
    assert e.snapshot()["queues"]["spare"]["entered"] == 0
    e.pause("a1", 6.0)
    e.enqueue("c2", "spare", 7.0)
    assert e.queues == ("general", "support", "spare")


# ---------------------------------------------------------------- burst

@ENGINES
def test_reload_under_a_burst_loses_no_call(make):
    """1,000 callers wait; the rules change under them: every call is still there, in its rank,
    and the new requirements are what agents now see."""
    e = base(make)
    for i in range(1000):
        e.enqueue(f"c{i}", "support", i * 0.01)
    e.login("a1", {"tech": 1}, 10.0)            # not eligible under the old first step (tech 7)
    assert e.waiting_count() == 1000
    out = e.update_queue(acd.Queue("support", steps=(R(0, {"tech": 1}), R(300, overflow="general"))), 10.0)
    assert out == [acd.Assign("c0", "a1", "support", 10.0)]    # the oldest caller first
    assert e.waiting_count() == 999
    assert len(e.calls()) == 1000
    for i in range(1, 1000):
        assert e.call_wait(f"c{i}").position == i                # ranks kept


# ---------------------------------------------------------------- journal

def test_journal_replays_reconfiguration(tmp_path):
    assert {"set_agent", "update_queue", "remove_queue"} <= set(COMMANDS)
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path)
    je.add_skill("fr")
    je.add_skill("tech")
    je.add_queue(acd.Queue("general"))
    je.add_queue(acd.Queue("spare"))
    je.add_queue(acd.Queue("support", steps=(R(0, {"tech": 7}), R(30, overflow="general"))))
    je.login("a1", {"tech": 2}, 0.0)
    je.enqueue("c1", "support", 1.0)
    je.enqueue("c2", "support", 2.0)
    assert je.update_queue(acd.Queue("support", steps=(R(0, {"tech": 9}), R(10, {"tech": 2})), wrap_up=4),
                           now=15.0) == [acd.Assign("c1", "a1", "support", 14.0)]
    je.login("a2", {"fr": 1}, 16.0)
    assert je.set_agent("a2", {"tech": 5}, 17.0, queues=["support"]) == [acd.Assign("c2", "a2", "support", 15.0)]
    je.remove_queue("spare", 18.0)
    with pytest.raises(acd.InvalidState):
        je.remove_queue("support", 19.0)
    snap = je.snapshot()
    je.close()
    again = JournaledEngine.open(path)
    assert again.snapshot() == snap
    assert again.queues == ("general", "support")
    records = [(op, args) for _, op, args in again.journal.records()]
    ops = [op for op, _ in records]
    assert ops.count("update_queue") == 1 and ops.count("set_agent") == 1 and ops.count("remove_queue") == 1
    table = next(args for op, args in records if op == "update_queue")[0]
    assert table["name"] == "support" and table["wrap_up"] == 4.0      # a plain table in the journal
    again.close()
