"""Recorded peak-load streams: compiled core, bulk replay and oracle agree at scale."""

import pytest

import acd
from acd._reference import ReferenceEngine
from acd.workload import peak_load, replay


@pytest.mark.parametrize("strategy", acd.AGENT_STRATEGIES)
def test_peak_stream_same_decisions(strategy):
    load = peak_load(3, agents=60, skills=8, queues=4, waiting=300, wrap_up=5.0, dt=0.05)

    def factory():
        return acd.Engine(agent_strategy=strategy, seed=11)

    engine, driver = load.build(factory)
    stream = driver.record(4000)
    assert {c[0] for c in stream} >= {"enqueue", "abandon", "answer", "complete", "ready", "advance"}

    bulk, _ = load.build(factory)
    loop, _ = load.build(factory)
    ref, _ = load.build(lambda: ReferenceEngine(agent_strategy=strategy, seed=11))
    out_bulk = bulk.replay(stream)
    out_loop = [d for c in stream for d in getattr(loop, c[0])(*c[1:])]
    out_ref = [d for c in stream for d in getattr(ref, c[0])(*c[1:])]
    assert len(out_ref) > 500
    assert out_bulk == out_loop == out_ref
    assert bulk.snapshot() == loop.snapshot() == ref.snapshot() == engine.snapshot()


def test_replay_counts_decisions():
    load = peak_load(1, agents=20, skills=8, queues=3, waiting=50)
    engine, driver = load.build(acd.Engine)
    stream = driver.record(500)
    fresh, _ = load.build(acd.Engine)
    assert replay(fresh, stream) == len(load.build(acd.Engine)[0].replay(stream))


def test_growth_of_groups_buckets_and_skills_matches_oracle():
    """More than 64 profiles and buckets and 16 skills: the bitset and level tables regrow."""
    load = peak_load(5, agents=150, skills=20, queues=12, waiting=400, wrap_up=3.0, dt=0.05)
    engine, driver = load.build(acd.Engine)
    stream = driver.record(3000)
    core, _ = load.build(acd.Engine)
    ref, _ = load.build(ReferenceEngine)
    assert core.replay(stream) == [d for c in stream for d in getattr(ref, c[0])(*c[1:])]
    assert core.snapshot() == ref.snapshot()


@pytest.mark.parametrize("cls", [acd.Engine, ReferenceEngine])
def test_skills_declared_after_logins(cls):
    e = cls()
    e.add_queue(acd.Queue("q", steps=(acd.RoutingStep(0, {"s0": 1}),)))
    e.login("early", {"s0": 2}, 0.0)
    for i in range(1, 40):
        e.add_skill(f"s{i}")
    e.add_queue(acd.Queue("late", steps=(acd.RoutingStep(0, {"s39": 5}),)))
    e.login("late-agent", {"s39": 7, "s0": 1}, 1.0)
    out = e.enqueue("c1", "late", 2.0) + e.enqueue("c2", "q", 3.0)
    assert [(d.call, d.agent) for d in out] == [("c1", "late-agent"), ("c2", "early")]
