"""The discrete-event simulator (acd.sim.simulate) driving the real engine."""

import dataclasses
import math

import numpy as np
import pytest

import acd
from acd.errors import InvalidInput
from acd.sim import (AgentGroup, Callback, CallbackPolicy, CallType, Dist, Pause, Scenario, Segment,
                     bundled_scenario, simulate)
from acd.sim.simulator import engine_has_callbacks

H = 3600.0
ANSWERED, ABANDONED, EXITED, CB_FAILED = 0, 1, 2, 3


def mm(n_agents=5, calls=400, talk=120.0, patience=None, hours=1.0, **kw):
    """A one-queue scenario; ``patience`` None = callers never hang up."""
    queue = kw.pop("queue", acd.Queue("q"))
    ct = CallType("c", "q", 1.0, Dist.exponential(talk),
                  Dist.infinite() if patience is None else Dist.exponential(patience))
    return Scenario(name="t", start=8 * H, end=8 * H + hours * H, interval=hours * H, queues=(queue,),
                    call_types=(ct,), agents=kw.pop("agents", (AgentGroup("a", n_agents),)),
                    arrivals=(float(calls),), **kw)


def state_code(name):
    from acd import kpi
    return list(kpi.AGENT_STATES).index(name)


def test_state_and_outcome_codes_match_kpi():
    from acd import kpi
    from acd.sim import simulator as s
    assert [s._A_IDLE, s._A_RING, s._A_BUSY, s._A_WRAP, s._A_PAUSE] == \
        [kpi.AVAILABLE, kpi.RESERVED, kpi.BUSY, kpi.WRAP_UP, kpi.PAUSED]
    assert [s._O_ANSWERED, s._O_ABANDONED, s._O_EXITED, s._O_CB_FAILED] == \
        [kpi.ANSWERED, kpi.ABANDONED, kpi.EXITED, kpi.CALLBACK_FAILED]


def test_reproducible_and_seed_sensitive():
    sc = bundled_scenario().scaled(0.2).with_callback(True)
    a = simulate(sc, seed=7)
    b = simulate(sc, seed=7)
    assert a.records.tobytes() == b.records.tobytes()
    assert a.agent_intervals.tobytes() == b.agent_intervals.tobytes()
    assert all(np.array_equal(a.samples[k], b.samples[k]) for k in a.samples)
    assert a.counters == b.counters
    c = simulate(sc, seed=8)
    assert a.records.tobytes() != c.records.tobytes()
    # the scenario's seed is the default
    d = simulate(sc.replace(seed=7))
    assert d.records.tobytes() == a.records.tobytes()


def test_records_are_consistent_with_the_engine():
    res = simulate(bundled_scenario().scaled(0.3), seed=1)
    r = res.records
    assert len(r) > 1000
    assert np.array_equal(r["call"], np.arange(len(r)))
    assert np.all(np.diff(r["arrival"]) >= 0)
    ans = r["outcome"] == ANSWERED
    assert set(np.unique(r["outcome"])) <= {ANSWERED, ABANDONED, EXITED, CB_FAILED}
    assert np.all(r["answered"][ans] >= r["arrival"][ans] + 3 - 1e-9)      # 3 s of ring time
    assert np.all(np.isnan(r["answered"][~ans]))
    assert np.all(r["ended"] >= r["arrival"])
    assert np.allclose(r["talk"][ans], r["ended"][ans] - r["answered"][ans])
    assert np.all(r["agent"][ans] >= 0) and np.all(r["agent"][~ans] == -1)
    assert np.all(r["wrap"][ans] > 0)
    names = res.queue_names
    for qi, q in enumerate(names):                 # no overflow step in this scenario
        assert res.counters[q]["answered"] == int((ans & (r["queue"] == qi)).sum())
        assert res.counters[q]["entered"] == int((r["queue"] == qi).sum())
    total_answered = sum(res.counters[q]["answered"] for q in names)
    total_abandoned = sum(res.counters[q]["abandoned"] for q in names)
    assert total_answered == int(ans.sum())
    assert total_abandoned == int((r["outcome"] == ABANDONED).sum())
    assert res.counters["unserved"] == 0
    # priorities: health professionals (5) wait less than citizens (0) on average
    w = r["answered"] - r["arrival"]
    assert np.nanmean(w[ans & (r["priority"] == 5)]) < np.nanmean(w[ans & (r["priority"] == 0)])


