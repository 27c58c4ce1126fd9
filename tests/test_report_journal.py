"""Reports of real days: call records rebuilt from a journal equal the simulator's own.

The simulator's Python event loop (the oracle of the compiled one) runs a day
through a :class:`JournaledEngine`, so the journal holds exactly the commands
a service would have journaled for those calls.  :class:`CallLog` replays the
journal and must give back the simulator's call records, column by column,
and the same indicators from :mod:`acd.kpi`."""

from __future__ import annotations

import numpy as np
import pytest

import acd.sim.simulator as simulator
from acd import kpi
from acd.journal import JournaledEngine, SqliteJournal
from acd.journal.calls import CallLog, replay_journal
from acd.sim import bundled_scenario
from acd.sim._reference_loop import ReferenceLoop

COLUMNS_FROM_THE_JOURNAL = ("queue", "priority", "arrival", "answered", "ended", "outcome", "talk", "wrap",
                            "overflowed", "cb_offered", "cb_accepted", "cb_dialled", "cb_reached")


def simulate_through_a_journal(scenario, seed, path, monkeypatch):
    def journaled_engine(**options):
        return JournaledEngine(SqliteJournal(path, sync="normal"), **options)

    journaled_engine.accept_callback = True          # engine_has_callbacks() looks for it
    monkeypatch.setattr(simulator, "Engine", journaled_engine)
    res = simulator._run(scenario, seed, callback_policy=None, callback_mode="auto", progress=None,
                         sample_every=60.0, record_agents=True, loop=ReferenceLoop)
    monkeypatch.undo()
    return res


SCENARIOS = [("small_helpdesk", 0.3, 5), ("small_helpdesk", 1.0, 6), ("small_helpdesk", 0.5, 7),
             ("public_agency", 0.03, 8)]


@pytest.mark.parametrize("name, scale, seed", SCENARIOS)
@pytest.mark.parametrize("callbacks", [True, False])
def test_records_rebuilt_from_the_journal_are_the_simulators(tmp_path, monkeypatch, name, scale, seed, callbacks):
    sc = bundled_scenario(name).scaled(scale).with_callback(callbacks)
    path = str(tmp_path / "day.sqlite3")
    res = simulate_through_a_journal(sc, seed, path, monkeypatch)
    assert res.counters["callback_mode"] == ("engine" if callbacks else "off")
    journal = SqliteJournal(path)
    try:
        log = replay_journal(journal, CallLog)
    finally:
        journal.close()
    assert log.open_calls == res.counters["unserved"] == 0
    rec = log.records()
    # the simulator numbers transfer legs after the first legs: its order is the call ids'
    rec = rec[np.argsort(np.asarray(log.call_ids()), kind="stable")]
    sim = res.records
    assert len(rec) == len(sim) > 20
    for column in COLUMNS_FROM_THE_JOURNAL:
        np.testing.assert_array_equal(rec[column], sim[column], err_msg=column)
    agent_ids = np.array([log.agent_names[a] if a >= 0 else -1 for a in rec["agent"]])
    np.testing.assert_array_equal(agent_ids, sim["agent"])
    if callbacks:
        assert sim["cb_reached"].any() or sim["cb_accepted"].any() or not sim["cb_offered"].any()

    # agent intervals: the simulator's end of the day, and one difference of its own: an agent
    # whose shift ends during wrap-up stays in wrap-up in its books, the engine logs them out at once
    until = float(res.agent_intervals["end"].max())
    mine = {(log.agent_names[int(r["agent"])], int(r["state"]), float(r["start"]), float(r["end"]))
            for r in log.agent_intervals(until)}
    theirs = {(int(r["agent"]), int(r["state"]), float(r["start"]), float(r["end"])) for r in res.agent_intervals}
    starts = {(a, s) for a, _, s, _ in theirs}
    wrap_then_gone = {iv for iv in theirs if iv[1] == kpi.WRAP_UP and (iv[0], iv[3]) not in starts and iv[3] < until}
    cut_short = {iv for iv in mine if iv[1] == kpi.WRAP_UP and any(
        (w[0], w[2]) == (iv[0], iv[2]) and iv[3] <= w[3] for w in wrap_then_gone)}
    assert mine - cut_short == theirs - wrap_then_gone
    assert len(wrap_then_gone) <= 3 * len(sc.agents)    # shift ends only

    # the same indicators (kpi on both; agents numbered the journal's way on one side)
    queues = list(sc.queue_names)
    t = sc.targets
    opts = dict(sl_threshold=t.service_level[1], short_abandon=t.short_abandon)
    untold = sim.copy()
    untold["transferred"] = False                    # the one column a journal cannot give
    assert repr(kpi.summary(rec, queues, **opts)) == repr(kpi.summary(untold, queues, **opts))
    per = dict(start=sc.start, interval=sc.interval, n_intervals=sc.n_intervals, **opts)
    assert repr(kpi.per_interval(rec, queues, **per)) == repr(kpi.per_interval(untold, queues, **per))


