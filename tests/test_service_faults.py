"""`acd serve` under faults, one at a time: a full journal, lost reports, AMI outages, restarts,
a drain, supervisor actions.  Each test names the defect it guards against (issue 9)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from acd.errors import InvalidInput, JournalError
from acd.journal import JournaledEngine
from acd.service import Dispatcher, config_from_dict
from fakes.ami import FakeAMI, channel_fields
from fakes.channel import FakeChannel, agi
from service_support import callback_pending, http_get, make_config, run, state, until

TOKEN = "supervisor-token-0123456789"


def fill_journal(d: Dispatcher) -> None:
    """The disk is full from now on: no new page for the journal."""
    db = d.engine.journal._db
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")


def free_journal(d: Dispatcher) -> None:
    d.engine.journal._db.execute("PRAGMA max_page_count=1073741823")


async def http_post(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    extra = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    status, _, body = await http_get(port, path, method="POST", extra=b"Content-Length: 0\r\n" + extra)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"text": body.decode()}


def test_full_journal_refuses_calls_visibly_then_recovers_by_itself(tmp_path):
    """Defect: a full disk made the service refuse every call until restart while /healthz said
    "running"; the failing call left an agent reserved."""
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            fill_journal(d)
            refused = None
            for i in range(2000):       # fill the last pages: the first refused command is the full disk
                uid = f"1700000001.{i}"
                for script in ("enqueue?queue=support", "call_end?status=ANSWER"):
                    agent_before, call_before = d.engine.agent_state("1001"), state(d, uid)
                    ch = await agi(port, script, uniqueid=uid)
                    if ch.variables.get("ACD_STATUS") == "ERROR":
                        refused = ch
                        break
                if refused is not None:
                    break
            assert refused is not None and refused.variables["ACD_ERROR"] == "JOURNAL_ERROR"
            assert "full" in refused.variables["ACD_ERROR_DETAIL"]
            # rolled back, whichever command it was (call_end of an offered call is two, answer and
            # complete: both or neither): the agent is not left reserved or busy, the call unchanged
            assert d.engine.agent_state("1001") == agent_before
            assert state(d, refused.uniqueid) == call_before
            status, _, body = await http_get(d.http_port, "/healthz")
            assert status == 503 and body.startswith(b"journal down")
            _, _, metrics = await http_get(d.http_port, "/metrics")
            assert "acd_journal_up 0" in metrics.decode()
            _, _, page = await http_get(d.http_port, "/")
            assert "JOURNAL DOWN" in page.decode()
            free_journal(d)
            await until(lambda: d.engine.up, timeout=8, what="journal back (watchdog probe)")
            assert (await http_get(d.http_port, "/healthz"))[0] == 200
            if call_before == "offered":    # the refused call_end, sent again: accepted now
                again = await agi(port, "call_end?status=ANSWER", uniqueid=refused.uniqueid)
                assert again.variables.get("ACD_STATUS") != "ERROR" and state(d, refused.uniqueid) is None
            ok = await agi(port, "enqueue?queue=support", uniqueid="1700000002.1")
            assert ok.variables["ACD_STATUS"] == "OK"
        finally:
            await d.stop()
        notes = [a[0] for _, op, a in JournaledEngine.open(make_config(tmp_path).journal.path).journal.records()
                 if op == "note"]
        assert "journal_recovered" in notes

    run(main(), timeout=60)


def test_an_offer_nobody_reports_on_is_released(tmp_path):
    """Defect: an agent stayed reserved for ever when the dialplan never reported back."""
    async def main() -> None:
        cfg = make_config(tmp_path, engine={"ring_no_answer": "ready"},
                          service={"dial_report_timeout": 1.0, "reattach_timeout": 0.5, "shutdown_timeout": 1.0})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await agi(d.fastagi_port, "agent_login?agent=1001")
            ch = await agi(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000003.1")
            assert ch.variables["ACD_AGENT"] == "1001" and state(d, "1700000003.1") == "offered"
            # no dial_result ever comes (no AMI to ask): released as a ring-no-answer, then the
            # caller, never picked up again by the dialplan, is withdrawn
            await until(lambda: state(d, "1700000003.1") is None, timeout=6, what="released and withdrawn")
            assert d.engine.agent_state("1001") == "available"
            q = d.engine.snapshot()["queues"]["support"]
            assert q["withdrawn"] == 1 and q["abandoned"] == 0       # not the caller's patience
        finally:
            await d.stop()

    run(main())


@pytest.mark.parametrize("caller", ["gone", "bridged"])
def test_an_unreported_offer_is_settled_by_asking_asterisk(tmp_path, caller):
    async def main() -> None:
        fake = await FakeAMI().start()
        d = Dispatcher(make_config(tmp_path, ami_port=fake.port, service={"dial_report_timeout": 1.0}))
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI")
            await agi(d.fastagi_port, "agent_login?agent=1001")
            if caller == "bridged":
                fake.channels["1700000004.1"] = channel_fields("1700000004.1", "PJSIP/trunk-1", bridge="b-1")
            await agi(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000004.1")
            want = None if caller == "gone" else "connected"
            await until(lambda: state(d, "1700000004.1") == want, timeout=6, what=f"caller {caller}")
            assert d.engine.agent_state("1001") == ("available" if caller == "gone" else "busy")
        finally:
            await d.stop()
            await fake.stop()

    run(main())


def test_restart_ends_calls_whose_channels_are_gone_and_keeps_the_rest(tmp_path):
    """Defect: after a stop with calls connected the engine held them (and their agents busy) for
    ever while Asterisk had no channel; *42 then only deferred, *41 gave DUPLICATE_ID."""
    async def main() -> None:
        fake = await FakeAMI().start()
        cfg = make_config(tmp_path, ami_port=fake.port, service={"shutdown_timeout": 0.2})
        d = Dispatcher(cfg)
        await d.start()
        await until(lambda: d.ami_connected, what="AMI")
        port = d.fastagi_port
        await agi(port, "agent_login?agent=1001")
        await agi(port, "agent_login?agent=1002")
        for uid in ("1700000005.1", "1700000005.2"):
            await agi(port, "enqueue?queue=support", uniqueid=uid)
            await agi(port, "dial_result?status=ANSWER", uniqueid=uid)
        out = await agi(port, "agent_logout?agent=1001")             # *42 during the call: deferred
        assert out.variables["ACD_DEFERRED"] == "1" and out.variables["ACD_AGENT_STATE"] == "busy"
        await d.stop()                                               # the drain gives up after 0.2 s
        fake.channels["1700000005.2"] = channel_fields("1700000005.2", "PJSIP/trunk-2", bridge="b-2")
        d2 = Dispatcher(cfg)                                         # .1 hung up while we were down
        await d2.start()
        try:
            await until(lambda: d2.reconciler.passes >= 1, what="reconciliation")
            assert state(d2, "1700000005.1") is None and state(d2, "1700000005.2") == "connected"
            assert "1001" not in d2.engine.snapshot()["agents"]                  # its deferred log-out done
            assert d2.engine.agent_state("1002") == "busy"
            login = await agi(d2.fastagi_port, "agent_login?agent=1001")
            assert login.variables["ACD_STATUS"] == "OK"
        finally:
            await d2.stop(timeout=0.1)
            await fake.stop()

    run(main(), timeout=30)


def test_ami_reconnect_reconciles(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        d = Dispatcher(make_config(tmp_path, ami_port=fake.port))
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI")
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "enqueue?queue=support", uniqueid="1700000006.1")
            await agi(port, "dial_result?status=ANSWER", uniqueid="1700000006.1")
            fake.channels["1700000006.1"] = channel_fields("1700000006.1", "PJSIP/trunk-1", bridge="b")
            await until(lambda: d.reconciler.passes == 1, what="first pass")
            assert state(d, "1700000006.1") == "connected"
            fake.drop_all()                                          # AMI outage; meanwhile the call ends
            await until(lambda: not d.ami_connected, what="AMI down")
            del fake.channels["1700000006.1"]
            await until(lambda: d.reconciler.passes == 2, timeout=8, what="pass after reconnect")
            assert state(d, "1700000006.1") is None and d.engine.agent_state("1001") == "available"
        finally:
            await d.stop()
            await fake.stop()

    run(main(), timeout=30)


def test_drain_keeps_serving_reports_and_refuses_new_calls(tmp_path):
    """Defect: SIGTERM closed FastAGI at once; the call_end of connected calls were refused."""
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, service={"shutdown_timeout": 10.0}))
        await d.start()
        port = d.fastagi_port
        await agi(port, "agent_login?agent=1001")
        await agi(port, "enqueue?queue=support", uniqueid="1700000007.1")
        await agi(port, "dial_result?status=ANSWER", uniqueid="1700000007.1")
        waiting = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000007.2").start()
        await until(lambda: state(d, "1700000007.2") == "waiting", what="second caller on hold")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stopping = loop.create_task(d.stop())
        await waiting.done()                     # handed back to the dialplan at once, not abandoned
        assert waiting.variables["ACD_ERROR"] == "SHUTDOWN"
        new = await agi(port, "enqueue?queue=support", uniqueid="1700000007.3")
        assert new.variables["ACD_ERROR"] == "SHUTDOWN" and not new.saw("ANSWER")
        assert (await http_get(d.http_port, "/healthz"))[0] == 503
        end = await agi(port, "call_end?status=ANSWER", uniqueid="1700000007.1")   # still served
        assert end.variables["ACD_STATUS"] == "OK"
        await stopping
        assert loop.time() - t0 < 5              # stopped once nothing rang or talked, not at the timeout
        je = JournaledEngine.open(make_config(tmp_path).journal.path)
        try:
            q = je.snapshot()["queues"]["support"]
            assert je.calls() == {} and q["answered"] == 1 and q["withdrawn"] == 1 and q["abandoned"] == 0
        finally:
            je.close()

    run(main(), timeout=30)


def test_counters_survive_a_restart(tmp_path):
    """Defect: answered_within_target_total and the service level restarted at 0."""
    async def main() -> None:
        cfg = make_config(tmp_path)
        d = Dispatcher(cfg)
        await d.start()
        port = d.fastagi_port
        await agi(port, "agent_login?agent=1001")
        for i in range(3):
            await agi(port, "enqueue?queue=support", uniqueid=f"1700000008.{i}")
            await agi(port, "dial_result?status=ANSWER", uniqueid=f"1700000008.{i}")
            await agi(port, "call_end", uniqueid=f"1700000008.{i}")
        before = d.status()
        await d.stop()
        d2 = Dispatcher(cfg)
        await d2.start()
        try:
            after = d2.status()
            for key in ("answered", "answered_within", "abandoned", "measured"):
                assert after["queues"]["support"]["service_level"][key] == \
                    before["queues"]["support"]["service_level"][key]
            assert after["queues"]["support"]["service_level"]["answered_within"] == 3
            for k, v in before["service"]["decisions"].items():
                assert after["service"]["decisions"][k] >= v
            for k, v in before["service"]["commands"].items():
                assert after["service"]["commands"][k] >= v
        finally:
            await d2.stop()

    run(main())


def test_supervisor_actions_need_the_token_and_are_journaled(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, http={"port": 0, "token": TOKEN}))
        await d.start()
        try:
            port, web = d.fastagi_port, d.http_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "enqueue?queue=support", uniqueid="1700000009.1")
            await agi(port, "dial_result?status=ANSWER", uniqueid="1700000009.1")
            assert (await http_post(web, "/api/agents/1001/logout"))[0] == 401
            assert (await http_post(web, "/api/agents/1001/logout", "wrong-token-0000000000"))[0] == 401
            assert (await http_get(web, "/metrics"))[0] == 200           # pages stay open on loopback
            status, body = await http_post(web, "/api/agents/1001/logout", TOKEN)
            assert status == 200 and body["ok"] and [x["op"] for x in body["did"]] == ["complete", "logout"]
            assert "1001" not in d.engine.snapshot()["agents"] and state(d, "1700000009.1") is None
            assert (await http_post(web, "/api/calls/nope/end", TOKEN))[0] == 404
            assert (await http_post(web, "/api/agents/1001/ready", TOKEN))[0] == 404
            assert (await http_post(web, "/api/agents/1001/fly", TOKEN))[0] == 404
            await agi(port, "agent_login?agent=1002")
            await agi(port, "agent_pause?agent=1002&reason=lunch")
            status, body = await http_post(web, "/api/agents/1002/ready", TOKEN)
            assert status == 200 and d.engine.agent_state("1002") == "available"
            assert (await http_post(web, "/api/agents/1002/ready", TOKEN))[0] == 409
        finally:
            await d.stop()
        je = JournaledEngine.open(make_config(tmp_path).journal.path)
        notes = [a for _, op, a in je.journal.records() if op == "note" and a[0] == "supervisor"]
        je.close()
        assert [n[1]["action"] for n in notes] == ["logout", "ready"]
        assert notes[0][1]["by"] == "http 127.0.0.1"

    run(main())


def test_actions_are_refused_without_a_configured_token(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            status, body = await http_post(d.http_port, "/api/calls/x/end", "anything-at-all-123456")
            assert status == 403 and "token" in body["text"]
        finally:
            await d.stop()

    run(main())


def test_http_paths_are_paths(tmp_path):
    """Defect: GET //metrics served the dashboard (urlsplit read "metrics" as a host)."""
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            assert (await http_get(d.http_port, "//metrics"))[0] == 404
            assert (await http_get(d.http_port, "/metrics?x=1"))[0] == 200
            assert (await http_get(d.http_port, "http://localhost/metrics"))[0] == 200
        finally:
            await d.stop()

    run(main())


