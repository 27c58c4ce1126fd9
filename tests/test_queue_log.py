"""Asterisk's queue_log: written from the journal, read back into the same indicators.

A seeded simulated morning (overflows, call-backs, pauses) runs through a
:class:`JournaledEngine`; :class:`QueueLogWriter` turns the journal into a
queue_log and :class:`QueueLogReader` reads it back.  The indicators must be
those of the journal's own call records at whole seconds (the resolution of a
queue_log line).  The file is written exactly once across crashes, restarts
and rotations."""

from __future__ import annotations

import io
import json
import math
import os
import time

import numpy as np
import pytest

import acd.sim.simulator as simulator
from acd import kpi
from acd.adapters.asterisk.queue_log import QueueLogReader, format_line, parse_line, read_queue_log
from acd.cli import main as acd_main
from acd.errors import InvalidInput
from acd.journal import JournaledEngine, SqliteJournal
from acd.journal.calls import CallLog, replay_journal, to_unix
from acd.service.outputs.queue_log import CURSOR_SUFFIX, QueueLogFile, QueueLogWriter
from acd.sim import bundled_scenario
from acd.sim._reference_loop import ReferenceLoop

MIDNIGHT = 1764547200.0                       # 2025-12-01 00:00 UTC
HERE = os.path.dirname(__file__)


def simulated_journal(path, monkeypatch, seed=3, scale=1.0):
    opened = []

    def journaled_engine(**options):
        je = JournaledEngine(SqliteJournal(path, sync="normal"), **options)
        je.note("clock", {"engine": 0.0, "unix": MIDNIGHT})
        opened.append(je)
        return je

    journaled_engine.accept_callback = True
    monkeypatch.setattr(simulator, "Engine", journaled_engine)
    sc = bundled_scenario("small_helpdesk").scaled(scale)
    res = simulator._run(sc, seed, callback_policy=None, callback_mode="auto", progress=None, sample_every=60.0,
                         record_agents=True, loop=ReferenceLoop)
    monkeypatch.undo()
    for je in opened:
        je.close()
    return sc, res


def read(path):
    with open(path) as f:
        return f.read()


class Lines:
    """A sink keeping the lines in memory."""

    def __init__(self):
        self.text = []

    def line(self, seq, text):
        self.text.append(text)

    def done(self, seq):
        pass


def journal_lines(path):
    journal = SqliteJournal(path, read_only=True)
    try:
        return "".join(replay_journal(journal, lambda engine: QueueLogWriter(Lines())).sink.text)
    finally:
        journal.close()


def journal_records_at_whole_seconds(path):
    journal = SqliteJournal(path, read_only=True)
    try:
        log = replay_journal(journal, CallLog)
    finally:
        journal.close()
    rec = log.records()
    for col in ("arrival", "answered", "ended"):
        rec[col] = np.floor(to_unix(rec[col], log.clock))
    rec["talk"] = np.where(np.isnan(rec["answered"]), 0.0, rec["ended"] - rec["answered"])
    rec["wrap"] = 0.0                       # not in a queue_log
    return log, rec


COUNTS = ("offered", "answered", "abandoned", "exited", "callback_failed", "short_abandons", "answered_within",
          "abandoned_after", "overflowed", "transferred", "cb_offered", "cb_accepted", "cb_dialled", "cb_reached")
MEANS = ("asa", "max_answer_wait", "mean_abandon_wait", "mean_talk", "aht", "sl_offered", "sl_answered",
         "answer_rate", "abandon_rate")


