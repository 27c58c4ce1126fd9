"""pytest-benchmark measurements of the hot operations at peak load.

They run once as plain tests (``--benchmark-disable`` in pyproject), checking
that the operations behave; ``pytest tests/test_bench.py --benchmark-enable``
measures them.  Speed targets live in bench/ (asv, bench/peak_load.py), as
ratios measured in one run, never as timed assertions here.
"""

import itertools

import numpy as np
import pytest

import acd
from acd.workload import peak_load


@pytest.fixture(scope="module")
def loaded():
    load = peak_load(0, agents=400, skills=20, queues=10, waiting=20_000)
    engine, driver = load.build(acd.Engine)
    return load, engine, driver


def test_enqueue_then_abandon(benchmark, loaded):
    load, engine, _ = loaded
    ids = itertools.count(10**9)
    queue = load.queues[0].name
    now = load.start + 1.0
    before = engine.waiting_count()

    def op():
        c = next(ids)
        assert engine.enqueue(c, queue, now, 3) == []
        engine.abandon(c, now)

    benchmark(op)
    assert engine.waiting_count() == before


def test_complete_ready_assign(benchmark, loaded):
    load, engine, driver = loaded
    rng = np.random.default_rng(0)
    now = load.start + 1.0

    def op():
        call = driver.connected.items[int(rng.integers(len(driver.connected)))]
        driver.apply(("complete", call, now))
        agent = driver.wrapping.items[-1]
        out = driver.apply(("ready", agent, now))
        assert len(out) == 1 and out[0].agent == agent
        driver.apply(("answer", out[0].call, now))

    benchmark(op)


def test_replay_stream(benchmark):
    load = peak_load(1, agents=200, skills=20, queues=10, waiting=2_000)
    engine, driver = load.build(acd.Engine)
    stream = driver.record(20_000)
    expected = None

    def setup():
        fresh, _ = load.build(acd.Engine)
        return (fresh,), {}

    def run(fresh):
        nonlocal expected
        out = fresh.replay(stream)
        expected = len(out) if expected is None else expected
        assert len(out) == expected > 0

    benchmark.pedantic(run, setup=setup, rounds=3)