def test_agent_intervals_partition_each_agents_day():
    res = simulate(bundled_scenario().scaled(0.2), seed=3)
    s = res.samples
    assert np.all(s["working"] >= 0) and np.all(s["working"] <= s["logged_in"])
    assert s["working"].max() > 0.8 * s["logged_in"].max()
    assert s["waiting"].shape == (len(s["t"]), 4) and np.all(s["waiting"] >= 0)
    # working agents from the samples match the intervals (ringing + busy + wrap-up) at a few instants
    iv = res.agent_intervals
    codes = [state_code(k) for k in ("reserved", "busy", "wrap_up")]
    for k in range(5, len(s["t"]), 97):
        t = s["t"][k]
        on = iv[np.isin(iv["state"], codes) & (iv["start"] <= t) & (iv["end"] > t)]
        assert len(on) == s["working"][k]
    assert len(iv) > 0
    assert np.all(iv["end"] > iv["start"])
    for a in np.unique(iv["agent"]):
        rows = np.sort(iv[iv["agent"] == a], order="start")
        assert np.all(rows["start"][1:] >= rows["end"][:-1] - 1e-9)      # no overlap
    # every answered call lies inside a busy interval of its agent
    busy = iv[iv["state"] == state_code("busy")]
    r = res.records[res.records["outcome"] == ANSWERED][:200]
    for row in r:
        b = busy[(busy["agent"] == row["agent"]) & (busy["start"] <= row["answered"] + 1e-9)
                 & (busy["end"] >= row["ended"] - 1e-9)]
        assert len(b) == 1


def test_no_agents_everyone_abandons_or_stays_unserved():
    res = simulate(mm(n_agents=0, calls=50, patience=60.0), seed=1)
    assert np.all(res.records["outcome"] == ABANDONED)
    assert np.allclose(res.records["ended"] - res.records["arrival"],
                       res.records["ended"] - res.records["arrival"])
    res = simulate(mm(n_agents=0, calls=50), seed=1)            # infinite patience
    assert np.all(res.records["outcome"] == EXITED)
    assert res.counters["unserved"] == len(res.records)


def test_max_wait_exit_and_overflow():
    sc = Scenario(name="x", start=0, end=H, interval=H,
                  queues=(acd.Queue("back"),
                          acd.Queue("front", steps=(acd.RoutingStep(0, {"front": 1}),
                                                    acd.RoutingStep(20, overflow="back")))),
                  call_types=(CallType("c", "front", 1, Dist.exponential(300)),),
                  agents=(AgentGroup("f", 1, skills={"front": 5}, queues=("front",)),
                          AgentGroup("b", 1, queues=("back",))),
                  arrivals=(60.0,))
    r = simulate(sc, seed=2).records
    assert r["overflowed"].sum() > 10
    ov = r[r["overflowed"].astype(bool) & (r["outcome"] == ANSWERED)]
    assert np.all(ov["answered"] - ov["arrival"] >= 20 - 1e-9)
    sc2 = mm(n_agents=1, calls=60, talk=300, queue=acd.Queue("q", max_wait=30))
    r2 = simulate(sc2, seed=2).records
    ex = r2[r2["outcome"] == EXITED]
    assert len(ex) > 10
    assert np.allclose(ex["ended"] - ex["arrival"], 30)


def test_ring_time_and_abandon_while_ringing():
    sc = mm(n_agents=3, calls=200, patience=20.0, ring=Dist.fixed(15.0))
    r = simulate(sc, seed=4).records
    ans = r[r["outcome"] == ANSWERED]
    assert np.all(ans["answered"] - ans["arrival"] >= 15 - 1e-9)
    assert (r["outcome"] == ABANDONED).sum() > 0


