"""Preferred agents: a returning caller is offered to the agent they spoke with first (both engines)."""

from __future__ import annotations

import pytest

import acd
from acd import Assign, DialBack, Exit, Queue, RoutingStep
from acd._validate import DEFAULT_PREFERRED_FOR, MAX_PREFERRED


def make(engine_cls, **kw):
    e = engine_cls(**kw)
    e.add_skill("fr")
    e.add_queue(Queue("general", wrap_up=0.0))
    e.add_queue(Queue("support", steps=(RoutingStep(0, {"tech": 7}), RoutingStep(30, {"tech": 1})),
                      wrap_up=0.0, max_wait=600))
    e.add_queue(Queue("short", wrap_up=0.0, max_wait=20))
    return e


def busy(e, agent, call, queue="general", now=0.0):
    """Give ``agent`` a conversation so that it is not free."""
    e.enqueue(call, queue, now)
    e.answer(call, now)
    assert e.agent_state(agent) == "busy"


def test_free_preferred_agent_gets_the_call_though_another_idled_longer(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    e.login("a2", {"fr": 3}, 1.0)
    assert e.enqueue("c1", "general", 5.0, preferred=("a2",)) == [Assign("c1", "a2", "general", 0.0)]


def test_held_call_waits_for_its_agent_while_others_are_free_then_comes_first(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x", now=0.0)
    e.login("a2", {"fr": 3}, 0.0)
    busy(e, "a2", "y", now=0.0)
    e.enqueue("old", "general", 1.0)                          # the general line, first
    assert e.enqueue("back", "general", 2.0, preferred=("a1",), preferred_for=60) == []
    assert e.call_state("back") == "waiting"
    assert e.waiting_count() == 2
    snap = e.snapshot()["queues"]["general"]
    assert (snap["waiting"], snap["held"]) == (2, 1)
    # a2 frees up: it takes the general line's call, not the one held for a1
    assert e.complete("y", 10.0) == [Assign("old", "a2", "general", 9.0)]
    # a1 frees up: its returning caller comes before anyone else
    e.enqueue("newer", "general", 11.0)
    assert e.complete("x", 12.0) == [Assign("back", "a1", "general", 10.0)]
    assert e.snapshot()["queues"]["general"]["held"] == 0


def test_hold_ends_and_the_call_keeps_its_rank_in_the_general_line(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    e.login("a2", {"fr": 3}, 0.0)
    busy(e, "a2", "y")
    e.enqueue("back", "general", 1.0, preferred=["a1"], preferred_for=30)
    e.enqueue("later", "general", 2.0)
    assert e.next_deadline() == 31.0
    assert e.advance(31.0) == []
    assert e.snapshot()["queues"]["general"]["held"] == 0
    # a2 now takes the caller who came first, although its hold was for a1
    assert e.complete("y", 40.0) == [Assign("back", "a2", "general", 39.0)]


def test_hold_ending_with_a_free_agent_assigns_at_once(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    e.login("a2", {"fr": 3}, 0.0, paused="lunch")
    e.enqueue("back", "general", 0.0, preferred=("a1",), preferred_for=10)
    assert e.ready("a2", 5.0) == []                            # free, but not the one preferred
    assert e.advance(10.0) == [Assign("back", "a2", "general", 10.0)]


def test_hold_never_outlasts_the_first_routing_step_or_the_maximum_wait(engine_cls):
    e = make(engine_cls)
    e.add_skill("tech")
    e.login("t1", {"tech": 8}, 0.0)
    busy(e, "t1", "x", queue="support")
    e.enqueue("back", "support", 1.0, preferred=("t1",), preferred_for=500)
    assert e.next_deadline() == 31.0                           # the step at 30 s, not 501
    e.login("t2", {"tech": 2}, 1.0, paused="away")
    e.ready("t2", 20.0)                                         # not eligible before the step
    assert e.advance(31.0) == [Assign("back", "t2", "support", 30.0)]
    # the maximum wait caps the hold too: the caller leaves at max wait, not later
    e.login("s1", {"fr": 1}, 31.0, queues=["short"])
    busy(e, "s1", "z", queue="short", now=31.0)
    e.enqueue("gone", "short", 32.0, preferred=("s1",), preferred_for=100)
    assert e.next_deadline() == 52.0
    assert e.advance(52.0) == [Exit("gone", "short", "max_wait")]


def test_default_hold(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    e.enqueue("back", "general", 1.0, preferred=("a1",))
    assert e.next_deadline() == 1.0 + DEFAULT_PREFERRED_FOR


def test_agents_logged_out_unknown_or_not_eligible_are_ignored(engine_cls):
    e = make(engine_cls)
    e.add_skill("tech")
    e.login("a1", {"fr": 3}, 0.0, queues=["general"])           # does not serve "support"
    e.login("t1", {"tech": 9}, 0.0)
    busy(e, "t1", "x", queue="support")
    e.login("t2", {"tech": 9}, 0.0)
    # nobody preferred can take it: normal routing, at once
    assert e.enqueue("c1", "support", 1.0, preferred=("ghost", "a1", 1001)) == [Assign("c1", "t2", "support", 0.0)]
    assert e.snapshot()["queues"]["support"]["held"] == 0


def test_logout_of_the_only_preferred_agent_releases_the_call(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    e.login("a2", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    busy(e, "a2", "y")
    e.enqueue("back", "general", 1.0, preferred=("a1", "a2"), preferred_for=60)
    e.logout("a1", 2.0)                                          # deferred: a1 is talking
    assert e.complete("x", 3.0) == []                            # a1 leaves; a2 still preferred
    assert e.snapshot()["queues"]["general"]["held"] == 1
    e.login("a3", {"fr": 3}, 4.0)                                # free, not preferred: no offer
    assert e.agent_state("a3") == "available"
    assert e.pause("a2", 5.0) == []                              # deferred pause of a2 ...
    assert e.logout("a2", 6.0) == []                             # ... replaced by a log-out
    assert e.complete("y", 7.0) == [Assign("back", "a3", "general", 6.0)]


def test_abandon_and_withdraw_while_held(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    e.enqueue("h1", "general", 1.0, preferred=("a1",))
    e.enqueue("h2", "general", 2.0, preferred=("a1",))
    e.enqueue("h3", "general", 3.0, preferred=("a1",))
    e.abandon("h1", 4.0)
    e.withdraw("h2", 5.0)
    snap = e.snapshot()["queues"]["general"]
    assert (snap["waiting"], snap["held"], snap["abandoned"], snap["withdrawn"]) == (1, 1, 1, 1)
    assert e.complete("x", 6.0) == [Assign("h3", "a1", "general", 3.0)]
    # the abandonment is a patience observation, the withdrawal is not
    assert e.patience_samples("general") == [(0.0, False), (3.0, True)]


def test_accepting_a_call_back_ends_the_hold(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    e.login("a2", {"fr": 3}, 0.0, paused="lunch")
    e.enqueue("back", "general", 1.0, preferred=("a1",))
    e.ready("a2", 2.0)
    assert e.accept_callback("back", 3.0) == [DialBack("back", "a2", "general", 1)]


def test_many_held_calls_for_an_agent_who_never_comes(engine_cls):
    """Entries the agent never came back for do not pile up without end (the heap is compacted)."""
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    sizes = []
    for i in range(3000):
        e.enqueue(f"c{i}", "general", float(i), preferred=("a1",), preferred_for=1)
        e.advance(i + 1.0)                                       # each hold ends ...
        e.abandon(f"c{i}", i + 1.0)                              # ... and its caller leaves
        if i in (299, 2999) and isinstance(e, acd.Engine):
            sizes.append(e.memory_bytes())
    e.enqueue("last", "general", 4000.0, preferred=("a1",))
    assert e.complete("x", 4001.0) == [Assign("last", "a1", "general", 1.0)]
    if sizes:
        assert sizes[0] == sizes[1]


@pytest.mark.parametrize("kw, message", [
    (dict(preferred="a1"), "preferred must be a tuple of agent ids or None, got 'a1'"),
    (dict(preferred=("",)), "preferred agent id must be a non-empty str or an int, got ''"),
    (dict(preferred=(True,)), "preferred agent id must be a non-empty str or an int, got True"),
    (dict(preferred=tuple(range(MAX_PREFERRED + 1))), f"preferred must name at most {MAX_PREFERRED} agents"),
    (dict(preferred=("a1",), preferred_for=0), "preferred_for must be a positive finite number of seconds, got 0"),
    (dict(preferred=("a1",), preferred_for=float("nan")), "preferred_for must be a positive finite number"),
    (dict(preferred=("a1",), preferred_for="60"), "preferred_for must be a positive finite number"),
])
def test_bad_preferred_arguments_are_refused_and_change_nothing(engine_cls, kw, message):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    before = e.snapshot()
    with pytest.raises(acd.InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        e.enqueue("c1", "general", 0.0, **kw)
    assert e.snapshot() == before
    assert e.calls() == {"x": "connected"}


def test_unknown_queue_comes_before_preferred_checks(engine_cls):
    e = make(engine_cls)
    with pytest.raises(acd.UnknownQueue):
        e.enqueue("c1", "nope", 0.0, preferred="a1")


# ---------------------------------------------------------------- with queue-state rules and live changes

def test_max_length_counts_held_callers(engine_cls):
    e = make(engine_cls)
    e.add_queue(Queue("tiny", max_length=1, wrap_up=0.0))
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x", queue="tiny")
    e.enqueue("back", "tiny", 1.0, preferred=("a1",))
    assert e.snapshot()["queues"]["tiny"]["held"] == 1
    assert e.enqueue("more", "tiny", 2.0) == [Exit("more", "tiny", "full")]


def test_a_held_caller_stays_when_the_last_staffed_agent_leaves(engine_cls):
    e = make(engine_cls)
    e.add_queue(Queue("empty", leave_when_no_agents=True, wrap_up=0.0))
    e.login("a1", {"fr": 3}, 0.0)
    e.login("a2", {"fr": 3}, 0.0)
    busy(e, "a1", "x", queue="empty")
    e.enqueue("back", "empty", 1.0, preferred=("a1",))
    e.enqueue("other", "empty", 1.0)
    assert e.calls()["other"] == "offered"
    e.abandon("other", 2.0)
    e.pause("a1", 3.0)                    # deferred: a1 is talking
    assert e.logout("a2", 4.0) == []      # a1 is still staffed (talking)
    # a1's call ends: its deferred pause happens, and nobody is left -- but the held caller waits
    # for a1, who is logged in
    assert e.complete("x", 5.0) == []
    assert e.call_state("back") == "waiting"
    assert e.ready("a1", 6.0) == [Assign("back", "a1", "empty", 5.0)]


def test_update_queue_ends_the_holds_in_it(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    e.login("a2", {"fr": 3}, 0.0, paused="lunch")
    e.enqueue("back", "general", 1.0, preferred=("a1",))
    e.ready("a2", 2.0)
    assert e.update_queue(Queue("general", wrap_up=5.0), 3.0) == [Assign("back", "a2", "general", 2.0)]
    assert e.snapshot()["queues"]["general"]["held"] == 0


def test_set_agent_releases_the_calls_held_for_it(engine_cls):
    e = make(engine_cls)
    e.login("a1", {"fr": 3}, 0.0)
    busy(e, "a1", "x")
    e.login("a2", {"fr": 3}, 0.0, paused="lunch")
    e.enqueue("back", "general", 1.0, preferred=("a1",))
    e.ready("a2", 2.0)
    assert e.set_agent("a1", {"fr": 3}, 3.0) == []          # same skills: the hold stays
    assert e.set_agent("a1", {"fr": 5}, 4.0) == [Assign("back", "a2", "general", 3.0)]