def test_round_trip_gives_the_journals_indicators(tmp_path, monkeypatch):
    path = str(tmp_path / "day.sqlite3")
    sc, res = simulated_journal(path, monkeypatch)
    text = journal_lines(path)
    events = {parse_line(x).event for x in text.splitlines()}
    # the morning has them all: overflows, call-backs, pauses, logins
    assert {"ENTERQUEUE", "CONNECT", "COMPLETECALLER", "ABANDON", "EXITWITHTIMEOUT", "AGENTLOGIN", "AGENTLOGOFF",
            "PAUSEALL", "UNPAUSEALL", "ACDCALLBACKOFFERED", "ACDCALLBACKACCEPTED", "ACDCALLBACKDIALLED",
            "ACDCALLBACKREACHED"} <= events, events
    qlog = tmp_path / "queue_log"
    qlog.write_text(text)
    reader = read_queue_log(str(qlog))
    assert reader.skipped == 0 and reader.open_calls == 0
    log, want = journal_records_at_whole_seconds(path)
    got = reader.records()
    assert len(got) == len(want) == len(res.records)
    assert reader.queue_names == [q for q in log.queue_names if q in reader.queue_names]
    opts = dict(sl_threshold=sc.targets.service_level[1], short_abandon=sc.targets.short_abandon)
    names = list(reader.queue_names)
    # the journal's queue indices, renamed to the order the file met them
    remap = np.array([names.index(q) if q in names else -1 for q in log.queue_names])
    want["queue"] = remap[want["queue"]]
    a = kpi.summary(got, names, **opts)
    b = kpi.summary(want, names, **opts)
    assert a.keys() == b.keys()
    for group in a:
        for name in COUNTS:
            assert a[group][name] == b[group][name], (group, name)
        for name in MEANS:
            assert a[group][name] == pytest.approx(b[group][name], nan_ok=True), (group, name)
    # per agent: the same calls answered by the same agents
    by_reader = {reader.agent_names[i]: n for i, n in zip(*np.unique(got["agent"][got["agent"] >= 0],
                                                                      return_counts=True))}
    by_journal = {log.agent_names[i]: n for i, n in zip(*np.unique(want["agent"][want["agent"] >= 0],
                                                                    return_counts=True))}
    assert {str(k): v for k, v in by_journal.items()} == by_reader


def test_the_lines_are_app_queues_fields(tmp_path, monkeypatch):
    path = str(tmp_path / "day.sqlite3")
    simulated_journal(path, monkeypatch, scale=0.3)
    lines = [parse_line(x) for x in journal_lines(path).splitlines()]
    entered = {}
    for ln in lines:
        assert ln.time >= MIDNIGHT and ln.queue and ln.agent
        if ln.event == "ENTERQUEUE":
            assert ln.agent == "NONE" and len(ln.data) == 3 and int(ln.data[2]) >= 1
            entered[ln.callid] = ln.time
        elif ln.event == "CONNECT":
            hold, bridged, ring = ln.data
            assert ln.agent != "NONE" and int(hold) == ln.time - entered[ln.callid] and int(ring) >= 0
        elif ln.event == "COMPLETECALLER":
            hold, talk, origpos = map(int, ln.data)
            assert hold >= 0 and talk >= 0 and origpos >= 1
        elif ln.event in ("ABANDON", "EXITWITHTIMEOUT"):
            pos, origpos, wait = map(int, ln.data)
            assert wait == ln.time - entered[ln.callid] and origpos >= 1 and pos >= 0
        elif ln.event == "RINGNOANSWER":
            assert int(ln.data[0]) >= 0              # milliseconds


def test_a_hand_written_app_queue_day(tmp_path):
    # app_queue's documented fields; 2 queues, members added and paused, an overflow by the dialplan
    sample = """\
1764579600|NONE|NONE|NONE|QUEUESTART|
1764579600|NONE|support|Local/1001@agents|ADDMEMBER|
1764579600|NONE|support|Local/1002@agents|ADDMEMBER|
1764579610|1764579610.1|support|NONE|ENTERQUEUE||0612345678|1
1764579612|1764579610.1|support|Local/1001@agents|CONNECT|2|1764579611.2|1
1764579732|1764579610.1|support|Local/1001@agents|COMPLETECALLER|2|120|1
1764579620|1764579620.3|support|NONE|ENTERQUEUE||0611111111|1
1764579640|1764579620.3|support|Local/1002@agents|RINGNOANSWER|15000
1764579650|1764579620.3|support|NONE|ABANDON|1|1|30
garbage line
1764579700|1764579700.5|support|NONE|ENTERQUEUE||unknown|1
1764579760|1764579700.5|support|NONE|EXITWITHTIMEOUT|1|1|60
1764579760|1764579700.5|general|NONE|ENTERQUEUE||unknown|1
1764579770|1764579700.5|general|Local/1002@agents|CONNECT|10|1764579769.9|2
1764579800|1764579700.5|general|Local/1002@agents|COMPLETEAGENT|10|30|1
1764579900|1764579900.7|support|NONE|ENTERQUEUE||0622222222|1
1764579905|1764579900.7|support|NONE|ABANDON|1|1|5
1764579910|NONE|support|Local/1001@agents|PAUSE|lunch
1764583510|NONE|support|Local/1001@agents|UNPAUSE|
1764583600|NONE|support|Local/1001@agents|REMOVEMEMBER|
1764583600|NONE|support|Local/1002@agents|REMOVEMEMBER|
"""
    p = tmp_path / "queue_log"
    p.write_text(sample)
    r = read_queue_log(str(p))
    assert r.skipped == 1 and r.open_calls == 0 and r.queue_names == ["support", "general"]
    s = kpi.summary(r.records(), r.queue_names, sl_threshold=20, short_abandon=10,
                    agent_intervals=r.agent_intervals())
    assert s["all"]["offered"] == 4 and s["all"]["answered"] == 2 and s["all"]["abandoned"] == 2
    assert s["all"]["short_abandons"] == 1 and s["all"]["overflowed"] == 1 and s["all"]["exited"] == 0
    assert s["support"]["offered"] == 4                 # counted where they entered
    assert s["all"]["asa"] == pytest.approx((2 + 70) / 2)
    assert s["all"]["answered_within"] == 1
    assert s["all"]["mean_talk"] == pytest.approx((120 + 30) / 2)
    # 1001: logged 4000 s, paused 3600, busy 120 -> occupancy of the rest; 1002: busy 30 of 4000
    iv = r.agent_intervals()
    logged = iv["end"] - iv["start"]
    assert logged.sum() == pytest.approx(2 * 4000)
    assert logged[iv["state"] == kpi.PAUSED].sum() == pytest.approx(3600)
    assert logged[iv["state"] == kpi.BUSY].sum() == pytest.approx(150)
    assert s["all"]["occupancy"] == pytest.approx(150 / (8000 - 3600))


