"""Scenario loading and validation (acd.sim.scenario, acd.sim.dists)."""

import math
import textwrap

import numpy as np
import pytest

import acd
from acd.errors import InvalidInput
from acd.sim import (AgentGroup, CallType, Dist, Scenario, bundled_scenario, dist_from_spec, load_scenario,
                     parse_clock, scenario_from_dict)

BASE = textwrap.dedent("""
    name = "small"
    start = "09:00"
    end = "10:00"
    interval = 1800
    seed = 3

    [arrivals]
    per_interval = [40, 60]

    [[queues]]
    name = "general"
    wrap_up = 10

    [[queues]]
    name = "sales"
    steps = [{ after = 0, requirements = { sales = 5 } }, { after = 30, overflow = "general" }]

    [[call_types]]
    name = "question"
    queue = "general"
    share = 3
    service = { dist = "exponential", mean = 120 }
    patience = { dist = "weibull", mean = 90, shape = 0.8 }

    [[call_types]]
    name = "order"
    queue = "sales"
    share = 1
    service = { dist = "lognormal", mean = 200, cv = 0.5 }

    [[agents]]
    name = "desk"
    count = 3
    skills = { sales = 6 }
    shift = ["09:00", "09:45"]
    pauses = [{ start = "09:20", duration = 300 }]
""")


def _data(extra: str = "", **replace):
    import tomllib
    d = tomllib.loads(BASE + textwrap.dedent(extra))
    d.update(replace)
    return d


def test_load_from_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(BASE)
    sc = load_scenario(p)
    assert sc.name == "small"
    assert sc.start == 9 * 3600 and sc.end == 10 * 3600 and sc.n_intervals == 2
    assert sc.arrivals == (40.0, 60.0)
    assert sc.queue_names == ("general", "sales")
    assert isinstance(sc.queues[1], acd.Queue) and sc.queues[1].steps[1].overflow == "general"
    assert sc.call_types[0].patience.kind == "weibull"
    assert math.isclose(sc.call_types[0].patience.mean, 90)
    assert sc.call_types[1].patience.kind == "infinite"
    assert math.isclose(sc.call_types[1].service.mean, 200)
    g = sc.agents[0]
    assert g.shift == (9 * 3600, 9.75 * 3600) and g.pauses[0].start == 9 * 3600 + 20 * 60
    assert sum(w for _, _, w in sc.mix()) == pytest.approx(1.0)
    assert [w for _, _, w in sc.mix()] == pytest.approx([0.75, 0.25])


def test_bundled_public_agency():
    sc = bundled_scenario("public_agency")
    assert sc.expected_calls == pytest.approx(5000)
    assert sc.n_intervals == 17 and sc.interval == 1800
    assert sc.targets.service_level == (0.8, 60.0)
    assert sc.targets.answer_rate == 0.85 and sc.targets.answer_rate_excellent == 0.92
    shares = {ct.name: ct.share for ct in sc.call_types}
    assert shares == {"information": 0.4, "technical help": 0.3, "complaint": 0.2, "other": 0.1}
    segs = {s.name: (s.share, s.priority) for s in sc.segments}
    assert segs["health professionals"][0] == 0.3 and segs["health professionals"][1] > 0
    talk = sum(w * ct.service.mean * sg.service_factor for ct, sg, w in sc.mix())
    assert 6.5 * 60 <= talk <= 7.5 * 60
    # the morning peak: 09:00-11:30 carries the busiest intervals
    peak = sc.arrivals[1:6]
    assert min(peak) > max(sc.arrivals[6:]) * 0.99
    with pytest.raises(InvalidInput, match="no bundled scenario named 'nope'"):
        bundled_scenario("nope")