def test_shifts_and_pauses():
    g = AgentGroup("a", 2, shift=(8 * H + 600, 8 * H + 2400),
                   pauses=(Pause(8 * H + 1200, 300, spread=0, reason="coffee"),))
    sc = mm(calls=300, talk=60, agents=(g,), patience=120.0)
    res = simulate(sc, seed=5)
    r = res.records
    ans = r[r["outcome"] == ANSWERED]
    assert np.all(ans["answered"] >= 8 * H + 600)
    # nobody takes a call during the pause unless still on the previous one: the pause starts when it ends
    iv = res.agent_intervals
    paused = iv[iv["state"] == state_code("paused")]
    assert len(paused) == 2
    for p in paused:
        assert p["end"] == pytest.approx(8 * H + 1500)
        took = ans[(ans["agent"] == p["agent"]) & (ans["answered"] > p["start"] + 1e-9)
                   & (ans["answered"] < p["end"] - 1e-9)]
        assert len(took) == 0
    # log-out waits for the call in progress; afterwards, nobody answers
    last_end = max(iv["end"])
    assert np.all(ans["answered"] <= 8 * H + 2400 + 1e-9)
    assert last_end <= 8 * H + 2400 + ans["talk"].max() + 60
    logged = res.samples["logged_in"][(res.samples["t"] > 8 * H + 700) & (res.samples["t"] < 8 * H + 2300)]
    assert np.all(logged == 2)


def test_staffing_profile_drives_logins():
    sc = Scenario(name="s", start=0, end=3 * 1800, interval=1800, queues=(acd.Queue("q"),),
                  call_types=(CallType("c", "q", 1, Dist.exponential(60)),),
                  agents=(AgentGroup("a", staffing=(2, 5, 1)),), arrivals=(10, 10, 10))
    res = simulate(sc, seed=1, sample_every=60)
    s = res.samples
    for i, n in enumerate((2, 5, 1)):
        mid = (s["t"] > i * 1800 + 300) & (s["t"] < (i + 1) * 1800 - 300)
        assert np.all(s["logged_in"][mid] == n), (i, s["logged_in"][mid])
    assert len(res.agent_names) == 5


def test_segments_and_requirements():
    sc = Scenario(name="s", start=0, end=H, interval=H,
                  queues=(acd.Queue("q"),),
                  call_types=(CallType("c", "q", 1, Dist.exponential(60)),),
                  segments=(Segment("fr", 1, requirements={"fr": 1}), Segment("en", 1, priority=4,
                                                                              requirements={"en": 1})),
                  agents=(AgentGroup("fr", 2, skills={"fr": 5}), AgentGroup("en", 2, skills={"en": 5})),
                  arrivals=(100,))
    res = simulate(sc, seed=1)
    r = res.records[res.records["outcome"] == ANSWERED]
    names = res.agent_names
    for row in r:
        grp = names[row["agent"]].split("-")[0]
        assert (row["priority"] == 4) == (grp == "en")


def test_simulator_callback_virtual_hold():
    cb = Callback(enabled=True, threshold=0.0, accept=1.0, reach=1.0, dial_ring=Dist.fixed(10), retries=0)
    sc = mm(n_agents=2, calls=200, talk=120, patience=30.0, callback=cb)
    res = simulate(sc, seed=1, callback_mode="simulator")
    r = res.records
    acc = r["cb_accepted"].astype(bool)
    assert acc.sum() > 50
    assert np.all(r["cb_offered"][acc])
    # accepted callers keep their place and never abandon; every one is dialled and reached
    assert np.all(r["outcome"][acc] == ANSWERED)
    assert np.all(r["cb_dialled"][acc]) and np.all(r["cb_reached"][acc])
    assert res.counters["callback_mode"] == "simulator"
    # nobody refused: every caller who had to wait accepted
    assert (r["outcome"] == ABANDONED).sum() == 0


def test_simulator_callback_unreachable_with_retry():
    cb = Callback(enabled=True, threshold=0.0, accept=1.0, reach=0.0, no_answer=20, retries=1, retry_delay=60)
    sc = mm(n_agents=1, calls=40, talk=120, callback=cb)
    r = simulate(sc, seed=1, callback_mode="simulator").records
    acc = r["cb_accepted"].astype(bool)
    assert acc.sum() > 10
    assert np.all(r["outcome"][acc] == CB_FAILED)
    assert not r["cb_reached"][acc].any()


