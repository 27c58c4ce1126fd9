"""Staffing plans (acd.sim.plan): forecasts, Erlang staffing per interval, demo staffing."""

import math
import textwrap

import pytest

from acd import erlang
from acd.errors import InvalidInput
from acd.sim import bundled_scenario
from acd.sim.plan import (Forecast, Line, demo_staffing, forecast_from_args, forecast_from_scenario, load_forecast,
                          plan_table, staff_forecast)


def test_staff_forecast_matches_erlang_staff():
    fc = forecast_from_args([300, 600, 0], 300, patience=180, interval=1800, start="09:00",
                            service_level=(0.8, 20), answer_rate=0.9)
    plan = staff_forecast(fc)
    got = plan.agents("queue")
    want = [erlang.staff(r / 3600, 300, service_level=(0.8, 20), max_abandon=0.1, patience=180) for r in (300, 600)]
    assert got == want + [0]
    for cell in plan.lines["queue"][:2]:
        assert cell.service_level >= 0.8 and cell.p_abandon <= 0.1
    assert plan.total == got
    text = plan_table(plan)
    assert "09:00" in text and "10:00" in text and "erlang A" in text


def test_erlang_c_without_patience():
    plan = staff_forecast(forecast_from_args([600], 300))
    assert plan.agents("queue") == [erlang.staff(600 / 3600, 300, service_level=(0.8, 60))]
    assert plan.lines["queue"][0].p_abandon == 0.0
    # nobody abandons in erlang c: an answer-rate target changes nothing
    assert staff_forecast(forecast_from_args([600], 300, answer_rate=0.9)).agents("queue") == plan.agents("queue")


def test_forecast_from_scenario_and_demo_staffing():
    sc = bundled_scenario()
    fc = forecast_from_scenario(sc)
    assert [ln.name for ln in fc.lines] == list(sc.queue_names)
    assert sum(sum(ln.calls) for ln in fc.lines) == pytest.approx(5000)
    info = next(ln for ln in fc.lines if ln.name == "information")
    assert info.aht == pytest.approx(360 + 30)
    assert fc.service_level == (0.8, 60.0) and fc.answer_rate == 0.85
    plan, staffed = demo_staffing(sc)
    groups = {g.name: g for g in staffed.agents}
    assert groups["info-early"].staffing == tuple(plan.agents("information"))
    assert groups["info-late"].staffing == (0,) * sc.n_intervals
    assert groups["general"].staffing == tuple(plan.agents("other"))
    assert all(g.pauses == () for g in staffed.agents)
    assert max(plan.total) > 100                          # the 10:00 peak needs well over 100 agents


def test_load_forecast_file(tmp_path):
    p = tmp_path / "f.toml"
    p.write_text(textwrap.dedent("""
        start = "08:00"
        interval = 3600
        service_level = [0.9, 30]
        answer_rate = 0.95
        max_occupancy = 0.85
        [[lines]]
        name = "info"
        calls = [50, 120]
        aht = 240
        patience = 200
    """))
    fc = load_forecast(p)
    assert fc.start == 8 * 3600 and fc.lines[0].calls == (50.0, 120.0) and fc.max_occupancy == 0.85
    plan = staff_forecast(fc)
    assert all(c.occupancy <= 0.85 + 1e-9 for c in plan.lines["info"])
    p.write_text('[[lines]]\nname = "a"\ncalls = [1]\naht = 0\n')
    with pytest.raises(InvalidInput, match="line 'a' aht must be a finite number in \\(0"):
        load_forecast(p)
    p.write_text('[[lines]]\nname = "a"\ncalls = [1]\naht = 10\ncolour = 1\n')
    with pytest.raises(InvalidInput, match="unknown field\\(s\\) in lines\\[0\\]"):
        load_forecast(p)
    with pytest.raises(InvalidInput, match="cannot read forecast file"):
        load_forecast(tmp_path / "missing.toml")
    with pytest.raises(InvalidInput, match="every line must give the same number of intervals"):
        Forecast(0, 1800, (Line("a", (1, 2), 10), Line("b", (1,), 10)))
