"""Staffing plans (acd.sim.plan): forecasts, Erlang staffing per interval, demo staffing."""

import math
import textwrap
from pathlib import Path

import pytest

from acd import erlang
from acd.errors import InvalidInput
from acd.sim import bundled_scenario
from acd.sim.plan import (CSV_COLUMNS, Forecast, Line, erlang_staffing, evaluate_forecast, forecast_from_args,
                          forecast_from_profile, forecast_from_scenario, load_calls_csv, load_forecast, load_profile,
                          plan_csv, plan_json, plan_records, plan_table, plan_totals, staff_forecast)

ROOT = Path(__file__).resolve().parents[1]


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


def test_forecast_from_scenario_and_erlang_staffing():
    sc = bundled_scenario()
    fc = forecast_from_scenario(sc)
    assert [ln.name for ln in fc.lines] == list(sc.queue_names)
    assert sum(sum(ln.calls) for ln in fc.lines) == pytest.approx(5000)
    info = next(ln for ln in fc.lines if ln.name == "information")
    assert info.aht == pytest.approx(360 + 30)
    assert fc.service_level == (0.8, 60.0) and fc.answer_rate == 0.85
    plan, staffed = erlang_staffing(sc)
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


# ---------------------------------------------------------------- safe staffing, evaluation, outputs (issue 13)

OLD = {"max_occupancy": None, "min_over_load": False}


def test_bundled_scenario_is_never_staffed_at_or_below_its_load():
    import dataclasses
    fc = forecast_from_scenario(bundled_scenario())
    # the issue counted on the bundled day when its callers had a third of today's patience (3 to 5 min):
    # the shorter the patience, the more abandonment does the service level's work
    fc = dataclasses.replace(fc, lines=tuple(dataclasses.replace(ln, patience=ln.patience / 3) for ln in fc.lines))
    old = staff_forecast(dataclasses.replace(fc, **OLD))
    cells = [c for cs in old.lines.values() for c in cs]
    assert len(cells) == 68 and sum(c.agents <= c.load for c in cells if c.calls > 0) == 11   # the count
    plan = staff_forecast(fc)
    for name, cs in plan.lines.items():
        for c in cs:
            assert c.calls == 0 or c.agents > c.load, (name, c)
            assert c.calls == 0 or c.occupancy <= 0.9
            assert c.bound in ("service_level", "abandon", "occupancy", "load", "zero")


def test_staff_forecast_carries_the_binding_target_and_shrinkage():
    fc = forecast_from_args([750.0, 0.0], 420, patience=180, service_level=(0.8, 60))
    plan = staff_forecast(fc, shrinkage=0.25)
    c, z = plan.lines["queue"]
    d = erlang.staff_detail(750 / 3600, 420, service_level=(0.8, 60), patience=180, shrinkage=0.25)
    assert (c.agents, c.scheduled, c.bound, c.load) == (d.agents, d.scheduled, d.bound, d.load) == (96, 128,
                                                                                                  "occupancy", 87.5)
    assert z.agents == z.scheduled == 0 and z.bound == "zero"
    below = staff_forecast(fc.with_targets(max_occupancy=1.0, min_over_load=False)).lines["queue"][0]
    assert (below.agents, below.bound) == (79, "service_level")
    # no service-level target: nothing reported for it
    only_ar = staff_forecast(fc.with_targets(service_level="none", answer_rate=0.95)).lines["queue"][0]
    assert math.isnan(only_ar.service_level) and only_ar.p_abandon <= 0.05
    assert only_ar.bound in ("abandon", "occupancy")


def test_impossible_targets_are_refused_naming_the_field():
    line = Line("info", (10,), 300, 120)
    with pytest.raises(InvalidInput, match=r"answer_rate 1 can never be met: line 'info' has a finite patience"):
        Forecast(0, 1800, (line,), answer_rate=1.0)
    assert Forecast(0, 1800, (Line("c", (10,), 300),), answer_rate=1.0).answer_rate == 1.0   # erlang c: met
    assert Forecast(0, 1800, (line,), answer_rate=0).answer_rate is None                       # 0: no target
    with pytest.raises(InvalidInput, match=r"service_level \[1, 20\] can never be met"):
        Forecast(0, 1800, (line,), service_level=(1, 20))
    with pytest.raises(InvalidInput, match="max_asa 0 can never be met"):
        Forecast(0, 1800, (line,), max_asa=0)
    assert Forecast(0, 1800, (line,), max_occupancy=1).max_occupancy is None


def test_evaluate_forecast():
    fc = forecast_from_args([750.0, 1500.0], 420, patience=180)
    staffed = staff_forecast(fc)
    ok = evaluate_forecast(fc, staffed.agents("queue"))
    assert ok.evaluated and all(c.fails == () and c.bound == "given" for c in ok.lines["queue"])
    fewer = evaluate_forecast(fc, {"queue": [n - 1 for n in staffed.agents("queue")]})
    for c, s in zip(fewer.lines["queue"], staffed.lines["queue"]):
        assert s.bound in c.fails
    assert evaluate_forecast(fc, [79]).agents("queue") == [79, 79]
    with pytest.raises(InvalidInput, match="gives 3 head-counts for 2 intervals"):
        evaluate_forecast(fc, [1, 2, 3])
    with pytest.raises(InvalidInput, match="no head-count for line 'queue'"):
        evaluate_forecast(fc, {"other": [1]})


