"""acd sweep (acd.planning.sweep): local processes and a Dask cluster give the same numbers."""

import csv
import io
import json
import socket

import pytest

from acd.cli import main
from acd.errors import InvalidInput
from acd.planning.sweep import SchedulerUnreachable, run_sweep, sweep_spec_from_dict

pytest.importorskip("scipy")

SPEC = {"scenarios": ["small_helpdesk", "public_agency"], "staffing": [0.8, 1.0], "callback": [False, True],
        "seeds": 3, "seed": 5}


@pytest.fixture(scope="module")
def local_run():
    return run_sweep(sweep_spec_from_dict(SPEC), jobs=2)


def test_local_processes_run_every_cell(local_run):
    res = local_run
    assert len(res.cells) == 2 * 2 * 2 * 3 and len(res.rows) == 8
    assert [c["seed"] for c in res.cells[:3]] == [5, 6, 7]
    # the same as in this process, cell by cell (the workers run the same pure function)
    one = run_sweep(sweep_spec_from_dict(dict(SPEC, scenarios=["small_helpdesk"])), jobs=1)
    assert one.cells == res.cells[:12]
    for r in res.rows:
        for k in ("service_level", "answer_rate", "abandon", "occupancy"):
            assert 0.0 <= r[f"{k}_lo"] <= r[k] <= r[f"{k}_hi"] <= 1.0
    pa = {(r["staffing"], r["callback"]): r for r in res.rows if r["scenario"] == "public_agency"}
    # fewer agents: fewer agent-hours, more abandons (same callers: common seeds)
    assert pa[("x0.8", False)]["agent_hours"] < pa[("x1", False)]["agent_hours"]
    assert pa[("x0.8", False)]["abandon"] > pa[("x1", False)]["abandon"]


def test_dask_local_cluster_gives_the_same_numbers(local_run):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        res = run_sweep(sweep_spec_from_dict(SPEC), scheduler=cluster.scheduler_address)
    assert res.engine.startswith("dask ")
    assert len(res.cells) == len(local_run.cells)
    for a, b in zip(res.cells, local_run.cells):
        assert a == b
    assert res.rows == local_run.rows


def test_unreachable_scheduler_is_a_clear_error():
    pytest.importorskip("distributed")
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = sweep_spec_from_dict(dict(SPEC, scenarios=["small_helpdesk"], seeds=1))
    with pytest.raises(SchedulerUnreachable, match=f"tcp://127.0.0.1:{port}"):
        run_sweep(spec, scheduler=f"tcp://127.0.0.1:{port}", timeout=2.0)
    err = io.StringIO()
    assert main(["sweep", "--scenario", "small_helpdesk", "--seeds", "1", "--scheduler", f"tcp://127.0.0.1:{port}",
                 "--scheduler-timeout", "1", "--no-progress"], io.StringIO(), err) == 2
    assert "no Dask scheduler answered" in err.getvalue()


@pytest.mark.parametrize("change, message", [
    ({"staffing": [-1]}, "staffing[0] must be a factor in (0, 1000], got -1"),
    ({"staffing": ["nofile.csv"]}, "staffing[0] must be a factor, \"erlang\" or a staffing CSV file, got 'nofile.csv'"),
    ({"scenarios": ["nosuch"]}, "scenarios[0]: no scenario file nor bundled scenario named 'nosuch'"),
    ({"callback": ["yes"]}, "callback must be true, false or a list of them, got ['yes']"),
    ({"seeds": 0}, "seeds must be a count in 1..100000 or a list of seeds, got 0"),
    ({"seeds": [1, 1]}, "seeds must be distinct, got [1, 1]"),
    ({"confidence": 2}, "confidence must be a number in [0.5, 1), got 2"),
    ({"seedz": 1}, "unknown field(s) in sweep spec: ['seedz']"),
])
def test_bad_spec_names_field_and_value(change, message):
    with pytest.raises(InvalidInput) as e:
        sweep_spec_from_dict(dict(SPEC, **change))
    assert message in str(e.value)


def test_staffing_table_from_simstaff_and_cli(tmp_path):
    table = tmp_path / "plan.csv"
    table.write_text("start,end,line,agents\n09:00,09:30,desk,9\n09:00,09:30,vip,5\n")
    spec_path = tmp_path / "grid.toml"
    spec_path.write_text('scenarios = ["small_helpdesk"]\nstaffing = [1.0, "plan.csv"]\nseeds = 2\n')
    out, err = io.StringIO(), io.StringIO()
    assert main(["sweep", str(spec_path), "--jobs", "1", "--format", "csv"], out, err) == 0, err.getvalue()
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["staffing"] for r in rows] == ["x1", "plan.csv"]
    assert float(rows[1]["agent_hours"]) != float(rows[0]["agent_hours"])
    assert "sweep of 2 runs" in err.getvalue() or "sweep of 4 runs" in err.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_text("start,end,line,agents\n09:00,09:30,nobody,3\n")
    spec_path.write_text('scenarios = ["small_helpdesk"]\nstaffing = ["bad.csv"]\n')
    err2 = io.StringIO()
    assert main(["sweep", str(spec_path), "--jobs", "1"], io.StringIO(), err2) == 2
    assert "'nobody'" in err2.getvalue()
    out3 = io.StringIO()
    assert main(["sweep", "--scenario", "small_helpdesk", "--seeds", "2", "--callback", "off", "on", "--jobs", "1",
                 "--format", "json", "--no-progress"], out3, io.StringIO()) == 0
    doc = json.loads(out3.getvalue())
    assert [r["callback"] for r in doc["rows"]] == [False, True] and len(doc["cells"]) == 4


def test_planning_and_dask_load_only_when_asked():
    import subprocess
    import sys
    code = ("import sys, acd, acd.cli; acd.cli.build_parser(); "
            "assert not any(m.startswith(('acd.planning', 'distributed', 'dask', 'scipy')) for m in sys.modules); "
            "import acd.planning.sweep, acd.planning.simstaff; "
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
