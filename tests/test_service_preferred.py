"""`acd serve`: a returning caller reaches the agent they last spoke with (enqueue?preferred=last)."""

from __future__ import annotations

import time

import pytest

from acd import Assign
from acd.errors import InvalidInput
from acd.journal import SqliteJournal
from acd.service import Dispatcher, config_from_dict
from acd.service.last_agent import NOTE_CALLER, LastAgents
from fakes.channel import FakeChannel, agi
from service_support import make_config, run, state, until


async def conversation(port: int, uniqueid: str, number: str, script: str = "enqueue?queue=support") -> str:
    """A caller rings, is answered by an agent, and hangs up; returns the agent."""
    ch = await agi(port, script, uniqueid=uniqueid, callerid=number)
    assert ch.variables["ACD_STATUS"] == "OK", ch.variables
    await agi(port, "dial_result?status=ANSWER", uniqueid=uniqueid)
    await agi(port, "call_end", uniqueid=uniqueid)
    return ch.variables["ACD_AGENT"]


def test_returning_caller_reaches_their_last_agent_across_a_restart(tmp_path):
    async def main() -> None:
        cfg = make_config(tmp_path)
        d = Dispatcher(cfg)
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "agent_login?agent=1002")
            # longest idle first: 1001; then 1002 has idled longer
            assert await conversation(port, "1700000000.1", "0612345678") == "1001"
            assert await conversation(port, "1700000000.2", "0699999999") == "1002"
            assert await conversation(port, "1700000000.3", "0611111111") == "1001"
            # without a preference 1002 would come next; the returning caller gets 1001
            assert await conversation(port, "1700000000.4", "0611111111", "enqueue?queue=support&preferred=last") \
                == "1001"
            # nobody known for this number: normal routing
            assert await conversation(port, "1700000000.5", "0655555555", "enqueue?queue=support&preferred=last") \
                == "1002"
        finally:
            await d.stop()
        j = SqliteJournal(str(tmp_path / "journal.sqlite3"))
        try:
            notes = [args for _seq, op, args in j.records() if op == "note" and args[0] == NOTE_CALLER]
        finally:
            j.close()
        assert {"call": "1700000000.4", "number": "0611111111"} in [n[1] for n in notes]

        d = Dispatcher(cfg)               # the memory is rebuilt from the journal
        await d.start()
        try:
            port = d.fastagi_port
            assert d.last_agents.lookup("0611111111", time.time()) == "1001"
            assert await conversation(port, "1700000000.6", "0611111111", "enqueue?queue=support&preferred=last") \
                == "1001"
        finally:
            await d.stop()

    run(main())


def test_the_call_waits_for_its_busy_agent_then_gets_it(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path, preferred={"wait": 30}))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            assert await conversation(port, "1700000000.1", "0611111111") == "1001"
            busy = await agi(port, "enqueue?queue=support", uniqueid="1700000000.2", callerid="0600000000")
            assert busy.variables["ACD_AGENT"] == "1001"
            await agi(port, "dial_result?status=ANSWER", uniqueid="1700000000.2")
            await agi(port, "agent_login?agent=1002")            # free, but not the one preferred
            back = await FakeChannel(port, "enqueue?queue=support&preferred=last",
                                     uniqueid="1700000000.3", callerid="0611111111").start()
            await until(lambda: state(d, "1700000000.3") == "waiting", what="the call held")
            assert d.engine.snapshot()["queues"]["support"]["held"] == 1
            assert d.engine.next_deadline() == pytest.approx(d.engine.now + 30, abs=1.0)
            assert d.engine.agent_state("1002") == "available"
            await agi(port, "call_end", uniqueid="1700000000.2")  # 1001 is free: its returning caller first
            await back.done()
            assert back.variables["ACD_AGENT"] == "1001"
        finally:
            await d.stop()

    run(main())


def test_explicit_agents_and_bad_arguments(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "agent_login?agent=1002")
            ch = await agi(port, "enqueue?queue=support&preferred=1002,9999&preferred_for=20",
                           uniqueid="1700000000.1")
            assert ch.variables["ACD_AGENT"] == "1002"
            for script in ("enqueue?queue=support&preferred=1001,,1002",
                           "enqueue?queue=support&preferred=1001&preferred_for=0",
                           "enqueue?queue=support&preferred=1001&preferred_for=soon"):
                bad = await agi(port, script, uniqueid="1700000000.9")
                assert bad.variables["ACD_STATUS"] == "ERROR", script
                assert bad.variables["ACD_ERROR"] == "INVALID_INPUT", script
                assert state(d, "1700000000.9") is None
        finally:
            await d.stop()

    run(main())


def test_last_agents_window_and_pruning():
    la = LastAgents(remember=100.0)
    la.apply(1, "note", ("clock", {"engine": 0.0, "unix": 1000.0}), [])
    for i in range(2000):
        call = f"c{i}"
        la.apply(0, "note", (NOTE_CALLER, {"call": call, "number": f"06{i}"}), [])
        la.apply(0, "enqueue", (call, "q", float(i)), [Assign(call, "a1", "q", 0.0)])
        la.apply(0, "answer", (call, float(i)), [])
        la.apply(0, "complete", (call, float(i) + 1), [])
    assert la.lookup("061999", 1000.0 + 1999) == "a1"
    assert la.lookup("061999", 1000.0 + 1999 + 101) is None      # out of the window
    assert la.lookup("060", 1000.0 + 1999) is None
    assert len(la) < 1200                                         # old numbers pruned as it goes
    assert LastAgents(remember=0).lookup("061999", 0.0) is None


def test_preferred_config_is_validated():
    base = {"queues": [{"name": "q"}]}
    assert config_from_dict(base).preferred.remember == 7 * 86400
    assert config_from_dict({**base, "preferred": {"remember": 0, "wait": 15}}).preferred.wait == 15.0
    for bad, field in (({"wait": 0}, "preferred.wait"), ({"remember": -1}, "preferred.remember"),
                       ({"colour": 1}, "colour")):
        with pytest.raises(InvalidInput, match=field):
            config_from_dict({**base, "preferred": bad})
