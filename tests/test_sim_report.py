"""HTML report and SVG charts of simulation runs."""

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from acd.sim import bundled_scenario, simulate
from acd.sim.progress import ProgressBar, duration
from acd.sim.report import comparison_table, headline, interval_series, render_report, verdict, write_report
from acd.sim.svg import bar_chart, line_chart


def _parse(svg):
    return ET.fromstring(svg)   # well-formed XML


def test_line_chart_is_valid_svg_and_breaks_on_nan():
    svg = line_chart("t <&>", [0, 1, 2, 3], [("a", [1, float("nan"), 3, 4]), ("b", [0, 0, 0, 0])],
                     target=("goal", 2.5), x_ticks=[0, 2])
    root = _parse(svg)
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == 2                      # 'a' split by NaN: one polyline + one dot, 'b' one polyline
    assert len(root.findall(f"{ns}circle")) == 1
    assert "t &lt;&amp;&gt;" in svg


def test_bar_chart_is_valid_svg():
    svg = bar_chart("bars", ["08:00", "08:30", "09:00"], [("x", [1, 2, float("nan")]), ("y", [0, 5, 1])],
                    target=("limit", 3), label_every=2)
    root = _parse(svg)
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 5 + 2   # bars + legend swatches


def test_empty_inputs_do_not_crash():
    _parse(line_chart("e", [], []))
    _parse(bar_chart("e", [], []))


def test_report_single_and_comparison(tmp_path):
    sc = bundled_scenario().scaled(0.1)
    a = simulate(sc, seed=1)
    b = simulate(sc.with_callback(True), seed=1)
    html = render_report([("only", a)])
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == 5
    for s in svgs:
        _parse(s)
    assert "<script" not in html and "<link" not in html   # self-contained
    path = write_report(tmp_path / "r", [("without", a), ("with", b)], title="cmp")
    assert path.name == "index.html" and "cmp" in path.read_text()
    text = comparison_table(a, b)
    assert text.splitlines()[0].split() == ["without", "with", "difference"]
    assert "call-backs offered" in text


def test_interval_series_headline_and_verdict():
    sc = bundled_scenario().scaled(0.1)
    res = simulate(sc, seed=2)
    s = interval_series(res)
    assert len(s["offered"]) == sc.n_intervals and s["start"][0] == sc.start
    assert s["offered"].sum() == len(res.records)
    sl = s["sl_offered_excl_short"]
    assert np.all((sl >= 0) & (sl <= 1))
    h = headline(res)
    assert h["calls offered"] == len(res.records)
    assert 0 <= h["answered %"] <= 100 and 0 < h["occupancy %"] <= 100
    assert h["answered %"] + h["abandoned % (excl. short)"] <= 100 + 1e-9
    v = verdict(res)
    assert v.startswith("answer rate ") and "target 85 %" in v and "within 60 s (target 80 %)" in v


def test_durations_read_naturally():
    assert [duration(x) for x in (0.04, 59.9, 125, 3725)] == ["0.0 s", "59.9 s", "2 min 05 s", "1 h 02 min"]


def test_progress_bar_plain_and_tty():
    import io

    class TTY(io.StringIO):
        def isatty(self):
            return True

    s = io.StringIO()
    p = ProgressBar("run", stream=s)
    for f in (0, 0.1, 0.3, 0.6, 0.99, 1.0, 1.0):
        p(f)
    lines = s.getvalue().splitlines()
    assert [l.split(" (")[0] for l in lines] == ["run: 0%", "run: 25%", "run: 50%", "run: 75%", "run: 100%"]
    assert all(l.endswith(" s)") for l in lines), lines          # elapsed time on every line
    t = TTY()
    p = ProgressBar("run", stream=t, min_interval=0, total=1000)
    assert t.getvalue().startswith("\rrun [") and "starting" in t.getvalue()   # drawn before the first step
    p._t0 -= 10.0  # as if 10 s had passed
    p(0.5)
    assert "ETA 10." in t.getvalue() and "~50 calls/s" in t.getvalue()
    p(1.0)
    assert "100.0%" in t.getvalue() and t.getvalue().endswith("\n") and "~100 calls/s" in t.getvalue()
    w = TTY()
    p = ProgressBar("run", stream=w)
    p._draw(0.1, 0.0, "x" * 40)
    p._draw(0.2, 0.0, "short")
    first, second = w.getvalue().split("\r")[2:]
    assert len(second) == len(first) and second.rstrip().endswith("short")  # a shorter line wipes the longer
    q = io.StringIO()
    ProgressBar("x", stream=q, enabled=False)(0.5)
    assert q.getvalue() == ""