def test_totals_are_weighted_sums_of_the_rows():
    fc = load_forecast(ROOT / "examples" / "scenarios" / "forecast.toml")
    plan = staff_forecast(fc, shrinkage=0.3)
    rows = plan_records(plan)
    tot = plan_totals(plan, fte_hours=7.5)
    h = fc.interval / 3600
    assert tot["calls"] == pytest.approx(sum(r["calls"] for r in rows))
    assert tot["agent_hours"] == pytest.approx(sum(r["agents"] for r in rows) * h)
    assert tot["scheduled_hours"] == pytest.approx(sum(r["scheduled"] for r in rows) * h)
    assert tot["fte"] == pytest.approx(tot["scheduled_hours"] / 7.5)
    assert all(r["scheduled"] == math.ceil(r["agents"] / 0.7 - 1e-9) for r in rows)
    assert tot["service_level"] == pytest.approx(sum(r["service_level"] * r["calls"] for r in rows) / tot["calls"])
    assert tot["abandon"] == pytest.approx(sum(r["abandon"] * r["calls"] for r in rows) / tot["calls"])
    assert tot["answer_rate"] == pytest.approx(1 - tot["abandon"])
    answered = [r["calls"] * (1 - r["abandon"]) for r in rows]
    assert tot["asa"] == pytest.approx(sum(r["asa"] * a for r, a in zip(rows, answered)) / sum(answered))
    assert tot["peak_agents"] == max(plan.total)
    assert sum(t["calls"] for t in tot["lines"].values()) == pytest.approx(tot["calls"])


def test_forecast_from_profile_and_calls_csv(tmp_path):
    fc = forecast_from_profile(2400, [1, 2, 1], 300, patience=120, start="08:00")
    assert fc.lines[0].calls == (600.0, 1200.0, 600.0) and fc.start == 8 * 3600
    with pytest.raises(InvalidInput, match="at least one positive weight"):
        forecast_from_profile(100, [0, 0], 300)
    p = tmp_path / "w.csv"
    p.write_text("start,weight\n08:00,1\n08:30,2\n# comment\n\n09:00,1\n")
    assert load_profile(p) == [1.0, 2.0, 1.0]
    p.write_text("1\nx\n")
    with pytest.raises(InvalidInput, match="row 2: the weight must be a number, got 'x'"):
        load_profile(p)
    c = tmp_path / "calls.csv"
    c.write_text("start,calls,line,lower\n09:00,10,a,1\n09:00,20,b,1\n09:15,30,a,1\n09:15,40,b,1\n")
    fc = load_calls_csv(c, 240, patience=90)
    assert fc.interval == 900 and fc.start == 9 * 3600 and [ln.name for ln in fc.lines] == ["a", "b"]
    assert fc.lines[1].calls == (20.0, 40.0) and fc.lines[0].patience == 90
    with pytest.raises(InvalidInput, match="900 s apart but the interval given is 1800 s"):
        load_calls_csv(c, 240, interval=1800)
    for text, msg in [("start,calls\n09:00,1\n09:30,1\n10:30,1\n", "evenly spaced"),
                      ("start,calls,line\n09:00,1,a\n09:30,1,a\n09:00,1,b\n", "line 'b' has no row for 09:30"),
                      ("start,calls\n09:00,1\n09:00,2\n", "line 'queue' at 09:00 is given twice"),
                      ("start,calls\n09:00,-1\n", "row 2: calls must be a finite number >= 0"),
                      ("begin,calls\n09:00,1\n", "needs a header with columns start and calls"),
                      ("start,calls\n9h,1\n", "row 2 start must be a time")]:
        c.write_text(text)
        with pytest.raises(InvalidInput, match=msg):
            load_calls_csv(c, 240)


def test_csv_and_json_outputs_follow_the_contract():
    import csv
    import io
    import json
    fc = load_forecast(ROOT / "examples" / "scenarios" / "forecast.toml")
    plan = staff_forecast(fc, shrinkage=0.2)
    rows = list(csv.DictReader(io.StringIO(plan_csv(plan))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == fc.n_intervals * len(fc.lines) and not any(r["start"] == "total" for r in rows)
    assert (rows[0]["start"], rows[0]["end"], rows[0]["line"]) == ("08:00", "08:30", "information")
    cell = plan.lines["information"][0]
    assert int(rows[0]["agents"]) == cell.agents and int(rows[0]["scheduled"]) == cell.scheduled
    assert float(rows[0]["service_level"]) == pytest.approx(cell.service_level, rel=1e-5)
    assert 0 < float(rows[0]["abandon"]) < 1 and rows[0]["bound"] == cell.bound
    doc = json.loads(plan_json(plan))
    assert doc["interval"] == 1800 and doc["mode"] == "staff" and doc["targets"]["answer_rate"] == 0.85
    assert [r["agents"] for r in doc["rows"] if r["line"] == "information"] == plan.agents("information")
    assert set(CSV_COLUMNS) <= set(doc["rows"][0]) and doc["totals"]["fte_hours"] == 7.0
    # strict JSON even where no call is answered in finite time (asa inf -> null)
    ev = json.loads(plan_json(evaluate_forecast(fc, [0])))
    assert ev["rows"][0]["asa"] is None and ev["totals"]["asa"] is None and ev["rows"][0]["fails"]
