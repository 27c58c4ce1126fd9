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