def test_a_journal_still_serving_leaves_its_open_calls_out(tmp_path):
    from acd.policy import Queue
    je = JournaledEngine(SqliteJournal(str(tmp_path / "live.sqlite3"), sync="normal"))
    je.add_skill("fr")
    je.add_queue(Queue("q", wrap_up=10.0))
    je.login("a1", {"fr": 1}, 0.0)
    je.enqueue("c1", "q", 1.0)                # offered to a1 at once
    je.answer("c1", 3.0)
    je.enqueue("c2", "q", 4.0)                # waits
    je.complete("c1", 60.0)
    je.enqueue("c3", "q", 61.0)
    je.abandon("c3", 65.0)
    log = replay_journal(je.journal, CallLog)
    rec = log.records()
    assert log.open_calls == 1 and log.call_ids() == ["c1", "c3"]
    assert rec["outcome"].tolist() == [kpi.ANSWERED, kpi.ABANDONED]
    assert rec["talk"].tolist() == [57.0, 0.0] and rec["wrap"].tolist() == [10.0, 0.0]
    assert log.call_ids(close_open=True) == ["c1", "c2", "c3"]
    assert log.records(close_open=True)["outcome"].tolist() == [kpi.ANSWERED, kpi.EXITED, kpi.ABANDONED]
    states = [(int(r["state"]), float(r["start"]), float(r["end"])) for r in log.agent_intervals()]
    # wrap-up ends at 70 on the engine's timer; the journal's last record is at 65
    assert states == [(kpi.AVAILABLE, 0.0, 1.0), (kpi.RESERVED, 1.0, 3.0), (kpi.BUSY, 3.0, 60.0),
                      (kpi.WRAP_UP, 60.0, 65.0)], states
    assert [tuple(r)[1:] for r in log.agent_intervals(until=80.0)][-2:] == [(kpi.WRAP_UP, 60.0, 70.0),
                                                                           (kpi.AVAILABLE, 70.0, 80.0)]
    je.close()


# ------------------------------------------------------------------ acd report

import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from acd.cli import main as acd_main  # noqa: E402


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def acd(*argv):
    import io
    out, err = io.StringIO(), io.StringIO()
    code = acd_main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_acd_report_gives_the_simulators_indicators_on_the_wall_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    midnight = 1764547200.0                       # 2025-12-01 00:00 UTC
    path = str(tmp_path / "day.sqlite3")
    opened = []

    def journaled_engine(**options):
        je = JournaledEngine(SqliteJournal(path, sync="normal"), **options)
        je.note("clock", {"engine": 0.0, "unix": midnight})     # engine second 0 is that midnight
        opened.append(je)
        return je

    journaled_engine.accept_callback = True
    monkeypatch.setattr(simulator, "Engine", journaled_engine)
    sc = bundled_scenario("small_helpdesk")
    res = simulator._run(sc, 3, callback_policy=None, callback_mode="auto", progress=None, sample_every=60.0,
                         record_agents=True, loop=ReferenceLoop)
    monkeypatch.undo()
    monkeypatch.setenv("TZ", "UTC")
    for je in opened:
        je.close()              # else the writer's checkpoint at garbage collection changes the file later
    before = digest(path)
    t = sc.targets
    targets = ("--sl-threshold", str(t.service_level[1]), "--short-abandon", str(t.short_abandon))

    code, out, err = acd("report", path, "--format", "json", *targets)
    assert code == 0, err
    got = json.loads(out)
    untold = res.records.copy()
    untold["transferred"] = False
    want = kpi.summary(untold, list(sc.queue_names), sl_threshold=t.service_level[1], short_abandon=t.short_abandon)
    assert got["calls"] == len(res.records) and got["open_calls"] == 0 and got["origin_unix"] == midnight
    for group, indicators in want.items():
        for name in ("offered", "answered", "abandoned", "short_abandons", "answered_within", "cb_reached"):
            assert got["summary"][group][name] == indicators[name], (group, name)
        # unix times carry about 0.2 us of rounding (doubles near 1.8e9 s)
        assert got["summary"][group]["asa"] == pytest.approx(indicators["asa"], abs=1e-5)
    first = [r for r in got["per_interval"] if r["offered"]][0]
    assert first["start"] == sc.start                   # 09:00 of the scenario is 09:00 on the clock
    assert sum(r["offered"] for r in got["per_interval"]) == len(res.records)
    assert {a["agent"] for a in got["per_agent"]} <= set(range(sum(g.size for g in sc.agents)))

    # --from / --to select by arrival, in local time
    code, out, err = acd("report", path, "--from", "2025-12-01 10:00", "--to", "2025-12-01 11:00", "--format", "json")
    assert code == 0, err
    inside = ((res.records["arrival"] >= 10 * 3600) & (res.records["arrival"] < 11 * 3600)).sum()
    assert json.loads(out)["calls"] == inside > 0
    code, out, err = acd("report", path, "--from", "2025-12-01", "--to", "2025-12-01", "--format", "json")
    assert json.loads(out)["calls"] == len(res.records)            # --to DATE: to the end of that day

    # the table and the CSV: same figures, for a terminal and a spreadsheet
    code, table, err = acd("report", path, "--interval", "1h")
    assert code == 0 and "per interval of 60 min" in table and "per agent" in table
    assert f"{len(res.records):,} calls, 2025-12-01 09:" in table
    code, text, err = acd("report", path, "--format", "csv")
    assert code == 0 and text.startswith("# summary\ngroup,offered,answered,")
    assert f"all,{len(res.records)}," in text
    # read-only: the journal is untouched
    assert digest(path) == before


