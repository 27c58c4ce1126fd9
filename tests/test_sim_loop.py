"""The compiled event loop (acd.sim._loop) against its plain-Python oracle (acd.sim._reference_loop).

Both loops get the same prepared inputs (arrivals, draws, agents' plan) and
a fresh engine each; every output must be identical, byte for byte: call
records, agent intervals, samples, counters.  Scenarios are drawn by
hypothesis over the features the loop handles: ring time, wrap-up, shifts,
staffing profiles, pauses, max-wait exits, overflow, requirements and
priorities, transfers, both call-back modes with retries.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acd
from acd.sim import (AgentGroup, Callback, CallbackPolicy, CallType, Dist, Pause, Scenario, Segment, Transfer,
                     bundled_scenario)
from acd.sim._loop import Loop
from acd.sim._reference_loop import ReferenceLoop
from acd.sim.simulator import _run

H = 3600.0


def run_both(sc, seed, **kw):
    opts = dict(callback_policy=None, callback_mode="auto", progress=None, sample_every=60.0, record_agents=True)
    opts.update(kw)
    return _run(sc, seed, loop=Loop, **opts), _run(sc, seed, loop=ReferenceLoop, **opts)


def assert_same(a, b):
    assert a.records.dtype == b.records.dtype
    for name in a.records.dtype.names:
        np.testing.assert_array_equal(a.records[name], b.records[name], err_msg=name)
    np.testing.assert_array_equal(a.agent_intervals, b.agent_intervals)
    assert a.samples.keys() == b.samples.keys()
    for k in a.samples:
        np.testing.assert_array_equal(a.samples[k], b.samples[k], err_msg=k)
    assert a.counters == b.counters
    assert a.events == b.events


dists = st.one_of(
    st.floats(10, 400).map(Dist.exponential),
    st.tuples(st.floats(20, 300), st.floats(5, 200)).map(lambda p: Dist.lognormal(*p)),
    st.floats(0, 200).map(Dist.fixed),
)
patience = st.one_of(st.just(Dist.infinite()), st.floats(5, 300).map(Dist.exponential),
                     st.tuples(st.floats(0.5, 3), st.floats(10, 300)).map(lambda p: Dist.weibull(p[0], mean=p[1])))
rings = st.one_of(st.just(Dist.fixed(0.0)), st.floats(0, 20).map(Dist.fixed), st.floats(1, 10).map(Dist.exponential))


@st.composite
def scenarios(draw):
    span = draw(st.sampled_from([1800.0, 3600.0]))
    start = 8 * H
    wrap = draw(st.sampled_from([0.0, 0.0, 5.0, 30.0]))
    level = draw(st.integers(0, 3))
    steps = (acd.RoutingStep(0, {"a": level} if level else {}),)
    if draw(st.booleans()):
        steps += (acd.RoutingStep(draw(st.floats(1, 60)), overflow="r"),)
    front = acd.Queue("q", steps=steps, wrap_up=wrap, max_wait=draw(st.one_of(st.none(), st.floats(10, 300))),
                      priority=draw(st.integers(0, 9)))
    back = acd.Queue("r", wrap_up=draw(st.sampled_from([0.0, 10.0])))
    transfers = st.one_of(st.none(), st.builds(
        lambda to, share, service, prio: Transfer(to, share, service, priority=prio),
        st.sampled_from(["q", "r"]), st.floats(0, 1), dists, st.one_of(st.none(), st.integers(0, 9))))
    types = [CallType("c1", "q", 1.0, draw(dists), draw(patience), transfer=draw(transfers))]
    if draw(st.booleans()):
        types.append(CallType("c2", "r", draw(st.floats(0.1, 1)), draw(dists), draw(patience),
                              priority=draw(st.one_of(st.none(), st.integers(0, 9))), transfer=draw(transfers)))
    segments = (Segment("all", 1.0),)
    if draw(st.booleans()):
        segments = (Segment("s1", 1.0), Segment("s2", 0.5, priority_boost=draw(st.integers(0, 3)),
                                                requirements={"b": 1}))
    groups = []
    for gi in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["all-day", "shift", "staffing"]))
        skills = {k: v for k, v in (("a", draw(st.integers(0, 5))), ("b", draw(st.integers(0 if gi else 1, 2)))) if v}
        queues = draw(st.sampled_from([None, ("q",), ("r",)]))
        pauses = ()
        if draw(st.booleans()):
            pauses = (Pause(start + draw(st.floats(0, span)), draw(st.floats(1, 900)), draw(st.floats(0, 300)),
                            reason=draw(st.sampled_from(["break", "lunch"]))),)
        if kind == "staffing":
            groups.append(AgentGroup(f"g{gi}", skills=skills, queues=queues, pauses=pauses,
                                     staffing=tuple(draw(st.lists(st.integers(0, 4), min_size=2, max_size=2)))))
            continue
        shift = None
        if kind == "shift":
            s = start + draw(st.floats(0, span / 2))
            shift = (s, s + draw(st.floats(60, span)))
        groups.append(AgentGroup(f"g{gi}", draw(st.integers(0, 4)), skills=skills, queues=queues, shift=shift,
                                 pauses=pauses))
    cb = Callback(enabled=draw(st.booleans()), threshold=draw(st.floats(0, 120)), accept=draw(st.floats(0, 1)),
                  reach=draw(st.floats(0, 1)), dial_ring=draw(rings), no_answer=draw(st.floats(1, 40)),
                  retries=draw(st.integers(0, 2)), retry_delay=draw(st.floats(0, 300)),
                  queues=draw(st.sampled_from([None, ("q",)])))
    return Scenario(name="h", start=start, end=start + span, interval=span / 2, queues=(back, front),
                    call_types=tuple(types), segments=segments, agents=tuple(groups),
                    arrivals=tuple(draw(st.lists(st.floats(0, 60), min_size=2, max_size=2))),
                    ring=draw(rings), callback=cb,
                    agent_strategy=draw(st.sampled_from(["longest_idle", "round_robin", "random",
                                                         "fewest_calls", "highest_level"])))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sc=scenarios(), seed=st.integers(0, 2 ** 32), mode=st.sampled_from(["auto", "simulator"]),
       record=st.booleans())
def test_compiled_loop_matches_reference(sc, seed, mode, record):
    a, b = run_both(sc, seed, callback_mode=mode, record_agents=record)
    assert_same(a, b)


@pytest.mark.parametrize("mode", ["auto", "simulator"])
def test_bundled_peak_day_matches_reference(mode):
    sc = bundled_scenario().scaled(0.25).with_callback(True)
    a, b = run_both(sc, 11, callback_mode=mode)
    assert_same(a, b)
    assert len(a.records) > 500


def test_policy_hook_and_progress_reach_both_loops_alike():
    class EveryOther(CallbackPolicy):
        def __init__(self, config):
            super().__init__(config)
            self.calls = []

        def on_wait_announcement(self, now, queue, position, staffed, ewt):
            self.calls.append((now, queue, position, staffed, ewt))
            return len(self.calls) % 2 == 0

    cb = Callback(enabled=True, threshold=0.0, accept=1.0, reach=0.5, retries=1, retry_delay=30)
    sc = Scenario(name="p", start=0, end=H, interval=H, queues=(acd.Queue("q"),),
                  call_types=(CallType("c", "q", 1.0, Dist.exponential(200), Dist.exponential(90)),),
                  agents=(AgentGroup("a", 2),), arrivals=(80.0,), callback=cb)
    for mode in ("engine", "simulator"):
        hooks, progress = [], []
        for loop in (Loop, ReferenceLoop):
            pol = EveryOther(cb)
            got = []
            res = _run(sc, 5, callback_policy=pol, callback_mode=mode, progress=got.append, sample_every=120.0,
                       record_agents=True, loop=loop)
            hooks.append(pol.calls)
            progress.append(got)
        assert hooks[0] == hooks[1] and len(hooks[0]) > 10
        assert progress[0] == progress[1] and progress[0][-1] == 1.0
        assert res.records["cb_offered"].sum() > 5
