"""Rosters (issue 13 part 5): every interval's requirement is covered, at the least cost.

Coverage is checked from the roster's own shift list (start, end, breaks rounded to the grid), not
from the numbers the solver reports; optimality against a brute-force enumeration of counts."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from acd.cli import main
from acd.errors import InvalidInput
from acd.planning.roster import (DEFAULT_SHIFTS, Break, Requirement, ShiftType, load_shifts, read_requirements,
                                 requirements_from_text, shifts_from_dict, solve_roster)

DATA = Path(__file__).parent / "data" / "roster"
H, M30 = 3600, 1800


def coverage_of(roster) -> list:
    """Agents working per interval, recomputed from the shift list: on site from start to end, away
    for every interval a break touches (a 15-min break on a 30-min grid takes the whole interval)."""
    req = roster.requirement
    cov = [0] * len(req.need)
    for s in roster.shifts:
        for i in range(len(req.need)):
            a, b = req.start + i * req.interval, req.start + (i + 1) * req.interval
            on_site = s.start <= a and b <= s.end
            on_break = any(bs < b and a < be for _, bs, be, _ in s.breaks)
            if on_site and not on_break:
                cov[i] += s.count
    return cov


def assert_covers(roster) -> None:
    cov = coverage_of(roster)
    assert list(roster.rostered) == cov
    for i, (need, got) in enumerate(zip(roster.requirement.need, cov)):
        assert got >= need, f"interval {roster.requirement.label(i)}: {got} < {need}"
    assert roster.paid_hours == pytest.approx(sum(s.count * s.paid_hours for s in roster.shifts))


def shifts(text: str):
    return shifts_from_dict(tomllib.loads(textwrap.dedent(text)))


# ---------------------------------------------------------------- coverage

def test_a_day_with_the_default_shifts_is_covered_with_little_surplus():
    need = (20, 30, 45, 60, 75, 85, 90, 88, 80, 70, 72, 80, 85, 82, 75, 65, 55, 45, 35, 25)
    r = solve_roster(Requirement(8 * H, M30, need), mip_gap=0.0)
    assert_covers(r)
    assert r.status == "optimal"
    assert r.required_hours == sum(need) / 2
    # a lower bound no roster can beat: the peak needs its agents, each paid at least 4 h
    assert r.paid_hours >= max(need) * 4
    assert r.paid_hours < 1.15 * r.required_hours, "the optimum should waste little on this smooth day"
    assert r.efficiency == pytest.approx(r.required_hours / r.rostered_hours)
    assert r.over_coverage_hours == pytest.approx(r.rostered_hours - r.required_hours)


def test_the_shift_file_with_a_range_of_starts_a_max_and_a_short_break():
    req = read_requirements(DATA / "staff.csv")
    types = load_shifts(DATA / "shifts.toml")
    r = solve_roster(req, types, mip_gap=0.0)
    assert_covers(r)
    assert sum(s.count for s in r.shifts if s.kind == "part") <= 6
    for s in r.shifts:
        if s.kind == "part":
            (_, bs, be, paid), = s.breaks
            assert be - bs == 15 * 60 and paid and s.paid_hours == 4.0 and s.cost == 4.2
            assert (bs - req.start) % req.interval == 0, "a break starts on the grid"


@settings(max_examples=30, deadline=None)
@given(quarter=st.booleans(), data=st.data())
def test_random_requirements_are_always_covered(quarter, data):
    # at least 4 h (the default part-time shift must fit), up to 10 h
    iv = 900 if quarter else M30
    n = 4 * H // iv
    need = data.draw(st.lists(st.integers(0, 40), min_size=n, max_size=int(2.5 * n)), label="need")
    r = solve_roster(Requirement(7 * H, iv, tuple(need)), DEFAULT_SHIFTS, time_limit=20)
    assert_covers(r)


# ---------------------------------------------------------------- optimality

# tiny instance: 5 intervals from 08:00; "a" is 1 h; "b" is 1h30m on site with a 30-min unpaid break
# at +30m or +1h, and costs 0.9 -- built here by hand, not by the module
TINY = shifts("""
    [[shift]]
    name = "a"
    length = "1h"
    [[shift]]
    name = "b"
    length = "1h30m"
    cost = 0.9
    [[shift.break]]
    length = "30m"
    window = ["30m", "1h30m"]