def test_exposed_listeners(tmp_path, caplog):
    base = {"queues": [{"name": "q"}], "journal": {"path": str(tmp_path / "j.db")}}
    with pytest.raises(InvalidInput, match="not a loopback address: set http.token"):
        config_from_dict({**base, "http": {"host": "0.0.0.0"}})
    with pytest.raises(InvalidInput, match="http.token must be"):
        config_from_dict({**base, "http": {"token": "short"}})
    cfg = config_from_dict({**base, "http": {"host": "0.0.0.0", "port": 0, "token": TOKEN},
                            "fastagi": {"host": "0.0.0.0", "port": 0}})

    async def main() -> None:
        d = Dispatcher(cfg)
        await d.start()
        try:
            # beyond loopback, pages need the token too (health checks excepted)
            assert (await http_get(d.http_port, "/metrics"))[0] == 401
            assert (await http_get(d.http_port, "/metrics",
                                   extra=f"Authorization: Bearer {TOKEN}\r\n".encode()))[0] == 200
            assert (await http_get(d.http_port, "/healthz"))[0] == 200
        finally:
            await d.stop()

    with caplog.at_level(logging.WARNING, logger="acd.service"):
        run(main())
    assert any(getattr(r, "acd", {}).get("event") == "exposed" for r in caplog.records)


