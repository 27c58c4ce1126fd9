"""pytest-benchmark measurements of live reconfiguration (docs/reload.md).

As plain tests (``--benchmark-disable``, the default) they check that a reload changing every one of
1,000 agents, and the rules of a queue under thousands of waiting calls, loses no call;
``pytest tests/test_bench_reload.py --benchmark-enable`` measures them.
"""

from __future__ import annotations

import pytest

import acd
from acd.service import Dispatcher, load_config
from acd.workload import peak_load
from service_support import run

AGENTS = 1000


@pytest.fixture(scope="module")
def loaded():
    # every agent busy, 20,000 calls in line over 10 queues (the peak-load shape of bench/)
    load = peak_load(0, agents=AGENTS, skills=20, queues=10, waiting=20_000)
    engine, driver = load.build(acd.Engine)
    return load, engine, driver


def _shifted(skills, k):
    return {s: 1 + (lvl - 1 + k) % 10 for s, lvl in skills.items()}


def test_set_agent_1000(benchmark, loaded):
    """set_agent on 1,000 logged-in agents, each to a new profile (a new group each round)."""
    load, engine, _ = loaded
    calls = engine.calls()
    now = load.start + 1.0
    rounds = iter(range(1, 10**6))

    def op():
        k = next(rounds)
        for ident, skills in load.agents:
            engine.set_agent(ident, _shifted(skills, k), now)

    benchmark.pedantic(op, rounds=5, iterations=1)
    assert engine.calls() == calls                 # nothing dropped, nothing moved


def test_update_queue_under_waiting_calls(benchmark, loaded):
    """update_queue on the busiest queue: every waiting call out of line and back at its rank."""
    load, engine, _ = loaded
    q = load.queues[0]
    now = load.start + 1.0
    calls = engine.calls()
    waiting = engine.snapshot()["queues"][q.name]["waiting"]
    assert waiting > 1000
    variants = iter(range(10**6))

    def op():
        k = next(variants)
        engine.update_queue(acd.Queue(q.name, steps=q.steps, service_level=(0.8, 60.0 + k % 2)), now)

    benchmark.pedantic(op, rounds=5, iterations=1)
    assert engine.calls() == calls
    assert engine.snapshot()["queues"][q.name]["waiting"] == waiting


def _service_toml(path, level):
    agents = "".join(f"""
[[agents]]
id = "{1000 + i}"
dial = "PJSIP/{1000 + i}"
skills = {{tech = {level}, fr = {1 + i % 10}}}
""" for i in range(AGENTS))
    path.write_text(f"""
skills = ["fr"]

[[queues]]
name = "support"
steps = [{{after = 0, requirements = {{tech = 9}}}}, {{after = 3000, requirements = {{tech = 1}}}}]
{agents}
[fastagi]
port = 0

[http]
port = 0

[journal]
path = "journal.sqlite3"

[service]
reattach_timeout = 3600.0
""")


def test_service_reload_1000_agents(benchmark, tmp_path):
    """acd serve reloads a file changing the skills of 1,000 logged-in agents while 1,000 calls wait
    (no agent eligible: none is dispatched): every call stays, the journal holds the commands."""
    path = tmp_path / "acd.toml"
    _service_toml(path, 5)

    async def main():
        d = Dispatcher(load_config(path))
        await d.start()
        try:
            for i in range(AGENTS):
                d.login(str(1000 + i))
            for i in range(1000):
                d.enqueue(f"c{i}", "support")
            assert d.engine.waiting_count() == 1000
            levels = iter(range(10**6))
            figures = []

            def op():
                _service_toml(path, 2 + next(levels) % 6)     # tech 2..7: never 9, nobody dispatched
                done = d.reload("bench")
                assert len(done["agents_updated"]) == AGENTS
                figures.append(done["milliseconds"])

            benchmark.pedantic(op, rounds=5, iterations=1)
            assert d.engine.waiting_count() == 1000 and len(d.engine.calls()) == 1000
            benchmark.extra_info["reload_ms"] = figures
        finally:
            await d.stop(0.0)

    run(main(), timeout=300)