def test_a_real_asterisk_22_queue_log():
    """The file app_queue of Asterisk 22.10.1 wrote (four runs: docs/queue-log.md lists its scenarios)."""
    r = read_queue_log(os.path.join(HERE, "data", "asterisk22", "queue_log-app_queue.log"))
    assert r.skipped == 0 and r.lines == 90 and r.open_calls == 0 and r.queue_names == ["support", "sales"]
    rec = r.records()
    s = kpi.summary(rec, r.queue_names, sl_threshold=20, short_abandon=5, agent_intervals=r.agent_intervals())
    a = s["all"]
    # 19 callers: 9 answered (2 of them transferred), 4 abandoned, 6 left otherwise (2 timeouts of
    # 10 s, 2 of 4 s, an empty queue, a key, a withdrawal)
    assert (a["offered"], a["answered"], a["abandoned"], a["exited"]) == (19, 9, 4, 6)
    assert a["transferred"] == 2 and a["short_abandons"] == 3 and a["overflowed"] == 0
    assert (s["support"]["offered"], s["sales"]["offered"]) == (17, 2)
    assert a["asa"] == pytest.approx(22 / 9)                   # every hold 2 s but S5's 6
    assert a["mean_talk"] == pytest.approx((7 + 5 + 6 + 5 + 3 + 6 + 12 + 13 + 22) / 9)
    assert a["mean_abandon_wait"] == pytest.approx((14 + 1 + 1 + 2) / 4)
    names = np.array(r.agent_names, dtype=object)
    answered_by = sorted(names[rec["agent"][rec["agent"] >= 0]].tolist())
    assert answered_by == ["Alice"] * 5 + ["Bob"] * 3 + ["Carol"]
    # Bob paused from 11:59:52 (PAUSEALL meeting) to 12:00:07: 15 s in the first run's pauses
    iv = r.agent_intervals()
    bob = iv[iv["agent"] == r.agent_names.index("Bob")]
    paused = [(float(x["start"]), float(x["end"])) for x in bob if x["state"] == kpi.PAUSED]
    assert (1796299192.0, 1796299207.0) in paused


def test_format_keeps_fields_in_place():
    line = format_line(1764579600.9, "c|1", "support", None, "PAUSEALL", "lunch|\nbreak")
    assert line == "1764579600|c_1|support|NONE|PAUSEALL|lunch_ break\n"
    assert parse_line(line).data == ("lunch_ break",)
    assert parse_line("") is None and parse_line("12|a|b") is None and parse_line("x|a|b|c|E") is None


def test_reading_errors_name_the_file(tmp_path):
    with pytest.raises(InvalidInput, match="no file at"):
        read_queue_log(str(tmp_path / "missing"))
    with pytest.raises(InvalidInput, match="is a directory"):
        read_queue_log(str(tmp_path))


# ---------------------------------------------------------------- exactly once


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 0.01                        # a cursor save every 100 records
        return self.t


