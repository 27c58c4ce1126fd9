"""``acd forecast``: history readers, the level x profile model, its back-test, and the files it writes.

The model is checked on synthetic history of known weekly seasonality and
intraday profiles (Poisson counts, fixed seed): its back-test WAPE must stay
close to the Poisson floor of the true rates -- what even a forecast knowing
them would miss -- and a forecast blind to the weekday must not."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from acd.cli import main as acd_main
from acd.errors import InvalidInput
from acd.planning import forecast as F
from acd.sim.plan import load_forecast
from acd.sim.scenario import load_scenario

SLOTS = 48                                    # 30-minute intervals
MONDAY = dt.date(2026, 9, 7)


def _profile(start, weights):
    p = np.zeros(SLOTS)
    p[start:start + len(weights)] = weights
    return p / p.sum()


WEEKDAY_PROFILE = _profile(17, [4, 8, 10, 10.5, 10, 9, 7, 5, 4, 4, 5.5, 6, 5.5, 5, 4.5, 3.5, 2.5])  # 08:30-17:00
FRIDAY_PROFILE = _profile(16, [6, 9, 10, 10, 9, 8, 6, 4, 3, 3, 3, 2])                              # 08:00-14:00
SATURDAY_PROFILE = _profile(18, [2, 4, 6, 6, 5, 4, 3, 2])                                          # 09:00-13:00
#: calls per day, Monday first; closed on Sundays
LEVELS = {"sales": np.array([900, 700, 650, 620, 560, 240, 0.0]),
          "support": np.array([400, 380, 360, 350, 300, 0, 0.0])}
AHT = {"sales": 240.0, "support": 420.0}


def true_rates(n_days):
    """(lines, days, slots): the expected calls of every interval."""
    out = np.zeros((len(LEVELS), n_days, SLOTS))
    for d in range(n_days):
        w = (MONDAY + dt.timedelta(days=d)).weekday()
        prof = FRIDAY_PROFILE if w == 4 else SATURDAY_PROFILE if w == 5 else WEEKDAY_PROFILE
        for k, lv in enumerate(LEVELS.values()):
            out[k, d] = lv[w] * prof
    return out


def synthetic(n_days, seed=13):
    """Poisson arrivals of the true rates, uniform within each interval (UTC), with handle times,
    waits and abandons of known means."""
    rng = np.random.default_rng(seed)
    rates = true_rates(n_days)
    counts = rng.poisson(rates)
    base = dt.datetime(MONDAY.year, MONDAY.month, MONDAY.day, tzinfo=dt.timezone.utc).timestamp()
    k, d, s = np.nonzero(counts)
    reps = counts[k, d, s]
    line = np.repeat(k, reps)
    t = np.repeat(base + d * 86400.0 + s * 1800.0, reps) + rng.uniform(0, 1800, reps.sum())
    n = len(t)
    abandoned = rng.random(n) < 0.08
    handle = np.where(abandoned, np.nan, rng.exponential(np.array(list(AHT.values()))[line]))
    wait = rng.exponential(30.0, n)
    hist = F.History("synthetic", "csv", tuple(LEVELS), t, line, handle, wait, abandoned)
    return hist, counts, rates


@pytest.fixture(scope="module")
def twelve_weeks():
    return synthetic(84)


def weekday_blind(counts, n_fit, holdout):
    """The wrong model: every day the mean day of the fit, with the mean profile."""
    fit = counts.calls[:, :n_fit]
    mean_day = fit.mean(axis=1)                       # (lines, slots)
    return np.repeat(mean_day[:, None, :], holdout, axis=1)


# ---------------------------------------------------------------- the model

def test_backtest_reaches_the_poisson_floor_and_a_weekday_blind_model_does_not(twelve_weeks):
    hist, _, rates = twelve_weeks
    counts = F.count_arrivals(hist, tz="UTC")
    assert counts.first_day == MONDAY and counts.calls.shape == (2, 83, SLOTS)   # the last Sunday had no call
    bt = F.backtest(counts, 14)
    truth = rates[:, 83 - 14:83]
    actual = bt.actual.sum()
    true_floor = F._poisson_mad(truth).sum() / actual
    true_daily_floor = F._poisson_mad(truth.sum(axis=2)).sum() / actual
    # the stated floor (from the forecast) is that of the true rates, give or take the forecast's error
    assert bt.floor == pytest.approx(true_floor, rel=0.05)
    # what the method states: per interval, within 15 % of the floor (profile and level estimated from
    # ten weeks add a little to the noise); daily totals within twice theirs
    assert bt.wape <= 1.15 * true_floor, (bt.wape, true_floor)
    assert bt.daily_wape <= 2.0 * true_daily_floor, (bt.daily_wape, true_daily_floor)
    assert all("Holt-Winters" in m for m in bt.methods)
    # the same bounds reject a model that ignores the weekday
    blind = weekday_blind(counts, 83 - 14, 14)
    assert F._wape(bt.actual, blind) > 1.5 * true_floor
    assert F._wape(bt.actual.sum(axis=2), blind.sum(axis=2)) > 3.0 * true_daily_floor
    # per interval of the day: each open interval near its own floor, closed ones empty
    a, f, w, floor = bt.per_slot()
    open_ = a > 0
    assert (f[~open_] == 0).all() and open_.sum() == 34 - 16     # 08:00 (Fridays) to 17:00
    assert np.nanmax(w / floor) < 2.0
    table = bt.table()
    assert "WAPE" in table and "floor" in table and "08:30" in table


def test_the_forecast_recovers_levels_and_profiles(twelve_weeks):
    hist, _, _ = twelve_weeks
    for day, prof in (("mon", WEEKDAY_PROFILE), ("fri", FRIDAY_PROFILE), ("sat", SATURDAY_PROFILE)):
        fc = F.forecast_day(hist, weekday=day, tz="UTC", holdout=0)
        w = F.WEEKDAYS.index(day)
        assert fc.date.weekday() == w and fc.date > dt.date(2026, 11, 28)
        for ln in fc.lines:
            true_level = LEVELS[ln.name][w]
            if true_level == 0:
                assert ln.level < 5                   # support is closed on Saturdays
                continue
            # about 12 days of each weekday: the level's sd is ~ sqrt(level / 12), 1 % here
            assert ln.level == pytest.approx(true_level, rel=0.05), (day, ln.name)
            shares = np.array(ln.calls) / ln.level
            sd = np.sqrt(prof * (1 - prof) / (12 * true_level))
            assert np.all(np.abs(shares - prof) <= 5 * sd + 1e-9), (day, ln.name)
            assert ln.aht == pytest.approx(AHT[ln.name], rel=0.05)
            # exponential waits of mean 30 s, 8 % abandons: patience = exposure / abandons ~ 30 / 0.08
            assert ln.patience == pytest.approx(30 / 0.08, rel=0.1)
        span = np.flatnonzero(prof)
        assert (fc.first_slot, fc.end_slot) == (span[0], span[-1] + 1)


def test_short_history_uses_the_seasonal_mean():
    hist, _, rates = synthetic(21, seed=5)
    counts = F.count_arrivals(hist, tz="UTC")
    bt = F.backtest(counts, 7)
    assert all(m.startswith("seasonal mean") for m in bt.methods)
    truth = rates[:, 14:20]
    floor = F._poisson_mad(truth).sum() / bt.actual.sum()
    assert bt.wape <= 1.3 * floor              # two weeks of profiles: a little more estimation noise


def test_local_intervals_follow_the_time_zone_across_daylight_saving():
    # calls at 09:10 Paris time every day around the end of summer time (2026-10-25)
    paris = __import__("zoneinfo").ZoneInfo("Europe/Paris")
    days = [dt.date(2026, 10, 19) + dt.timedelta(days=d) for d in range(14)]
    t = np.array([dt.datetime(d.year, d.month, d.day, 9, 10, tzinfo=paris).timestamp() for d in days])
    hist = F.History("x", "csv", ("q",), t, np.zeros(14, dtype=int), np.full(14, np.nan), np.full(14, np.nan),
                     np.zeros(14, dtype=bool))
    c = F.count_arrivals(hist, tz="Europe/Paris")
    assert c.first_day == days[0] and (c.calls[0, :, 18] == 1).all() and c.calls.sum() == 14
    utc = F.count_arrivals(hist, tz="UTC")         # 07:10 UTC in summer, 08:10 in winter
    assert utc.calls[0, :6, 14].sum() == 6 and utc.calls[0, 7:, 16].sum() == 7
    with pytest.raises(InvalidInput, match="--tz .*'Mars/Olympus'"):
        F.count_arrivals(hist, tz="Mars/Olympus")
    with pytest.raises(InvalidInput, match="--interval .*divide a day"):
        F.count_arrivals(hist, interval=7 * 60.0)


# ---------------------------------------------------------------- readers

def test_csv_reader_round_trips(tmp_path):
    p = tmp_path / "calls.csv"
    p.write_text("time,queue,handle,abandoned,wait\n"
                 "2026-11-02T08:05:00Z,sales,300,0,20\n"
                 "2026-11-02T09:05:00+01:00,sales,,1,60\n"         # 08:05 UTC
                 "1793606700,support,200,false,\n"                  # 2026-11-02 08:05 UTC
                 "\n"
                 "2026-11-03 10:00,support,400,no,10\n", encoding="utf-8")
    h = F.read_history(str(p))
    assert h.kind == "csv" and h.lines == ("sales", "support")
    want = dt.datetime(2026, 11, 2, 8, 5, tzinfo=dt.timezone.utc).timestamp()
    assert h.time[:3].tolist() == [want] * 3
    assert h.time[3] == dt.datetime(2026, 11, 3, 10, tzinfo=dt.timezone.utc).timestamp()
    assert h.abandoned.tolist() == [False, True, False, False]
    assert h.line_stats("sales") == (300.0, 80.0)            # 80 s waited, one abandon
    assert h.line_stats("support") == (300.0, None)          # nobody abandoned: no patience
    p2 = tmp_path / "times.csv"
    p2.write_text("time\n1793613900\n1793613960\n")
    h2 = F.read_csv_history(str(p2))
    assert h2.lines == ("all",) and len(h2) == 2 and h2.line_stats("all") == (None, None)


def write_queue_log(path):
    from acd.adapters.asterisk.queue_log import format_line
    t0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc).timestamp()
    lines = [format_line(t0 - 60, "NONE", "sales", "alice", "ADDMEMBER", "")]
    for d in range(8):
        t = t0 + d * 86400
        lines += [format_line(t, f"c{d}a", "sales", "NONE", "ENTERQUEUE", "", "0100", "1"),
                  format_line(t + 10, f"c{d}a", "sales", "alice", "CONNECT", "10", "u1", "2"),
                  format_line(t + 190, f"c{d}a", "sales", "alice", "COMPLETECALLER", "10", "180", "1"),
                  format_line(t + 1800, f"c{d}b", "billing", "NONE", "ENTERQUEUE", "", "0101", "1"),
                  format_line(t + 1850, f"c{d}b", "billing", "NONE", "ABANDON", "1", "1", "50")]
    path.write_text("".join(lines) + "garbage line\n", encoding="utf-8")


def test_queue_log_reader_round_trips(tmp_path):
    p = tmp_path / "queue_log"
    write_queue_log(p)
    h = F.read_history(str(p))
    assert h.kind == "queue_log" and h.lines == ("sales", "billing") and len(h) == 16
    assert h.time[0] == dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc).timestamp()
    assert h.line_stats("sales") == (180.0, None)            # talk time; nobody abandoned
    assert h.line_stats("billing") == (None, 50.0)           # 50 s waited, abandoned
    assert any("wrap-up" in n for n in h.notes) and any("passed over" in n for n in h.notes)
    c = F.count_arrivals(h, tz="UTC")
    assert c.calls[0, :, 18].sum() == 8 and c.calls[1, :, 19].sum() == 8     # 09:00 and 09:30


def write_journal(path, days=10):
    from acd import Queue
    from acd.journal import JournaledEngine, SqliteJournal
    je = JournaledEngine(SqliteJournal(str(path), sync="normal"))
    midnight = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc).timestamp()
    je.note("clock", {"engine": 0.0, "unix": midnight})        # engine second 0 is that midnight
    je.add_queue(Queue("sales", wrap_up=30))
    je.add_queue(Queue("billing"))
    je.login("alice", {}, 9 * 3600.0)           # available from then
    n = 0
    for d in range(days):
        t = d * 86400.0 + 9 * 3600.0
        if d:
            je.ready("alice", t)
        for k in range(3):                      # three sales calls answered after 5 s, 120 s of talk
            n += 1
            je.enqueue(f"s{n}", "sales", t + k * 600)
            je.answer(f"s{n}", t + k * 600 + 5)
            je.complete(f"s{n}", t + k * 600 + 125)
            je.advance(t + k * 600 + 160)        # the wrap-up ends
        je.pause("alice", t + 2000)
        je.enqueue(f"b{d}", "billing", t + 3600)  # nobody there: abandons after 40 s
        je.abandon(f"b{d}", t + 3640)
        je.ready("alice", t + 3700)
        je.pause("alice", t + 3800)
    je.close()


def test_journal_reader_round_trips(tmp_path):
    p = tmp_path / "journal.sqlite3"
    write_journal(p)
    h = F.read_history(str(p))
    assert h.kind == "journal" and h.lines == ("sales", "billing") and len(h) == 40
    assert h.time[0] == dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc).timestamp()
    assert h.line_stats("sales") == (150.0, None)             # 120 s talk + 30 s wrap-up
    assert h.line_stats("billing") == (None, 40.0)
    fc = F.forecast_day(h, tz="UTC", holdout=3, for_date="2026-11-13")
    assert [ln.level for ln in fc.lines] == pytest.approx([3.0, 1.0])
    assert fc.backtest.wape == 0.0                            # the same calls every day


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("text, match", [
    ("time,queue,colour\n1793613900,a,red\n", "unknown column 'colour'"),
    ("", "is empty"),
    ("queue\nsales\n", "needs a time column"),
    ("time\n", "holds no call"),
    ("time\nyesterday\n", "line 2: time must be ISO 8601 or unix seconds, got 'yesterday'"),
    ("time,handle\n1793613900,-3\n", "handle must be seconds >= 0 .*'-3'"),
    ("time,abandoned\n1793613900,maybe\n", "abandoned must be .*'maybe'"),
    ("time,queue\n1793613900\n", "line 2: 1 fields, the header has 2"),
])
def test_bad_csv_is_refused_naming_the_field(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InvalidInput, match=match):
        F.read_csv_history(str(p))


def test_bad_options_are_refused_naming_the_flag(twelve_weeks, tmp_path):
    hist, _, _ = twelve_weeks
    with pytest.raises(InvalidInput, match=r"--for must be a date like 2026-12-07, got '2026-13-01'"):
        F.forecast_day(hist, for_date="2026-13-01", tz="UTC", holdout=0)
    with pytest.raises(InvalidInput, match=r"--for must be a day after the history \(which ends 2026-11-28\).*'2026-11-01'"):
        F.forecast_day(hist, for_date="2026-11-01", tz="UTC", holdout=0)
    with pytest.raises(InvalidInput, match="--weekday must be one of .*'someday'"):
        F.forecast_day(hist, weekday="someday", tz="UTC", holdout=0)
    with pytest.raises(InvalidInput, match="no call on a Sunday"):
        F.forecast_day(hist, weekday="sun", tz="UTC", holdout=0)
    short, _, _ = synthetic(10)
    with pytest.raises(InvalidInput, match=r"--holdout 7: the history has 10 day\(s\), the back-test needs at least 14"):
        F.forecast_day(short, tz="UTC", holdout=7)
    with pytest.raises(InvalidInput, match="history of 5 day"):
        F.forecast_day(synthetic(5)[0], tz="UTC", holdout=0)
    with pytest.raises(InvalidInput, match="no file at"):
        F.read_history(str(tmp_path / "nothing.csv"))
    with pytest.raises(InvalidInput, match="--input must be one of .*'xml'"):
        F.read_history(str(tmp_path / "nothing.csv"), kind="xml")


# ---------------------------------------------------------------- outputs and the command

def write_csv(path, hist):
    with open(path, "w") as f:
        f.write("time,queue,handle,abandoned,wait\n")
        for t, k, h, a, w in zip(hist.time, hist.line, hist.handle, hist.abandoned, hist.wait):
            f.write(f"{t:.3f},{hist.lines[k]},{'' if np.isnan(h) else f'{h:.1f}'},{int(a)},{w:.1f}\n")


def acd(*argv):
    out, err = io.StringIO(), io.StringIO()
    return acd_main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory, twelve_weeks):
    p = tmp_path_factory.mktemp("history") / "calls.csv"
    write_csv(p, twelve_weeks[0])
    return p


def test_acd_forecast_writes_what_acd_staff_reads(history_csv, tmp_path):
    out_file = tmp_path / "mon.toml"
    code, out, err = acd("forecast", str(history_csv), "--tz", "UTC", "--weekday", "mon", "-o", str(out_file))
    assert code == 0, err
    assert "back-test: fitted on 2026-09-07 - 2026-11-14 (69 days)" in out and f"wrote {out_file}" in out
    fc = load_forecast(out_file)
    assert [ln.name for ln in fc.lines] == ["sales", "support"]
    assert fc.start == 8.5 * 3600 and fc.interval == 1800 and fc.n_intervals == 17
    assert sum(fc.lines[0].calls) == pytest.approx(900, rel=0.05)
    assert fc.lines[1].aht == pytest.approx(420, rel=0.05) and fc.lines[1].patience > 0
    code, staffed, err = acd("staff", str(out_file))
    assert code == 0, err
    assert "sales" in staffed and "erlang A" in staffed and "08:30" in staffed and "16:30" in staffed
    # the file exists now: not overwritten without --force, and left as it was
    before = out_file.read_text()
    code, _, err = acd("forecast", str(history_csv), "--tz", "UTC", "-o", str(out_file))
    assert code == 2 and "already exists" in err and out_file.read_text() == before
    # to standard output: the forecast alone there, the back-test on stderr
    code, out, err = acd("forecast", str(history_csv), "--tz", "UTC", "--for", "2026-12-04", "--holdout", "7")
    assert code == 0 and out.startswith("# acd forecast for 2026-12-04 (Friday)") and "WAPE" in err


def test_acd_forecast_csv_and_scenario(history_csv, tmp_path):
    code, out, err = acd("forecast", str(history_csv), "--tz", "UTC", "--weekday", "sat", "--format", "csv",
                         "--holdout", "0")
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0] == "start,line,calls" and rows[1].startswith("09:00,sales,") and rows[2].startswith("09:00,support,")
    assert len(rows) == 1 + 8 * 2 and "back-test" not in err
    assert sum(float(r.split(",")[2]) for r in rows[1:] if ",sales," in r) == pytest.approx(240, rel=0.1)

    base = tmp_path / "base.toml"
    assert acd("scenarios", "export", "small_helpdesk", str(base))[0] == 0
    sc_file = tmp_path / "day.toml"
    code, out, err = acd("forecast", str(history_csv), "--tz", "UTC", "--weekday", "mon", "--scenario", str(base),
                         "-o", str(sc_file))
    assert code == 2 and "forecast line 'sales' is no queue of base scenario" in err and not sc_file.exists()
    # a single-line history (no queue column) keeps the base's mix
    one = tmp_path / "one.csv"
    one.write_text("time\n" + "".join(f"{t:.3f}\n" for t in np.loadtxt(history_csv, delimiter=",", skiprows=1,
                                                                     usecols=0)))
    code, out, err = acd("forecast", str(one), "--tz", "UTC", "--weekday", "mon", "--scenario", str(base),
                         "-o", str(sc_file))
    assert code == 0, err
    sc = load_scenario(sc_file)
    assert sc.start == 8.5 * 3600 and sc.end == 17 * 3600 and sc.n_intervals == 17
    assert sc.expected_calls == pytest.approx(1300, rel=0.05)
    assert [c.share for c in sc.call_types] == [c.share for c in load_scenario(base).call_types]
    code, _, err = acd("forecast", str(one), "--tz", "UTC", "-o", str(tmp_path / "x.toml"))
    assert code == 2 and "no handle time for line 'all': give --aht" in err and not (tmp_path / "x.toml").exists()


def test_scenario_mix_follows_the_lines(twelve_weeks, tmp_path):
    hist, _, _ = twelve_weeks
    base = {"name": "two lines", "start": "08:00", "end": "18:00", "interval": 3600,
            "queues": [{"name": "sales"}, {"name": "support"}],
            "call_types": [{"name": "buy", "queue": "sales", "share": 3, "service": {"dist": "fixed", "value": 200}},
                           {"name": "renew", "queue": "sales", "share": 1, "service": {"dist": "fixed", "value": 200}},
                           {"name": "fix", "queue": "support", "share": 1, "service": {"dist": "fixed", "value": 400}}],
            "agents": [{"name": "all", "count": 3, "staffing": [3] * 10}],
            "arrivals": {"rate": 10}}
    fc = F.forecast_day(hist, weekday="tue", tz="UTC", holdout=0)
    path = tmp_path / "tue.toml"
    F.write_atomic(path, fc.scenario_toml(base))
    sc = load_scenario(path)
    sales, support = (ln.level for ln in fc.lines)
    shares = {c.name: c.share for c in sc.call_types}
    assert shares["buy"] + shares["renew"] == pytest.approx(sales / (sales + support), abs=1e-5)
    assert shares["buy"] == pytest.approx(3 * shares["renew"], rel=1e-4)
    assert sc.expected_calls == pytest.approx(sales + support, rel=1e-3)
    assert sc.agents[0].staffing is None and sc.agents[0].count == 3       # sized for 10 intervals, now 17
    # the mix is one for the whole day: each queue gets its line's calls of the day (not its profile)
    assert sum(sc.queue_load()["support"][0]) == pytest.approx(support, rel=1e-3)


def test_acd_forecast_reads_a_queue_log_and_a_journal(tmp_path):
    ql = tmp_path / "queue_log"
    write_queue_log(ql)
    code, out, err = acd("forecast", str(ql), "--tz", "UTC", "--holdout", "1", "--aht", "200", "-o",
                         str(tmp_path / "q.toml"))
    assert code == 0, err
    fc = load_forecast(tmp_path / "q.toml")
    assert [ln.aht for ln in fc.lines] == [200, 200] and fc.lines[1].patience == 50
    j = tmp_path / "journal.sqlite3"
    write_journal(j)
    code, out, err = acd("forecast", str(j), "--tz", "UTC", "--holdout", "3", "--format", "csv")
    assert code == 0, err
    assert out.startswith("start,line,calls\n09:00,sales,3\n09:00,billing,0\n")     # three at 09:00-09:20
    code, out, err = acd("forecast", str(j), "--tz", "UTC", "--for", "tomorrow")
    assert code == 2 and err.count("\n") == 1 and "--for must be a date" in err


def test_importing_the_forecast_module_leaves_statsmodels_alone():
    code = """
        import sys
        import acd, acd.cli
        assert "acd.planning" not in sys.modules
        from acd.planning import forecast
        assert "statsmodels" not in sys.modules and "scipy" not in sys.modules
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_history_cut_in_the_middle_of_its_last_day_is_pointed_out(twelve_weeks):
    hist, _, _ = twelve_weeks
    cut = dt.datetime(2026, 11, 27, 10, tzinfo=dt.timezone.utc).timestamp()      # a Friday, 10:00
    keep = hist.time < cut
    short = F.History("cut", "csv", hist.lines, hist.time[keep], hist.line[keep], hist.handle[keep],
                      hist.wait[keep], hist.abandoned[keep])
    fc = F.forecast_day(short, tz="UTC", holdout=7)
    assert any("last day of the history (2026-11-27)" in n and "partial" in n for n in fc.notes)
    assert not any("partial" in n for n in F.forecast_day(hist, tz="UTC", holdout=7).notes)


def test_a_holt_winters_fit_that_warns_is_not_trusted(twelve_weeks, monkeypatch):
    import statsmodels.tsa.holtwinters as hw
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    class Unconverged(hw.ExponentialSmoothing):
        def fit(self, *a, **kw):
            import warnings
            warnings.warn("Optimization failed to converge.", ConvergenceWarning)
            return super().fit(*a, **kw)

    monkeypatch.setattr(hw, "ExponentialSmoothing", Unconverged)
    bt = F.backtest(F.count_arrivals(twelve_weeks[0], tz="UTC"), 14)
    assert all(m.startswith("seasonal mean") and "Holt-Winters not used: Optimization failed" in m
               for m in bt.methods)
