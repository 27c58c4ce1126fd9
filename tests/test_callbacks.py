"""Call-backs (virtual hold), announcements and abandonment-aware call choice, on both engines."""

from __future__ import annotations

import math

import pytest

import acd
from acd import Announce, Assign, DialBack, Exit, OfferCallback, Overflow, Queue, RoutingStep


def make(engine_cls, **kw):
    e = engine_cls(**kw)
    e.add_queue(Queue("general"))
    e.add_queue(Queue("line", callback_threshold=60, callback_attempts=2, callback_retry_delay=120,
                      max_wait=300, expected_handle_time=300, scheduled_boost=2))
    return e


def busy_agent(e, agent="a", call="warm", queue="general", now=0.0):
    e.login(agent, {}, now)
    e.enqueue(call, queue, now)
    e.answer(call, now)


def test_offer_when_wait_is_long_and_dial_back_when_turn_comes(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    out = e.enqueue("c1", "line", 1.0)
    assert len(out) == 1 and isinstance(out[0], OfferCallback) and out[0].ewt > 60
    assert e.accept_callback("c1", 5.0) == []
    assert e.call_state("c1") == "callback_pending"
    assert e.waiting_count() == 0
    snap = e.snapshot()["queues"]["line"]["callbacks"]
    assert snap["offered"] == 1 and snap["accepted"] == 1 and snap["pending"] == 1
    assert e.complete("warm", 200.0) == [DialBack("c1", "a", "line", 1)]
    assert e.call_state("c1") == "dialing_back"
    assert e.callback_answered("c1", 210.0) == []
    assert e.call_state("c1") == "connected"
    cb = e.snapshot()["queues"]["line"]["callbacks"]
    assert cb["dialled"] == 1 and cb["reached"] == 1 and cb["pending"] == 0
    e.complete("c1", 400.0)
    assert e.calls() == {}


def test_no_offer_when_an_agent_is_free_or_wait_is_short(engine_cls):
    e = make(engine_cls)
    e.login("a", {}, 0.0)
    assert e.enqueue("c1", "line", 1.0) == [Assign("c1", "a", "line", 0.0)]
    e2 = engine_cls()
    e2.add_queue(Queue("q", callback_threshold=10_000))
    busy_agent(e2, queue="q")
    assert e2.enqueue("c1", "q", 1.0) == []


def test_call_back_keeps_its_place(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    e.enqueue("first", "line", 1.0)
    e.enqueue("second", "line", 2.0)
    e.accept_callback("first", 3.0)
    assert e.complete("warm", 50.0) == [DialBack("first", "a", "line", 1)]


def test_failed_dial_back_retries_then_gives_up(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    e.enqueue("c1", "line", 1.0)
    e.accept_callback("c1", 2.0)
    e.complete("warm", 10.0)                               # DialBack attempt 1
    assert e.callback_failed("c1", 40.0) == []             # agent free again, call waits to retry
    assert e.call_state("c1") == "callback_retry"
    assert e.agent_state("a") == "available"
    assert e.next_deadline() == 160.0
    assert e.advance(160.0) == [DialBack("c1", "a", "line", 2)]
    assert e.callback_failed("c1", 170.0) == [Exit("c1", "line", "callback_failed")]
    cb = e.snapshot()["queues"]["line"]["callbacks"]
    # failed counts each dial-back that did not connect, gave_up the final Exit
    assert cb["dialled"] == 2 and cb["failed"] == 2 and cb["gave_up"] == 1
    assert cb["pending"] == 0 and cb["reached"] == 0


def test_agent_ring_no_answer_on_dial_back_does_not_use_an_attempt(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    e.login("b", {}, 0.0, paused="lunch")
    e.enqueue("c1", "line", 1.0)
    e.accept_callback("c1", 2.0)
    e.complete("warm", 10.0)
    assert e.ring_no_answer("c1", 30.0) == []
    assert e.call_state("c1") == "callback_pending"
    assert e.ready("b", 31.0) == [DialBack("c1", "b", "line", 1)]


def test_call_backs_do_not_exit_at_max_wait(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    e.enqueue("live", "line", 1.0)
    e.enqueue("virtual", "line", 1.0)
    e.accept_callback("virtual", 2.0)
    assert e.advance(400.0) == [Exit("live", "line", "max_wait")]
    assert e.call_state("virtual") == "callback_pending"


def test_scheduled_call_back_enters_line_at_its_slot_with_boost(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    e.enqueue("early", "line", 1.0)                       # priority 0, waiting
    assert e.schedule_callback("booked", "line", 3600.0, 2.0) == []
    assert e.call_state("booked") == "scheduled"
    assert e.next_deadline() == 301.0                     # "early" reaches max wait first
    e.accept_callback("early", 3.0)
    assert e.next_deadline() == 3600.0
    assert e.advance(3600.0) == []
    assert e.call_state("booked") == "callback_pending"
    # boosted to priority 2: served before the older priority-0 call-back
    assert e.complete("warm", 3601.0) == [DialBack("booked", "a", "line", 1)]


def test_scheduled_slot_in_the_past_is_refused(engine_cls):
    e = make(engine_cls)
    e.advance(10.0)
    with pytest.raises(acd.InvalidInput, match="at must be a finite time not before now"):
        e.schedule_callback("x", "line", 5.0, 10.0)


def test_cancel_call_back(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    e.enqueue("c1", "line", 1.0)
    e.accept_callback("c1", 2.0)
    e.schedule_callback("c2", "line", 100.0, 3.0)
    e.abandon("c1", 4.0)
    e.abandon("c2", 5.0)
    cb = e.snapshot()["queues"]["line"]["callbacks"]
    assert cb["cancelled"] == 2 and cb["pending"] == 0
    assert e.snapshot()["queues"]["line"]["abandoned"] == 0


@pytest.mark.parametrize("op,state", [("callback_answered", "waiting"), ("callback_failed", "waiting"),
                                      ("accept_callback", "offered")])
def test_call_back_state_errors(engine_cls, op, state):
    e = make(engine_cls)
    e.enqueue("c1", "line", 1.0)
    if state == "offered":
        e.login("a", {}, 1.0)
    before = e.snapshot()
    with pytest.raises(acd.InvalidState, match=f"it is {state}"):
        getattr(e, op)("c1", 1.0)
    assert e.snapshot() == before


def test_announcements_on_join_and_periodic(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q", announce_on_join=True, announce_every=60, expected_handle_time=120,
                      expected_patience=1e9))
    busy_agent(e, queue="q")
    [a1] = e.enqueue("c1", "q", 1.0)
    [a2] = e.enqueue("c2", "q", 2.0)
    assert (a1.call, a1.position, a2.call, a2.position) == ("c1", 1, "c2", 2)
    mu = 1 / 120                               # no talk finished yet: the prior, (0 + 1) / (0 + 120)
    theta = 1 / (1e9 + 0.0)
    assert a1.ewt == pytest.approx(1 / mu)
    assert a2.ewt == pytest.approx(1 / mu + 1 / (mu + theta))
    out = e.advance(60.0)
    assert [(d.call, d.position) for d in out] == [("c1", 1), ("c2", 2)]
    assert all(isinstance(d, Announce) for d in out)
    assert e.next_deadline() == 120.0


def test_estimate_wait_matches_independent_sum(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q", expected_handle_time=200, expected_patience=100))
    for i in range(3):
        busy_agent(e, agent=f"a{i}", call=f"w{i}", queue="q")
    for i in range(100):
        e.enqueue(f"c{i}", "q", 1.0)
    est = e.estimate_wait("q")
    s, mu, theta = 3, 1 / 200, 1 / 100
    expected = sum(1 / (s * mu + j * theta) for j in range(101))
    assert est.position == 101 and est.agents == 3
    assert est.ewt == pytest.approx(expected, rel=1e-12)
    assert est.hol == 0.0
    assert e.call_wait("c0").position == 1
    assert e.call_wait("c0").ewt == pytest.approx(1 / (s * mu))


def test_no_agent_means_infinite_ewt(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q", callback_risk=0.5))
    assert e.estimate_wait("q").ewt == math.inf
    assert e.enqueue("c1", "q", 0.0) == [OfferCallback("c1", "q", math.inf)]


def test_patience_estimate_from_censored_waits(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q", expected_patience=100))
    e.enqueue("a", "q", 0.0)
    e.enqueue("b", "q", 0.0)
    e.enqueue("c", "q", 0.0)
    e.abandon("a", 10.0)                 # observed patience 10
    e.login("x", {}, 30.0)               # b answered after 30: censored
    e.answer("b", 30.0)
    e.abandon("c", 50.0)                 # observed 50
    p = e.patience("q")
    assert (p.abandons, p.observations, p.exposure) == (2, 3, 90.0)
    assert p.rate == pytest.approx(2 / 90) and p.mean == pytest.approx(45.0)
    assert p.smoothed_rate == pytest.approx(3 / 190)
    assert e.patience_samples("q") == [(10.0, True), (30.0, False), (50.0, True)]
    assert e.patience("q", priority=1).observations == 0


def test_service_level_choice_prefers_call_furthest_into_its_target(engine_cls):
    e = engine_cls(call_choice="service_level")
    e.add_queue(Queue("fast", service_level=(0.8, 20)))
    e.add_queue(Queue("slow", service_level=(0.8, 300)))
    e.enqueue("slow1", "slow", 0.0)      # 100 s of 300
    e.enqueue("fast1", "fast", 90.0)     # 10 s of 20
    assert e.login("a", {}, 100.0) == [Assign("fast1", "a", "fast", 10.0)]


def test_cmu_theta_choice_prefers_high_cost_fast_class(engine_cls):
    e = engine_cls(call_choice="cmu_theta")
    e.add_queue(Queue("cheap", cost=1.0))
    e.add_queue(Queue("dear", cost=5.0))
    e.enqueue("old", "cheap", 0.0)
    e.enqueue("new", "dear", 50.0)
    assert e.login("a", {}, 60.0) == [Assign("new", "a", "dear", 10.0)]
    e2 = engine_cls()                     # priority_fifo for comparison
    e2.add_queue(Queue("cheap", cost=1.0))
    e2.add_queue(Queue("dear", cost=5.0))
    e2.enqueue("old", "cheap", 0.0)
    e2.enqueue("new", "dear", 50.0)
    assert e2.login("a", {}, 60.0) == [Assign("old", "a", "cheap", 60.0)]


def test_overflowed_call_back_moves_with_its_pending_count(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("b"))
    e.add_queue(Queue("a", steps=(RoutingStep(0), RoutingStep(30, overflow="b"))))
    e.enqueue("c", "a", 0.0)
    e.accept_callback("c", 1.0)
    assert e.advance(30.0) == [Overflow("c", "a", "b")]
    snap = e.snapshot()["queues"]
    assert snap["a"]["callbacks"]["pending"] == 0 and snap["b"]["callbacks"]["pending"] == 1
    assert e.login("x", {}, 31.0) == [DialBack("c", "x", "b", 1)]


def test_kaplan_meier_by_hand():
    # waits: 1 (abandon), 2 (censored), 3 (abandon), 3 (censored), 5 (abandon)
    times, surv = acd.kaplan_meier([(1, True), (2, False), (3, True), (3, False), (5, True)])
    assert list(times) == [1, 3, 5]
    # S(1) = 4/5; S(3) = 4/5 * (1 - 1/3); S(5) = ... * (1 - 1/1)
    assert surv == pytest.approx([0.8, 0.8 * 2 / 3, 0.0])
    t, s = acd.kaplan_meier([])
    assert len(t) == len(s) == 0
