"""The wallboard: its state (today's figures, callers, agents, alarms), ``/events`` (SSE), the
streaming HTTP server under it, and the log-in that lets a browser see it beyond loopback."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest
from fakes.ami import FakeAMI
from fakes.channel import FakeChannel, agi
from service_support import http_get, make_config, run, until

from acd.journal import SqliteJournal
from acd.journal.calls import CallLog, replay_journal
from acd.schedule import parse_schedule
from acd.service import Dispatcher
from acd.service.events import EventBus
from acd.service.http import auth, sse

TOKEN = "supervisor-token-0123456789"


class SSEClient:
    """A raw ``GET /events`` reader: the response head, then events as dicts of their fields."""

    def __init__(self, port: int, extra: bytes = b"", method: str = "GET") -> None:
        self.port, self.extra, self.method = port, extra, method
        self.status = 0
        self.headers: Dict[str, str] = {}
        self._buf = b""

    async def open(self) -> "SSEClient":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(f"{self.method} /events HTTP/1.1\r\nHost: localhost\r\n".encode() + self.extra + b"\r\n")
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        return self

    async def event(self, timeout: float = 5.0) -> Dict[str, str]:
        """The next event or comment block (``{"comment": ...}`` for a comment-only block)."""
        while b"\n\n" not in self._buf:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("the stream ended")
            self._buf += data
        block, _, self._buf = self._buf.partition(b"\n\n")
        out: Dict[str, str] = {}
        for line in block.decode().split("\n"):
            name, _, value = line.partition(":")
            out[name or "comment"] = value[1:] if value.startswith(" ") else value
        return out

    async def state(self, timeout: float = 5.0) -> Dict[str, Any]:
        while True:
            ev = await self.event(timeout)
            if ev.get("event") == "state":
                return json.loads(ev["data"])

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def queue(board: Dict[str, Any], name: str = "support") -> Dict[str, Any]:
    return next(q for q in board["queues"] if q["name"] == name)


async def board(d: Dispatcher) -> Dict[str, Any]:
    status, _, body = await http_get(d.http_port, "/wallboard.json")
    assert status == 200
    return json.loads(body)


# --------------------------------------------------------------------------- the bus
def test_a_slow_subscriber_keeps_the_latest_events_only():
    async def main() -> None:
        bus = EventBus()
        sub = bus.subscribe(maxsize=4)
        for i in range(10):
            bus.publish("journal", seq=i)
        assert await sub.wait(0) and sub.dropped == 6
        assert [e.data["seq"] for e in sub.drain()] == [6, 7, 8, 9]
        assert not await sub.wait(0.01)
        sub.close()
        bus.publish("tick")                       # no subscriber: nothing kept anywhere
        assert bus.subscribers == 0
    run(main())


# --------------------------------------------------------------------------- /events
def test_events_push_the_state_within_a_second_then_heartbeats(tmp_path, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT", 0.3)

    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            c = await SSEClient(d.http_port).open()
            assert c.status == 200 and c.headers["content-type"].startswith("text/event-stream")
            assert "content-length" not in c.headers
            first = await c.event()
            assert first["retry"] == "2000" and first["event"] == "state"
            assert queue(json.loads(first["data"]))["waiting"] == 0
            comment = await c.event(2)
            assert comment == {"comment": "heartbeat"}
            t0 = time.monotonic()
            d.enqueue("c1", "support")
            d.enqueue("c2", "support", priority=3)
            st = await c.state(1.0)
            while queue(st)["waiting"] < 2:        # coalesced: one state, or two close together
                st = await c.state(1.0)
            assert time.monotonic() - t0 < 1.0
            assert st["callers"]["total"] == 2 and {r["priority"] for r in st["callers"]["shown"]} == {0, 3}
            assert {r["kind"] for r in st["callers"]["shown"]} == {"live"}
            assert any(a["code"] == "no_agent" and a["level"] == "critical" for a in st["alarms"])
            await c.close()
            await until(lambda: d.live.bus.subscribers == 0, 2, "the closed stream to let go")
        finally:
            await d.stop()
    run(main())


def test_streams_are_capped_head_answers_headers_and_stop_ends_them(tmp_path, monkeypatch):
    monkeypatch.setattr(sse, "MAX_STREAMS", 2)

    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        try:
            status, headers, body = await http_get(d.http_port, "/events", method="HEAD")
            assert status == 200 and body == b"" and headers["content-type"].startswith("text/event-stream")
            a = await SSEClient(d.http_port).open()
            b = await SSEClient(d.http_port).open()
            await a.state()
            await b.state()
            status, headers, _ = await http_get(d.http_port, "/events")
            assert status == 503 and headers["retry-after"] == "5"
            await b.close()
            await until(lambda: d.live.bus.subscribers == 1, 2, "a slot to free")
            c = await SSEClient(d.http_port).open()
            assert c.status == 200
            t0 = time.monotonic()
        finally:
            await d.stop()
        with pytest.raises(EOFError):               # the server's stop ends the streams
            while True:
                await a.event(2)
        assert time.monotonic() - t0 < 3
        assert d.live.bus.subscribers == 0
        await a.close()
        await c.close()
    run(main())


def test_health_changes_are_pushed(tmp_path):
    async def main() -> None:
        fake = await FakeAMI().start()
        d = Dispatcher(make_config(tmp_path, ami_port=fake.port))
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            c = await SSEClient(d.http_port).open()
            st = await c.state()
            assert st["service"]["ami"] == "connected" and not [a for a in st["alarms"] if a["code"] == "ami_down"]
            t0 = time.monotonic()
            await fake.stop()
            st = await c.state(2)
            while st["service"]["ami"] != "down":
                st = await c.state(2)
            assert time.monotonic() - t0 < 1.0
            assert st["alarms"][0]["code"] == "ami_down" and "AMI NOT CONNECTED" in st["alarms"][0]["text"]
            await c.close()
        finally:
            await d.stop()
    run(main())


# --------------------------------------------------------------------------- today's figures
def _day(tmp_path: Any) -> Any:
    return make_config(tmp_path, queue={"service_level": [0.8, 20]})


async def _a_day(d: Dispatcher) -> None:
    """Three calls: answered at once, abandoned, still waiting; an agent paused with a reason."""
    d.login("1001")
    ch = await FakeChannel(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.1").start()
    await until(lambda: d.commands.call_state("1700000000.1") == "offered", what="offered")
    await agi(d.fastagi_port, "dial_result?status=ANSWER", uniqueid="1700000000.1")
    await agi(d.fastagi_port, "call_end", uniqueid="1700000000.1")
    await ch.done()
    d.pause("1001", "training")
    d.enqueue("c2", "support")
    d.abandon("c2")
    d.enqueue("c3", "support", priority=2)


def test_today_counts_calls_as_the_report_does_and_survives_a_restart(tmp_path):
    async def main() -> Tuple[Dict[str, Any], Dict[str, Any]]:
        d = Dispatcher(_day(tmp_path))
        await d.start()
        try:
            await _a_day(d)
            before = await board(d)
        finally:
            await d.stop(timeout=0.2)
        d = Dispatcher(_day(tmp_path))
        await d.start()
        try:
            after = await board(d)
        finally:
            await d.stop(timeout=0.2)
        return before, after

    before, after = run(main())
    q = queue(before)
    today = q["today"]
    assert (today["offered"], today["answered"], today["answered_within"], today["abandoned"]) == (3, 1, 1, 1)
    assert today["service_level"] == 0.5 and today["answer_rate"] == 0.5
    lt = time.localtime()
    k = (lt.tm_hour * 60 + lt.tm_min) // 30
    assert today["intervals"] == [[k, 3, 1, 1]] and before["current_interval"] == k
    assert q["target"] == {"fraction": 0.8, "seconds": 20.0}
    assert [(r["call"], r["priority"], r["kind"]) for r in before["callers"]["shown"]] == [("c3", 2, "live")]
    agent = before["agents"][0]
    assert (agent["id"], agent["state"], agent["reason"]) == ("1001", "paused", "training")
    assert 0 <= agent["in_state"] < 5
    assert {a["code"] for a in before["alarms"]} == {"service_level"}
    # the same from the journal alone, after a restart; c3 keeps its place (the dialplan may come back)
    t2 = queue(after)["today"]
    assert (t2["offered"], t2["answered"], t2["abandoned"], t2["exited"]) == (3, 1, 1, 0)
    assert t2["intervals"] == [[k, 3, 1, 1]]
    assert [r["call"] for r in after["callers"]["shown"]] == ["c3"]
    assert after["callers"]["shown"][0]["wait"] >= before["callers"]["shown"][0]["wait"]
    assert after["agents"][0]["in_state"] >= agent["in_state"]          # since the pause, not the restart
    # and as `acd report` sees it: the same calls, outcomes and waits
    journal = SqliteJournal(str(tmp_path / "journal.sqlite3"))
    try:
        log = replay_journal(journal, CallLog)
    finally:
        journal.close()
    r = log.records()
    assert len(r) == 2 and sorted(r["outcome"].tolist()) == [0, 1] and log.open_calls == 1


def test_a_queue_without_agents_and_a_missed_target_are_alarms(tmp_path):
    async def main() -> None:
        d = Dispatcher(_day(tmp_path))
        await d.start()
        try:
            b = await board(d)
            assert [(a["code"], a["level"]) for a in b["alarms"]] == [("no_agent", "warning")]
            d.enqueue("c1", "support")
            b = await board(d)
            assert [(a["code"], a["level"]) for a in b["alarms"]] == [("no_agent", "critical")]
            assert "1 caller(s) waiting" in b["alarms"][0]["text"]
            d.login("1001")                              # c1 rings at once
            d.abandon("c1")
            b = await board(d)
            assert queue(b)["today"]["service_level"] == 0.0
            assert [a["code"] for a in b["alarms"]] == ["service_level"]
            status, _, page = await http_get(d.http_port, "/")
            assert status == 200 and b"SERVICE LEVEL support: 0 % today, target 80 % in 20 s" in page
        finally:
            await d.stop(timeout=0.2)
    run(main())


def test_a_closed_queue_says_so_and_an_empty_one_is_no_alarm_after_hours(tmp_path):
    import datetime as dt
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    today = dt.datetime.now(paris).date()
    every_day = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    cfg = _day(tmp_path).replace(schedules={"support": parse_schedule("schedules[0]", {
        "name": "office", "timezone": "Europe/Paris", "hours": every_day, "closed": [today.isoformat()]})[0]})

    async def main() -> None:
        d = Dispatcher(cfg)
        await d.start()
        try:
            b = await board(d)
            q = queue(b)
            tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0, 0), paris).timestamp()
            assert q["open"] is False and q["next_open"] == tomorrow
            assert b["alarms"] == []                     # no agent at night is no alarm...
            d.enqueue("c1", "support")                   # ... unless somebody waits
            b = await board(d)
            assert [a["code"] for a in b["alarms"]] == ["no_agent"]
        finally:
            await d.stop(timeout=0.2)
    run(main())


# --------------------------------------------------------------------------- auth
def _exposed(tmp_path: Any) -> Any:
    return make_config(tmp_path, http={"host": "0.0.0.0", "port": 0, "token": TOKEN})


async def _post(port: int, path: str, body: str, extra: bytes = b"") -> Tuple[int, Dict[str, str], bytes]:
    data = body.encode()
    head = (f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(data)}\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: localhost\r\n".encode() + head + extra + b"\r\n" + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head_s, _, rest = raw.partition(b"\r\n\r\n")
    lines = head_s.decode().split("\r\n")
    return int(lines[0].split()[1]), {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}, rest


def test_beyond_loopback_a_browser_logs_in_once_and_the_cookie_opens_pages_and_events(tmp_path):
    async def main() -> None:
        d = Dispatcher(_exposed(tmp_path))
        await d.start()
        port = d.http_port
        try:
            assert (await http_get(port, "/healthz"))[0] == 200
            status, headers, _ = await http_get(port, "/")
            assert status == 303 and headers["location"] == "/login"
            assert (await http_get(port, "/events"))[0] == 401
            assert (await http_get(port, "/wallboard.json"))[0] == 401
            status, _, body = await http_get(port, f"/?token={TOKEN}")
            assert status == 400 and b"never accepted in a URL" in body
            status, _, page = await http_get(port, "/login")
            assert status == 200 and b'type="password"' in page
            t0 = time.monotonic()
            status, headers, _ = await _post(port, "/login", "token=wrong-token-000000000")
            assert status == 401 and "set-cookie" not in headers and time.monotonic() - t0 >= 0.9
            status, headers, _ = await _post(port, "/login", f"token={TOKEN}")
            assert status == 303 and headers["location"] == "/"
            cookie = headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=2592000" in cookie
            assert TOKEN not in cookie
            jar = ("Cookie: " + cookie.split(";")[0] + "\r\n").encode()
            status, _, page = await http_get(port, "/", extra=jar)
            assert status == 200 and b'id="logout"' in page
            assert (await http_get(port, "/wallboard.json", extra=jar))[0] == 200
            c = await SSEClient(port, jar).open()
            assert c.status == 200 and (await c.state())["format"] == 1
            await c.close()
            bearer = f"Authorization: Bearer {TOKEN}\r\n".encode()
            c = await SSEClient(port, bearer).open()
            assert c.status == 200
            await c.close()
            # the cookie never authorises an action (another site could make the browser post)
            status, _, _ = await _post(port, "/api/agents/1001/ready", "", extra=jar)
            assert status == 401
            # forged, tampered or expired cookies are refused
            value = cookie.split(";")[0].split("=", 1)[1]
            expiry, mac = value.split(".")
            for bad in (f"{int(expiry) + 1}.{mac}", f"{expiry}.{'0' * 64}", "garbage", f"{int(time.time()) - 5}."
                        + d.http.guard._mac(int(time.time()) - 5)):   # type: ignore[union-attr]
                assert (await http_get(port, "/wallboard.json", extra=f"Cookie: acd_session={bad}\r\n".encode()))[0] \
                    == 401, bad
            status, headers, _ = await _post(port, "/logout", "")
            assert status == 303 and "Max-Age=0" in headers["set-cookie"]
        finally:
            await d.stop()
    run(main())


def test_a_session_past_half_its_life_is_renewed(tmp_path, monkeypatch):
    guard = auth.TokenGuard(TOKEN, pages_need_token=True, clock=lambda: 1_000_000.0)
    old = guard.session_value()
    later = auth.TokenGuard(TOKEN, pages_need_token=True, clock=lambda: 1_000_000.0 + auth.SESSION_SECONDS * 0.6)
    from acd.service.http.api import _renewed
    from acd.service.http.server import Request, text
    req = Request("GET", "/", {}, {"cookie": f"acd_session={old}"}, b"", "10.0.0.1")
    assert later.session_ok(req)
    resp = _renewed(later, req, text(200, "ok"))
    assert resp.headers["Set-Cookie"].startswith("acd_session=") and old not in resp.headers["Set-Cookie"]
    assert "Set-Cookie" not in _renewed(guard, req, text(200, "ok")).headers
    other = auth.TokenGuard("another-token-0123456789", pages_need_token=True, clock=lambda: 1_000_000.0)
    assert not other.session_ok(req)                  # a new token ends every session
