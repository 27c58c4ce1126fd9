"""acd.kpi: hand-computed indicators on a small day, and the vectorised code against a plain loop."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd import kpi
from acd.errors import InvalidInput

NAN = math.nan
QUEUES = ["info", "support"]


def records(rows):
    out = np.zeros(len(rows), dtype=kpi.CALL_RECORD)
    for i, row in enumerate(rows):
        row = dict(row)
        row.setdefault("answered", NAN)
        row.setdefault("agent", -1)
        for k, v in row.items():
            out[k][i] = v
        out["call"][i] = i
    return out


A, B = 0, 1  # queue indices
DAY = records([
    # info
    dict(queue=A, arrival=0, answered=10, ended=110, outcome=0, agent=1, talk=100, wrap=20),
    dict(queue=A, arrival=5, ended=8, outcome=1),                                     # short abandon (3 s)
    dict(queue=A, arrival=10, answered=40, ended=90, outcome=0, agent=2, talk=50, wrap=10, cb_offered=True),
    dict(queue=A, arrival=20, ended=50, outcome=1, cb_offered=True),                   # abandoned after 30 s
    dict(queue=A, arrival=30, ended=330, outcome=2, overflowed=True),                  # exited
    dict(queue=A, arrival=1800, answered=1800, ended=1860, outcome=0, agent=1, talk=60, transferred=True),
    dict(queue=A, arrival=1810, ended=1825, outcome=1),                                # abandoned within T
    # support
    dict(queue=B, arrival=100, answered=400, ended=600, outcome=0, agent=2, talk=200, wrap=30,
         cb_offered=True, cb_accepted=True, cb_dialled=True, cb_reached=True),
    dict(queue=B, arrival=200, ended=900, outcome=3, cb_offered=True, cb_accepted=True, cb_dialled=True),
    dict(queue=B, arrival=1900, answered=1920, ended=1960, outcome=0, agent=1, talk=40, wrap=5),  # wait = T
])


def intervals(rows):
    out = np.zeros(len(rows), dtype=kpi.AGENT_INTERVAL)
    for i, (agent, state, start, end) in enumerate(rows):
        out[i] = (agent, kpi.AGENT_STATES.index(state), start, end)
    return out


SHIFTS = intervals([
    (1, "available", 0, 10), (1, "busy", 10, 110), (1, "wrap_up", 110, 130), (1, "available", 130, 1000),
    (1, "paused", 1000, 1200), (1, "available", 1200, 1800), (1, "busy", 1800, 1860), (1, "available", 1860, 1920),
    (1, "busy", 1920, 1960), (1, "wrap_up", 1960, 1965), (1, "available", 1965, 3600),
    (2, "available", 0, 35), (2, "reserved", 35, 40), (2, "busy", 40, 90), (2, "wrap_up", 90, 100),
    (2, "available", 100, 400), (2, "busy", 400, 600), (2, "wrap_up", 600, 630), (2, "paused", 630, 900),
    (2, "available", 900, 1800),
])

EXPECTED = {
    "info": dict(
        offered=7, answered=3, abandoned=3, short_abandons=1, exited=1, callback_failed=0,
        answer_rate=3 / 7, abandon_rate=3 / 7, abandon_rate_excl_short=2 / 6,
        answered_within=2, abandoned_after=1,
        sl_answered=2 / 3, sl_offered=2 / 7, sl_offered_excl_short=2 / 6, sl_abandon_neutral=2 / 4,
        asa=40 / 3, max_answer_wait=30, mean_abandon_wait=16, mean_talk=70, aht=80,
        cb_offered=2, cb_accepted=0, cb_dialled=0, cb_reached=0,
        cb_offer_rate=2 / 7, cb_accept_rate=0.0, cb_reach_rate=NAN,
        overflowed=1, transferred=1, occupancy=NAN),
    "support": dict(
        offered=3, answered=2, abandoned=0, short_abandons=0, exited=0, callback_failed=1,
        answer_rate=2 / 3, abandon_rate=0.0, abandon_rate_excl_short=0.0,
        answered_within=1, abandoned_after=0,
        sl_answered=1 / 2, sl_offered=1 / 3, sl_offered_excl_short=1 / 3, sl_abandon_neutral=1 / 2,
        asa=160, max_answer_wait=300, mean_abandon_wait=NAN, mean_talk=120, aht=137.5,
        cb_offered=2, cb_accepted=2, cb_dialled=2, cb_reached=1,
        cb_offer_rate=2 / 3, cb_accept_rate=1.0, cb_reach_rate=0.5,
        overflowed=0, transferred=0, occupancy=NAN),
    "all": dict(
        offered=10, answered=5, abandoned=3, short_abandons=1, exited=1, callback_failed=1,
        answer_rate=0.5, abandon_rate=0.3, abandon_rate_excl_short=2 / 9,
        answered_within=3, abandoned_after=1,
        sl_answered=3 / 5, sl_offered=3 / 10, sl_offered_excl_short=3 / 9, sl_abandon_neutral=3 / 6,
        asa=72, max_answer_wait=300, mean_abandon_wait=16, mean_talk=90, aht=103,
        cb_offered=4, cb_accepted=2, cb_dialled=2, cb_reached=1,
        cb_offer_rate=0.4, cb_accept_rate=0.5, cb_reach_rate=0.5,
        overflowed=1, transferred=1, occupancy=(225 + 295) / (3400 + 1530)),
}
# DAY has no survey column set: its survey figures are empty
for _want in EXPECTED.values():
    _want.update(surveys=0, csat_responses=0, csat_response_rate=NAN, csat_mean=NAN, csat_share=NAN,
                 solved_responses=0, solved_rate=NAN)


def assert_same(got, want, where=""):
    assert set(got) == set(want), where
    for k, v in want.items():
        g = got[k]
        if isinstance(v, float) and math.isnan(v):
            assert isinstance(g, float) and math.isnan(g), f"{where}{k}: {g!r} != nan"
        else:
            assert g == pytest.approx(v, rel=1e-12, abs=1e-12), f"{where}{k}"
            want_type = int if kpi.INDICATORS[k][0] == "count" else float
            assert type(g) is want_type, f"{where}{k}: {type(g)}"


# ---------------------------------------------------------------- summary


def test_summary_by_hand():
    s = kpi.summary(DAY, QUEUES, sl_threshold=20, short_abandon=5, agent_intervals=SHIFTS)
    assert list(s) == ["info", "support", "all"]
    for q, want in EXPECTED.items():
        assert list(s[q]) == list(kpi.INDICATORS)
        assert_same(s[q], want, f"{q}: ")


def test_summary_thresholds_move_the_counts():
    s = kpi.summary(DAY, QUEUES, sl_threshold=30, short_abandon=15)["all"]
    # waits <= 30 answered: 10, 30, 0, 20 ; abandons < 15 s: 3 ; abandons > 30: none
    assert (s["answered_within"], s["short_abandons"], s["abandoned_after"]) == (4, 1, 0)
    s = kpi.summary(DAY, QUEUES, sl_threshold=0, short_abandon=16)["all"]
    assert (s["answered_within"], s["short_abandons"], s["abandoned_after"]) == (1, 2, 3)
    assert s["sl_abandon_neutral"] == pytest.approx(1 / 8)


def test_summary_without_intervals_and_empty():
    s = kpi.summary(DAY, QUEUES)
    assert math.isnan(s["all"]["occupancy"])
    empty = np.zeros(0, dtype=kpi.CALL_RECORD)
    s = kpi.summary(empty, QUEUES, agent_intervals=np.zeros(0, dtype=kpi.AGENT_INTERVAL))
    for group in ("info", "support", "all"):
        for name, (kind, _) in kpi.INDICATORS.items():
            v = s[group][name]
            if kind == "count":
                assert v == 0 and isinstance(v, int)
            else:
                assert math.isnan(v), (group, name)
    assert kpi.summary(empty, [])["all"]["offered"] == 0


def test_occupancy_counts_ringing_and_wrap_but_not_pauses():
    iv = intervals([(7, "available", 0, 50), (7, "reserved", 50, 60), (7, "busy", 60, 160), (7, "wrap_up", 160, 190),
                    (7, "paused", 190, 1000)])
    s = kpi.summary(DAY, QUEUES, agent_intervals=iv)
    assert s["all"]["occupancy"] == pytest.approx(140 / 190)
    only_paused = intervals([(7, "paused", 0, 100)])
    assert math.isnan(kpi.summary(DAY, QUEUES, agent_intervals=only_paused)["all"]["occupancy"])


# ---------------------------------------------------------------- per interval


def test_per_interval_by_hand():
    p = kpi.per_interval(DAY, QUEUES, interval=1800, sl_threshold=20, short_abandon=5, agent_intervals=SHIFTS)
    np.testing.assert_array_equal(p["start"], [0.0, 1800.0])
    np.testing.assert_array_equal(p["end"], [1800.0, 3600.0])
    assert p["offered"].tolist() == [7, 3] and p["offered"].dtype == np.int64
    assert p["answered"].tolist() == [3, 2]
    assert p["abandoned"].tolist() == [2, 1]
    assert p["short_abandons"].tolist() == [1, 0]
    assert p["exited"].tolist() == [1, 0]
    assert p["callback_failed"].tolist() == [1, 0]
    assert p["answered_within"].tolist() == [1, 2]
    assert p["abandoned_after"].tolist() == [1, 0]
    np.testing.assert_allclose(p["sl_offered"], [1 / 7, 2 / 3])
    np.testing.assert_allclose(p["sl_answered"], [1 / 3, 1.0])
    np.testing.assert_allclose(p["sl_offered_excl_short"], [1 / 6, 2 / 3])
    np.testing.assert_allclose(p["sl_abandon_neutral"], [1 / 4, 1.0])
    np.testing.assert_allclose(p["asa"], [340 / 3, 10])
    np.testing.assert_allclose(p["aht"], [410 / 3, 52.5])
    np.testing.assert_allclose(p["occupancy"], [415 / 3130, 105 / 1800])
    np.testing.assert_allclose(p["cb_reach_rate"], [0.5, NAN])
    # the same indicators as summary
    assert set(p) == set(kpi.INDICATORS) | {"start", "end"}


def test_per_interval_bounds_queue_and_empty_intervals():
    p = kpi.per_interval(DAY, QUEUES, interval=900, start=0, n_intervals=4, queue="support", sl_threshold=20)
    assert p["offered"].tolist() == [2, 0, 1, 0]
    assert math.isnan(p["answer_rate"][1]) and math.isnan(p["sl_offered"][3])
    assert np.isnan(p["occupancy"]).all()
    # calls outside [start, end) are left out
    p = kpi.per_interval(DAY, QUEUES, interval=600, start=600, end=2400)
    assert p["start"].tolist() == [600.0, 1200.0, 1800.0] and p["offered"].tolist() == [0, 0, 3]
    # default start: the first arrival rounded down to the interval
    p = kpi.per_interval(DAY[DAY["arrival"] >= 1000], QUEUES, interval=1000)
    assert p["start"].tolist() == [1000.0] and p["offered"].tolist() == [3]
    empty = kpi.per_interval(np.zeros(0, dtype=kpi.CALL_RECORD), QUEUES)
    assert len(empty["start"]) == 0 and len(empty["offered"]) == 0
    p = kpi.per_interval(np.zeros(0, dtype=kpi.CALL_RECORD), QUEUES, start=0, n_intervals=2)
    assert p["offered"].tolist() == [0, 0] and np.isnan(p["sl_offered"]).all()


def test_per_interval_occupancy_splits_spans_across_intervals():
    iv = intervals([(1, "busy", 50, 250), (1, "available", 250, 400), (2, "wrap_up", 0, 400), (3, "paused", 0, 400)])
    p = kpi.per_interval(DAY, QUEUES, interval=100, start=0, n_intervals=5, agent_intervals=iv)
    np.testing.assert_allclose(p["occupancy"], [150 / 150, 1.0, 150 / 200, 100 / 200, NAN])


# ---------------------------------------------------------------- per agent


def test_per_agent_by_hand():
    a = kpi.per_agent(DAY, SHIFTS)
    assert a["agent"].tolist() == [1, 2]
    assert a["answered"].tolist() == [3, 2]
    np.testing.assert_allclose(a["talk"], [200, 250])
    np.testing.assert_allclose(a["wrap"], [25, 40])
    np.testing.assert_allclose(a["aht"], [75, 145])
    np.testing.assert_allclose(a["logged_in"], [3600, 1800])
    np.testing.assert_allclose(a["paused"], [200, 270])
    np.testing.assert_allclose(a["working"], [225, 295])
    np.testing.assert_allclose(a["occupancy"], [225 / 3400, 295 / 1530])
    b = kpi.per_agent(DAY)
    assert b["agent"].tolist() == [1, 2] and np.isnan(b["occupancy"]).all()
    # an agent who logged in but answered nothing
    c = kpi.per_agent(DAY, intervals([(9, "available", 0, 10)]))
    assert c["agent"].tolist() == [1, 2, 9] and c["answered"].tolist() == [3, 2, 0]
    assert math.isnan(c["aht"][2]) and c["occupancy"][2] == 0.0
    e = kpi.per_agent(np.zeros(0, dtype=kpi.CALL_RECORD))
    assert len(e["agent"]) == 0


# ---------------------------------------------------------------- tables


def test_format_table():
    s = kpi.summary(DAY, QUEUES, sl_threshold=20, agent_intervals=SHIFTS)
    text = kpi.format_table(s)
    lines = text.splitlines()
    assert lines[0].split() == ["indicator", "info", "support", "all"]
    assert len(lines) == 1 + len(kpi.INDICATORS) - len(kpi.SURVEY_INDICATORS)   # none surveyed: no survey rows
    assert any(ln.startswith("SL / offered ") and ln.rstrip().endswith("30.0 %") for ln in lines)
    assert any(ln.startswith("ASA s") and ln.rstrip().endswith("72.0") for ln in lines)
    assert any(ln.startswith("call-back reach rate") and " - " in ln for ln in lines)
    # right-aligned columns: every row has the same length up to the last column
    assert len({len(ln) for ln in lines if not ln.endswith("-")}) == 1
    p = kpi.per_interval(DAY, QUEUES, interval=1800, sl_threshold=20, agent_intervals=SHIFTS)
    t = kpi.format_table(p).splitlines()
    assert t[0].startswith("interval") and t[1].startswith("00:00") and t[2].startswith("00:30") and len(t) == 3
    t = kpi.format_table(p, columns=["offered", "sl_abandon_neutral"]).splitlines()
    assert t[0].split() == ["interval", "offered", "SL", "abandon-neutral"] and t[1].split() == ["00:00", "7", "25.0", "%"]
    t = kpi.format_table(kpi.per_agent(DAY, SHIFTS)).splitlines()
    assert t[0].startswith("agent") and t[1].split()[:2] == ["1", "3"]
    with pytest.raises(InvalidInput):
        kpi.format_table({})


# ---------------------------------------------------------------- errors


def test_input_errors():
    with pytest.raises(InvalidInput, match="records must be a numpy structured array"):
        kpi.summary([1, 2], QUEUES)
    with pytest.raises(InvalidInput, match=r"records\[0\] queue must be an index into 1 queue names, got 1"):
        kpi.summary(DAY[DAY["queue"] == 1], ["info"])
    with pytest.raises(InvalidInput, match="queue_names must not contain 'all'"):
        kpi.summary(DAY, ["all", "x"])
    with pytest.raises(InvalidInput, match="sl_threshold must be a finite number of seconds >= 0, got -1"):
        kpi.summary(DAY, QUEUES, sl_threshold=-1)
    bad = DAY.copy()
    bad["answered"][0] = NAN
    with pytest.raises(InvalidInput, match=r"records\[0\] is answered but its answered time is nan"):
        kpi.summary(bad, QUEUES)
    with pytest.raises(InvalidInput, match="interval must be a finite number of seconds > 0, got 0"):
        kpi.per_interval(DAY, QUEUES, interval=0)
    with pytest.raises(InvalidInput, match="queue must be one of"):
        kpi.per_interval(DAY, QUEUES, queue="nope")
    with pytest.raises(InvalidInput, match="give end or n_intervals, not both"):
        kpi.per_interval(DAY, QUEUES, start=0, end=10, n_intervals=1)
    iv = SHIFTS.copy()
    iv["end"][3] = 0
    with pytest.raises(InvalidInput, match=r"agent_intervals\[3\] must end at or after its start"):
        kpi.per_agent(DAY, iv)


# ---------------------------------------------------------------- vectorised == plain loop


def naive(recs, names, t, short, group_of, groups):
    """Every call indicator from a loop over calls, straight from the definitions."""
    acc = {g: dict(offered=0, answered=0, abandoned=0, short=0, exited=0, cbf=0, within=0, after=0, wait=0.0,
                   maxw=-1.0, abwait=0.0, talk=0.0, handle=0.0, cbo=0, cba=0, cbd=0, cbr=0, over=0, trans=0)
           for g in groups}
    for rec in recs:
        g = group_of(rec)
        if g is None:
            continue
        a = acc[g]
        a["offered"] += 1
        o = int(rec["outcome"])
        if o == 0:
            w = rec["answered"] - rec["arrival"]
            a["answered"] += 1
            a["within"] += w <= t
            a["wait"] += w
            a["maxw"] = max(a["maxw"], w)
            a["talk"] += rec["talk"]
            a["handle"] += rec["talk"] + rec["wrap"]
        elif o == 1:
            w = rec["ended"] - rec["arrival"]
            a["abandoned"] += 1
            a["short"] += w < short
            a["after"] += w > t
            a["abwait"] += w
        elif o == 2:
            a["exited"] += 1
        else:
            a["cbf"] += 1
        for key, field in (("cbo", "cb_offered"), ("cba", "cb_accepted"), ("cbd", "cb_dialled"), ("cbr", "cb_reached"),
                           ("over", "overflowed"), ("trans", "transferred")):
            a[key] += bool(rec[field])

    def div(x, y):
        return x / y if y else NAN

    out = {}
    for g, a in acc.items():
        out[g] = dict(
            offered=a["offered"], answered=a["answered"], abandoned=a["abandoned"], short_abandons=a["short"],
            exited=a["exited"], callback_failed=a["cbf"], answer_rate=div(a["answered"], a["offered"]),
            abandon_rate=div(a["abandoned"], a["offered"]),
            abandon_rate_excl_short=div(a["abandoned"] - a["short"], a["offered"] - a["short"]),
            answered_within=a["within"], abandoned_after=a["after"], sl_answered=div(a["within"], a["answered"]),
            sl_offered=div(a["within"], a["offered"]), sl_offered_excl_short=div(a["within"], a["offered"] - a["short"]),
            sl_abandon_neutral=div(a["within"], a["answered"] + a["after"]), asa=div(a["wait"], a["answered"]),
            max_answer_wait=a["maxw"] if a["answered"] else NAN, mean_abandon_wait=div(a["abwait"], a["abandoned"]),
            mean_talk=div(a["talk"], a["answered"]), aht=div(a["handle"], a["answered"]),
            cb_offered=a["cbo"], cb_accepted=a["cba"], cb_dialled=a["cbd"], cb_reached=a["cbr"],
            cb_offer_rate=div(a["cbo"], a["offered"]), cb_accept_rate=div(a["cba"], a["cbo"]),
            cb_reach_rate=div(a["cbr"], a["cbd"]), overflowed=a["over"], transferred=a["trans"])
    return out


@st.composite
def call_days(draw):
    n = draw(st.integers(0, 60))
    nq = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    r = np.zeros(n, dtype=kpi.CALL_RECORD)
    r["call"] = np.arange(n)
    r["queue"] = rng.integers(0, nq, n)
    r["arrival"] = np.sort(rng.uniform(0, 7200, n).round(1))
    r["outcome"] = rng.choice(4, n, p=[0.6, 0.25, 0.1, 0.05])
    wait = rng.choice([0.0, 3.0, 5.0, 20.0, 60.0, 61.0, 300.0], n) * rng.choice([1.0, 0.5], n)
    ans = r["outcome"] == 0
    r["answered"] = np.where(ans, r["arrival"] + wait, NAN)
    r["talk"] = np.where(ans, rng.exponential(200, n).round(), 0.0)
    r["wrap"] = np.where(ans, rng.choice([0.0, 10.0, 30.0], n), 0.0)
    r["ended"] = np.where(ans, r["answered"] + r["talk"], r["arrival"] + wait)
    r["agent"] = np.where(ans, rng.integers(0, 5, n), -1)
    for f in ("overflowed", "transferred", "cb_offered", "cb_accepted", "cb_dialled", "cb_reached"):
        r[f] = rng.random(n) < 0.3
    names = [f"q{i}" for i in range(nq)]
    t = draw(st.sampled_from([0.0, 5.0, 20.0, 60.0]))
    short = draw(st.sampled_from([0.0, 3.0, 5.0, 10.0]))
    return r, names, t, short


def check(got, want, where):
    for k, v in want.items():
        g = got[k]
        if isinstance(v, float) and math.isnan(v):
            assert math.isnan(g), f"{where} {k}"
        else:
            assert g == pytest.approx(v, rel=1e-12, abs=1e-9), f"{where} {k}"


@settings(max_examples=150, deadline=None)
@given(call_days())
def test_summary_equals_loop(day):
    r, names, t, short = day
    s = kpi.summary(r, names, sl_threshold=t, short_abandon=short)
    want = naive(r, names, t, short, lambda rec: names[int(rec["queue"])], names)
    want["all"] = naive(r, names, t, short, lambda rec: "all", ["all"])["all"]
    for g in names + ["all"]:
        check(s[g], want[g], g)


@settings(max_examples=150, deadline=None)
@given(call_days(), st.sampled_from([600.0, 900.0, 1800.0]), st.sampled_from([None, 300.0, 2000.0]),
       st.integers(1, 12))
def test_per_interval_equals_loop(day, step, start, n):
    r, names, t, short = day
    p = kpi.per_interval(r, names, interval=step, start=start, n_intervals=n if start is not None else None,
                         sl_threshold=t, short_abandon=short)
    t0 = start if start is not None else (math.floor(r["arrival"].min() / step) * step if len(r) else 0.0)
    m = len(p["start"])
    if start is not None:
        assert m == n
    elif len(r):
        assert p["start"][-1] <= r["arrival"].max() < p["end"][-1]

    def bucket(rec):
        k = math.floor((rec["arrival"] - t0) / step)
        return k if 0 <= k < m else None

    want = naive(r, names, t, short, bucket, range(m))
    for k in range(m):
        check({name: p[name][k] for name in want[k]}, want[k], f"interval {k}")
    assert p["start"].tolist() == [t0 + k * step for k in range(m)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.floats(0, 1000), st.floats(0, 500)), max_size=40),
       st.sampled_from([50.0, 100.0, 333.0]), st.integers(1, 20))
def test_interval_occupancy_and_per_agent_equal_loop(spans, step, n):
    iv = intervals([(a, kpi.AGENT_STATES[s], x, x + d) for a, s, x, d in spans])
    p = kpi.per_interval(np.zeros(0, dtype=kpi.CALL_RECORD), ["q"], interval=step, start=0.0, n_intervals=n,
                         agent_intervals=iv)
    for k in range(n):
        lo, hi = k * step, (k + 1) * step
        work = staffed = 0.0
        for a, s, x, d in spans:
            overlap = max(0.0, min(hi, x + d) - max(lo, x))
            if s in (1, 2, 3):
                work += overlap
            if s != 4:
                staffed += overlap
        want = work / staffed if staffed > 0 else NAN
        if math.isnan(want):
            assert math.isnan(p["occupancy"][k])
        else:
            assert p["occupancy"][k] == pytest.approx(want, rel=1e-9, abs=1e-9)
    a = kpi.per_agent(np.zeros(0, dtype=kpi.CALL_RECORD), iv)
    assert a["agent"].tolist() == sorted({s[0] for s in spans})
    for i, agent in enumerate(a["agent"]):
        mine = [s for s in spans if s[0] == agent]
        logged = sum(iv_d for _, _, _, iv_d in mine)
        paused = sum(d for _, s, _, d in mine if s == 4)
        work = sum(d for _, s, _, d in mine if s in (1, 2, 3))
        assert a["logged_in"][i] == pytest.approx(logged)
        assert a["paused"][i] == pytest.approx(paused)
        assert a["working"][i] == pytest.approx(work)
