"""The ``acd`` command: simulate, staff, demo (smoke tests on small inputs)."""

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from acd.cli import main

ROOT = Path(__file__).resolve().parents[1]
HELPDESK = ROOT / "examples" / "scenarios" / "small_helpdesk.toml"


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
    with pytest.raises(SystemExit) as e:
        run("simulate", str(HELPDESK), "--seed", "-4")
    assert e.value.code == 2


def test_staff_from_rates():
    code, out, err = run("staff", "--rate", "300", "600", "900", "--aht", "300", "--patience", "180",
                         "--start", "09:00", "--sl", "0.8", "20", "--answer-rate", "0.9")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("targets: 80 % answered within 20 s, answer rate >= 90 %")
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
    assert code == 2 and "either a FORECAST.toml file or --rate" in err
    code, out, err = run("staff", "--rate", "100")
    assert code == 2 and "--rate needs --aht" in err
    code, out, err = run("staff", "--rate", "100", "--aht", "300", "--answer-rate", "0.9")
    assert code == 2 and "--answer-rate needs --patience" in err
    code, out, err = run("staff", str(ROOT / "examples" / "scenarios" / "forecast.toml"))
    assert code == 0 and "appointments (aht 240 s, erlang C)" in out


def test_demo_small(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run("demo", "--scale", "0.1", "--no-progress")
    assert code == 0, err
    assert "staffing recommended by `acd staff`" in out
    assert "== without call-back offers" in out and "== with call-back offers" in out
    assert "== difference (with - without)" in out
    assert (tmp_path / "acd-report" / "index.html").exists()
    html = (tmp_path / "acd-report" / "index.html").read_text()
    assert "Staffing (Erlang)" in html and "with call-backs" in html


def test_python_dash_m():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    p = subprocess.run([sys.executable, "-m", "acd", "--help"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "simulate" in p.stdout and "staff" in p.stdout and "demo" in p.stdout
    p = subprocess.run([sys.executable, "-m", "acd", "simulate", str(HELPDESK), "--no-progress"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
