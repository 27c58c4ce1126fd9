"""`acd serve` end to end on loopback: a fake Asterisk (FastAGI calls, AMI) against the Dispatcher."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from acd.errors import InvalidState, JournalError, UnknownCall
from acd.journal import JournaledEngine
from acd.service import Dispatcher
from acd.service.http.dashboard import render_dashboard
from agi_support import split_args
from fakes.ami import FakeAMI
from fakes.channel import FakeChannel, agi
from service_support import callback_pending, http_get, make_config, run, state, until

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ tests

def test_assign_answer_complete_over_fastagi(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            port = d.fastagi_port
            login = await agi(port, "agent_login", callerid="1001")
            assert login.variables["ACD_STATUS"] == "OK" and login.variables["ACD_AGENT"] == "1001"
            assert d.engine.agent_state("1001") == "available"
            assert any("logged in" in c for c in login.commands if c.startswith("VERBOSE"))

            call = await agi(port, "enqueue?queue=support&priority=2", uniqueid="1700000000.11")
            v = call.variables
            assert v["ACD_STATUS"] == "OK" and v["ACD_AGENT"] == "1001" and v["ACD_AGENT_DIAL"] == "PJSIP/1001"
            assert v["ACD_QUEUE"] == "support" and v["ACD_WAIT"] == "0"
            assert call.commands[0] == "ANSWER"
            assert state(d, "1700000000.11") == "offered"

            res = await agi(port, "dial_result?status=ANSWER", uniqueid="1700000000.11")
            assert res.variables["ACD_STATUS"] == "OK" and res.variables["ACD_REQUEUE"] == "0"
            assert state(d, "1700000000.11") == "connected" and d.engine.agent_state("1001") == "busy"
            again = await agi(port, "dial_result?status=ANSWER", uniqueid="1700000000.11")  # after Dial returns
            assert again.variables["ACD_STATUS"] == "OK"

            # a pause asked during the call waits for its end (shown on the dashboard); ready withdraws it
            during = await agi(port, "agent_pause?reason=lunch", callerid="1001")
            assert during.variables["ACD_STATUS"] == "OK" and during.variables["ACD_AGENT_STATE"] == "busy"
            assert d.status()["agents"]["1001"]["after_call"] == "pause"
            assert "pause after this call" in render_dashboard(d.status())
            await agi(port, "agent_ready?agent=1001", callerid="999")
            assert d.status()["agents"]["1001"]["after_call"] is None

            end = await agi(port, "call_end", uniqueid="1700000000.11")
            assert end.variables["ACD_STATUS"] == "OK"
            assert state(d, "1700000000.11") is None
            snap = d.engine.snapshot()
            assert snap["queues"]["support"]["answered"] == 1
            assert d.engine.agent_state("1001") == "available"  # wrap_up = 0
            sl = d.status()["queues"]["support"]["service_level"]
            assert sl["answered"] == 1 and sl["answered_within"] == 1 and sl["measured"] == 1.0

            # agent feature codes
            pause = await agi(port, "agent_pause?reason=lunch", callerid="1001")
            assert pause.variables["ACD_AGENT_STATE"] == "paused"
            assert d.engine.snapshot()["agents"]["1001"]["reason"] == "lunch"
            ready = await agi(port, "agent_ready?agent=1001", callerid="999")
            assert ready.variables["ACD_AGENT_STATE"] == "available"
            out = await agi(port, "agent_logout", callerid="1001")
            assert out.variables["ACD_STATUS"] == "OK"
            assert out.variables["ACD_AGENT_STATE"] == "logged_out"
        finally:
            await d.stop()

    run(main())


def test_errors_reach_the_channel(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            port = d.fastagi_port
            cases = {
                "agent_login": "UNKNOWN_AGENT",                       # caller id 0612345678 is nobody
                "agent_login?agent=999": "UNKNOWN_AGENT",
                "enqueue?queue=nope": "UNKNOWN_QUEUE",
                "enqueue": "INVALID_INPUT",                           # queue missing
                "enqueue?queue=support&priority=12": "INVALID_INPUT",
                "enqueue?queue=support&color=red": "INVALID_INPUT",
                "dial_result?status=MAYBE": "INVALID_INPUT",
                "dial_result?status=ANSWER": "UNKNOWN_CALL",
                "agent_ready?agent=1002": "UNKNOWN_AGENT",            # not logged in
            }
            for script, code in cases.items():
                ch = await agi(port, script, uniqueid="1700000000.12")
                assert ch.variables.get("ACD_STATUS") == "ERROR", script
                assert ch.variables.get("ACD_ERROR") == code, (script, ch.variables)
            ch = await agi(port, "enqueue?queue=support&priority=12")
            assert "priority must be an int in 0..9, got '12'" in ch.variables["ACD_ERROR_DETAIL"]
            assert not ch.saw("ANSWER")  # refused before answering
            await agi(port, "agent_login?agent=1002")
            dup = await agi(port, "agent_login?agent=1002")
            assert dup.variables["ACD_ERROR"] == "DUPLICATE_ID"
        finally:
            await d.stop()

    run(main())


def test_hangup_while_waiting_abandons(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, queue={"announce_on_join": True}))
        await d.start()
        try:
            ch = await FakeChannel(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.21").start()
            await until(lambda: state(d, "1700000000.21") == "waiting", what="call waiting")
            await until(lambda: ch.saw("SET MUSIC on default"), what="music on hold")
            assert ch.saw("STREAM FILE queue-youarenext")     # announce on join, first in line
            await ch.hangup()
            await ch.done()
            await until(lambda: state(d, "1700000000.21") is None, what="call abandoned")
            q = d.engine.snapshot()["queues"]["support"]
            assert q["abandoned"] == 1 and q["waiting"] == 0
            assert d.status()["queues"]["support"]["service_level"]["abandoned"] == 1
            assert "ACD_AGENT" not in ch.variables
        finally:
            await d.stop()

    run(main())


def test_announcements_then_max_wait_exit_from_the_clock(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, queue={"announce_on_join": True, "announce_every": 0.15,
                                                    "max_wait": 0.4, "expected_handle_time": 300}))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "enqueue?queue=support", uniqueid="1700000000.25")     # takes the only agent
            ch = await agi(port, "enqueue?queue=support", uniqueid="1700000000.26")  # waits, then exits
            assert ch.variables["ACD_STATUS"] == "EXIT" and ch.variables["ACD_EXIT_REASON"] == "max_wait"
            assert ch.variables["ACD_QUEUE"] == "support" and "ACD_AGENT" not in ch.variables
            words = [" ".join(w for w in split_args(c) if w) for c in ch.commands]
            # on join: first in line, about 5 minutes (one agent, 300 s handle time)
            assert words[:2] == ["ANSWER", "STREAM FILE queue-youarenext"]   # no music before the announcement
            i = words.index("STREAM FILE queue-youarenext")
            assert words[i + 1:i + 4] == ["STREAM FILE queue-holdtime", "SAY NUMBER 5", "STREAM FILE queue-minutes"]
            assert words.count("STREAM FILE queue-youarenext") >= 2   # periodic announcements (clock task)
            assert "SET MUSIC on default" in words and words[-5] == "SET MUSIC off"
            assert words[-1].startswith("VERBOSE") and "max_wait" in words[-1]
            assert state(d, "1700000000.26") is None
            assert d.engine.snapshot()["queues"]["support"]["exited"] == 1
            assert d.decision_counts["Exit"] == 1 and d.decision_counts["Announce"] >= 2
        finally:
            await d.stop()

    run(main())


def test_queue_state_rule_refuses_over_agi_and_survives_a_restart(tmp_path):
    """join_when_no_agents="refuse" and max_length from acd.toml: the AGI route ends with EXIT and the
    rule's reason; the journal keeps the queue's rules across a restart."""
    async def main() -> None:
        cfg = make_config(tmp_path, queue={"join_when_no_agents": "refuse", "max_length": 1})
        d = Dispatcher(cfg)
        await d.start()
        try:
            port = d.fastagi_port
            ch = await agi(port, "enqueue?queue=support", uniqueid="1700000000.31")
            assert ch.variables["ACD_STATUS"] == "EXIT" and ch.variables["ACD_EXIT_REASON"] == "no_agents"
            assert ch.variables["ACD_QUEUE"] == "support"
            assert state(d, "1700000000.31") is None
            q = d.engine.snapshot()["queues"]["support"]
            assert (q["entered"], q["refused"], q["exited"]) == (1, 1, 0)
        finally:
            await d.stop()
        d = Dispatcher(cfg)
        await d.start()
        try:
            assert d.engine.snapshot()["queues"]["support"]["refused"] == 1   # rebuilt from the journal
            ch = await agi(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.32")
            assert ch.variables["ACD_EXIT_REASON"] == "no_agents"
        finally:
            await d.stop()

    run(main())


def test_ring_no_answer_requeues_and_the_caller_keeps_its_place(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, engine={"ring_no_answer": "pause"}))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            first = await agi(port, "enqueue?queue=support", uniqueid="1700000000.31")
            assert first.variables["ACD_AGENT"] == "1001"
            res = await agi(port, "dial_result?status=NOANSWER", uniqueid="1700000000.31")
            assert res.variables["ACD_REQUEUE"] == "1"
            assert state(d, "1700000000.31") == "waiting"
            assert d.engine.agent_state("1001") == "paused"   # ring_no_answer = pause
            # the dialplan loops back to enqueue: same call, resumed
            again = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000000.31").start()
            await until(lambda: again.saw("SET MUSIC on"), what="caller back on hold")
            await agi(port, "agent_login?agent=1002")
            await again.done()
            assert again.variables["ACD_AGENT"] == "1002" and again.variables["ACD_STATUS"] == "OK"
            assert d.engine.snapshot()["queues"]["support"]["entered"] == 1  # not enqueued twice
            # BUSY -> reject, then the caller hangs up during Dial: CANCEL -> abandon
            res = await agi(port, "dial_result?status=BUSY", uniqueid="1700000000.31")
            assert res.variables["ACD_REQUEUE"] == "1"
            end = await agi(port, "call_end?status=", uniqueid="1700000000.31")  # the h extension
            assert end.variables["ACD_STATUS"] == "OK"
            assert state(d, "1700000000.31") is None
        finally:
            await d.stop()

    run(main())


def test_requeued_call_not_picked_up_again_by_the_dialplan_is_abandoned(tmp_path):
    async def main() -> None:
        cfg = make_config(tmp_path, engine={"ring_no_answer": "ready"},
                          service={"shutdown_timeout": 2.0, "reattach_timeout": 0.2})
        d = Dispatcher(cfg)
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "enqueue?queue=support", uniqueid="1700000000.35")
            res = await agi(port, "dial_result?status=NOANSWER", uniqueid="1700000000.35")
            assert res.variables["ACD_REQUEUE"] == "1"
            # the agent is ready again at once and the call offered again, but nobody runs enqueue
            await until(lambda: state(d, "1700000000.35") is None, what="abandon after reattach_timeout")
            assert d.engine.agent_state("1001") == "available"
        finally:
            await d.stop()

    run(main())


def test_call_end_without_an_answer_report(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "enqueue?queue=support", uniqueid="1700000000.41")
            # the caller talked and hung up: only the h extension reports, with ${DIALSTATUS}
            await agi(port, "call_end?status=ANSWER", uniqueid="1700000000.41")
            q = d.engine.snapshot()["queues"]["support"]
            assert q["answered"] == 1 and state(d, "1700000000.41") is None
            end = await agi(port, "call_end", uniqueid="1700000000.41")      # twice: harmless
            assert end.variables["ACD_STATUS"] == "OK"
        finally:
            await d.stop()

    run(main())


def test_callback_offer_accepted_then_dialled_back_over_ami(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        cfg = make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30, "announce_on_join": True})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "agent_pause?agent=1001&reason=meeting")      # nobody free: infinite wait
            ch = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000000.51",
                                   callerid="0612345678", digits="1").start()
            await ch.done()
            assert ch.saw("GET DATA acd-callback-offer 1000 1")
            assert ch.variables["ACD_STATUS"] == "CALLBACK"
            assert ch.saw("STREAM FILE acd-callback-accepted")
            assert state(d, "1700000000.51") == "callback_pending"
            assert not fake.originates

            await agi(port, "agent_ready?agent=1001")                     # the agent frees up: DialBack
            await until(lambda: state(d, "1700000000.51") == "connected", what="call-back answered")
            assert len(fake.originates) == 1
            orig = fake.originates[0]
            fields = dict(orig)
            assert fields["Channel"] == "PJSIP/1001" and fields["Context"] == "acd-callback"
            assert fields["Exten"] == "s" and fields["Priority"] == "1" and fields["Timeout"] == "2000"
            assert ("Variable", "ACD_CALL=1700000000.51") in orig
            assert ("Variable", "ACD_CALLBACK_NUMBER=0612345678") in orig
            assert d.engine.snapshot()["queues"]["support"]["callbacks"]["reached"] == 1
            # the call-back context's h extension ends it
            await agi(port, "call_end?call=1700000000.51", uniqueid="1700000099.1")
            assert state(d, "1700000000.51") is None
            assert d.status()["service"]["callbacks_known"] == 0
        finally:
            await d.stop()
            await fake.stop()

    run(main())


def test_callback_customer_not_reached_is_rescheduled_then_given_up(tmp_path, caplog):
    async def main() -> FakeAMI:
        fake = await FakeAMI().start()
        cfg = make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30, "callback_attempts": 2,
                                                               "callback_retry_delay": 0.2})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            port = d.fastagi_port
            await callback_pending(d, "1700000000.55")
            await agi(port, "agent_ready?agent=1001")
            await until(lambda: state(d, "1700000000.55") == "connected", what="first call-back")
            # the agent answered, the customer did not: the call-back context reports it
            res = await agi(port, "callback_result?call=1700000000.55&status=NOANSWER", uniqueid="1700000099.1")
            assert res.variables["ACD_STATUS"] == "OK"
            assert state(d, "1700000000.55") == "scheduled"
            end = await agi(port, "call_end?call=1700000000.55&status=NOANSWER", uniqueid="1700000099.1")
            assert end.variables["ACD_STATUS"] == "OK" and state(d, "1700000000.55") == "scheduled"
            await until(lambda: state(d, "1700000000.55") == "connected", what="second call-back")
            assert len(fake.originates) == 2
            # second failure, reported by the h extension only (the agent hung up while it rang): give up
            await agi(port, "call_end?call=1700000000.55&status=CANCEL", uniqueid="1700000099.2")
            assert state(d, "1700000000.55") is None
            assert d.status()["service"]["callbacks_known"] == 0
        finally:
            await d.stop()
            await fake.stop()
        return fake

    run(main())
    gave_up = [r for r in caplog.records if getattr(r, "acd", {}).get("event") == "callback_gave_up"]
    assert len(gave_up) == 1 and gave_up[0].acd["number"] == "0612345678"


def test_callback_offer_declined_keeps_waiting(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        d = Dispatcher(make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30}))
        await d.start()
        try:
            ch = await FakeChannel(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.52",
                                   digits="").start()
            await until(lambda: ch.saw("GET DATA"), what="offer")
            await until(lambda: ch.saw("SET MUSIC on"), what="on hold after declining")
            assert " ".join(split_args(ch.commands[1])).startswith("GET DATA")   # the offer came first
            assert state(d, "1700000000.52") == "waiting"
            await agi(d.fastagi_port, "agent_login?agent=1002")
            await ch.done()
            assert ch.variables["ACD_AGENT"] == "1002"
        finally:
            await d.stop()
            await fake.stop()

    run(main())


def test_callback_with_the_manager_unreachable_is_retried_not_lost(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        port_ami = fake.port
        cfg = make_config(tmp_path, ami_port=port_ami, queue={"callback_threshold": 30, "callback_retry_delay": 60})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            ch = await callback_pending(d, "1700000000.53")
            assert ch.variables["ACD_STATUS"] == "CALLBACK"
            await fake.stop()                                   # Asterisk's manager goes away
            await until(lambda: not d.ami_connected, what="AMI down")
            d.ready("1001")
            await until(lambda: state(d, "1700000000.53") == "callback_retry", timeout=8, what="retry")
            assert d.engine.agent_state("1001") == "available"
            assert d.command_counts["callback_failed"] == 1
        finally:
            await d.stop()

    run(main())


def test_restart_keeps_a_pending_callback(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        cfg = make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30})
        d = Dispatcher(cfg)
        await d.start()
        try:
            ch = await callback_pending(d, "1700000000.61", callerid="+33612345678")
            assert ch.variables["ACD_STATUS"] == "CALLBACK"
            waiting = await FakeChannel(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.62").start()
            await until(lambda: state(d, "1700000000.62") == "waiting", what="second caller waiting")
            before = d.engine.now
        finally:
            await d.stop(timeout=0.2)                    # the waiting caller is cut off
        await waiting.done()
        assert waiting.variables.get("ACD_ERROR") == "SHUTDOWN"

        d2 = Dispatcher(cfg)                             # same journal
        await d2.start()
        try:
            assert d2.engine.now >= before               # engine time resumes, monotonic
            assert state(d2, "1700000000.61") == "callback_pending"
            assert state(d2, "1700000000.62") is None    # its session died with the old process
            assert d2.engine.agent_state("1001") == "paused"
            await until(lambda: d2.ami_connected, what="AMI login")
            await agi(d2.fastagi_port, "agent_ready?agent=1001")
            await until(lambda: state(d2, "1700000000.61") == "connected", what="call-back answered")
            assert ("Variable", "ACD_CALLBACK_NUMBER=+33612345678") in fake.originates[-1]
        finally:
            await d2.stop()
            await fake.stop()

    run(main())


def test_dialback_in_flight_at_restart_is_failed_and_retried(tmp_path):
    cfg = make_config(tmp_path, queue={"callback_threshold": 30})
    je = JournaledEngine.open(cfg.journal.path, sync="normal")
    from acd.service.commands import queue_json as _queue_json
    je.add_skill("fr")
    je.add_queue(cfg.queues[0])
    je.journal.set_meta("service_queues", {"support": _queue_json(cfg.queues[0])})
    je.login("1001", {"tech": 5}, 0.0, None, "break")
    je.enqueue("c1", "support", 1.0)
    je.accept_callback("c1", 2.0)
    je.journal.set_meta("service_callbacks", {"c1": {"number": "0611111111", "queue": "support", "attempts": 0}})
    je.ready("1001", 3.0)
    assert je.call_state("c1") == "dialing_back"
    je.close()

    async def main() -> None:
        d = Dispatcher(cfg)                      # AMI disabled: every dial-back fails, loudly, and is retried
        await d.start()
        try:
            assert 3.0 <= d.engine.now < 4.0        # engine time resumed from the journal
            assert state(d, "c1") == "callback_retry"
            assert d.status()["service"]["callbacks_known"] == 1
        finally:
            await d.stop()

    run(main())


def test_ami_events_hangup_and_device_state(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        d = Dispatcher(make_config(tmp_path, ami_port=fake.port))
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await fake.event(Event="DeviceStateChange", Device="PJSIP/1001", State="UNAVAILABLE")
            await until(lambda: d.engine.agent_state("1001") == "paused", what="device pause")
            assert d.engine.snapshot()["agents"]["1001"]["reason"] == "device_unavailable"
            await fake.event(Event="DeviceStateChange", Device="PJSIP/1001", State="NOT_INUSE")
            await until(lambda: d.engine.agent_state("1001") == "available", what="device back")
            await fake.event(Event="DeviceStateChange", Device="PJSIP/4242", State="UNAVAILABLE")  # not an agent

            # a call back in line after NOANSWER has no AGI session until the dialplan re-enqueues it
            await agi(port, "enqueue?queue=support", uniqueid="1700000000.71")
            await agi(port, "dial_result?status=NOANSWER", uniqueid="1700000000.71")
            assert state(d, "1700000000.71") == "waiting"
            await fake.event(Event="Hangup", Uniqueid="1700000000.71", Channel="PJSIP/x", Cause="16")
            await until(lambda: state(d, "1700000000.71") is None, what="abandon from AMI")
            assert d.engine.snapshot()["queues"]["support"]["abandoned"] == 1

            # a caller with its AGI session attached is left to the session
            ch = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000000.72").start()
            await until(lambda: state(d, "1700000000.72") == "waiting", what="waiting")
            await fake.event(Event="Hangup", Uniqueid="1700000000.72", Channel="PJSIP/y", Cause="16")
            await asyncio.sleep(0.05)
            assert state(d, "1700000000.72") == "waiting"
            await ch.hangup()
            await ch.done()
        finally:
            await d.stop()
            await fake.stop()

    run(main())


def test_http_metrics_snapshot_and_dashboard(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "enqueue?queue=support", uniqueid="1700000000.81")
            await agi(port, "dial_result?status=ANSWER", uniqueid="1700000000.81")
            ch = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000000.82").start()
            await until(lambda: state(d, "1700000000.82") == "waiting", what="waiting")

            status, headers, body = await http_get(d.http_port, "/metrics")
            assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
            text = body.decode()
            assert 'acd_queue_waiting{queue="support"} 1' in text
            assert 'acd_queue_entered_total{queue="support"} 2' in text
            assert 'acd_queue_answered_total{queue="support"} 1' in text
            assert 'acd_queue_agents{queue="support",state="busy"} 1' in text
            assert 'acd_queue_estimated_wait_seconds{queue="support"}' in text
            assert 'acd_decisions_total{kind="Assign"} 1' in text
            assert 'acd_agents{state="busy"} 1' in text
            assert 'acd_queue_callbacks_total{queue="support",event="accepted"} 0' in text
            assert "# TYPE acd_queue_abandoned_total counter" in text
            for line in text.splitlines():             # every sample parses
                if line and not line.startswith("#"):
                    name, value = line.rsplit(" ", 1)
                    float(value)

            status, headers, body = await http_get(d.http_port, "/snapshot.json")
            assert status == 200 and headers["content-type"] == "application/json"
            snap = json.loads(body)
            assert snap["queues"]["support"]["waiting"] == 1
            assert snap["calls"] == {"1700000000.81": "connected", "1700000000.82": "waiting"}
            assert snap["agents"]["1001"]["state"] == "busy" and snap["agents"]["1001"]["dial"] == "PJSIP/1001"
            assert snap["service"]["fastagi"]["active"] == 1 and snap["service"]["ami"]["enabled"] is False

            status, headers, body = await http_get(d.http_port, "/dashboard")   # the page without scripts
            page = body.decode()
            assert status == 200 and 'http-equiv="refresh" content="2"' in page
            assert "<td>support</td>" in page and "PJSIP/1001" in page

            status, headers, body = await http_get(d.http_port, "/")          # the wallboard
            page = body.decode()
            assert status == 200 and 'id="initial"' in page and "refresh" not in page
            assert "script-src 'nonce-" in headers["content-security-policy"]
            status, headers, body = await http_get(d.http_port, "/wallboard.json")
            board = json.loads(body)
            q = board["queues"][0]
            assert q["name"] == "support" and q["waiting"] == 1 and q["today"]["offered"] == 2
            assert q["today"]["answered"] == 1 and board["callers"]["total"] == 1
            assert [a["state"] for a in board["agents"]] == ["busy"] and board["agents"][0]["dial"] == "PJSIP/1001"

            assert (await http_get(d.http_port, "/healthz"))[0] == 200
            assert (await http_get(d.http_port, "/nope"))[0] == 404
            status, headers, _ = await http_get(d.http_port, "/metrics", method="POST")
            assert status == 405 and headers["allow"] == "GET, HEAD"
            status, headers, body = await http_get(d.http_port, "/metrics", method="HEAD")
            assert status == 200 and body == b"" and int(headers["content-length"]) > 100
            status, _, _ = await http_get(d.http_port, "/", extra=b"X-Big: " + b"a" * 10000 + b"\r\n")
            assert status == 431
            await ch.hangup()
            await ch.done()
        finally:
            await d.stop()

    run(main())


@pytest.fixture
def sock_dir():
    d = tempfile.mkdtemp(prefix="acd-", dir="/tmp")  # AF_UNIX paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_classic_agi_script_reaches_the_routes_through_the_relay(tmp_path, sock_dir):
    from acd.adapters.asterisk.agi import main as agi_script
    unix_path = os.path.join(sock_dir, "agi.sock")

    def classic(*args: str) -> tuple:
        env = {"agi_request": "/usr/local/bin/acd-agi", "agi_channel": "PJSIP/1001-00000001",
               "agi_uniqueid": "1700000000.95", "agi_callerid": "1001", "agi_language": "en"}
        env.update({f"agi_arg_{i}": a for i, a in enumerate(args, 1)})
        stdin = ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode() + b"200 result=1\n" * 20
        out, err = io.BytesIO(), io.StringIO()
        code = agi_script([], stdin=io.BytesIO(stdin), stdout=out, stderr=err, socket_path=unix_path,
                          connect_timeout=2)
        cmds = [split_args(line) for line in out.getvalue().decode().splitlines()]
        return code, {c[2]: c[3] for c in cmds if c[:2] == ["SET", "VARIABLE"]}

    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, fastagi={"port": False, "unix_path": unix_path}))
        await d.start()
        try:
            assert d.fastagi_port is None
            code, v = await asyncio.to_thread(classic, "agent_login")      # caller id 1001
            assert code == 0 and v["ACD_STATUS"] == "OK" and v["ACD_AGENT"] == "1001"
            assert d.engine.agent_state("1001") == "available"
            code, v = await asyncio.to_thread(classic, "agent_pause", "reason=coffee")
            assert code == 0 and v["ACD_AGENT_STATE"] == "paused"
            code, v = await asyncio.to_thread(classic, "agent_login?agent=nobody")
            assert code == 1 and v["ACD_ERROR"] == "UNKNOWN_AGENT"
        finally:
            await d.stop()

    run(main())


def test_graceful_shutdown_closes_everything(tmp_path, sock_dir):
    unix_path = os.path.join(sock_dir, "agi.sock")

    async def main() -> None:
        cfg = make_config(tmp_path, fastagi={"port": 0, "unix_path": unix_path})
        d = Dispatcher(cfg)
        await d.start()
        agi_port, http_port = d.fastagi_port, d.http_port
        assert os.path.exists(unix_path)
        ch = await FakeChannel(agi_port, "enqueue?queue=support", uniqueid="1700000000.91").start()
        await until(lambda: state(d, "1700000000.91") == "waiting", what="waiting")
        engine = d.engine
        await d.stop(timeout=0.2)
        await ch.done()
        assert ch.variables["ACD_STATUS"] == "ERROR" and ch.variables["ACD_ERROR"] == "SHUTDOWN"
        for port in (agi_port, http_port):
            with pytest.raises(OSError):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
        assert not os.path.exists(unix_path)
        with pytest.raises(Exception):
            len(engine.journal)                         # the journal is closed
        with pytest.raises(InvalidState):
            d.login("1001")
        await d.stop()                                  # idempotent
        je = JournaledEngine.open(cfg.journal.path)     # the abandon was journaled
        try:
            with pytest.raises(UnknownCall):
                je.call_state("1700000000.91")
        finally:
            je.close()

    run(main())


@pytest.mark.parametrize("leg", ["ringing", "answered", "gone"])
def test_a_dial_in_flight_at_stop_is_looked_up_at_restart_never_redialled_blindly(tmp_path, leg):
    """The service stops while a call-back's agent leg rings; at the next start the leg is found
    by its ChannelId: still ringing -> watched (answered later: connected), up -> connected,
    gone -> failed and retried with a new dial id.  The customer is dialled once."""
    async def main() -> None:
        fake = await FakeAMI(answer=None).start()
        cfg = make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30, "callback_retry_delay": 0.2})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            await callback_pending(d, "1700000000.93")
            d.ready("1001")
            await until(lambda: len(fake.originates) == 1, what="originate sent")
            assert state(d, "1700000000.93") == "dialing_back"
        finally:
            await d.stop(timeout=0.1)
        first = dict(fake.originates[0])
        dial_id = first["ChannelId"]
        assert dial_id.startswith("acd-") and ("Variable", f"ACD_CALLBACK_ID={dial_id}") in fake.originates[0]
        je = JournaledEngine.open(cfg.journal.path)
        assert je.call_state("1700000000.93") == "dialing_back"     # in doubt: not failed at stop
        je.close()
        if leg == "answered":
            fake.channels[dial_id]["ChannelState"] = "6"
        elif leg == "gone":
            del fake.channels[dial_id]
        d2 = Dispatcher(cfg)
        await d2.start()
        try:
            if leg == "ringing":
                await until(lambda: d2.reconciler.passes == 1, what="reconciliation")
                assert state(d2, "1700000000.93") == "dialing_back" and len(fake.originates) == 1
                assert d2.status()["service"]["callbacks_in_doubt"] == 0      # watched, not in doubt
                await fake.event(Event="Newstate", Uniqueid=dial_id, ChannelState="6", ChannelStateDesc="Up")
                await until(lambda: state(d2, "1700000000.93") == "connected", what="late answer honoured")
            elif leg == "answered":
                await until(lambda: state(d2, "1700000000.93") == "connected", what="found up")
            else:
                await until(lambda: len(fake.originates) == 2, what="retried", timeout=8)
                again = dict(fake.originates[1])
                assert again["ChannelId"] != dial_id
            assert len([o for o in fake.originates if dict(o)["ChannelId"] == dial_id]) == 1
        finally:
            await d2.stop()
            await fake.stop()

    run(main(), timeout=30)


def test_restart_with_a_changed_configuration(tmp_path, caplog):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, engine={"agent_strategy": "round_robin"}))
        await d.start()
        await d.stop()
        with pytest.raises(JournalError, match="was written with engine options"):
            await Dispatcher(make_config(tmp_path, engine={"agent_strategy": "random"})).start()
        d = Dispatcher(make_config(tmp_path, engine={"agent_strategy": "round_robin"},
                                   queues=[{"name": "support", "wrap_up": 30,
                                            "steps": [{"after": 0, "requirements": {"tech": 1}}]},
                                           {"name": "sales"}]))
        await d.start()
        try:
            assert set(d.engine.queues) == {"support", "sales"}    # a new queue is added to the journal
        finally:
            await d.stop()

    run(main())
    changed = [r for r in caplog.records if getattr(r, "acd", {}).get("event") == "queue_changed"]
    assert len(changed) == 1 and changed[0].acd["queue"] == "support"


def test_start_failure_releases_everything(tmp_path):
    async def main() -> None:
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        taken = blocker.sockets[0].getsockname()[1]
        try:
            d = Dispatcher(make_config(tmp_path, http={"port": taken}))
            with pytest.raises(OSError):
                await d.start()
            assert d.fastagi is not None and not d.fastagi.serving
            d2 = Dispatcher(make_config(tmp_path))      # the journal was closed: it opens again
            await d2.start()
            await d2.stop()
        finally:
            blocker.close()
            await blocker.wait_closed()

    run(main())


def test_main_serves_until_sigterm_with_json_logs(tmp_path):
    cfg = tmp_path / "acd.toml"
    cfg.write_text(f"""
[[queues]]
name = "support"

[[agents]]
id = "1001"
dial = "PJSIP/1001"

[fastagi]
port = 0

[http]
port = 0

[journal]
path = "j.sqlite3"
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "acd.service", "serve", "--config", str(cfg)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    lines = []
    try:
        assert proc.stderr is not None
        while True:
            line = proc.stderr.readline()
            assert line, "the service exited before starting: " + "".join(lines)
            lines.append(line)
            if json.loads(line).get("event") == "started":
                break
        started = json.loads(lines[-1])
        assert started["fastagi_port"] > 0 and started["http_port"] > 0
        assert started["journal"] == str(tmp_path / "j.sqlite3")
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    records = [json.loads(line) for line in lines + rest.splitlines() if line.strip()]
    events = [r.get("event") for r in records]
    assert "signal" in events and events[-1] == "stopped"
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert (tmp_path / "j.sqlite3").exists()


def test_main_reports_a_bad_config(tmp_path, capsys):
    from acd.service import main
    bad = tmp_path / "bad.toml"
    bad.write_text("[[queues]]\nname = 'q'\n[http]\nprot = 1\n")
    assert main(["serve", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "acd: error:" in err and "unknown field(s) in http: ['prot']" in err
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert main([]) == 2
