"""withdraw, call-back counters that add up, and time bounds (announcements, MAX_TIME), on both engines."""

from __future__ import annotations

import time

import pytest

import acd
from acd import Announce, Assign, DialBack, Exit, Overflow, Queue, RoutingStep
from acd._reference import ReferenceEngine, next_tick
from acd._validate import MAX_TIME


def make(engine_cls, **kw):
    e = engine_cls(**kw)
    e.add_queue(Queue("general", wrap_up=0.0))
    e.add_queue(Queue("line", callback_threshold=60, callback_attempts=2, callback_retry_delay=120,
                      max_wait=300, expected_handle_time=300, wrap_up=0.0))
    return e


def busy_agent(e, agent="a", call="warm", queue="general", now=0.0):
    e.login(agent, {}, now)
    e.enqueue(call, queue, now)
    e.answer(call, now)


def counters(e, queue="line"):
    return e.snapshot()["queues"][queue]


def dial_back(e, call="c1"):
    """A call-back of `call` being dialled by agent "a" (at 10.0)."""
    busy_agent(e)
    e.enqueue(call, "line", 1.0)
    e.accept_callback(call, 2.0)
    assert e.complete("warm", 10.0) == [DialBack(call, "a", "line", 1)]


# ---------------------------------------------------------------- withdraw

def test_withdraw_waiting_call_feeds_no_patience_estimate(engine_cls):
    e = make(engine_cls)
    e.enqueue("c1", "line", 1.0)
    before = (repr(e.patience("line")), e.patience_samples("line"))
    assert e.withdraw("c1", 50.0) == []
    assert (repr(e.patience("line")), e.patience_samples("line")) == before
    assert e.patience_samples("line") == []
    q = counters(e)
    assert q["withdrawn"] == 1 and q["abandoned"] == 0 and q["exited"] == 0 and q["waiting"] == 0
    assert e.calls() == {} and e.next_deadline() is None    # its max-wait exit went with it
    with pytest.raises(acd.UnknownCall):
        e.call_state("c1")
    e.enqueue("c1", "line", 51.0)                          # an ended call's id can be reused
    assert e.call_state("c1") == "waiting"


def test_abandon_by_contrast_is_an_observation(engine_cls):
    e = make(engine_cls)
    e.enqueue("c1", "line", 1.0)
    e.abandon("c1", 50.0)
    assert e.patience_samples("line") == [(49.0, True)]


def test_withdraw_offered_call_frees_the_agent_without_a_pause(engine_cls):
    e = make(engine_cls)
    e.enqueue("c1", "general", 1.0)
    e.enqueue("c2", "general", 2.0)
    assert e.login("a", {}, 3.0) == [Assign("c1", "a", "general", 2.0)]
    assert e.withdraw("c1", 4.0) == [Assign("c2", "a", "general", 2.0)]   # takes the next call
    assert e.agent_state("a") == "reserved"
    assert e.withdraw("c2", 5.0) == []
    assert e.agent_state("a") == "available"
    assert e.snapshot()["agents"]["a"]["reason"] == ""
    q = counters(e, "general")
    assert q["withdrawn"] == 2 and q["abandoned"] == 0 and q["answered"] == 0
    assert e.patience_samples("general") == []


@pytest.mark.parametrize("request_, state", [("pause", "paused"), ("logout", "logged_out")])
def test_withdraw_offered_call_carries_out_the_deferred_request(engine_cls, request_, state):
    e = make(engine_cls)
    e.login("a", {}, 0.0)
    e.enqueue("c1", "general", 1.0)
    getattr(e, request_)("a", 2.0)                         # deferred: it rings
    e.enqueue("c2", "general", 3.0)
    assert e.withdraw("c1", 4.0) == []                     # not offered c2: the request comes first
    assert e.agent_state("a") == state
    assert e.call_state("c2") == "waiting"
    if state == "paused":
        assert e.snapshot()["agents"]["a"]["reason"] == ""


def test_withdraw_dialing_back_counts_a_failed_attempt_and_a_cancelled_call_back(engine_cls):
    e = make(engine_cls)
    dial_back(e)
    assert e.withdraw("c1", 20.0) == []
    assert e.agent_state("a") == "available"
    cb = counters(e)["callbacks"]
    assert cb["dialled"] == 1 and cb["failed"] == 1 and cb["reached"] == 0
    assert cb["cancelled"] == 1 and cb["gave_up"] == 0 and cb["pending"] == 0
    assert counters(e)["withdrawn"] == 0


@pytest.mark.parametrize("state", ["callback_pending", "callback_retry", "scheduled"])
def test_withdraw_call_back_not_dialling_is_cancelled(engine_cls, state):
    e = make(engine_cls)
    busy_agent(e)
    if state == "scheduled":
        e.schedule_callback("c1", "line", 500.0, 1.0)
    else:
        e.enqueue("c1", "line", 1.0)
        e.accept_callback("c1", 2.0)
        if state == "callback_retry":
            e.complete("warm", 10.0)
            e.callback_failed("c1", 20.0)                  # retry at 140
    assert e.call_state("c1") == state
    assert e.withdraw("c1", 30.0) == []
    cb = counters(e)["callbacks"]
    assert cb["cancelled"] == 1 and cb["pending"] == 0
    assert counters(e)["withdrawn"] == 0
    assert e.next_deadline() is None                       # its retry or slot went with it
    assert "c1" not in e.calls()