def test_a_late_answer_of_an_earlier_dial_withdraws_the_retry(tmp_path):
    """Defect: a late ANSWER for an attempt already counted failed was ignored: the retry then
    dialled the customer a second time."""
    async def main() -> None:
        fake = await FakeAMI(answer=False).start()
        cfg = make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30, "callback_retry_delay": 60})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI")
            await callback_pending(d, "1700000010.1")
            d.ready("1001")
            await until(lambda: state(d, "1700000010.1") == "callback_retry", what="first dial failed")
            dial = dict(fake.originates[0])["ChannelId"]
            stale = await agi(d.fastagi_port, f"callback_result?call=1700000010.1&status=ANSWER&attempt={dial}")
            assert stale.variables["ACD_STATUS"] == "OK"
            assert state(d, "1700000010.1") is None            # the customer was reached: no second dial
            assert len(fake.originates) == 1
        finally:
            await d.stop()
            await fake.stop()

    run(main())


def test_ami_lost_during_an_originate_puts_it_in_doubt_not_failed(tmp_path):
    async def main() -> None:
        fake = await FakeAMI(answer=None).start()
        cfg = make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30, "callback_retry_delay": 0.1})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI")
            await callback_pending(d, "1700000011.1")
            d.ready("1001")
            await until(lambda: len(fake.originates) == 1, what="originate")
            dial = dict(fake.originates[0])["ChannelId"]
            fake.drop_all()                                    # the leg keeps ringing in Asterisk
            await until(lambda: d.status()["service"]["callbacks_in_doubt"] == 1, what="in doubt")
            assert state(d, "1700000011.1") == "dialing_back"
            await until(lambda: d.reconciler.passes >= 2, timeout=8, what="pass after reconnect")
            assert state(d, "1700000011.1") == "dialing_back" and len(fake.originates) == 1
            # the agent answers it late: the call-back context reports it over FastAGI
            ch = await agi(d.fastagi_port, f"callback_answered?call=1700000011.1&attempt={dial}")
            assert ch.variables["ACD_STATUS"] == "OK" and state(d, "1700000011.1") == "connected"
            await agi(d.fastagi_port, f"call_end?call=1700000011.1&status=ANSWER&attempt={dial}")
            assert state(d, "1700000011.1") is None and len(fake.originates) == 1
        finally:
            await d.stop()
            await fake.stop()

    run(main(), timeout=30)


