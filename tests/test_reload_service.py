"""`acd serve` reloads acd.toml live: POST /api/reload and SIGHUP (docs/reload.md)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from fakes.channel import FakeChannel
from service_support import http_get, run, until

from acd.service import Dispatcher, load_config

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "supervisor-token-0123456789"


def write_config(path: Path, *, tech: int, extra_queue: bool = False, refresh: int = 2, agi_port: int = 0,
                 agent_skills: str = "{tech = 5}") -> Path:
    sales = """
[[queues]]
name = "sales"
steps = [{after = 0, requirements = {fr = 1}}]
""" if extra_queue else ""
    path.write_text(f"""
skills = ["fr"]

[[queues]]
name = "support"
steps = [{{after = 0, requirements = {{tech = {tech}}}}}, {{after = 3000, requirements = {{tech = 1}}}}]
wrap_up = 0
{sales}
[[agents]]
id = "1001"
dial = "PJSIP/1001"
skills = {agent_skills}

[[agents]]
id = "1002"
dial = "PJSIP/1002"
skills = {{tech = 5, fr = 3}}

[fastagi]
port = {agi_port}
max_sessions = 2000

[http]
port = 0
refresh = {refresh}
token = "{TOKEN}"

[journal]
path = "journal.sqlite3"
sync = "normal"

[service]
shutdown_timeout = 1.0
reattach_timeout = 30.0
""")
    return path


async def http_post(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    extra = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    status, _, body = await http_get(port, path, method="POST", extra=b"Content-Length: 0\r\n" + extra)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"text": body.decode()}


def test_reload_over_http_under_a_burst_of_waiting_calls(tmp_path):
    """300 callers wait (AGI sessions held open) for a skill no agent has; a reload relaxes the rule:
    no call is lost, the head of the line goes to the agent at once, the rest keep their place;
    changed sections read at start only are reported, not applied; an invalid file changes nothing."""
    cfg_path = write_config(tmp_path / "acd.toml", tech=7)

    async def main() -> None:
        d = Dispatcher(load_config(cfg_path))
        await d.start()
        channels = []
        try:
            d.login("1001")
            for i in range(300):
                channels.append(await FakeChannel(d.fastagi_port, "enqueue?queue=support",
                                                  uniqueid=f"1700000000.{i}").start())
            await until(lambda: d.engine.waiting_count() == 300, 20, "300 callers waiting")
            old_http = d.config.http

            write_config(cfg_path, tech=1, extra_queue=True, refresh=9)
            assert (await http_post(d.http_port, "/api/reload"))[0] == 401
            status, body = await http_post(d.http_port, "/api/reload", TOKEN)
            assert status == 200, body
            assert body["ok"] and body["queues_updated"] == ["support"] and body["queues_added"] == ["sales"]
            assert body["needs_restart"] == ["http"] and body["decisions"] == 1
            calls = d.engine.calls()
            assert len(calls) == 300                                   # none lost
            assert sorted(calls.values()).count("offered") == 1
            assert calls["1700000000.0"] == "offered"                  # the oldest caller first
            for i in range(1, 300):
                assert d.engine.call_wait(f"1700000000.{i}").position == i     # ranks kept
            assert d.config.queue("support").steps[0].requirements == {"tech": 1}
            assert "sales" in d.queue_defs and d.engine.queues == ("support", "sales")
            assert d.config.http == old_http                           # needs a restart: kept

            # agent skills of a logged-in agent: applied in place
            write_config(cfg_path, tech=1, extra_queue=False, agent_skills="{tech = 5, fr = 2}")
            status, body = await http_post(d.http_port, "/api/reload", TOKEN)
            assert status == 200 and body["agents_updated"] == ["1001"] and body["queues_removed"] == ["sales"]
            assert d.engine.queues == ("support",)

            before = d.config
            (cfg_path).write_text("queues = 3\n")
            status, body = await http_post(d.http_port, "/api/reload", TOKEN)
            assert status == 400 and not body["ok"] and "queues" in body["detail"]
            assert d.config is before and len(d.engine.calls()) == 300
        finally:
            for ch in channels:
                await ch.hangup()
            await d.stop()

    run(main(), timeout=90)


def test_restart_replays_the_reload(tmp_path):
    cfg_path = write_config(tmp_path / "acd.toml", tech=7)

    async def main() -> None:
        d = Dispatcher(load_config(cfg_path))
        await d.start()
        try:
            write_config(cfg_path, tech=2, extra_queue=True)
            done = d.reload("test")
            assert done["queues_updated"] == ["support"]
        finally:
            await d.stop()
        again = Dispatcher(load_config(cfg_path))
        await again.start()
        try:
            assert again.engine.queues == ("support", "sales")
            assert again.reload("test")["queues_updated"] == []        # nothing left to change
        finally:
            await again.stop()

    run(main(), timeout=60)


def test_sighup_reloads_acd_serve(tmp_path):
    cfg_path = write_config(tmp_path / "acd.toml", tech=7)
    log_path = tmp_path / "serve.log"

    async def main() -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        with open(log_path, "ab") as err:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "acd.service", "--config", str(cfg_path),
                                                        stdout=asyncio.subprocess.DEVNULL, stderr=err, env=env)
        try:
            await until(lambda: '"event": "started"' in log_path.read_text(), 30, "acd serve started")
            write_config(cfg_path, tech=2, extra_queue=True)
            proc.send_signal(signal.SIGHUP)
            await until(lambda: '"event": "reload"' in log_path.read_text(), 10, "the reload logged")
            (cfg_path).write_text("[[queues]]\nname = 3\n")
            proc.send_signal(signal.SIGHUP)
            await until(lambda: '"event": "reload_refused"' in log_path.read_text(), 10, "the refusal logged")
            assert proc.returncode is None                             # still serving
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
        done = next(x for x in lines if x.get("event") == "reload")
        assert done["queues_updated"] == ["support"] and done["queues_added"] == ["sales"]
        refused = next(x for x in lines if x.get("event") == "reload_refused")
        assert "name" in refused["error"]

    run(main(), timeout=90)
