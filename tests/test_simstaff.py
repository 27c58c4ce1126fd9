"""Staffing by simulation (acd.planning.simstaff): agrees with Erlang A on M/M/n+M, locally minimal, CLI."""

import csv
import io
import json

import pytest

import acd
from acd import erlang
from acd.cli import main
from acd.errors import InvalidInput
from acd.planning.simstaff import CSV_COLUMNS, staff_by_simulation
from acd.sim import AgentGroup, CallType, Dist, Scenario, Targets

pytest.importorskip("scipy")

LAM_H, AHT, PATIENCE, T = 1200.0, 180.0, 120.0, 20.0


def mmnm(intervals=3, length=7200.0, targets=Targets(service_level=(0.8, T), answer_rate=0.5, short_abandon=0.0)):
    """One queue, Poisson arrivals at a constant rate, exponential talk and patience, no ring nor wrap-up:
    Erlang A's model.  short_abandon 0: the simulated SL is then Erlang A's (answered within T / offered)."""
    return Scenario(name="mmnm", start=0.0, end=length * intervals, interval=length, queues=(acd.Queue("q"),),
                    call_types=(CallType("c", "q", 1.0, Dist.exponential(AHT), Dist.exponential(PATIENCE)),),
                    agents=(AgentGroup("a", 1),), arrivals=(LAM_H * length / 3600,) * intervals, targets=targets)


def test_simulation_staffing_agrees_with_erlang_a_on_single_queue_mmnm():
    lam = LAM_H / 3600
    # the service-level target alone (no occupancy cap, no floor at the load): what the search sizes for
    n_a = erlang.staff(lam, AHT, service_level=(0.8, T), patience=PATIENCE, max_occupancy=None, min_over_load=False)
    n_c = erlang.staff(lam, AHT, service_level=(0.8, T), max_occupancy=None)   # the model without abandonment
    res = staff_by_simulation(mmnm(), answer_rate=None, replications=30, seed=7)
    assert res.met and res.complete
    est, lo, hi = res.kpi["service_level"]
    for i, n in enumerate(res.staffing["a"]):
        assert n_a - 1 <= n <= n_a + 1, (i, n, n_a)
        # Erlang A's service level at the simulated head-count lies in the simulated interval
        sl_a = erlang.erlang_a(n, lam, AHT, PATIENCE, T).service_level
        assert lo[0, i] <= sl_a <= hi[0, i], (i, n, lo[0, i], sl_a, hi[0, i])
        assert hi[0, i] - lo[0, i] < 0.06        # narrow enough to tell one agent from the next
        # ... and the search can tell Erlang A from Erlang C (a wrong model would be caught)
        assert n_c > n + 2
    # one agent fewer in an interval misses its target: the lower bound falls under 80 %
    for i in range(3):
        fewer = dict(res.staffing)
        fewer["a"] = [n - (k == i) for k, n in enumerate(res.staffing["a"])]
        check = staff_by_simulation(mmnm(), answer_rate=None, replications=30, seed=7, start=fewer,
                                    max_evaluations=1)
        assert not check.met


def test_answer_rate_target_agrees_with_erlang_a():
    lam = LAM_H / 3600
    sc = mmnm(intervals=2, targets=Targets(service_level=(0.8, T), answer_rate=0.95, short_abandon=0.0))
    n_a = erlang.staff(lam, AHT, service_level=None, max_abandon=0.05, patience=PATIENCE, max_occupancy=None,
                       min_over_load=False)
    res = staff_by_simulation(sc, service_level=None, replications=30, seed=3)
    est, lo, hi = res.kpi["answer_rate"]
    for i, n in enumerate(res.staffing["a"]):
        assert n_a - 1 <= n <= n_a + 1, (i, n, n_a)
        assert lo[0, i] <= erlang.erlang_a(n, lam, AHT, PATIENCE, T).p_answered <= hi[0, i]
        assert lo[0, i] >= 0.95


def two_skills():
    """Two lines, a specialist group each, and a generalist group helping the second line after 30 s."""
    sla = acd.Queue("sales", steps=(acd.RoutingStep(0, {"sales": 1}),))
    sup = acd.Queue("support", steps=(acd.RoutingStep(0, {"support": 5}), acd.RoutingStep(30, {"support": 1})))
    return Scenario(
        name="two", start=0.0, end=3 * 1800.0, interval=1800.0, queues=(sla, sup),
        call_types=(CallType("s", "sales", 0.5, Dist.lognormal(240, 200), Dist.exponential(200)),
                    CallType("p", "support", 0.5, Dist.exponential(300), Dist.exponential(150))),
        agents=(AgentGroup("sellers", 5, skills={"sales": 3, "support": 1}),
                AgentGroup("helpdesk", 5, skills={"support": 8})),
        arrivals=(150.0, 300.0, 200.0), targets=Targets(service_level=(0.8, 30), answer_rate=0.9))


