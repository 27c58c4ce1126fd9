"""Primary and standby `acd serve` on one PostgreSQL journal, in one test process.

The chaos tests with real processes (kill -9, SIGSTOP, a cut from the
database) are in test_ha_chaos.py.
"""

from __future__ import annotations

import asyncio

import pytest

from acd.service import Dispatcher
from fakes.channel import agi
from service_support import http_get, make_config, run, until

pytest.importorskip("psycopg")


def ha_config(tmp_path, pg_url, node, lease=1.0, **extra):
    cfg = make_config(tmp_path, **extra)
    from dataclasses import replace
    from acd.service.config import HAConfig, JournalConfig
    return replace(cfg, journal=JournalConfig(url=pg_url), ha=HAConfig(node=node, lease=lease, max_lag=2.0))


async def pair(tmp_path, pg_url, lease=1.0):
    a = Dispatcher(ha_config(tmp_path, pg_url, "a", lease))
    await a.start()
    await until(lambda: a.serving, 10, "a to lead")
    b = Dispatcher(ha_config(tmp_path, pg_url, "b", lease))
    await b.start()
    return a, b


async def code(d, path):
    status, _, body = await http_get(d.http_port, path)
    return status, body.decode()


def test_one_primary_one_hot_standby_with_health_and_metrics(tmp_path, pg_url):
    async def go():
        a, b = await pair(tmp_path, pg_url)
        try:
            assert a.fastagi_port and b.fastagi_port is None and b.state == "standby"
            assert (await code(a, "/primary"))[0] == 200 and (await code(a, "/standby"))[0] == 503
            assert (await code(b, "/primary"))[0] == 503
            await until(lambda: b.ha.lag < 1.0, 5, "b to follow")
            assert (await code(b, "/standby"))[0] == 200
            assert (await code(b, "/healthz"))[0] == 503      # a standby takes no calls
            m = (await code(b, "/metrics"))[1]
            assert 'acd_ha_role{role="standby"} 1' in m and "acd_ha_epoch 0" in m
            assert 'acd_ha_role{role="primary"} 1' in (await code(a, "/metrics"))[1]
            page = (await code(b, "/"))[1]
            assert "STANDBY NODE b" in page and "STANDBY NODE" not in (await code(a, "/"))[1]
            assert f"acd_ha_epoch {a.ha.epoch}" in (await code(a, "/metrics"))[1]

            login = await agi(a.fastagi_port, "agent_login?agent=1001")
            assert login.variables["ACD_STATUS"] == "OK"
            call = await agi(a.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.5")
            assert call.variables["ACD_STATUS"] == "OK"
            # the standby's engine and read models follow live
            await until(lambda: b.engine.applied == a.engine.applied, 5, "b to catch up")
            assert b.engine.snapshot() == a.engine.snapshot()
            assert b.counters.commands == a.counters.commands
        finally:
            await b.stop()
            await a.stop()
    run(go(), 40)


def test_standby_takes_over_when_the_primary_dies_and_keeps_the_calls(tmp_path, pg_url):
    async def go():
        a, b = await pair(tmp_path, pg_url)
        try:
            await agi(a.fastagi_port, "agent_login?agent=1001")
            await agi(a.fastagi_port, "agent_login?agent=1002")
            offered = await agi(a.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.7")
            assert offered.variables["ACD_STATUS"] == "OK"
            await agi(a.fastagi_port, "dial_result?status=ANSWER", uniqueid="1700000000.7")
            # the primary's process dies: its sessions with the database end (here: closed under it)
            a.ha.leadership._db.close()
            a.engine.journal._db.close()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await until(lambda: b.serving, 5, "b to take over")
            took = loop.time() - t0
            assert took < 3.0
            assert b.engine.call_state("1700000000.7") == "connected"
            assert b.engine.agent_state("1001") == "busy"
            # a caller now reaches the new primary
            c2 = await agi(b.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.8")
            assert c2.variables["ACD_STATUS"] == "OK" and c2.variables["ACD_AGENT"] == "1002"
            end = await agi(b.fastagi_port, "call_end", uniqueid="1700000000.7")
            assert end.variables["ACD_STATUS"] == "OK"
            # the old primary finds out and steps down without writing
            await until(lambda: a.ha.role == "deposed", 5, "a to step down")
            assert (await code(b, "/primary"))[0] == 200
            epochs = b.engine.journal.epochs()
            assert [e for e, _, _ in epochs] == sorted({e for e, _, _ in epochs})
        finally:
            await b.stop()
            await a.stop()
    run(go(), 40)


def test_a_paused_primary_is_evicted_and_cannot_write_after(tmp_path, pg_url):
    async def go():
        a, b = await pair(tmp_path, pg_url, lease=0.6)
        try:
            await agi(a.fastagi_port, "agent_login?agent=1001")
            # a pause: the heartbeat stops (the process is frozen; nothing of it runs)
            for t in a._tasks:
                if t.get_name() == "acd-keep-lead":
                    t.cancel()
            await until(lambda: b.serving, 5, "b to take over")
            old = a.ha.epoch
            assert b.ha.epoch == old + 1
            # the old primary comes back and tries to act: refused by the database, then it steps down
            seen = await agi(a.fastagi_port, "agent_logout?agent=1001")
            assert seen.variables.get("ACD_STATUS") != "OK"
            await until(lambda: a.ha.role == "deposed", 5, "a to step down")
            assert b.engine.agent_state("1001") == "available"
            assert all(e != old for e, lo, hi in b.engine.journal.epochs() if lo > b.engine.journal.epochs()[0][2])
        finally:
            await b.stop()
            await a.stop()
    run(go(), 40)


def test_a_clean_stop_hands_over_at_once(tmp_path, pg_url):
    async def go():
        a, b = await pair(tmp_path, pg_url, lease=5.0)
        try:
            await a.stop()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await until(lambda: b.serving, 3, "b to take over")
            assert loop.time() - t0 < 1.5          # no lease to wait out: the lock was released
        finally:
            await b.stop()
    run(go(), 40)


def test_bad_ha_configuration_is_refused(tmp_path):
    from acd.errors import InvalidInput
    from acd.service.config import config_from_dict
    base = {"queues": [{"name": "q"}]}
    with pytest.raises(InvalidInput, match="journal.url"):
        config_from_dict({**base, "journal": {"url": "sqlite:///x"}})
    with pytest.raises(InvalidInput, match="ha.lease"):
        config_from_dict({**base, "ha": {"lease": 0}})
    cfg = config_from_dict({**base, "journal": {"url": "postgresql://acd:pw@db/acd"}})
    assert "pw" not in repr(cfg) and "pw" not in cfg.journal.where