def test_arrival_forms():
    d = _data()
    d["arrivals"] = {"rate": 120}
    assert scenario_from_dict(d).arrivals == (60.0, 60.0)
    d["arrivals"] = {"total": 100, "profile": [1, 3]}
    assert scenario_from_dict(d).arrivals == (25.0, 75.0)
    d["arrivals"] = {"total": 100, "rate": 3}
    with pytest.raises(InvalidInput, match="exactly one of rate"):
        scenario_from_dict(d)
    d["arrivals"] = {"per_interval": [1, 2, 3]}
    with pytest.raises(InvalidInput, match=r"one value per interval \(2 intervals"):
        scenario_from_dict(d)
    d["arrivals"] = {"total": 10, "profile": [0, 0]}
    with pytest.raises(InvalidInput, match="must not all be 0"):
        scenario_from_dict(d)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["call_types"][0].update(queue="suport"), "call_types\\[0\\].queue names an unknown queue 'suport'"),
    (lambda d: d.update(colour="red"), "unknown field\\(s\\) in scenario: \\['colour'\\]"),
    (lambda d: d["queues"][0].update(colour="red"), "queues\\[0\\]: unknown queue field"),
    (lambda d: d["call_types"][0].update(service={"dist": "gamma", "mean": 3}),
     "call_types\\[0\\].service.dist must be one of"),
    (lambda d: d["call_types"][0].update(service={"dist": "lognormal", "mean": 3}),
     "lognormal needs mean and exactly one of sd or cv"),
    (lambda d: d["call_types"][0].update(patience={"dist": "weibull", "mean": 3}), "weibull needs shape"),
    (lambda d: d["call_types"][0].update(service={"dist": "exponential", "mean": -3}),
     "exponential mean must be positive, got -3"),
    (lambda d: d["call_types"][0].update(service="infinite"), "service cannot be infinite"),
    (lambda d: d["call_types"][0].update(share=-1), "share must be a finite number in \\[0, inf\\], got -1"),
    (lambda d: d["call_types"][0].update(priority=12), "priority must be an int in 0..9, got 12"),
    (lambda d: d["call_types"][0].update(requirements={"french": 3}), "requires skill 'french'"),
    (lambda d: d["call_types"][1].update(name="question"), "call_types\\[1\\].name 'question' is used twice"),
    (lambda d: d["agents"][0].update(queues=["nowhere"]), "queues names an unknown queue 'nowhere'"),
    (lambda d: d["agents"][0].update(skills={"sales": 11}), "level of skill 'sales' must be an int in 1..10"),
    (lambda d: d["agents"][0].update(shift=["10:00", "09:00"]), "shift must end after it starts"),
    (lambda d: d["agents"][0].update(shift=["9h", "10:00"]), "shift\\[0\\] must be a time \"HH:MM\""),
    (lambda d: d["agents"][0].update(count=-2), "count must be an int >= 0, got -2"),
    (lambda d: d["agents"][0].update(staffing=[1, 2, 3]), "staffing must give one count per interval \\(2\\)"),
    (lambda d: d["agents"][0]["pauses"][0].update(duration=0), "duration must be a finite number in \\(0"),
    (lambda d: d.update(interval=700), "interval must divide end - start \\(3600 s\\), got 700"),
    (lambda d: d.update(end="08:00"), "end must be after start"),
    (lambda d: d.update(agent_strategy="smart"), "agent_strategy must be one of"),
    (lambda d: d.update(seed=-1), "seed must be an int in 0..2\\*\\*63-1, got -1"),
    (lambda d: d.update(ring="often"), "ring must be a number, \"infinite\" or a table"),
    (lambda d: d.update(callback={"accept": 1.5}), "callback.accept must be a finite number in \\[0, 1\\], got 1.5"),
    (lambda d: d.update(callback={"queues": ["x"]}), "callback.queues names an unknown queue 'x'"),
    (lambda d: d.update(callback={"enabled": "yes"}), "callback.enabled must be true or false"),
    (lambda d: d.update(targets={"service_level": [80, 60]}), "targets.service_level fraction"),
    (lambda d: d.pop("queues"), "queues is required"),
    (lambda d: d["call_types"][0].update(transfer={"queue": "nowhere", "share": 0.1, "service": 60}),
     "call_types\\[0\\].transfer.queue names an unknown queue 'nowhere'"),
    (lambda d: d["call_types"][0].update(transfer={"queue": "sales", "share": 1.5, "service": 60}),
     "transfer to 'sales' share must be a finite number in \\[0, 1\\], got 1.5"),
    (lambda d: d["call_types"][0].update(transfer={"queue": "sales", "share": 0.5, "service": "infinite"}),
     "transfer to 'sales' service must be a finite Dist"),
    (lambda d: d["call_types"][0].update(transfer={"queue": "sales", "share": 0.5, "service": 60, "to": 1}),
     "unknown field\\(s\\) in call_types\\[0\\].transfer: \\['to'\\]"),
    (lambda d: d["call_types"][0].update(transfer={"queue": "sales", "share": 0.5, "service": 60,
                                                    "requirements": {"german": 2}}), "requires skill 'german'"),
    (lambda d: d["queues"].reverse(), "overflows to 'general', which must be a queue listed before it"),
])
def test_validation_errors(mutate, message):
    d = _data()
    mutate(d)
    with pytest.raises(InvalidInput, match=message):
        scenario_from_dict(d)