def test_multi_skill_result_meets_targets_and_is_locally_minimal():
    sc = two_skills()
    res = staff_by_simulation(sc, replications=8, seed=11)
    assert res.met and res.complete and not res.unattainable
    assert res.simulations == 8 * (res.evaluations + 1)
    for row in res.queue_rows():
        assert row["met"]
        if row["judged"]:
            assert row["service_level_lo"] >= 0.8 and row["answer_rate_lo"] >= 0.9
    # every (group, interval) with an agent: one fewer breaks a target (same seeds)
    for g, counts in res.staffing.items():
        for i, n in enumerate(counts):
            if n == 0:
                continue
            fewer = {k: list(v) for k, v in res.staffing.items()}
            fewer[g][i] -= 1
            assert not staff_by_simulation(sc, replications=8, seed=11, start=fewer, max_evaluations=1).met, (g, i)
    # common random numbers: the same call makes the same search
    again = staff_by_simulation(sc, replications=8, seed=11)
    assert again.staffing == res.staffing and again.kpi["service_level"][0].tolist() == \
        res.kpi["service_level"][0].tolist()


def test_rows_follow_the_staffing_table_contract():
    res = staff_by_simulation(two_skills(), replications=4, seed=1)
    rows = list(csv.DictReader(io.StringIO(res.to_csv())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 3 * 2
    assert [(r["start"], r["line"], int(r["agents"])) for r in rows] == [
        (s, g, res.staffing[g][i]) for i, s in enumerate(("00:00", "00:30", "01:00")) for g in ("sellers", "helpdesk")]
    for r in rows:
        assert float(r["service_level_lo"]) <= float(r["service_level"]) <= float(r["service_level_hi"])
        assert r["bound"] in ("service_level", "answer_rate")
    doc = json.loads(res.to_json())
    assert doc["interval"] == 1800.0 and doc["targets"]["answer_rate"] == 0.9
    assert set(doc) >= {"interval", "targets", "rows", "totals"}
    assert doc["totals"]["agent_hours"] == sum(sum(v) for v in res.staffing.values()) * 0.5


def test_bad_input_names_the_field():
    sc = two_skills()
    with pytest.raises(InvalidInput, match="replications"):
        staff_by_simulation(sc, replications=1)
    with pytest.raises(InvalidInput, match="answer_rate"):
        staff_by_simulation(sc, answer_rate=1.5)
    with pytest.raises(InvalidInput, match="needs a target"):
        staff_by_simulation(sc, service_level=None, answer_rate=None)
    with pytest.raises(InvalidInput, match="criterion"):
        staff_by_simulation(sc, criterion="median")
    with pytest.raises(InvalidInput, match="unknown agent group 'nobody'"):
        staff_by_simulation(sc, start={"nobody": [1, 1, 1]})


def test_cli_staff_simulate(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text("""
name = "two"
start = "09:00"
end = "10:00"
interval = 1800
[targets]
service_level = [0.8, 30]
answer_rate = 0.9
[arrivals]
per_interval = [120, 200]
[[queues]]
name = "q"
[[call_types]]
name = "c"
queue = "q"
share = 1
service = { dist = "exponential", mean = 240 }
patience = { dist = "exponential", mean = 200 }
[[agents]]
name = "team"
count = 3
""")
    out, err = io.StringIO(), io.StringIO()
    assert main(["staff", "--simulate", str(path), "--replications", "5", "--seed", "4", "--format", "json"],
                out, err) == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    assert [r["start"] for r in doc["rows"]] == ["09:00", "09:30"]
    assert all(r["agents"] > 3 for r in doc["rows"])
    assert doc["replications"] == 5 and doc["seeds"] == [4, 5, 6, 7, 8]
    assert "staffings" in err.getvalue()
    # only the targets named on the command line are sized for
    out2 = io.StringIO()
    assert main(["staff", "--simulate", str(path), "--replications", "5", "--seed", "4", "--answer-rate", "0.5",
                 "--format", "csv", "--no-progress"], out2, io.StringIO()) == 0
    rows = list(csv.DictReader(io.StringIO(out2.getvalue())))
    assert sum(int(r["agents"]) for r in rows) < sum(r["agents"] for r in doc["rows"])
    assert {r["bound"] for r in rows} == {"answer_rate"}
    err3 = io.StringIO()
    assert main(["staff", "--simulate", str(path), "--rate", "100"], io.StringIO(), err3) == 2
    assert "--simulate" in err3.getvalue()
    err4 = io.StringIO()
    assert main(["staff", "--simulate", str(tmp_path / "missing.toml")], io.StringIO(), err4) == 2
    assert "missing.toml" in err4.getvalue()