def test_unreadable_journal_is_a_clean_start_failure(tmp_path):
    cfg = make_config(tmp_path)
    with open(cfg.journal.path, "wb") as f:
        f.write(b"garbage" * 1000)

    async def main() -> None:
        with pytest.raises(JournalError, match="cannot open journal"):
            await Dispatcher(cfg).start()

    run(main())


def test_the_callers_own_hang_up_does_not_end_its_call_back(tmp_path):
    """Found by the fault-injection suite: a caller's h-extension call_end that arrives late (after a
    restart) while its call-back is being dialled was taken for the agent leg's: connected, then
    completed, and the customer was never called back."""
    async def main() -> None:
        fake = await FakeAMI(answer=None).start()
        d = Dispatcher(make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30}))
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI")
            await callback_pending(d, "1700000012.1")
            d.ready("1001")
            await until(lambda: state(d, "1700000012.1") == "dialing_back", what="dialling")
            end = await agi(d.fastagi_port, "call_end?status=", uniqueid="1700000012.1")   # the caller's own h
            assert end.variables["ACD_STATUS"] == "OK" and state(d, "1700000012.1") == "dialing_back"
            fake.channels[dict(fake.originates[0])["ChannelId"]]["ChannelState"] = "6"
            await fake.event(Event="Newstate", Uniqueid=dict(fake.originates[0])["ChannelId"], ChannelState="6")
            await until(lambda: state(d, "1700000012.1") == "connected", what="agent answered")
            end = await agi(d.fastagi_port, "call_end?status=ANSWER", uniqueid="1700000012.1")
            assert state(d, "1700000012.1") == "connected"        # still talking on the agent's leg
        finally:
            await d.stop(timeout=0.1)
            await fake.stop()

    run(main())


