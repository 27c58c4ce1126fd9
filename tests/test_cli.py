"""The ``acd`` command: simulate, staff, demo (smoke tests on small inputs)."""

import io
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from acd.cli import main

ROOT = Path(__file__).resolve().parents[1]
HELPDESK = ROOT / "src" / "acd" / "data" / "small_helpdesk.toml"


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_simulate_with_report(tmp_path):
    code, out, err = run("simulate", str(HELPDESK), "--seed", "3", "--report", str(tmp_path / "rep"))
    assert code == 0, err
    assert "small help desk" in out and "seed 3" in out
    assert "report:" in out
    html = (tmp_path / "rep" / "index.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 4
    assert "Callers waiting" in html and "Service level per interval" in html and "Abandonment per interval" in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # progress went to stderr, not into the table
    assert "simulating small help desk" in err
    assert "simulating" not in out


def test_simulate_is_reproducible_and_options(tmp_path):
    a = run("simulate", str(HELPDESK), "--seed", "5", "--no-progress")
    b = run("simulate", str(HELPDESK), "--seed", "5", "--no-progress")
    strip = lambda s: "\n".join(l for l in s.splitlines() if " s\n" not in l + "\n" or "calls, seed" not in l)
    assert a[0] == 0 and strip(a[1]) == strip(b[1])
    assert a[2] == ""
    code, out, _ = run("simulate", str(HELPDESK), "--no-progress", "--scale", "0.5", "--callback", "off",
                       "--intervals")
    assert code == 0


def test_simulate_errors(tmp_path):
    code, out, err = run("simulate", str(tmp_path / "none.toml"), "--no-progress")
    assert code == 2 and err.startswith("acd: error: cannot read scenario file")
    bad = tmp_path / "bad.toml"
    bad.write_text(HELPDESK.read_text().replace('name = "vip incident"\nqueue = "vip"',
                                                'name = "vip incident"\nqueue = "vipp"'))
    code, out, err = run("simulate", str(bad), "--no-progress")
    assert code == 2 and "call_types[2].queue names an unknown queue 'vipp'" in err
    code, out, err = run("simulate", str(HELPDESK), "--seed", "-4")
    assert code == 2 and err.count("\n") == 1 and err.startswith("acd simulate: error: argument --seed")


def test_staff_from_rates():
    code, out, err = run("staff", "--rate", "300", "600", "900", "--aht", "300", "--patience", "180",
                         "--start", "09:00", "--sl", "0.8", "20", "--answer-rate", "0.9")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == ("targets: 80 % answered within 20 s, answer rate >= 90 %, occupancy <= 90 %, "
                        "agents > offered load")
    assert any(l.startswith("09:00") for l in lines) and any(l.startswith("10:00") for l in lines)
    # more calls, more agents
    agents = [int(l.split()[2]) for l in lines if l[:2].isdigit()]   # interval, calls, agents
    assert agents == sorted(agents) and agents[0] > 0


def test_staff_from_files(tmp_path):
    fc = tmp_path / "f.toml"
    fc.write_text(textwrap.dedent("""
        start = "08:00"
        interval = 3600
        service_level = [0.9, 30]
        [[lines]]
        name = "info"
        calls = [50, 120]
        aht = 240
        patience = 200
        [[lines]]
        name = "sales"
        calls = [10, 20]
        aht = 400
    """))
    code, out, err = run("staff", str(fc))
    assert code == 0, err
    assert "info" in out and "sales (aht 400 s, erlang C)" in out
    code, out, err = run("staff", str(HELPDESK))
    assert code == 0 and "general" in out and "vip (aht" in out
    code, out, err = run("staff")
    assert code == 2 and "staff needs one input: a FORECAST.toml file, --rate" in err
    code, out, err = run("staff", "--rate", "100")
    assert code == 2 and "--rate needs --aht" in err
    code, out, err = run("staff", "--rate", "100", "--aht", "300", "--answer-rate", "0.9")
    assert code == 2 and "--answer-rate needs --patience" in err
    code, out, err = run("staff", str(ROOT / "examples" / "scenarios" / "forecast.toml"))
    assert code == 0 and "appointments (aht 240 s, erlang C)" in out


def _staff_json(*argv):
    import json
    code, out, err = run("staff", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_staff_safe_defaults_bind_and_the_header_states_the_targets():
    # issue 13: 87.5 erlangs (750 calls/h of 420 s), 3 min patience, 80 % in 60 s
    base = ("--rate", "750", "--aht", "420", "--patience", "180")
    doc = _staff_json(*base)
    row = doc["rows"][0]
    assert (row["agents"], row["bound"]) == (96, "occupancy") and row["load"] == 87.5
    assert doc["targets"] == {"service_level": [0.8, 60.0], "answer_rate": None, "max_occupancy": 0.9,
                              "max_asa": None, "min_over_load": True}
    row = _staff_json(*base, "--max-occupancy", "1")["rows"][0]
    assert (row["agents"], row["bound"]) == (88, "load")
    row = _staff_json(*base, "--max-occupancy", "1", "--allow-below-load")["rows"][0]
    assert (row["agents"], row["bound"]) == (79, "service_level") and row["occupancy"] > 0.97
    code, out, err = run("staff", *base, "--max-occupancy", "1", "--allow-below-load")
    assert out.splitlines()[0] == "targets: 80 % answered within 60 s, agents may be at or below the load"
    code, out, err = run("staff", *base, "--asa", "2", "--answer-rate", "0.99", "--sl", "0.9", "30")
    assert out.splitlines()[0] == ("targets: 90 % answered within 30 s, answer rate >= 99 %, ASA <= 2 s, "
                                   "occupancy <= 90 %, agents > offered load")
    # --answer-rate 0 is "no answer-rate target", also over a file's; --sl 0 S: no service-level target
    fc = str(ROOT / "examples" / "scenarios" / "forecast.toml")
    assert _staff_json(fc, "--answer-rate", "0")["targets"]["answer_rate"] is None
    code, out, err = run("staff", fc, "--answer-rate", "0")
    assert code == 0 and "answer rate" not in out.splitlines()[0]
    doc = _staff_json(*base, "--sl", "0", "20", "--answer-rate", "0.95")
    assert doc["targets"]["service_level"] is None and doc["rows"][0]["service_level"] is None
    assert doc["rows"][0]["abandon"] <= 0.05


@pytest.mark.parametrize("argv, message", [
    (["--answer-rate", "1.0"], "--answer-rate 1.0 can never be met: line 'queue' has a finite patience (180 s)"),
    (["--sl", "1", "20"], "--sl 1 20 can never be met: some calls always wait longer than 20 s"),
    (["--sl", "1.5", "20"], "--sl 1.5 20: the fraction must be in [0, 1]"),
    (["--asa", "0"], "argument --asa: must be in (0, 604800], got '0'"),
    (["--max-occupancy", "0"], "argument --max-occupancy: must be in (0, 1], got '0'"),
    (["--shrinkage", "1"], "argument --shrinkage: must be in [0, 1), got '1'"),
    (["--fte-hours", "0"], "argument --fte-hours: must be in (0, 24], got '0'"),
    (["--agents", "1,x"], "argument --agents: must be whole numbers like 40 or 40,45,50, got '1,x'"),
    (["--agents", "1,2"], "--agents gives 2 head-counts for 1 intervals"),
    (["--profile", "1,2"], "--profile goes with --calls-per-day"),
    (["--calls-per-day", "10"], "staff needs one input: a FORECAST.toml file, --rate, --calls-per-day with "
                                "--profile, or --calls-csv (got --rate and --calls-per-day)"),
])
def test_staff_errors_name_the_flag_typed(argv, message):
    code, out, err = run("staff", "--rate", "750", "--aht", "420", "--patience", "180", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert message in err
    assert "max_abandon" not in err and "answer_rate" not in err


def test_staff_file_errors(tmp_path):
    fc = tmp_path / "f.toml"
    fc.write_text('answer_rate = 1.0\n[[lines]]\nname = "a"\ncalls = [10]\naht = 300\npatience = 60\n')
    code, out, err = run("staff", str(fc))
    assert code == 2 and "answer_rate 1 can never be met: line 'a' has a finite patience (60 s)" in err
    fc.write_text('answer_rate = 1.0\n[[lines]]\nname = "a"\ncalls = [10]\naht = 300\n')   # erlang c: met
    assert run("staff", str(fc))[0] == 0
    code, out, err = run("staff", str(fc), "--aht", "300")
    assert code == 2 and "--aht is for --rate, --calls-per-day and --calls-csv" in err
    code, out, err = run("staff", "--calls-per-day", "100", "--aht", "300")
    assert code == 2 and "--calls-per-day needs --profile" in err
    code, out, err = run("staff", "--calls-per-day", "100", "--aht", "300", "--profile", "1,-2")
    assert code == 2 and "--profile weights must be finite numbers >= 0, got '-2'" in err
    code, out, err = run("staff", "--calls-per-day", "100", "--aht", "300", "--profile", str(tmp_path / "none"))
    assert code == 2 and "cannot read --profile file" in err
    code, out, err = run("staff", "--calls-csv", str(tmp_path / "none.csv"), "--aht", "300")
    assert code == 2 and "cannot read --calls-csv file" in err


def test_staff_calls_per_day_profile_and_csv_round_trip(tmp_path):
    import csv
    opts = ("--aht", "300", "--patience", "120", "--sl", "0.8", "20")
    doc = _staff_json("--calls-per-day", "2400", "--profile", "1,2,4,4,3,2", "--start", "08:00", *opts)
    assert [r["calls"] for r in doc["rows"]] == [150.0, 300.0, 600.0, 600.0, 450.0, 300.0]
    assert doc["rows"][0]["start"] == "08:00" and doc["rows"][-1]["end"] == "11:00"
    prof = tmp_path / "profile.csv"
    prof.write_text("start,weight\n08:00,1\n08:30,2\n09:00,4\n09:30,4\n10:00,3\n10:30,2\n")
    assert _staff_json("--calls-per-day", "2400", "--profile", str(prof), "--start", "08:00", *opts) == doc
    # the CSV `acd staff` writes (start, calls, line, ...) is a --calls-csv input: same staffing
    code, out, err = run("staff", str(ROOT / "examples" / "scenarios" / "forecast.toml"), "--format", "csv")
    assert code == 0, err
    calls = tmp_path / "calls.csv"
    calls.write_text(out)
    rows = list(csv.DictReader(out.splitlines()))
    again = list(csv.DictReader(run("staff", "--calls-csv", str(calls), "--aht", "390", "--patience", "180",
                                    "--answer-rate", "0.85", "--format", "csv")[1].splitlines()))
    info = [r for r in rows if r["line"] == "information"]
    assert [r["agents"] for r in again if r["line"] == "information"] == [r["agents"] for r in info]
    assert len(again) == len(rows) and again[0]["start"] == "08:00" and again[0]["end"] == "08:30"


def test_staff_agents_mode_shrinkage_and_fte():
    base = ("--rate", "750", "1500", "--aht", "420", "--patience", "180", "--start", "09:00")
    staffed = _staff_json(*base, "--shrinkage", "0.3", "--fte-hours", "7.5")
    agents = [r["agents"] for r in staffed["rows"]]
    assert [r["scheduled"] for r in staffed["rows"]] == [math.ceil(a / 0.7) for a in agents]
    tot = staffed["totals"]
    assert tot["agent_hours"] == sum(agents) / 2 and tot["fte"] == pytest.approx(tot["scheduled_hours"] / 7.5)
    ok = _staff_json(*base, "--agents", ",".join(map(str, agents)))
    assert ok["mode"] == "evaluate" and all(r["bound"] == "given" and r["fails"] == [] for r in ok["rows"])
    fewer = _staff_json(*base, "--agents", ",".join(str(a - 1) for a in agents))
    assert all(r["bound"] in f["fails"] for r, f in zip(staffed["rows"], fewer["rows"]))
    code, out, err = run("staff", *base, "--agents", "79")
    assert code == 0 and out.startswith("evaluating the given agents against: 80 % answered within 60 s")
    assert "occupancy+load" in out and "2 of 2 line-intervals fail a target" in out


def test_demo_small(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run("demo", "--scale", "0.1", "--no-progress", "--days", "2")
    assert code == 0, err
    for label in ("1 today", "2 acd routing", "3 + call-backs", "4 85 % staffed", "6 92 % staffed"):
        assert label in out
    assert "definitions:" in out and "seeds 2024..2025" in out
    assert (tmp_path / "acd-report" / "index.html").exists()
    html = (tmp_path / "acd-report" / "index.html").read_text()
    assert "1 today" in html and "4 85 % staffed" in html
    assert run("demo", "--days", "1", "--no-report")[0] == 2


def test_python_dash_m():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    p = subprocess.run([sys.executable, "-m", "acd", "--help"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "simulate" in p.stdout and "staff" in p.stdout and "demo" in p.stdout
    p = subprocess.run([sys.executable, "-m", "acd", "simulate", str(HELPDESK), "--no-progress"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr


# ---------------------------------------------------------------- one coherent command (issue 16)

SUBCOMMANDS = ("simulate", "staff", "demo", "scenarios", "report", "forecast", "sweep", "roster", "serve")


def test_help_lists_every_subcommand_on_one_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run("--help")
    assert code == 0
    listed = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("    ") and words and words[0] in SUBCOMMANDS:
            listed[words[0]] = line
    assert set(listed) == set(SUBCOMMANDS), out
    lines = out.splitlines()
    for name, line in listed.items():
        assert len(line.split()) > 2, line                                  # a help text on the same line
        nxt = lines[lines.index(line) + 1]
        assert not (nxt.startswith(" " * 10) and nxt.strip()), f"{name}'s help wraps: {nxt!r}"
    assert "src/" not in out


@pytest.mark.parametrize("argv", [["simulate"], ["staff"], ["demo"], ["scenarios"], ["scenarios", "export"],
                                  ["scenarios", "list"]])
def test_every_subcommand_help_ends_with_an_example(argv, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(*argv, "--help")
    assert code == 0 and err == ""
    tail = out.rstrip().split("\n\n")[-1].splitlines()
    assert tail[0] == "example:" and all(l.startswith("  acd ") for l in tail[1:]), out
    assert "src/acd" not in out and "examples/" not in out


def test_scenarios_lists_the_bundled_ones():
    from importlib import resources
    code, out, err = run("scenarios")
    assert code == 0, err
    names = sorted(f.name[:-5] for f in resources.files("acd").joinpath("data").iterdir()
                   if f.name.endswith(".toml"))
    assert names
    for n in names:
        line = next(l for l in out.splitlines() if l.split()[:1] == [n])
        assert len(line.split()) > 3                                        # a one-line description
    assert "public_agency" in out and "5,000 calls" in out


def test_scenarios_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run("scenarios", "export", "public_agency")
    assert code == 0, err
    p = tmp_path / "public_agency.toml"
    assert p.read_text().startswith("# A public agency's peak day.")
    code, out, err = run("simulate", str(p), "--scale", "0.02", "--no-progress")
    assert code == 0, err
    # refuses to overwrite, then --force
    p.write_text("edited")
    code, out, err = run("scenarios", "export", "public_agency")
    assert code == 2 and err.count("\n") == 1 and "already exists (--force to overwrite)" in err
    assert p.read_text() == "edited"
    code, out, err = run("scenarios", "export", "public_agency", "--force")
    assert code == 0 and p.read_text().startswith("# A public")
    code, out, err = run("scenarios", "export", "public_agency", str(tmp_path / "mine.toml"))
    assert code == 0 and (tmp_path / "mine.toml").exists()
    code, out, err = run("scenarios", "export", "nope")
    assert code == 2 and "no bundled scenario named 'nope' (bundled: public_agency" in err


# ---------------------------------------------------------------- output paths

def _one_line_error(code, err, *words):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("acd: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_output_paths_are_checked_before_work(tmp_path):
    missing = tmp_path / "no" / "such" / "rep"
    _one_line_error(*run("simulate", str(HELPDESK), "--no-progress", "--report", str(missing))[::2],
                    "does not exist")
    _one_line_error(*run("scenarios", "export", "public_agency", str(missing / "x.toml"))[::2], "does not exist")
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line_error(*run("simulate", str(HELPDESK), "--no-progress", "--report", str(afile))[::2], "is a file")
    _one_line_error(*run("scenarios", "export", "public_agency", str(tmp_path))[::2], "is a directory")
    rep = tmp_path / "rep"
    assert run("simulate", str(HELPDESK), "--no-progress", "--report", str(rep))[0] == 0
    _one_line_error(*run("simulate", str(HELPDESK), "--no-progress", "--report", str(rep))[::2],
                    "already exists (--force to overwrite)")
    assert run("simulate", str(HELPDESK), "--no-progress", "--report", str(rep), "--force")[0] == 0
    _one_line_error(*run("demo", "--scale", "0.01", "--no-progress", "--report", str(rep))[::2], "already exists")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_paths(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _one_line_error(*run("simulate", str(HELPDESK), "--no-progress", "--report", str(ro / "rep"))[::2],
                        "not writable")
        _one_line_error(*run("scenarios", "export", "public_agency", str(ro / "x.toml"))[::2], "not writable")
        rep = tmp_path / "rep"
        rep.mkdir()
        (rep / "index.html").write_text("old")
        (rep / "index.html").chmod(0o400)
        _one_line_error(*run("simulate", str(HELPDESK), "--no-progress", "--report", str(rep), "--force")[::2],
                        "not writable")
    finally:
        ro.chmod(0o700)


def test_demo_rewrites_its_default_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, out, err = run("demo", "--scale", "0.01", "--no-progress")
        assert code == 0, err


# ---------------------------------------------------------------- bounds and memory, checked before work

def test_numeric_bounds_and_memory_estimate(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text(HELPDESK.read_text().replace("count = ", "count = 100000000 #", 1))
    _one_line_error(*run("simulate", str(big), "--no-progress")[::2], "agents", "limit of 100,000")
    calls = tmp_path / "calls.toml"
    calls.write_text(HELPDESK.read_text().replace("per_interval = [30,", "per_interval = [3e9,", 1))
    _one_line_error(*run("simulate", str(calls), "--no-progress")[::2], "expected calls", "limit")
    code, out, err = run("simulate", str(HELPDESK), "--scale", "1e6")
    assert code == 2 and err.count("\n") == 1 and "--scale" in err
    _one_line_error(*run("simulate", str(HELPDESK), "--scale", "100", "--max-memory", "10M", "--no-progress")[::2],
                    "24,500 expected calls", "more than the 10 MB of --max-memory")
    _one_line_error(*run("staff", "--rate", "1e9", "--aht", "3000", "--patience", "100")[::2], "erlangs",
                    "limit of 1,000,000")
    from acd.sim import load_scenario
    from acd.sim.simulator import available_memory, estimate_memory
    assert available_memory() is None or available_memory() > 0
    sc = load_scenario(HELPDESK)
    assert 400 * sc.expected_calls < estimate_memory(sc.scaled(100)) / 100 < 10 * 2 ** 20


def test_every_bundled_scenario_exports_and_runs(tmp_path):
    from acd.sim.scenario import bundled_scenarios
    names = [n for n, _ in bundled_scenarios()]
    assert {"public_agency", "small_helpdesk"} <= set(names)
    for name in names:
        path = tmp_path / f"{name}.toml"
        code, out, err = run("scenarios", "export", name, str(path))
        assert code == 0, err
        code, out, err = run("simulate", str(path), "--scale", "0.05", "--no-progress")
        assert code == 0 and "answer rate" in out, (name, err)


def test_staffing_doc_examples_are_what_acd_staff_prints(tmp_path, monkeypatch):
    """Every `$ acd staff ...` block of docs/staffing.md, run again (JSON cut at its `...`)."""
    import re
    import shlex
    doc = (ROOT / "docs" / "staffing.md").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profile.txt").write_text("# share of the day per half hour\n1\n2\n4\n4\n3\n2\n")
    calls = re.search(r"\$ cat calls.csv\n(.*?)\n\n", doc, re.S).group(1)
    (tmp_path / "calls.csv").write_text(calls + "\n")
    blocks = re.findall(r"^\$ acd staff (.*?)\n(.*?)(?=\n\n|\n```)", doc, re.S | re.M)
    assert len(blocks) >= 10
    for argv, want in blocks:
        code, out, err = run("staff", *shlex.split(argv))
        got = (out + err).rstrip("\n")
        if "\n  ...\n" in want:
            want = want.split("\n  ...\n")[0]
            got = got[:len(want)]
        assert got == want, argv