def test_file_errors(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.toml")
    p = tmp_path / "bad.toml"
    p.write_text("name = [")
    with pytest.raises(InvalidInput, match="is not valid TOML"):
        load_scenario(p)


def test_error_messages_are_lower_case():
    d = _data()
    d["call_types"][0]["queue"] = "x"
    with pytest.raises(InvalidInput) as e:
        scenario_from_dict(d)
    assert str(e.value)[0].islower()


def test_parse_clock():
    assert parse_clock("t", "08:30") == 30600
    assert parse_clock("t", "08:30:15") == 30615
    assert parse_clock("t", 42) == 42.0
    import datetime
    assert parse_clock("t", datetime.time(8, 30)) == 30600
    for bad in ("8h30", "25:61", -1, True, "a:b"):
        with pytest.raises(InvalidInput, match="t must be a time"):
            parse_clock("t", bad)


def test_dists_mean_and_sampling():
    rng = np.random.default_rng(0)
    for spec, mean in [({"dist": "exponential", "mean": 50}, 50), ({"dist": "exponential", "rate": 0.1}, 10),
                       ({"dist": "lognormal", "mean": 420, "cv": 0.8}, 420),
                       ({"dist": "lognormal", "mean": 100, "sd": 30}, 100),
                       ({"dist": "weibull", "mean": 180, "shape": 0.7}, 180),
                       ({"dist": "weibull", "scale": 100, "shape": 1.0}, 100),
                       ({"dist": "uniform", "low": 5, "high": 15}, 10), (3, 3), ({"dist": "fixed", "value": 2}, 2)]:
        d = dist_from_spec("x", spec)
        assert d.mean == pytest.approx(mean)
        x = d.sample(rng, 200_000)
        assert x.mean() == pytest.approx(mean, rel=0.02)
        assert (x >= 0).all()
        assert dist_from_spec("x", d.to_spec()).mean == pytest.approx(mean)
        assert d.scaled(2).mean == pytest.approx(2 * mean)
    assert math.isinf(dist_from_spec("x", "infinite").mean)
    assert np.isinf(Dist.infinite().sample(rng, 3)).all()
    with pytest.raises(InvalidInput, match="unknown x parameter\\(s\\) \\['sd'\\] for dist 'weibull'"):
        dist_from_spec("x", {"dist": "weibull", "sd": 1, "shape": 1})


def test_scaled_and_with_staffing():
    sc = scenario_from_dict(_data())
    s2 = sc.scaled(0.1)
    assert s2.arrivals == pytest.approx((4.0, 6.0))
    assert s2.agents[0].count == 1
    s3 = sc.with_staffing({"desk": [2, 5]})
    assert s3.agents[0].staffing == (2, 5) and s3.agents[0].size == 5
    with pytest.raises(InvalidInput, match="unknown agent group 'x'"):
        sc.with_staffing({"x": [1, 1]})
    with pytest.raises(InvalidInput, match="must give one count per interval"):
        sc.with_staffing({"desk": [1]})


def test_dataclass_construction():
    sc = Scenario(name="x", start=0, end=3600, interval=3600, queues=(acd.Queue("q"),),
                  call_types=(CallType("c", "q", 1, Dist.exponential(60)),), agents=(AgentGroup("a", 2),),
                  arrivals=(10,))
    assert sc.n_intervals == 1
    load = sc.queue_load()["q"]
    assert load[0] == [10.0] and load[1] == 60 and math.isinf(load[2])
    with pytest.raises(InvalidInput, match="queues\\[0\\] must be an acd.Queue"):
        sc.replace(queues=("q",))


def test_transfer_from_toml_and_in_queue_load():
    d = _data("""
        [[call_types]]
        name = "escalation"
        queue = "general"
        share = 1
        service = 100
        transfer = { queue = "sales", share = 0.5, service = { dist = "exponential", mean = 300 }, priority = 4 }
    """)
    sc = scenario_from_dict(d)
    tr = sc.call_types[2].transfer
    assert tr.queue == "sales" and tr.share == 0.5 and tr.service.mean == 300 and tr.priority == 4
    load = sc.queue_load()
    # sales: its own orders (share 1/5 of calls, 200 s) plus half of the escalations (1/5 * 0.5, 300 s)
    calls, talk, _ = load["sales"]
    assert calls == pytest.approx([(0.2 + 0.1) * a for a in sc.arrivals])
    assert talk == pytest.approx((0.2 * 200 + 0.1 * 300) / 0.3)
    assert load["general"][0] == pytest.approx([0.8 * a for a in sc.arrivals])