def test_acd_report_errors_are_one_line(tmp_path):
    code, out, err = acd("report", str(tmp_path / "none.sqlite3"))
    assert code == 2 and err.count("\n") == 1 and "no journal at" in err and out == ""
    path = str(tmp_path / "old.sqlite3")
    je = JournaledEngine(SqliteJournal(path, sync="normal"))   # written without clock notes
    je.close()
    code, out, err = acd("report", path, "--from", "2026-01-01")
    assert code == 2 and "no clock notes" in err and err.count("\n") == 1
    code, out, err = acd("report", path)
    assert code == 0 and "0 calls" in out
    for bad in (["--interval", "10s"], ["--from", "yesterday"], ["--format", "pdf"], ["--sl-threshold", "-1"]):
        code, out, err = acd("report", path, *bad)
        assert code == 2 and err.count("\n") == 1, (bad, err)
    code, out, err = acd("report", path, "--from", "2026-01-02", "--to", "2026-01-01")
    assert code == 2 and "--to must be after --from" in err


def test_acd_report_on_a_real_service_journal(tmp_path):
    """Calls through `acd serve` (FastAGI, fake Asterisk): the report counts what happened."""
    import asyncio

    from acd.service import Dispatcher
    from fakes.channel import FakeChannel, agi
    from service_support import make_config, run, state, until

    cfg = make_config(tmp_path)

    async def day() -> None:
        d = Dispatcher(cfg)
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login", callerid="1001")
            for n in range(3):
                uid = f"1700000000.{n}"
                call = await agi(port, "enqueue?queue=support", uniqueid=uid)
                assert call.variables["ACD_STATUS"] == "OK"
                await agi(port, "dial_result?status=ANSWER", uniqueid=uid)
                await asyncio.sleep(0.05)
                await agi(port, "call_end", uniqueid=uid)
            await agi(port, "agent_pause?reason=lunch", callerid="1001")
            lost = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000000.9").start()
            await until(lambda: state(d, "1700000000.9") == "waiting", what="the caller waits")
            await asyncio.sleep(0.1)
            await lost.hangup()                  # the caller gives up
            await lost.done()
        finally:
            await d.stop()

    run(day())
    code, out, err = acd("report", cfg.journal.path, "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    s = got["summary"]["support"]
    assert (s["offered"], s["answered"], s["abandoned"]) == (4, 3, 1)
    assert s["mean_abandon_wait"] >= 0.1
    assert got["origin_unix"] is not None and got["per_agent"][0]["agent"] == "1001"
    assert got["per_agent"][0]["answered"] == 3
    today = time.strftime("%Y-%m-%d")
    code, out, err = acd("report", cfg.journal.path, "--from", today, "--to", today)
    assert code == 0 and "4 calls" in out


def test_report_counts_exits_by_reason(tmp_path):
    """Queue-state rules' exits (docs/queue-rules.md) are in the report, by queue and reason; the calls
    are counted offered and exited by the indicators, like max-wait exits."""
    from acd import Queue
    from acd.journal.report import day_report
    path = str(tmp_path / "rules.sqlite3")
    eng = JournaledEngine(SqliteJournal(path))
    eng.add_queue(Queue("support", max_length=1, join_when_no_agents="refuse", leave_when_no_agents=True))
    eng.enqueue("c1", "support", 1.0)                 # no agent: refused
    eng.login("a1", {}, 2.0)
    eng.enqueue("c2", "support", 3.0)                 # taken
    eng.answer("c2", 4.0)
    eng.enqueue("c3", "support", 5.0)                 # waits
    eng.enqueue("c4", "support", 6.0)                 # full
    eng.pause("a1", 7.0)                              # deferred: talking
    eng.complete("c2", 9.0)                           # a1 paused now: c3 leaves
    eng.journal.close()
    journal = SqliteJournal(path)
    try:
        log = replay_journal(journal, CallLog)
    finally:
        journal.close()
    report = day_report(log, path)
    assert report.exits == {"support": {"full": 1, "no_agents": 2}}
    assert "exits by reason: support full 1 no_agents 2" in report.heading()
    assert report.to_dict()["exits"] == {"support": {"full": 1, "no_agents": 2}}
    s = report.summary()["support"]
    assert (s["offered"], s["answered"], s["exited"]) == (4, 1, 3)