def test_withdraw_refused_when_connected_or_unknown(engine_cls):
    e = make(engine_cls)
    busy_agent(e)
    before = e.snapshot()
    with pytest.raises(acd.InvalidState) as err:
        e.withdraw("warm", 1.0)
    assert str(err.value) == "cannot withdraw call 'warm': it is connected"
    with pytest.raises(acd.UnknownCall) as err2:
        e.withdraw("nobody", 1.0)
    assert str(err2.value) == "unknown call 'nobody' (never enqueued or already ended)"
    assert e.snapshot()["queues"] == before["queues"] and e.calls() == {"warm": "connected"}
    with pytest.raises(acd.InvalidInput, match="at most 1e\\+10"):
        e.withdraw("warm", 2e10)


def test_replay_knows_withdraw():
    cmds = [("login", "a", {}, 0.0), ("enqueue", "c1", "general", 1.0), ("enqueue", "c2", "general", 2.0),
            ("withdraw", "c1", 3.0), ("withdraw", "c2", 4.0)]
    bulk = make(acd.Engine)
    one = make(acd.Engine)
    out = [d for cmd in cmds for d in getattr(one, cmd[0])(*cmd[1:])]
    assert bulk.replay(cmds) == out == [Assign("c1", "a", "general", 0.0), Assign("c2", "a", "general", 1.0)]
    assert bulk.snapshot() == one.snapshot()


# ---------------------------------------------------------------- call-back counters add up

def add_up(e, queue="line"):
    cb = counters(e, queue)["callbacks"]
    dialling = sum(1 for s in e.calls().values() if s == "dialing_back")
    return cb["dialled"] == cb["reached"] + cb["failed"] + dialling


@pytest.mark.parametrize("op", ["ring_no_answer", "reject"])
def test_agent_failing_a_dial_back_counts_a_failed_attempt(engine_cls, op):
    e = make(engine_cls, reject_delay=100.0)               # the agent stays paused until ready
    dial_back(e)
    assert add_up(e)
    getattr(e, op)("c1", 20.0)
    cb = counters(e)["callbacks"]
    assert cb["dialled"] == 1 and cb["failed"] == 1 and cb["gave_up"] == 0 and cb["pending"] == 1
    assert add_up(e)
    e.ready("a", 30.0)                                     # dialled again: still attempt 1
    assert e.call_state("c1") == "dialing_back"
    assert add_up(e)
    e.callback_answered("c1", 40.0)
    cb = counters(e)["callbacks"]
    assert cb["dialled"] == 2 and cb["reached"] == 1 and cb["failed"] == 1
    assert add_up(e)


def test_callback_failed_counts_every_attempt_and_gave_up_the_last(engine_cls):
    e = make(engine_cls)
    dial_back(e)
    assert e.callback_failed("c1", 20.0) == []
    cb = counters(e)["callbacks"]
    assert (cb["failed"], cb["gave_up"]) == (1, 0) and add_up(e)
    assert e.advance(140.0) == [DialBack("c1", "a", "line", 2)]
    assert e.callback_failed("c1", 150.0) == [Exit("c1", "line", "callback_failed")]
    cb = counters(e)["callbacks"]
    assert (cb["dialled"], cb["failed"], cb["gave_up"], cb["pending"]) == (2, 2, 1, 0) and add_up(e)


# ---------------------------------------------------------------- announcements only while a caller waits

def announcing(engine_cls, t0=0.0, every=10.0):
    e = engine_cls()
    e.add_queue(Queue("src", wrap_up=0.0))
    e.advance(t0)
    e.add_queue(Queue("main", announce_every=every, expected_patience=1e9, wrap_up=0.0))
    e.add_queue(Queue("over", steps=(RoutingStep(0), RoutingStep(30.0, overflow="main")), wrap_up=0.0))
    return e


def test_idle_announcing_queue_has_no_deadline(engine_cls):
    e = announcing(engine_cls)
    assert e.next_deadline() is None
    e.enqueue("c1", "main", 3.0)
    assert e.next_deadline() == 10.0
    assert e.advance(10.0) == [Announce("c1", "main", 1, float("inf"))]
    assert e.next_deadline() == 20.0
    e.abandon("c1", 12.0)
    assert e.next_deadline() is None


def test_announcements_keep_the_grid_from_when_the_queue_was_added(engine_cls):
    e = announcing(engine_cls, t0=7.0)                     # grid 17, 27, 37, ...
    e.enqueue("c1", "main", 8.0)
    assert e.next_deadline() == 17.0
    e.withdraw("c1", 9.0)
    e.enqueue("c2", "main", 33.0)                          # 17 and 27 went by while nobody waited
    assert e.next_deadline() == 37.0
    e.withdraw("c2", 35.0)
    assert e.advance(47.0) == []
    e.enqueue("c3", "main", 47.0)                          # at a grid point: that tick has passed
    assert e.next_deadline() == 57.0
    assert e.advance(57.0) == [Announce("c3", "main", 1, float("inf"))]