""")
TINY_COLUMNS = ([({i, i + 1}, 1.0) for i in range(4)]                     # a from 08:00 .. 09:30
                + [({i, i + 2}, 0.9) for i in range(3)]                   # b, break at +30m
                + [({i, i + 1}, 0.9) for i in range(3)])                  # b, break at +1h


def brute_force(need) -> float:
    top = max(need)
    A = np.array([[1 if t in cols else 0 for cols, _ in TINY_COLUMNS] for t in range(len(need))])
    cost = np.array([c for _, c in TINY_COLUMNS])
    counts = np.array(list(itertools.product(range(top + 1), repeat=len(TINY_COLUMNS))))
    ok = (counts @ A.T >= np.array(need)).all(axis=1)
    return float((counts[ok] @ cost).min())


@settings(max_examples=15, deadline=None)
@given(need=st.lists(st.integers(0, 2), min_size=5, max_size=5).filter(any))
def test_the_roster_is_as_cheap_as_brute_force_finds(need):
    r = solve_roster(Requirement(8 * H, M30, tuple(need)), TINY, mip_gap=0.0)
    assert r.n_patterns == len(TINY_COLUMNS)
    assert_covers(r)
    assert r.objective == pytest.approx(brute_force(need))


def test_brute_force_itself_prices_a_known_case():
    # one agent in every interval: b (break at +30m) at 08:00 covers 0 and 2, at 09:00 covers 2 and 4;
    # intervals 1 and 3 remain: b at 08:30 (0.9) covers 1 and 3 -- three b = 2.7
    assert brute_force([1, 1, 1, 1, 1]) == pytest.approx(2.7)
    r = solve_roster(Requirement(8 * H, M30, (1, 1, 1, 1, 1)), TINY, mip_gap=0.0)
    assert r.objective == pytest.approx(2.7) and r.paid_hours == pytest.approx(3.0)


def test_stopped_early_the_rounded_lp_still_covers_everything_and_is_trimmed(monkeypatch):
    # HiGHS out of time without an incumbent: the LP relaxation, rounded and repaired, is the roster
    import scipy.optimize
    from scipy.optimize import OptimizeResult
    real = scipy.optimize.milp

    def no_time(c, *, integrality=None, **kw):
        if integrality is not None and np.any(integrality):
            return OptimizeResult(status=1, x=None, mip_dual_bound=None, message="time limit reached")
        return real(c, integrality=integrality, **kw)

    monkeypatch.setattr(scipy.optimize, "milp", no_time)
    for need in ([1, 2, 2, 1, 1], [2, 0, 2, 1, 2], [1, 1, 1, 1, 1]):
        r = solve_roster(Requirement(8 * H, M30, tuple(need)), TINY)
        assert_covers(r)
        assert r.status.startswith("time limit reached")
        best = brute_force(need)
        assert r.bound <= best + 1e-9 <= r.objective + 2e-9
        assert r.mip_gap == pytest.approx((r.objective - r.bound) / r.objective)
        # trimmed: no single shift can go without leaving an interval short
        cov = coverage_of(r)
        for s in r.shifts:
            lost = [1 if s.start <= 8 * H + i * M30 and 8 * H + (i + 1) * M30 <= s.end
                    and not any(bs < 8 * H + (i + 1) * M30 and 8 * H + i * M30 < be for _, bs, be, _ in s.breaks)
                    else 0 for i in range(5)]
            assert any(c - l < n for c, l, n in zip(cov, lost, need))
    # the max and min counts hold in the fallback too
    types = (ShiftType("long", 2 * H, max_count=2), ShiftType("short", H), ShiftType("new", H, min_count=1, cost=5.0))
    r = solve_roster(Requirement(8 * H, M30, (3, 3, 4, 4, 3, 3)), types)
    assert_covers(r)
    counts = {k: sum(s.count for s in r.shifts if s.kind == k) for k in ("long", "short", "new")}
    assert counts["long"] <= 2 and counts["new"] >= 1


# ---------------------------------------------------------------- breaks

def test_lunches_are_staggered_when_they_bind():
    # 10 agents all morning; one 4h shift at 08:00 with a 30-min lunch at +1h..+3h: lunches on one slot would
    # leave that slot 10 short, so 14 agents with lunches spread over the 4 slots (at most 4 per slot)
    types = shifts("""
        [[shift]]
        name = "morning"
        length = "4h"
        starts = ["08:00"]
        [[shift.break]]
        name = "lunch"
        length = "30m"
        window = ["1h", "3h"]
    """)
    r = solve_roster(Requirement(8 * H, M30, (10,) * 8), types, mip_gap=0.0)
    assert_covers(r)
    assert r.agents == 14
    lunches = {s.breaks[0][1]: s.count for s in r.shifts}
    assert len(lunches) == 4 and max(lunches.values()) <= 4
    assert r.paid_hours == pytest.approx(14 * 3.5)


def test_a_15_minute_break_on_a_15_minute_grid_has_two_places():
    types15 = shifts("""
        [[shift]]
        name = "s"
        length = "2h"
        starts = ["08:00"]
        [[shift.break]]
        length = "15m"
        window = ["30m", "1h"]
        paid = true
    """)
    r15 = solve_roster(Requirement(8 * H, 900, (3,) * 8), types15, mip_gap=0.0)
    assert_covers(r15)
    assert r15.agents == 6 and r15.paid_hours == 12.0    # two breaks a quarter apart, 3 + 3 agents


def test_a_break_nobody_can_cover_on_the_30_minute_grid_is_named():
    types = shifts("""
        [[shift]]
        name = "s"
        length = "2h"
        starts = ["08:00"]
        [[shift.break]]
        length = "15m"
        window = ["30m", "1h"]
    """)
    with pytest.raises(InvalidInput, match=r"interval 08:30-09:00 needs 3 agents but no shift works then"):
        solve_roster(Requirement(8 * H, M30, (3, 3, 3, 3)), types)


# ---------------------------------------------------------------- infeasible

def test_an_interval_no_shift_covers_is_named():
    types = (ShiftType("late", 2 * H, starts=(9 * H,)),)
    with pytest.raises(InvalidInput, match=r"interval 08:00-08:30 needs 5 agents but no shift works then"):
        solve_roster(Requirement(8 * H, M30, (5, 0, 1, 1, 1, 1)), types)


def test_max_counts_too_low_for_one_interval():
    types = (ShiftType("s", 2 * H, max_count=3),)
    with pytest.raises(InvalidInput, match=r"interval 08:30-09:00 needs 5 agents but the shifts' max counts "
                                           r"allow at most 3"):
        solve_roster(Requirement(8 * H, M30, (2, 5, 1, 1)), types)


def test_max_counts_too_low_for_the_day_together():
    # 5 at 08:00 and 5 at 16:00: each interval alone is coverable, but an 8h shift covers one of them
    need = [5] + [0] * 15 + [5]
    types = (ShiftType("s", 8 * H, max_count=5),)
    with pytest.raises(InvalidInput, match="cannot be met within the shifts' min/max counts"):
        solve_roster(Requirement(8 * H, M30, tuple(need)), types)


def test_requirement_checks_its_numbers():
    assert Requirement(8 * H, M30, np.array([1, 2])).need == (1, 2)
    with pytest.raises(InvalidInput, match=r"need must be integers >= 0, got \(1, -2\)"):
        Requirement(8 * H, M30, (1, -2))
    with pytest.raises(InvalidInput, match=r"interval must be a whole number of minutes, got 90 s"):
        Requirement(8 * H, 90, (1,))
    with pytest.raises(InvalidInput, match=r"runs 23:00-24:30: a roster covers one day"):
        Requirement(23 * H, M30, (1, 1, 1))


def test_nothing_needed_gives_the_empty_roster():
    r = solve_roster(Requirement(8 * H, M30, (0, 0)))
    assert r.shifts == () and r.paid_hours == 0 and r.efficiency == 1.0


def test_min_counts_are_honoured_even_when_not_needed():
    types = (ShiftType("s", 2 * H), ShiftType("trainee", 2 * H, min_count=2, cost=10.0))
    r = solve_roster(Requirement(8 * H, M30, (1, 1, 1, 1)), types, mip_gap=0.0)
    assert_covers(r)
    assert sum(s.count for s in r.shifts if s.kind == "trainee") == 2


# ---------------------------------------------------------------- bad shift files

@pytest.mark.parametrize("text, match", [
    ('[[shift]]\nname = "a"\nlength = "4h"\ncolour = "red"', r"shift\[0\] \(a\): unknown key 'colour'"),
    ('[[shift]]\nname = "a"\nlength = "4h"\n[[shift.break]]\nlength = "30m"\nwindow = ["3h", "5h"]',
     r"shift\[0\] \(a\)\.break\[0\]\.window \['3h', '5h'\] is outside the shift"),
    ('[[shift]]\nname = "a"\nlength = "4h"\n[[shift.break]]\nlength = "30m"\nwindw = ["1h", "2h"]',
     r"break\[0\]: unknown key 'windw'"),
    ('[[shift]]\nname = "a"\nlength = 240', r"shift\[0\] \(a\)\.length must be a duration .* got 240"),
    ('[[shift]]\nname = "a"\nlength = "4h"\nstarts = ["8:61"]', r"starts must be a time .* got '8:61'"),
    ('[[shift]]\nname = "n"\nlength = "8h"\nstarts = ["22:00"]', r"'22:00' \+ length 8h ends after midnight"),
    ('[[shift]]\nname = "a"\nlength = "4h"\nmin = 3\nmax = 2', r"max 2 is below min 3"),
    ('[[shift]]\nname = "a"\nlength = "4h"\n[[shift]]\nname = "a"\nlength = "2h"', r"name 'a' is used twice"),
    ('shifts = []', r"unknown key 'shifts'"),
    ('', r"s.toml.shift is missing"),
])
def test_bad_shift_files_name_the_field_and_value(tmp_path, text, match):
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(InvalidInput, match=match):
        load_shifts(p)


def test_too_many_break_placements_are_refused_before_enumerating_them():
    # four 15-min breaks anywhere in 24 h on a 15-min grid: about 95 ** 4 placements
    brk = "".join(f'[[shift.break]]\nlength = "15m"\n' for _ in range(4))
    types = shifts(f'[[shift]]\nname = "day"\nlength = "24h"\nstarts = ["00:00"]\n{brk}')
    with pytest.raises(InvalidInput, match=r"shift 'day': its break windows allow 84,934,656 placements"):
        solve_roster(Requirement(0, 900, (1,) * 96), types)


def test_a_start_off_the_grid_is_refused():
    types = shifts('[[shift]]\nname = "a"\nlength = "2h"\nstarts = ["08:10"]')
    with pytest.raises(InvalidInput, match=r"shift 'a': start '08:10' is not on the 30m grid"):
        solve_roster(Requirement(8 * H, M30, (1, 1, 1, 1, 1, 1)), types)


def test_a_length_off_the_grid_is_refused():
    types = shifts('[[shift]]\nname = "a"\nlength = "2h15m"')
    with pytest.raises(InvalidInput, match=r"shift 'a': length '2h15m' is not a multiple of the interval 30m"):
        solve_roster(Requirement(8 * H, M30, (1, 1, 1, 1, 1, 1)), types)
    # on a 15-min grid the same shift is fine
    assert_covers(solve_roster(Requirement(8 * H, 900, (1,) * 12), types))


# ---------------------------------------------------------------- reading requirements

def test_staff_csv_sums_the_lines_and_covers_scheduled():
    req = read_requirements(DATA / "staff.csv")
    assert (req.start, req.end, req.interval, req.source) == (8 * H, 18 * H, M30, "scheduled")
    assert req.need[:6] == (14, 17, 25, 33, 39, 44) and req.need[-1] == 13
    assert read_requirements(DATA / "staff.csv", need="agents").need[:6] == (11, 14, 20, 27, 33, 36)
    assert read_requirements(DATA / "staff.csv", line="support").need[:6] == (5, 6, 9, 11, 13, 15)
    with pytest.raises(InvalidInput, match=r"line 'billing' is not in .* \(lines: \['sales', 'support'\]\)"):
        read_requirements(DATA / "staff.csv", line="billing")


def test_staff_json_up_to_midnight_rounds_fractional_sums_up():
    req = read_requirements(DATA / "staff.json")
    assert (req.start, req.end, req.interval) == (21 * H, 24 * H, M30)
    assert req.need == (6, 5, 4, 4, 3, 4)           # 4.5 + 1.5 = 6 exactly; 3.4 -> 4; 2.3 + 1.5 -> 4
    assert read_requirements(DATA / "staff.json", need="agents", line="vip").need == (1, 0, 0, 0, 0, 1)
    r = solve_roster(req, (ShiftType("eve", 3 * H), ShiftType("short", H)), mip_gap=0.0)
    assert_covers(r)
    assert max(s.end for s in r.shifts) <= 24 * H


def test_minimal_csv_with_a_gap():
    req = read_requirements(DATA / "minimal.csv")
    assert (req.start, req.interval, req.source) == (8 * H, M30, "agents")
    assert req.need == (2, 3, 5, 5, 4, 0, 1, 1)     # 10:30 is missing: nobody needed
    with pytest.raises(InvalidInput, match="has no 'scheduled' column"):
        read_requirements(DATA / "minimal.csv", need="scheduled")


@pytest.mark.parametrize("text, match", [
    ("start,end,agents\n08:00,08:30,2\n08:30,09:15,1\n", r"intervals of different lengths \['30m', '45m'\]"),
    ("start,agents\n08:00,-1\n08:30,1\n", r"row 1 agents must be a finite number >= 0, got '-1'"),
    ("start,agents\n08:00,x\n08:30,1\n", r"row 1 agents must be a number, got 'x'"),
    ("start,agents\n08:00,1\n", r"one row and no 'end'"),
    ("begin,agents\n08:00,1\n", r"needs a 'start' column"),
    ("start,end,agents\n23:30,00:30,1\n", r"end '00:30' is not after start '23:30' .* wrap past midnight"),
    ('{"rows": 3}', r"JSON needs a 'rows' list"),
    ('{"interval": 900, "rows": [{"start": "08:00", "end": "08:30", "agents": 1}]}', r"interval .* disagree"),
])
def test_bad_requirements_are_refused(text, match):
    with pytest.raises(InvalidInput, match=match):
        requirements_from_text(text)


def test_an_uneven_grid_is_refused():
    with pytest.raises(InvalidInput, match=r"start '09:15' is not on the 30m grid from 08:00"):
        requirements_from_text("start,agents\n08:00,2\n08:30,3\n09:15,1\n")


# ---------------------------------------------------------------- CLI

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_json_covers_every_interval():
    code, out, err = run("roster", str(DATA / "staff.csv"), "--shifts", str(DATA / "shifts.toml"), "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["interval"] == M30 and d["covers"] == "scheduled"
    assert [r["required"] for r in d["intervals"]][:6] == [14, 17, 25, 33, 39, 44]
    assert all(r["rostered"] >= r["required"] and r["surplus"] == r["rostered"] - r["required"] for r in d["intervals"])
    assert d["totals"]["paid_hours"] == pytest.approx(sum(s["count"] * s["paid_hours"] for s in d["shifts"]))
    assert d["totals"]["status"] == "optimal"


def test_cli_table_and_csv(tmp_path):
    code, out, err = run("roster", str(DATA / "minimal.csv"))
    assert code == 0, err
    assert "roster covering agents (30m intervals, 08:00-12:00): optimal" in out and "efficiency" in out
    evening = tmp_path / "evening.toml"
    evening.write_text('[[shift]]\nname = "eve"\nlength = "3h"\n[[shift]]\nname = "short"\nlength = "1h30m"\n')
    code, out, err = run("roster", str(DATA / "staff.json"), "--line", "night", "--need", "agents", "--format", "csv",
                         "--shifts", str(evening))
    assert code == 0, err
    sections = out.split("\n\n")
    assert [s.splitlines()[0] for s in sections] == ["# shifts", "# intervals", "# totals"]
    assert sections[1].splitlines()[1] == "start,end,required,rostered,surplus"
    assert sections[1].splitlines()[2].startswith("21:00,21:30,4,")


def test_cli_errors_are_one_line():
    code, out, err = run("roster", str(DATA / "minimal.csv"), "--shifts", str(DATA / "nope.toml"))
    assert code == 2 and err.startswith("acd: error: cannot read shift file") and out == ""
    code, out, err = run("roster", str(DATA / "staff.csv"), "--time-limit", "0")
    assert code == 2 and "--time-limit" in err


def test_import_acd_does_not_load_the_planning_package_and_scipy_waits_for_a_solve():
    code = """
        import sys
        import acd, acd.cli
        acd.cli.build_parser()
        assert "acd.planning" not in sys.modules and "scipy" not in sys.modules
        import acd.planning.roster
        assert "scipy" not in sys.modules
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