def write_records(journal_path, out, records=None, crash=False):
    """Replay the journal (or its first ``records``) through a QueueLogFile at ``out``; a crash
    leaves without closing (what was saved stays, nothing more)."""
    journal = SqliteJournal(journal_path, read_only=True)
    try:
        sink = QueueLogFile(out, journal.journal_id, clock=Clock())
        replay_journal(journal, lambda engine: QueueLogWriter(sink), upto=records)
        if not crash:
            sink.close()
        elif sink._fd is not None:
            os.close(sink._fd)
        return sink
    finally:
        journal.close()


@pytest.fixture
def morning(tmp_path, monkeypatch):
    """A simulated morning's journal: ``(journal path, its whole queue_log, the file to write, last seq)``."""
    path = str(tmp_path / "day.sqlite3")
    simulated_journal(path, monkeypatch, scale=0.3)
    journal = SqliteJournal(path, read_only=True)
    last = journal.last_seq
    journal.close()
    return path, journal_lines(path), str(tmp_path / "queue_log"), last


def test_written_exactly_once_across_crashes_and_restarts(morning):
    path, whole, out, last = morning
    # a crash after a third of the journal, a clean stop at two thirds, a crash at the end, a restart
    write_records(path, out, last // 3, crash=True)
    cursor = json.loads(read(out + CURSOR_SUFFIX))
    assert 0 < cursor["seq"] < last // 3 and cursor["size"] < os.path.getsize(out)   # lines after the cursor
    write_records(path, out, 2 * last // 3)
    write_records(path, out, None, crash=True)
    sink = write_records(path, out)
    assert sink.lines == 0                            # nothing left to write
    assert read(out) == whole


def test_a_rotated_file_goes_on_in_a_new_one(morning):
    path, whole, out, last = morning
    write_records(path, out, last // 2)
    os.rename(out, out + ".1")                        # logrotate, between two runs
    write_records(path, out)
    assert read(out + ".1") + read(out) == whole


def test_foreign_lines_after_the_cursor_are_kept(morning):
    path, whole, out, last = morning
    write_records(path, out, last // 2)
    with open(out, "a") as f:
        f.write("1764579600|x|support|NONE|ENTERQUEUE||1|1\n")   # someone else's line
    write_records(path, out)
    got = read(out)
    assert got.replace("1764579600|x|support|NONE|ENTERQUEUE||1|1\n", "") == whole


def test_a_refused_write_is_retried_not_lost(morning, monkeypatch):
    path, whole, out, _ = morning
    real_write = os.write
    refused = {"n": 0}

    def full_disk(fd, data):
        if refused["n"] < 5:
            refused["n"] += 1
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    write_records(path, out)
    monkeypatch.undo()
    assert refused["n"] == 5 and read(out) == whole


# ---------------------------------------------------------------- acd serve


def test_acd_serve_writes_the_queue_log_once_across_restarts(tmp_path):
    """Calls through `acd serve` (FastAGI, fake Asterisk): the lines app_queue would write, and a
    restart neither repeats nor loses any."""
    import asyncio

    from acd.service import Dispatcher
    from fakes.channel import FakeChannel, agi
    from service_support import make_config, run, state, until

    out = tmp_path / "queue_log"
    cfg = make_config(tmp_path, queue_log={"path": str(out)})
    assert cfg.queue_log == str(out)

    async def serve(calls) -> None:
        d = Dispatcher(cfg)
        await d.start()
        try:
            await calls(d, d.fastagi_port)
        finally:
            await d.stop()

    async def morning(d, port) -> None:
        await agi(port, "agent_login", callerid="1001")
        uid = "1700000000.1"
        call = await agi(port, "enqueue?queue=support", uniqueid=uid)
        assert call.variables["ACD_STATUS"] == "OK"
        await agi(port, "dial_result?status=ANSWER", uniqueid=uid)
        await asyncio.sleep(1.05)
        await agi(port, "call_end", uniqueid=uid)

    async def afternoon(d, port) -> None:
        await agi(port, "agent_pause?reason=lunch", callerid="1001")
        lost = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000000.2").start()
        await until(lambda: state(d, "1700000000.2") == "waiting", what="the caller waits")
        await lost.hangup()
        await lost.done()

    run(serve(morning))
    first = read(out)
    run(serve(afternoon))
    lines = [parse_line(x) for x in read(out).splitlines()]
    assert read(out).startswith(first)
    got = [(ln.callid, ln.queue, ln.agent, ln.event) for ln in lines]
    assert got == [
        ("NONE", "NONE", "1001", "AGENTLOGIN"),
        ("1700000000.1", "support", "NONE", "ENTERQUEUE"),
        ("1700000000.1", "support", "1001", "CONNECT"),
        ("1700000000.1", "support", "1001", "COMPLETECALLER"),
        ("NONE", "NONE", "1001", "PAUSEALL"),
        ("NONE", "support", "1001", "PAUSE"),              # one per queue, as Asterisk 22 does
        ("1700000000.2", "support", "NONE", "ENTERQUEUE"),
        ("1700000000.2", "support", "NONE", "ABANDON"),
    ], got
    assert lines[3].data[1] in ("1", "2")             # talked about a second
    assert lines[4].data == lines[5].data == ("lunch",)
    assert abs(lines[0].time - time.time()) < 60
    r = read_queue_log(str(out))
    s = kpi.summary(r.records(), r.queue_names, sl_threshold=20, short_abandon=0)
    assert (s["all"]["offered"], s["all"]["answered"], s["all"]["abandoned"]) == (2, 1, 1)


def test_queue_log_config_errors_name_the_field(tmp_path):
    from acd.errors import AcdError
    from service_support import make_config

    with pytest.raises(AcdError, match="queue_log.path .* does not exist"):
        make_config(tmp_path, queue_log={"path": str(tmp_path / "nowhere" / "queue_log")})
    with pytest.raises(AcdError, match="queue_log.path is required"):
        make_config(tmp_path, queue_log={})
    with pytest.raises(AcdError, match="queue_log.path .* is a directory"):
        make_config(tmp_path, queue_log={"path": str(tmp_path)})


def acd(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = acd_main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_acd_report_reads_a_queue_log_like_the_journal(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    path = str(tmp_path / "day.sqlite3")
    sc, res = simulated_journal(path, monkeypatch, scale=0.5)
    monkeypatch.setenv("TZ", "UTC")
    qlog = tmp_path / "queue_log"
    qlog.write_text(journal_lines(path))
    opts = ("--sl-threshold", "60", "--short-abandon", "5", "--format", "json")
    code, out, err = acd("report", "--queue-log", str(qlog), *opts)
    assert code == 0, err
    from_log = json.loads(out)
    code, out, err = acd("report", path, *opts)
    assert code == 0, err
    from_journal = json.loads(out)
    assert from_log["calls"] == from_journal["calls"] == len(res.records)
    assert from_log["origin_unix"] == from_journal["origin_unix"] == MIDNIGHT
    assert "aht is talk time alone" in from_log["notes"][0]
    for group in from_journal["summary"]:
        for name in ("offered", "answered", "abandoned", "overflowed", "cb_accepted", "cb_reached"):
            assert from_log["summary"][group][name] == from_journal["summary"][group][name], (group, name)
    assert [r["offered"] for r in from_log["per_interval"]] == [r["offered"] for r in from_journal["per_interval"]]
    code, table, err = acd("report", "--queue-log", str(qlog), "--from", "2025-12-01 10:00", "--to",
                           "2025-12-01 11:00")
    assert code == 0 and "note: priorities and wrap-up times" in table
    code, out, err = acd("report")
    assert code == 2 and "give a JOURNAL or --queue-log FILE" in err and err.count("\n") == 1
    code, out, err = acd("report", path, "--queue-log", str(qlog))
    assert code == 2 and "one of them" in err
    code, out, err = acd("report", "--queue-log", str(tmp_path / "none"))
    assert code == 2 and "queue_log: no file at" in err


def test_acd_report_html_is_one_page_with_charts(tmp_path, monkeypatch):
    from acd.journal.report_html import step_counts

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    path = str(tmp_path / "day.sqlite3")
    simulated_journal(path, monkeypatch, scale=0.3)
    monkeypatch.setenv("TZ", "UTC")
    code, page, err = acd("report", path, "--format", "html")
    assert code == 0, err
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 5 and "<script" not in page
    for title in ("Callers waiting", "Calls per interval", "Service level per interval", "Abandonment per interval",
                  "Agents", "Per agent"):
        assert title in page, title
    qlog = tmp_path / "queue_log"
    qlog.write_text(journal_lines(path))
    code, page2, err = acd("report", "--queue-log", str(qlog), "--format", "html")
    assert code == 0 and page2.count("<svg") == 5 and "talk time alone" in page2
    # stretches [1, 5), [2, 3), [3, 4): open 1, 2, 2 (one ends as one starts), 1, 0
    assert step_counts(np.array([1.0, 2.0, 3.0]), np.array([5.0, 3.0, 4.0])) == ([1.0, 2.0, 3.0, 4.0, 5.0],
                                                                               [1.0, 2.0, 2.0, 1.0, 0.0])