def test_callback_policy_hook():
    seen = []

    class Never(CallbackPolicy):
        def on_wait_announcement(self, now, queue, position, staffed, ewt):
            seen.append((queue, position, staffed, ewt))
            return False

    cb = Callback(enabled=True, threshold=0.0, accept=1.0)
    sc = mm(n_agents=2, calls=200, talk=120, patience=60.0, callback=cb)
    r = simulate(sc, seed=1, callback_mode="simulator", callback_policy=Never(cb)).records
    assert seen and all(q == "q" and pos >= 1 and st == 2 and ewt > 0 for q, pos, st, ewt in seen)
    assert not r["cb_offered"].any()
    with pytest.raises(InvalidInput, match="callback_policy must be an acd.sim.CallbackPolicy"):
        simulate(sc, callback_policy=lambda *a: True)


@pytest.mark.skipif(not engine_has_callbacks(), reason="engine without call-back support")
def test_engine_callback_mode():
    cb = Callback(enabled=True, threshold=0.0, accept=1.0, reach=1.0, retries=0)
    sc = mm(n_agents=2, calls=200, talk=120, patience=30.0, callback=cb)
    res = simulate(sc, seed=1, callback_mode="engine")
    r = res.records
    acc = r["cb_accepted"].astype(bool)
    assert res.counters["callback_mode"] == "engine"
    assert acc.sum() > 50
    assert np.all(r["outcome"][acc] == ANSWERED) and np.all(r["cb_reached"][acc])
    cbc = res.counters["q"]["callbacks"]
    assert cbc["accepted"] == acc.sum() and cbc["reached"] == acc.sum()
    # unreachable callers: the engine retries, then gives up
    cb2 = Callback(enabled=True, threshold=0.0, accept=1.0, reach=0.0, retries=1, retry_delay=30)
    res2 = simulate(mm(n_agents=1, calls=40, talk=120, callback=cb2), seed=1, callback_mode="engine")
    r2 = res2.records
    acc2 = r2["cb_accepted"].astype(bool)
    assert acc2.sum() > 5 and np.all(r2["outcome"][acc2] == CB_FAILED)
    assert res2.counters["q"]["callbacks"]["dialled"] == 2 * acc2.sum()


def test_common_random_numbers_across_callback_settings():
    sc = bundled_scenario().scaled(0.1)
    a = simulate(sc, seed=3).records
    b = simulate(sc.with_callback(True), seed=3).records
    assert np.array_equal(a["arrival"], b["arrival"]) and np.array_equal(a["queue"], b["queue"])


def test_progress_and_argument_errors():
    got = []
    simulate(mm(calls=50), seed=1, progress=got.append)
    assert got and got[-1] == 1.0 and all(0 <= x <= 1 for x in got)
    assert got == sorted(got)
    with pytest.raises(InvalidInput, match="seed must be an int"):
        simulate(mm(), seed=-1)
    with pytest.raises(InvalidInput, match="callback_mode must be one of"):
        simulate(mm(), callback_mode="magic")
    with pytest.raises(InvalidInput, match="sample_every must be a positive number"):
        simulate(mm(), sample_every=0)
    with pytest.raises(InvalidInput, match="scenario must be an acd.sim.Scenario"):
        simulate("x.toml")


def test_drain_after_closing_time():
    sc = mm(n_agents=1, calls=30, talk=300, hours=0.5)
    res = simulate(sc, seed=2)
    r = res.records
    assert np.all(r["outcome"] == ANSWERED)
    assert r["ended"].max() > sc.end


@pytest.mark.skipif(not engine_has_callbacks(), reason="engine without call-back support")
def test_queue_configured_engine_offers():
    q = acd.Queue("q", callback_threshold=0.0, callback_attempts=1)
    sc = mm(n_agents=2, calls=200, talk=120, patience=30.0, queue=q, callback=Callback(accept=1.0, reach=1.0))
    res = simulate(sc, seed=1)
    r = res.records
    assert res.counters["callback_mode"] == "engine"
    assert r["cb_accepted"].sum() > 50 and np.all(r["outcome"][r["cb_accepted"].astype(bool)] == ANSWERED)
    # the simulator's own offers replace the engine's
    res2 = simulate(sc, seed=1, callback_mode="simulator")
    assert res2.counters["callback_mode"] == "off" and not res2.records["cb_offered"].any()


