"""The post-call survey: who is asked, the ``survey`` route through the fake Asterisk, the journal
note, and the CSAT figures of ``acd.kpi`` and ``acd report`` (docs/survey.md)."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from typing import Any, Dict, List

import numpy as np
import pytest

from acd import kpi
from acd.errors import InvalidInput
from acd.journal import JournaledEngine, SqliteJournal
from acd.journal.calls import CallLog, replay_journal
from acd.policy import Queue
from acd.service import Dispatcher
from acd.service.config import config_from_dict
from acd.service.survey import SurveyLog, selected
from agi_support import split_args
from fakes.channel import agi
from fakes.pbx import FakePBX, PhoneBehaviour
from service_support import make_config, run, state, until

NAN = math.nan


def survey_config(tmp_path, fastagi: Any = None, **survey: Any) -> Any:
    more = {"fastagi": fastagi} if fastagi else {}
    return make_config(tmp_path, survey={"enabled": True, "timeout": 1.0, **survey}, **more)


def notes(d: Dispatcher) -> List[Dict[str, Any]]:
    return [args[1] for _, op, args in d.engine.journal.records() if op == "note" and args[0] == "survey"]


async def answered_call(d: Dispatcher, call: str, agent: str = "1001") -> Dict[str, str]:
    """``agent`` logged in (if need be), ``call`` offered to them and answered (the U() report on
    the agent's leg); the enqueue's variables."""
    port = d.fastagi_port
    if d.commands.agent_state(agent) in (None, "logged_out"):
        await agi(port, f"agent_login?agent={agent}")
    ch = await agi(port, "enqueue?queue=support", uniqueid=call)
    assert ch.variables["ACD_STATUS"] == "OK" and ch.variables["ACD_AGENT"] == agent
    await agi(port, f"dial_result?call={call}&status=ANSWER&agent={agent}", uniqueid=call + "-agent")
    assert state(d, call) == "connected"
    return ch.variables


def get_data(ch: Any) -> List[List[str]]:
    return [split_args(c)[2:] for c in ch.commands if c.startswith("GET DATA")]


# ------------------------------------------------------------------ who is asked

def test_selection_is_a_hash_of_the_call_id_near_the_share():
    ids = [f"17000{i:05d}.{i % 97}" for i in range(20_000)]
    picked = [selected(c, 0.3) for c in ids]
    assert picked == [selected(c, 0.3) for c in ids]            # the same every time (no draw)
    assert abs(sum(picked) / len(ids) - 0.3) < 0.015
    assert not any(selected(c, 0.0) for c in ids[:500]) and all(selected(c, 1.0) for c in ids[:500])
    # a larger share keeps everyone a smaller one had (growing the share never drops a caller)
    assert all(selected(c, 0.5) for c, p in zip(ids, picked) if p)


def test_survey_config_errors_name_the_field_and_value():
    base = {"queues": [{"name": "support"}]}
    cfg = config_from_dict(base)
    assert not cfg.survey.enabled and cfg.survey.share == 1.0 and cfg.survey.retries == 1
    for bad, message in (({"share": 1.5}, "survey.share must be a number in 0..1"),
                         ({"share": True}, "survey.share"),
                         ({"retries": 4}, "survey.retries must be an int in 0..3, got 4"),
                         ({"timeout": 0}, "survey.timeout must be a positive"),
                         ({"question": "a b"}, "survey.question must be a sound file name"),
                         ({"solved": "yes"}, "survey.solved must be true or false, got 'yes'"),
                         ({"prompt": "x"}, "unknown field")):
        with pytest.raises(InvalidInput, match=message):
            config_from_dict({**base, "survey": bad})


# ------------------------------------------------------------------ the route

def test_valid_score_completes_the_call_and_is_journaled(tmp_path):
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path))
        await d.start()
        try:
            v = await answered_call(d, "1700000001.1")
            assert v["ACD_SURVEY"] == "1"
            ch = await agi(d.fastagi_port, "survey", uniqueid="1700000001.1", digits="4")
            assert ch.variables["ACD_SURVEY_STATUS"] == "ANSWERED" and ch.variables["ACD_SURVEY_SCORE"] == "4"
            assert get_data(ch) == [["acd-survey-question", "1000", "1"]]
            assert ch.saw("STREAM FILE acd-survey-thanks")
            # the agent hung up before the survey: the call is over for them, wrap-up starts
            assert state(d, "1700000001.1") is None and d.engine.agent_state("1001") != "busy"
            assert notes(d) == [{"call": "1700000001.1", "agent": "1001", "queue": "support", "answered": True,
                                 "score": 4, "solved": None, "reason": "answered"}]
            # once only: a second run (a retried AGI) asks nothing
            again = await agi(d.fastagi_port, "survey", uniqueid="1700000001.1", digits="5")
            assert again.variables["ACD_SURVEY_STATUS"] == "SKIPPED" and not get_data(again)
            assert len(notes(d)) == 1
            # the hang-up handler after it finds the call ended
            end = await agi(d.fastagi_port, "call_end?status=ANSWER", uniqueid="1700000001.1")
            assert end.variables["ACD_STATUS"] == "OK" and end.saw("VERBOSE acd: call 1700000001.1 end: already")
        finally:
            await d.stop()

    run(main())


def test_invalid_then_valid_and_no_input(tmp_path):
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path))
        await d.start()
        try:
            port = d.fastagi_port
            await answered_call(d, "1700000002.1")
            ch = await agi(port, "survey", uniqueid="1700000002.1", digits=["9", "3"])
            assert ch.variables["ACD_SURVEY_SCORE"] == "3" and len(get_data(ch)) == 2
            assert ch.saw("STREAM FILE acd-survey-invalid")
            await answered_call(d, "1700000002.2")
            ch = await agi(port, "survey", uniqueid="1700000002.2")            # presses nothing
            assert ch.variables["ACD_SURVEY_STATUS"] == "NOT_ANSWERED" and ch.variables["ACD_SURVEY_SCORE"] == ""
            assert len(get_data(ch)) == 2 and not ch.saw("STREAM FILE acd-survey-invalid")
            assert not ch.saw("STREAM FILE acd-survey-thanks")
            await answered_call(d, "1700000002.3")
            ch = await agi(port, "survey", uniqueid="1700000002.3", digits=["0", "#7"])
            assert ch.variables["ACD_SURVEY_STATUS"] == "NOT_ANSWERED"
            got = [(n["call"], n["answered"], n["score"], n["reason"]) for n in notes(d)]
            assert got == [("1700000002.1", True, 3, "answered"), ("1700000002.2", False, None, "no_input"),
                           ("1700000002.3", False, None, "invalid")]
        finally:
            await d.stop()

    run(main())


def test_no_retry_when_retries_is_zero(tmp_path):
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path, retries=0))
        await d.start()
        try:
            await answered_call(d, "1700000003.1")
            ch = await agi(d.fastagi_port, "survey", uniqueid="1700000003.1", digits=["9", "3"])
            assert len(get_data(ch)) == 1 and ch.variables["ACD_SURVEY_STATUS"] == "NOT_ANSWERED"
        finally:
            await d.stop()

    run(main())


def test_hang_up_mid_survey_ends_cleanly_and_journals_not_answered(tmp_path):
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path, solved=True))
        await d.start()
        try:
            port = d.fastagi_port
            hangups = d.fastagi.stats.hangups
            await answered_call(d, "1700000004.1")
            # Asterisk 22: GET DATA answers result=-1, then HANGUP, then 511 to what follows
            ch = await agi(port, "survey", uniqueid="1700000004.1", digits=[None])
            assert "ACD_SURVEY_STATUS" not in ch.variables and "ACD_ERROR" not in ch.variables
            await until(lambda: d.fastagi.stats.hangups == hangups + 1, what="the session counted as a hang-up")
            # a hang-up at the second question keeps the score given before it
            await answered_call(d, "1700000004.2")
            await agi(port, "survey", uniqueid="1700000004.2", digits=["5", None])
            got = [(n["answered"], n["score"], n["solved"], n["reason"]) for n in notes(d)]
            assert got == [(False, None, None, "hangup"), (True, 5, None, "hangup")]
            assert state(d, "1700000004.1") is None and state(d, "1700000004.2") is None
        finally:
            await d.stop()

    run(main())


def test_second_question(tmp_path):
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path, solved=True, solved_question="custom/solved"))
        await d.start()
        try:
            port = d.fastagi_port
            for call, digits in (("1700000005.1", ["5", "1"]), ("1700000005.2", ["2", "2"]),
                                 ("1700000005.3", ["4", "3", ""])):
                await answered_call(d, call)
                ch = await agi(port, "survey", uniqueid=call, digits=digits)
                assert [g[0] for g in get_data(ch)][:2] == ["acd-survey-question", "custom/solved"]
            got = [(n["score"], n["solved"], n["reason"]) for n in notes(d)]
            assert got == [(5, True, "answered"), (2, False, "answered"), (4, None, "answered")]
        finally:
            await d.stop()

    run(main())


def test_skipped_calls_hear_nothing(tmp_path):
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path, share=0.0))
        await d.start()
        try:
            v = await answered_call(d, "1700000006.1")
            assert v["ACD_SURVEY"] == "0"
            ch = await agi(d.fastagi_port, "survey", uniqueid="1700000006.1", digits="5")
            assert ch.variables["ACD_SURVEY_STATUS"] == "SKIPPED" and not get_data(ch)
            assert state(d, "1700000006.1") == "connected"          # left to the hang-up handler
            never = await agi(d.fastagi_port, "survey?call=1700000099.9", digits="5")   # never answered
            assert never.variables["ACD_SURVEY_STATUS"] == "SKIPPED"
            bad = await agi(d.fastagi_port, "survey?score=5")
            assert bad.variables["ACD_ERROR"] == "INVALID_INPUT"
            assert notes(d) == []
        finally:
            await d.stop()
        (tmp_path / "b").mkdir()
        d = Dispatcher(make_config(tmp_path / "b"))                 # [survey] disabled (the default)
        await d.start()
        try:
            v = await answered_call(d, "1700000006.2")
            assert "ACD_SURVEY" not in v
            ch = await agi(d.fastagi_port, "survey", uniqueid="1700000006.2", digits="5")
            assert ch.variables["ACD_SURVEY_STATUS"] == "SKIPPED"
        finally:
            await d.stop()

    run(main())


def test_a_restart_keeps_who_answered_and_who_was_surveyed(tmp_path):
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path))
        await d.start()
        try:
            await answered_call(d, "1700000007.1")
            await answered_call(d, "1700000007.2", agent="1002")
            d.complete("1700000007.2")
            await agi(d.fastagi_port, "survey", uniqueid="1700000007.2", digits="2")
        finally:
            await d.stop()
        d = Dispatcher(survey_config(tmp_path))
        await d.start()
        try:
            # the agent and queue come from the replayed journal; the surveyed call is not asked again
            ch = await agi(d.fastagi_port, "survey", uniqueid="1700000007.1", digits="5")
            assert ch.variables["ACD_SURVEY_STATUS"] == "ANSWERED"
            again = await agi(d.fastagi_port, "survey", uniqueid="1700000007.2", digits="5")
            assert again.variables["ACD_SURVEY_STATUS"] == "SKIPPED"
            assert [(n["call"], n["agent"], n["score"]) for n in notes(d)] == [("1700000007.2", "1002", 2),
                                                                              ("1700000007.1", "1001", 5)]
        finally:
            await d.stop()

    run(main())


def test_survey_log_forgets_the_oldest_ended_calls():
    from acd._core import Assign
    log = SurveyLog(keep=2)
    for i in range(4):
        call = f"c{i}"
        log.apply(1, "enqueue", (call, "q", 0.0), [Assign(call, "a1", "q", 0.0)])
        log.apply(2, "answer", (call, 1.0), [])
        log.apply(3, "complete", (call, 2.0), [])
    assert log.get("c0") is None and log.get("c1") is None and log.get("c3").agent == "a1"
    log.apply(4, "enqueue", ("c9", "q", 0.0), [Assign("c9", "a2", "q", 0.0)])
    log.apply(5, "ring_no_answer", ("c9", 1.0), [])
    log.apply(6, "answer", ("c9", 2.0), [])                  # no offer stands: not an answer by anyone
    assert log.get("c9") is None


@pytest.fixture
def sock_dir():
    d = tempfile.mkdtemp(prefix="acd-", dir="/tmp")  # AF_UNIX paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_the_classic_relay_path_serves_the_survey(tmp_path, sock_dir):
    import asyncio

    from acd.adapters.asterisk.agi import main as agi_script
    unix_path = os.path.join(sock_dir, "agi.sock")

    def classic(*args: str) -> Dict[str, str]:
        env = {"agi_request": "/usr/local/bin/acd-agi", "agi_channel": "PJSIP/trunk-00000001",
               "agi_uniqueid": "1700000008.1", "agi_callerid": "0612345678", "agi_language": "en"}
        env.update({f"agi_arg_{i}": a for i, a in enumerate(args, 1)})
        # every reply "200 result=1": GET DATA reads the digit 1
        stdin = ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode() + b"200 result=1\n" * 20
        out = io.BytesIO()
        code = agi_script([], stdin=io.BytesIO(stdin), stdout=out, stderr=io.StringIO(), socket_path=unix_path,
                          connect_timeout=2)
        assert code == 0
        cmds = [split_args(line) for line in out.getvalue().decode().splitlines()]
        return {c[2]: c[3] for c in cmds if c[:2] == ["SET", "VARIABLE"]}

    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path, fastagi={"port": 0, "unix_path": unix_path}))
        await d.start()
        try:
            await answered_call(d, "1700000008.1")
            v = await asyncio.to_thread(classic, "survey")
            assert v["ACD_SURVEY_STATUS"] == "ANSWERED" and v["ACD_SURVEY_SCORE"] == "1"
            assert notes(d)[0]["score"] == 1
        finally:
            await d.stop()

    run(main())


def test_callers_of_the_example_dialplan_take_the_survey(tmp_path):
    """The fake PBX runs extensions.conf: Dial(...,g), dial_result, then survey when ACD_SURVEY=1."""
    async def main() -> None:
        d = Dispatcher(survey_config(tmp_path, share=0.5))
        await d.start()
        pbx = await FakePBX(d.fastagi_port, seed=1, behaviour=PhoneBehaviour(no_answer=0.0, talk=(0.05, 0.1),
                                                                         after_dial=True, survey_press="5")).start()
        try:
            await agi(d.fastagi_port, "agent_login?agent=1001")
            calls = [f"1700000009.{i}" for i in range(8)]
            for call in calls:
                assert await pbx.caller(call, "0612345678", patience=30) == "talked"
            await until(lambda: not pbx.tasks, what="the callers' hang-up handlers")
            want = [c for c in calls if selected(c, 0.5)]
            assert 0 < len(want) < len(calls)
            assert [(n["call"], n["score"]) for n in notes(d)] == [(c, 5) for c in want]
            assert all(state(d, c) is None for c in calls)
        finally:
            await pbx.stop()
            await d.stop()

    run(main())


# ------------------------------------------------------------------ figures

def surveyed_journal(path: str) -> JournaledEngine:
    """Four answered calls of two queues and two agents, three surveyed (by hand below)."""
    je = JournaledEngine(SqliteJournal(path, sync="normal"))
    je.add_skill("fr")
    je.add_queue(Queue("info"))
    je.add_queue(Queue("sales"))
    je.note("clock", {"engine": 0.0, "unix": 1_764_576_000.0})        # 2025-12-01 08:00 UTC
    je.login("a1", {"fr": 1}, 0.0)
    je.login("a2", {"fr": 1}, 0.0)
    je.enqueue("c1", "info", 10.0)        # -> a1
    je.enqueue("c2", "info", 11.0)        # -> a2
    je.answer("c1", 12.0)
    je.answer("c2", 13.0)
    je.complete("c1", 100.0)
    je.note("survey", {"call": "c1", "agent": "a1", "queue": "info", "answered": True, "score": 5,
                       "solved": True, "reason": "answered"})
    je.complete("c2", 110.0)
    je.note("survey", {"call": "c2", "agent": "a2", "queue": "info", "answered": True, "score": 2,
                       "solved": False, "reason": "answered"})
    je.enqueue("c3", "sales", 120.0)      # -> a1 (longest idle)
    je.answer("c3", 121.0)
    je.complete("c3", 200.0)
    je.note("survey", {"call": "c3", "agent": "a1", "queue": "sales", "answered": False, "score": None,
                       "solved": None, "reason": "hangup"})
    je.enqueue("c4", "sales", 210.0)
    je.answer("c4", 211.0)
    je.complete("c4", 300.0)              # not surveyed
    return je


def test_call_log_puts_the_survey_notes_on_the_calls(tmp_path):
    je = surveyed_journal(str(tmp_path / "j.sqlite3"))
    log = replay_journal(je.journal, CallLog)
    rec = log.records()
    assert log.call_ids() == ["c1", "c2", "c3", "c4"]
    assert rec["surveyed"].tolist() == [True, True, True, False]
    np.testing.assert_array_equal(rec["csat"], [5.0, 2.0, NAN, NAN])
    np.testing.assert_array_equal(rec["solved"], [1.0, 0.0, NAN, NAN])
    s = kpi.summary(rec, log.queue_names)
    # info: two scores (5, 2): mean 3.5, one of two 4-5; sales: one asked, no score
    assert (s["info"]["surveys"], s["info"]["csat_responses"], s["info"]["csat_mean"]) == (2, 2, 3.5)
    assert s["info"]["csat_share"] == 0.5 and s["info"]["solved_rate"] == 0.5
    assert (s["sales"]["surveys"], s["sales"]["csat_responses"], s["sales"]["csat_response_rate"]) == (1, 0, 0.0)
    assert math.isnan(s["sales"]["csat_mean"]) and math.isnan(s["sales"]["csat_share"])
    assert (s["all"]["surveys"], s["all"]["csat_responses"]) == (3, 2)
    assert s["all"]["csat_response_rate"] == pytest.approx(2 / 3)
    a = kpi.per_agent(rec)
    names = [log.agent_names[i] for i in a["agent"]]
    by = {n: (int(a["csat_responses"][i]), float(a["csat_mean"][i]), float(a["csat_share"][i]))
          for i, n in enumerate(names)}
    assert by == {"a1": (1, 5.0, 1.0), "a2": (1, 2.0, 0.0)}
    je.close()


def test_acd_report_shows_csat(tmp_path):
    from acd.cli import main as acd_main
    path = str(tmp_path / "j.sqlite3")
    surveyed_journal(path).close()

    def report(*extra: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        assert acd_main(["report", path, *extra], out=out, err=err) == 0, err.getvalue()
        return out.getvalue()

    got = json.loads(report("--format", "json"))
    assert got["summary"]["info"]["csat_mean"] == 3.5 and got["summary"]["all"]["csat_share"] == 0.5
    assert got["summary"]["sales"]["csat_mean"] is None
    assert [r["csat_responses"] for r in got["per_interval"]] == [2]
    assert {r["agent"]: r["csat_mean"] for r in got["per_agent"]} == {"a1": 5.0, "a2": 2.0}
    table = report()
    lines = table.splitlines()
    row = next(ln for ln in lines if ln.startswith("CSAT mean 1-5")).split()
    assert row[-3:] == ["3.5", "-", "3.5"]                   # info, sales, all
    assert any(ln.startswith("CSAT (4-5)") and ln.split()[-2:] == ["50.0", "%"] for ln in lines)
    assert "CSAT mean" in lines[lines.index("per agent") + 1]
    assert "csat_share" in report("--format", "csv")


# ------------------------------------------------------------------ kpi

def records(rows: List[tuple]) -> np.ndarray:
    """(queue, arrival, agent, surveyed, csat, solved) of answered calls."""
    from acd.sim.records import call_record_array
    n = len(rows)
    q, arr, ag, sv, cs, so = zip(*rows)
    return call_record_array(n, call=np.arange(n), queue=q, arrival=arr, answered=np.array(arr) + 5,
                             ended=np.array(arr) + 60, outcome=kpi.ANSWERED, agent=ag, talk=55.0,
                             surveyed=sv, csat=cs, solved=so)


def test_kpi_csat_by_queue_interval_and_agent():
    r = records([
        (0, 0.0, 0, True, 5, 1.0), (0, 100.0, 1, True, 4, NAN), (0, 200.0, 0, True, 1, 0.0),
        (1, 1900.0, 1, True, NAN, NAN), (1, 2000.0, 1, False, NAN, NAN), (1, 2100.0, 0, True, 3, 1.0),
    ])
    s = kpi.summary(r, ["a", "b"])
    assert (s["a"]["surveys"], s["a"]["csat_responses"], s["a"]["csat_mean"]) == (3, 3, 10 / 3)
    assert s["a"]["csat_share"] == pytest.approx(2 / 3) and s["a"]["csat_response_rate"] == 1.0
    assert (s["a"]["solved_responses"], s["a"]["solved_rate"]) == (2, 0.5)
    assert (s["b"]["surveys"], s["b"]["csat_responses"], s["b"]["csat_mean"], s["b"]["csat_share"]) == (2, 1, 3.0, 0.0)
    assert s["all"]["csat_mean"] == pytest.approx(13 / 4) and s["all"]["csat_share"] == 0.5
    assert type(s["all"]["surveys"]) is int and type(s["all"]["csat_mean"]) is float
    p = kpi.per_interval(r, ["a", "b"], interval=1800)
    assert p["csat_responses"].tolist() == [3, 1] and p["surveys"].tolist() == [3, 2]
    np.testing.assert_allclose(p["csat_mean"], [10 / 3, 3.0])
    a = kpi.per_agent(r)
    assert a["agent"].tolist() == [0, 1] and a["csat_responses"].tolist() == [3, 1]
    np.testing.assert_allclose(a["csat_mean"], [3.0, 4.0])
    np.testing.assert_allclose(a["csat_share"], [1 / 3, 1.0])
    text = kpi.format_table(p)
    assert "CSAT mean" in text.splitlines()[0]


def test_kpi_csat_without_surveys():
    # a simulated day: no survey, NaN figures, and no survey rows in the text tables
    r = records([(0, 0.0, 0, False, NAN, NAN)])
    s = kpi.summary(r, ["a"])
    assert s["all"]["surveys"] == 0 and math.isnan(s["all"]["csat_mean"]) and math.isnan(s["all"]["csat_share"])
    assert "CSAT" not in kpi.format_table(s) and "CSAT" not in kpi.format_table(kpi.per_agent(r))
    assert "CSAT" not in kpi.format_table(kpi.per_interval(r, ["a"]))
    # zero-filled records (np.zeros) and a score outside 1..5 count as no answer
    z = np.zeros(2, dtype=kpi.CALL_RECORD)
    z["surveyed"] = [True, False]
    z["csat"] = [0.0, 5.0]
    s = kpi.summary(z, ["a"])
    assert (s["all"]["surveys"], s["all"]["csat_responses"]) == (1, 0)
    # records of an older dtype, without the survey columns, still work
    old = np.zeros(1, dtype=[(n, kpi.CALL_RECORD[n]) for n in kpi.CALL_RECORD.names
                             if n not in ("surveyed", "csat", "solved")])
    assert kpi.summary(old, ["a"])["all"]["surveys"] == 0
    assert kpi.per_agent(old)["csat_responses"].tolist() == [0]     # agent 0 answered, no score


def test_the_simulator_leaves_the_survey_columns_empty():
    from acd.sim import bundled_scenario, simulate
    res = simulate(bundled_scenario("small_helpdesk").scaled(0.05), seed=1)
    assert len(res.records) and not res.records["surveyed"].any() and np.isnan(res.records["csat"]).all()
    assert res.summary()["all"]["surveys"] == 0