def test_a_late_report_of_a_released_offer_does_not_touch_the_next_offer(tmp_path):
    """Found on the real Asterisk: with dial_report_timeout shorter than Dial()'s ring time, the
    first Dial's late NOANSWER was applied to the call's next offer (another agent, paused for a
    ring it never had), and a late ANSWER connected the wrong agent."""
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, engine={"ring_no_answer": "pause"},
                                   service={"dial_report_timeout": 1.0}))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            ch = await agi(port, "enqueue?queue=support", uniqueid="1700000013.1")
            assert ch.variables["ACD_AGENT"] == "1001"
            await until(lambda: state(d, "1700000013.1") == "waiting", timeout=5, what="offer released")
            await agi(port, "agent_login?agent=1002")                  # offered to 1002 meanwhile
            assert state(d, "1700000013.1") == "offered" and d.offered_agent("1700000013.1") == "1002"
            late = await agi(port, "dial_result?status=NOANSWER&agent=1001", uniqueid="1700000013.1")
            assert late.variables["ACD_REQUEUE"] == "1"
            assert d.engine.agent_state("1002") == "reserved"            # not paused for 1001's ring
            again = await agi(port, "enqueue?queue=support", uniqueid="1700000013.1")   # the dialplan loops
            assert again.variables["ACD_AGENT"] == "1002"
            wrong = await agi(port, "dial_result?call=1700000013.1&status=ANSWER&agent=1001", uniqueid="x.1")
            assert wrong.variables["ACD_STATUS"] == "OK"
            assert state(d, "1700000013.1") is None and d.engine.agent_state("1002") == "available"
        finally:
            await d.stop(timeout=0.1)

    run(main())


def test_the_watchdog_waits_while_asterisk_still_dials(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        d = Dispatcher(make_config(tmp_path, ami_port=fake.port, service={"dial_report_timeout": 1.0}))
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI")
            await agi(d.fastagi_port, "agent_login?agent=1001")
            fields = channel_fields("1700000014.1", "PJSIP/trunk-1")
            fields["Application"] = "Dial"
            fake.channels["1700000014.1"] = fields
            await agi(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000014.1")
            await asyncio.sleep(3.0)
            assert state(d, "1700000014.1") == "offered"                 # not released while it rings
            fields["Application"] = "AGI"                                  # Dial gave up, no report came
            await until(lambda: state(d, "1700000014.1") == "waiting", timeout=5, what="released")
        finally:
            await d.stop(timeout=0.1)
            await fake.stop()

    run(main(), timeout=30)