def test_pause_asked_during_a_call_starts_after_its_wrap_up():
    # one agent, always busy (long calls, many callers), wrap-up 30 s; a pause planned at 8:10 for 10 min
    g = AgentGroup("a", 1, pauses=(Pause(8 * H + 600, 600, reason="coffee"),))
    sc = mm(calls=200, talk=400, agents=(g,), queue=acd.Queue("q", wrap_up=30.0))
    res = simulate(sc, seed=3)
    r = res.records
    iv = res.agent_intervals
    (p,) = iv[iv["state"] == state_code("paused")]
    ans = r[r["outcome"] == ANSWERED]
    on_call = ans[(ans["answered"] <= 8 * H + 600) & (ans["ended"] > 8 * H + 600)]
    assert len(on_call) == 1                        # it was talking when the pause fell due
    assert p["start"] == pytest.approx(on_call["ended"][0] + 30.0)   # the pause waits for the wrap-up
    assert p["end"] == pytest.approx(8 * H + 1200)  # and ends as planned
    # nobody was offered to the agent in between
    assert not np.any((ans["answered"] > on_call["ended"][0]) & (ans["answered"] < p["end"] - 1e-9))


def test_transfers_create_a_second_leg_in_the_target_queue():
    from acd.sim import Transfer
    tr = Transfer("tech", 0.3, Dist.fixed(200), priority=5)
    sc = Scenario(name="t", start=0, end=2 * H, interval=H, queues=(acd.Queue("front"), acd.Queue("tech")),
                  call_types=(CallType("info", "front", 1.0, Dist.exponential(120), Dist.exponential(300),
                                       transfer=tr),),
                  agents=(AgentGroup("f", 6, queues=("front",)), AgentGroup("t", 3, queues=("tech",))),
                  arrivals=(100.0, 100.0))
    res = simulate(sc, seed=4)
    r = res.records
    first = r[r["queue"] == 0]
    legs = r[r["queue"] == 1]
    moved = first[first["transferred"].astype(bool)]
    # only answered calls are transferred, about 30 % of them; every transfer makes exactly one leg
    assert np.all(moved["outcome"] == ANSWERED)
    n_ans = (first["outcome"] == ANSWERED).sum()
    assert 0.2 * n_ans < len(moved) < 0.4 * n_ans
    assert len(legs) == len(moved)
    # each leg enters the line when a transferred conversation ends, with the transfer's priority
    assert np.array_equal(np.sort(legs["arrival"]), np.sort(moved["ended"]))
    assert np.all(legs["priority"] == 5)
    assert np.all(r["call"] == np.arange(len(r)))
    # the second conversation lasts the transfer's service time (200 s), not the first one's
    talk2 = legs["talk"][legs["outcome"] == ANSWERED]
    assert len(talk2) > 20 and np.allclose(talk2, 200)
    # the indicators count them: transferred out of "front", offered in "tech"
    s = res.summary()
    assert s["front"]["transferred"] == len(moved) and s["tech"]["offered"] == len(legs)
    # with no transfer, the first legs see the same callers (common random numbers)
    plain = simulate(sc.replace(call_types=(dataclasses.replace(sc.call_types[0], transfer=None),)), seed=4)
    assert np.array_equal(plain.records["arrival"], first["arrival"])


def test_kpi_tables_of_a_result_are_computed_once_and_handed_out_as_copies():
    res = simulate(mm(calls=200), seed=3)
    first = res.summary()
    offered = first["all"]["offered"]
    first["all"]["offered"] = -1                      # a caller editing its copy
    again = res.summary()
    assert again["all"]["offered"] == offered > 0
    assert repr(again) == repr(res._summary({})) and again is not first     # repr: NaN == NaN
    table = res.per_interval()
    assert repr(table) == repr(res._per_interval({})) and res.per_interval() is not table
    # other arguments are computed afresh
    assert repr(res.summary(sl_threshold=5.0)) == repr(res._summary({"sl_threshold": 5.0}))
    assert repr(res.summary(sl_threshold=5.0)) != repr(again)