def test_caller_arriving_by_overflow_at_a_grid_point_hears_that_tick(engine_cls):
    e = announcing(engine_cls)                             # main: grid 10, 20, 30, ...
    e.enqueue("c1", "over", 0.0)                           # overflows into main at 30
    assert e.next_deadline() == 30.0
    # deadlines at a time run before the announcement tick at that time
    assert e.advance(30.0) == [Overflow("c1", "over", "main"), Announce("c1", "main", 1, float("inf"))]
    assert e.next_deadline() == 40.0


def test_call_back_alone_in_line_hears_nothing_and_keeps_no_tick(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q", announce_every=10.0, wrap_up=0.0))
    e.enqueue("c1", "q", 1.0)
    e.accept_callback("c1", 2.0)
    assert e.next_deadline() is None
    assert e.advance(1000.0) == []


@pytest.mark.parametrize("t0, every, t", [(0.0, 25.0, 1e9), (7.0, 0.1, 12345.678), (3.3, 1e-3, 9.9e9),
                                          (0.0, 60.0, 120.0), (1.5, 1e-9, 1e9)])
def test_next_tick_is_past_t_and_on_the_grid(t0, every, t):
    g = next_tick(t0, every, t, False)
    assert g > t
    assert next_tick(t0, every, t, True) >= t
    assert g - t <= every + 2 * (abs(t) * 2.0**-52) or every < abs(t) * 2.0**-50


def test_advance_far_on_a_fresh_engine_returns_promptly():
    results = []
    for cls in (acd.Engine, ReferenceEngine):
        e = cls()
        for i, every in enumerate((1.0, 25.0, 60.0)):
            e.add_queue(Queue(f"q{i}", announce_every=every, announce_on_join=True))
        t = time.perf_counter()
        out = e.advance(5e9)
        assert time.perf_counter() - t < 0.5, cls
        results.append((out, e.next_deadline(), e.snapshot()))
        # and the grid is still the queue's: a caller joining late hears the next grid point
        e.enqueue("c1", "q1", 5e9 + 1.0)
        assert e.next_deadline() == 5e9 + 25.0
        results.append(e.advance(5e9 + 25.0))
    assert results[:2] == results[2:]
    assert results[0][:2] == ([], None)


# ---------------------------------------------------------------- MAX_TIME

def test_now_is_bounded(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q"))
    for bad, shown in [(1.7e12, "1700000000000.0"), (MAX_TIME + 1.0, "10000000001.0"),
                       (10**13, "10000000000000"), (float("nan"), "nan"), (10**400, None)]:
        with pytest.raises(acd.InvalidInput) as err:
            e.advance(bad)
        if shown is not None:
            assert str(err.value) == f"now must be a finite number of seconds at most 1e+10, got {shown}"
        with pytest.raises(acd.InvalidInput, match="at most 1e\\+10"):
            e.enqueue("c1", "q", bad)
    assert e.now == 0.0 and e.calls() == {}
    assert e.advance(1.7e9) == []                          # epoch seconds pass
    assert e.advance(MAX_TIME) == [] and e.now == MAX_TIME
    e.enqueue("c1", "q", MAX_TIME)
    assert e.call_state("c1") == "waiting"


def test_scheduled_slot_is_bounded(engine_cls):
    e = engine_cls()
    e.add_queue(Queue("q"))
    with pytest.raises(acd.InvalidInput) as err:
        e.schedule_callback("c1", "q", 2e10, 1.0)
    assert str(err.value) == "at must be a finite time not before now (1.0) and at most 1e+10, got 20000000000.0"
    assert e.calls() == {}
    e.schedule_callback("c1", "q", MAX_TIME, 1.0)
    assert e.next_deadline() == MAX_TIME


@pytest.mark.parametrize("t0, every", [(0.7, 1 / 3), (123.456, 0.1), (1e9 + 0.3, 7.77), (1e9, 1e-9)])
def test_core_and_reference_put_ticks_on_the_same_grid_points(t0, every):
    engines = [acd.Engine(), ReferenceEngine()]
    seen = []
    for e in engines:
        e.advance(t0)
        e.add_queue(Queue("q", announce_every=every, wrap_up=0.0))
        trace = []
        t = t0
        for k, dt in enumerate((0.0, every * 0.5, every * 3.7, every * 100.25, every, every * 1e3 + 0.01)):
            t += dt
            trace.append(e.enqueue(f"c{k}", "q", t))
            trace.append(e.next_deadline())
            trace.append(e.advance(t + every * 2.5))
            t = e.now
            trace.append(e.withdraw(f"c{k}", t))
            trace.append(e.next_deadline())
        seen.append(trace)
    assert seen[0] == seen[1]
