"""AMI client against a scripted fake Asterisk manager on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.adapters.asterisk import (AMIActionError, AMIAuthError, AMIClient, AMIConnectionError, AMIMessage,
                                   AMIOriginateFailed, AMIOutcomeUnknown, AMITimeout)
from acd.adapters.asterisk.ami import AMIParser, encode_action
from acd.errors import InvalidInput, ProtocolError


def run(coro: Any, timeout: float = 15.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


Msg = list[tuple[str, str]]
Handler = Callable[["FakeAMI", dict[str, str], asyncio.StreamWriter], Awaitable[None]]


def fmt(*pairs: tuple[str, str], **fields: str) -> bytes:
    items = list(pairs) + list(fields.items())
    return ("".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n").encode()


class FakeAMI:
    """Speaks the manager protocol: banner, then Key: Value messages.  ``handler``
    decides the answer to each action (after the built-in Login/Logoff)."""

    def __init__(self, handler: Handler | None = None, *, banner: bytes = b"Asterisk Call Manager/5.0.2\r\n",
                 secret: str = "good") -> None:
        self.handler = handler
        self.banner = banner
        self.secret = secret
        self.actions: list[dict[str, str]] = []
        self.raw: list[Msg] = []
        self.logins = 0
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.drop()
        await self.server.wait_closed()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=2)

    async def drop(self) -> None:
        for w in list(self.writers):
            w.close()
            try:
                await w.wait_closed()
            except OSError:
                pass
        self.writers.clear()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        try:
            writer.write(self.banner)
            await writer.drain()
            while True:
                pairs: Msg = []
                while True:
                    line = await reader.readline()
                    if not line:
                        return
                    text = line.decode().rstrip("\r\n")
                    if not text:
                        break
                    key, _, value = text.partition(": ")
                    pairs.append((key, value))
                self.raw.append(pairs)
                msg = dict(pairs)
                self.actions.append(msg)
                action = msg.get("Action", "")
                if action == "Login":
                    if msg.get("Secret") == self.secret:
                        self.logins += 1
                        writer.write(fmt(Response="Success", ActionID=msg["ActionID"],
                                         Message="Authentication accepted"))
                        writer.write(fmt(Event="FullyBooted", Privilege="system,all", Status="Fully Booted"))
                    else:
                        writer.write(fmt(Response="Error", ActionID=msg["ActionID"], Message="Authentication failed"))
                elif action == "Logoff":
                    writer.write(fmt(Response="Goodbye", ActionID=msg["ActionID"],
                                     Message="Thanks for all the fish."))
                    await writer.drain()
                    return
                elif self.handler is not None:
                    await self.handler(self, msg, writer)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if writer in self.writers:
                self.writers.remove(writer)
            writer.close()


def client_for(fake: FakeAMI, **kw: Any) -> AMIClient:
    opts: dict[str, Any] = dict(username="acd", secret="good", action_timeout=2, connect_timeout=2,
                                ping_interval=None, backoff_initial=0.02, backoff_max=0.1, jitter=0)
    opts.update(kw)
    return AMIClient("127.0.0.1", fake.port, **opts)


async def pong(fake: FakeAMI, msg: dict[str, str], w: asyncio.StreamWriter) -> None:
    if msg["Action"] == "Ping":
        w.write(fmt(Response="Success", ActionID=msg["ActionID"], Ping="Pong", Timestamp="1700000000.000000"))


# ------------------------------------------------------------------ tests


def test_login_ok_and_clean_close():
    async def main() -> tuple[FakeAMI, AMIClient, Any]:
        fake = FakeAMI(pong)
        await fake.start()
        client = client_for(fake)
        try:
            await client.connect()
            assert client.connected
            resp = await client.action("Ping")
        finally:
            await client.close()
            await fake.stop()
        return fake, client, resp

    fake, client, resp = run(main())
    assert client.banner == "Asterisk Call Manager/5.0.2" and client.version == (5, 0, 2)
    login = fake.actions[0]
    assert login["Action"] == "Login" and login["Username"] == "acd" and login["Secret"] == "good"
    assert login["Events"] == "on" and login["ActionID"]
    assert resp["Ping"] == "Pong" and resp.success and resp.action_id == fake.actions[1]["ActionID"]
    assert fake.actions[-1]["Action"] == "Logoff"
    assert not client.connected and client.logins == 1


def test_login_failed():
    async def main() -> tuple[FakeAMI, AMIClient]:
        fake = FakeAMI()
        await fake.start()
        client = client_for(fake, secret="bad")
        try:
            with pytest.raises(AMIAuthError, match="Authentication failed"):
                await client.connect()
            await asyncio.sleep(0.1)  # no retry loop after a failed first login
        finally:
            await client.close()
            await fake.stop()
        return fake, client

    fake, client = run(main())
    assert fake.connections == 1 and not client.connected


def test_connect_refused_and_bad_banner():
    async def main() -> None:
        fake = FakeAMI(banner=b"SSH-2.0-OpenSSH_9.0\r\n")
        await fake.start()
        client = client_for(fake)
        with pytest.raises(ProtocolError, match="not an AMI banner"):
            await client.connect()
        await client.close()
        port = fake.port
        await fake.stop()
        refused = AMIClient("127.0.0.1", port, username="acd", secret="x", connect_timeout=1, ping_interval=None)
        with pytest.raises(AMIConnectionError):
            await refused.connect()
        await refused.close()
        with pytest.raises(AMIConnectionError, match="not connected"):
            await refused.action("Ping")

    run(main())


def test_action_correlation_with_interleaved_events():
    async def handler(fake: FakeAMI, msg: dict[str, str], w: asyncio.StreamWriter) -> None:
        if msg["Action"] == "Status" and len([a for a in fake.actions if a.get("Action") == "Status"]) == 2:
            first, second = [a for a in fake.actions if a.get("Action") == "Status"]
            # answer out of order, with unrelated events in between
            w.write(fmt(Event="Newchannel", Channel="PJSIP/1-0001", Uniqueid="1.1"))
            w.write(fmt(Response="Success", ActionID=second["ActionID"], Message="second", X="b"))
            w.write(fmt(Event="Hangup", Channel="PJSIP/1-0001", Cause="16"))
            w.write(fmt(Response="Success", ActionID=first["ActionID"], Message="first", X="a"))
            w.write(fmt(Response="Success", ActionID="someone-else-1", Message="ignored"))

    async def main() -> tuple[Any, Any, list[str], list[str], list[str]]:
        fake = FakeAMI(handler)
        await fake.start()
        client = client_for(fake)
        sync_seen: list[str] = []
        async_seen: list[str] = []

        async def on_any(ev: AMIMessage) -> None:
            async_seen.append(ev.event or "")

        client.on("Hangup", lambda ev: sync_seen.append(ev["cause"]))
        client.on("*", on_any)
        client.on("Hangup", lambda ev: 1 / 0)  # a broken callback is logged, not fatal
        stream = client.events("Newchannel", "Hangup")
        try:
            await client.connect()
            a, b = await asyncio.gather(client.action("Status", Channel="one"),
                                        client.action("Status", {"Channel": "two"}))
            streamed = [(await stream.get(2)).event or "", (await stream.get(2)).event or ""]
            await asyncio.sleep(0.01)
        finally:
            await client.close()
            await fake.stop()
        return a, b, sync_seen, async_seen, streamed

    a, b, sync_seen, async_seen, streamed = run(main())
    assert (a["Message"], a["x"], b["Message"], b["X"]) == ("first", "a", "second", "b")
    assert sync_seen == ["16"]
    assert async_seen == ["FullyBooted", "Newchannel", "Hangup"]
    assert streamed == ["Newchannel", "Hangup"]


def test_list_response_collects_its_events():
    async def handler(fake: FakeAMI, msg: dict[str, str], w: asyncio.StreamWriter) -> None:
        aid = msg["ActionID"]
        if msg["Action"] == "QueueStatus":
            w.write(fmt(Response="Success", ActionID=aid, EventList="start", Message="Queue status will follow"))
            w.write(fmt(Event="QueueParams", Queue="support", Max="0", Calls="3", ActionID=aid))
            w.write(fmt(Event="Hangup", Channel="PJSIP/9-0009"))  # unrelated, interleaved
            w.write(fmt(Event="QueueMember", Queue="support", Name="Agent/1001", ActionID=aid))
            w.write(fmt(Event="QueueStatusComplete", ActionID=aid, EventList="Complete", ListItems="2"))
        elif msg["Action"] == "CoreShowChannels":  # old style: no EventList header on the response
            w.write(fmt(Response="Success", ActionID=aid, Message="Channels will follow"))
            w.write(fmt(Event="CoreShowChannelsComplete", ActionID=aid, ListItems="0"))
        elif msg["Action"] == "Bogus":
            w.write(fmt(Response="Error", ActionID=aid, Message="Invalid/unknown command: Bogus."))

    async def main() -> tuple[Any, Any, list[str], Any]:
        fake = FakeAMI(handler)
        await fake.start()
        client = client_for(fake)
        stream = client.events()
        try:
            await client.connect()
            resp = await client.action("QueueStatus", Queue="support")
            empty = await client.action("CoreShowChannels")
            with pytest.raises(AMIActionError, match="Invalid/unknown command") as err:
                await client.action("Bogus")
            assert err.value.response is not None and err.value.response["Response"] == "Error"
            unchecked = await client.action("Bogus", check=False)
            assert not unchecked.success
            names = []
            async with stream:
                while True:
                    try:
                        names.append((await stream.get(0.2)).event or "")
                    except AMITimeout:
                        break
        finally:
            await client.close()
            await fake.stop()
        return resp, empty, names, stream

    resp, empty, names, stream = run(main())
    assert [e.event for e in resp.events] == ["QueueParams", "QueueMember"]
    assert resp.events[0]["Calls"] == "3" and resp.complete is not None and resp.complete["ListItems"] == "2"
    assert empty.events == () and empty.complete is not None
    assert names == ["FullyBooted", "Hangup"]  # list items are not broadcast


def test_reconnect_after_the_server_drops_the_connection():
    async def handler(fake: FakeAMI, msg: dict[str, str], w: asyncio.StreamWriter) -> None:
        if msg["Action"] == "Command":
            await fake.drop()  # die with the action pending
        else:
            await pong(fake, msg, w)

    async def main() -> tuple[FakeAMI, AMIClient]:
        fake = FakeAMI(handler)
        await fake.start()
        client = client_for(fake)
        client.on_login(lambda: logins.append("sync"))

        async def async_hook() -> None:
            logins.append("async")
        client.on_login(async_hook)
        try:
            await client.connect()
            with pytest.raises(AMIConnectionError):
                await client.action("Command", Command="core show version")
            with pytest.raises(AMIConnectionError):
                await client.action("Ping")  # disconnected: fails at once
            await client.wait_connected(5)
            resp = await client.action("Ping")
            assert resp["Ping"] == "Pong"
        finally:
            await client.close()
            await fake.stop()
        return fake, client

    logins: list[str] = []
    fake, client = run(main())
    assert fake.logins == 2 and client.logins == 2
    assert [a["Action"] for a in fake.actions if a["Action"] == "Login"] == ["Login", "Login"]
    assert sorted(logins) == ["async", "async", "sync", "sync"]   # the login hooks ran at each login


def test_reconnect_with_back_off_while_the_server_is_down():
    async def main() -> tuple[FakeAMI, AMIClient, list[float]]:
        fake = FakeAMI(pong)
        await fake.start()
        port = fake.port
        client = client_for(fake, backoff_initial=0.05, backoff_max=0.2)
        delays = []
        original = client._backoff

        def spy(attempt: int) -> float:
            delays.append(original(attempt))
            return delays[-1]

        client._backoff = spy  # type: ignore[method-assign]
        try:
            await client.connect()
            await fake.stop()
            await asyncio.sleep(0.5)  # several failed attempts
            assert not client.connected
            fake2 = FakeAMI(pong)
            await fake2.start(port)
            await client.wait_connected(5)
            assert (await client.action("Ping"))["Ping"] == "Pong"
        finally:
            await client.close()
            await fake2.stop()
        return fake2, client, delays

    fake2, client, delays = run(main())
    assert fake2.logins == 1 and client.logins == 2
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]


def test_backoff_schedule_and_jitter():
    c = AMIClient(username="u", secret="s", backoff_initial=0.5, backoff_max=30, jitter=0)
    assert [c._backoff(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    j = AMIClient(username="u", secret="s", backoff_initial=1, backoff_max=4, jitter=0.5)
    assert all(1 <= j._backoff(0) <= 1.5 for _ in range(50))


def test_keepalive_detects_a_silent_server():
    async def main() -> tuple[FakeAMI, AMIClient]:
        fake = FakeAMI(None)  # never answers Ping
        await fake.start()
        client = client_for(fake, ping_interval=0.1, action_timeout=0.1)
        try:
            await client.connect()
            for _ in range(200):
                if fake.logins >= 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            await client.close()
            await fake.stop()
        return fake, client

    fake, client = run(main())
    assert fake.logins >= 2


def test_action_timeout():
    async def main() -> None:
        fake = FakeAMI(None)
        await fake.start()
        client = client_for(fake)
        try:
            await client.connect()
            with pytest.raises(AMITimeout, match="no response to Status"):
                await client.action("Status", timeout=0.1)
        finally:
            await client.close()
            await fake.stop()

    run(main())


def test_originate_success_and_failure():
    async def handler(fake: FakeAMI, msg: dict[str, str], w: asyncio.StreamWriter) -> None:
        if msg["Action"] != "Originate":
            return
        aid = msg["ActionID"]
        w.write(fmt(Response="Success", ActionID=aid, Message="Originate successfully queued"))
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(fmt(Event="Newchannel", Channel="PJSIP/trunk-0002"))
        ok = "busy" not in msg["Channel"]
        w.write(fmt(Event="OriginateResponse", Privilege="call,all", ActionID=aid,
                    Response="Success" if ok else "Failure", Channel=msg["Channel"], Context=msg.get("Context", ""),
                    Exten=msg.get("Exten", ""), Reason="4" if ok else "5", Uniqueid="1700000000.7" if ok else "<null>"))

    async def main() -> tuple[FakeAMI, AMIMessage, AMIOriginateFailed, Any]:
        fake = FakeAMI(handler)
        await fake.start()
        client = client_for(fake)
        try:
            await client.connect()
            event = await client.originate("PJSIP/0612345678@trunk", context="acd-callback", exten="s",
                                           priority=1, timeout=20, caller_id='"ACD" <100>',
                                           variables={"ACD_CALL": "c42", "ACD_QUEUE": "support"})
            with pytest.raises(AMIOriginateFailed) as failed:
                await client.originate("PJSIP/busy@trunk", application="Playback", data="hello")
            queued = await client.originate("PJSIP/x@trunk", application="Wait", data="1", wait=False)
        finally:
            await client.close()
            await fake.stop()
        return fake, event, failed.value, queued

    fake, event, failed, queued = run(main())
    assert event.event == "OriginateResponse" and event["Uniqueid"] == "1700000000.7" and event["Reason"] == "4"
    assert failed.reason == 5 and "busy" in str(failed)
    assert queued.success and queued.message == "Originate successfully queued"
    raw = [m for m in fake.raw if dict(m).get("Action") == "Originate"][0]
    assert ("Variable", "ACD_CALL=c42") in raw and ("Variable", "ACD_QUEUE=support") in raw
    d = dict(raw)
    assert d["Async"] == "true" and d["Timeout"] == "20000" and d["Context"] == "acd-callback"
    assert d["Priority"] == "1" and d["CallerID"] == '"ACD" <100>'


def test_originate_outcome_is_unknown_when_the_link_drops():
    async def handler(fake: FakeAMI, msg: dict[str, str], w: asyncio.StreamWriter) -> None:
        if msg["Action"] == "Originate":
            w.write(fmt(Response="Success", ActionID=msg["ActionID"], Message="Originate successfully queued"))
            await w.drain()
            await fake.drop()

    async def main() -> None:
        fake = FakeAMI(handler)
        await fake.start()
        client = client_for(fake)
        try:
            await client.connect()
            # queued by Asterisk, then the link dropped: the call may be ringing there
            with pytest.raises(AMIOutcomeUnknown, match="PJSIP/1@trunk"):
                await client.originate("PJSIP/1@trunk", context="c", exten="s", priority=1)
            # not sent at all: a plain connection error (safe to retry)
            with pytest.raises(AMIConnectionError) as info:
                await client.originate("PJSIP/1@trunk", context="c", exten="s", priority=1)
            assert not isinstance(info.value, AMIOutcomeUnknown)
        finally:
            await client.close()
            await fake.stop()

    run(main())


def test_input_validation_prevents_injection():
    async def main() -> FakeAMI:
        fake = FakeAMI(pong)
        await fake.start()
        client = client_for(fake)
        try:
            await client.connect()
            n = len(fake.actions)
            for bad in ({"Channel": "x\r\nAction: Hangup"}, {"Bad Key": "x"}, {"ActionID": "mine"},
                        {"Channel": None}, {"Timeout": float("inf")}):
                with pytest.raises(InvalidInput):
                    await client.action("Status", bad)
            with pytest.raises(InvalidInput):
                await client.action("Status\r\nAction: Hangup")
            with pytest.raises(InvalidInput):
                await client.originate("PJSIP/1", context="c")  # no exten/priority
            with pytest.raises(InvalidInput):
                await client.originate("PJSIP/1", application="Dial", context="c")
            with pytest.raises(InvalidInput):
                await client.originate("PJSIP/1", application="Dial", variables={"A=B": "x"})
            assert len(fake.actions) == n  # nothing was sent
        finally:
            await client.close()
            await fake.stop()
        return fake

    run(main())
    for kw in ({"port": 0}, {"connect_timeout": 0}, {"backoff_factor": 0.5}, {"jitter": 2}, {"username": ""}):
        with pytest.raises(InvalidInput):
            AMIClient(**{"username": "u", "secret": "s", **kw})


def test_event_stream_is_bounded_and_ends_on_close():
    async def handler(fake: FakeAMI, msg: dict[str, str], w: asyncio.StreamWriter) -> None:
        if msg["Action"] == "Burst":
            for i in range(10):
                w.write(fmt(Event="Tick", N=str(i)))
            w.write(fmt(Response="Success", ActionID=msg["ActionID"]))

    async def main() -> tuple[list[str], int]:
        fake = FakeAMI(handler)
        await fake.start()
        client = client_for(fake)
        stream = client.events("tick", maxsize=3)
        try:
            await client.connect()
            await client.action("Burst")
        finally:
            await client.close()
            await fake.stop()
        got = [ev["N"] async for ev in stream]  # ends: the client is closed
        return got, stream.dropped

    got, dropped = run(main())
    assert got == ["7", "8", "9"] and dropped == 7


# ------------------------------------------------------------------ parser


def test_parser_messages():
    p = AMIParser()
    assert p.feed_line(b"Asterisk Call Manager/2.10.6\r\n") is None and p.version == (2, 10, 6)
    for line in (b"Response: Success\r\n", b"ActionID: 1\r\n", b"Message: Channel status will follow\r\n"):
        assert p.feed_line(line) is None
    msg = p.feed_line(b"\r\n")
    assert msg is not None and msg.response == "Success" and msg["actionid"] == "1" and msg.action_id == "1"
    assert p.feed_line(b"\r\n") is None  # stray blank lines are ignored
    for line in ("Event: VarSet\n", "Variable: A\n", "Value: with: colons\n", "Variable: B\n", "Empty:\n"):
        p.feed_line(line)
    ev = p.feed_line("\n")
    assert ev is not None and ev.event == "VarSet" and ev.get_all("variable") == ["A", "B"]
    assert ev["Value"] == "with: colons" and ev["Empty"] == "" and "variable" in ev and len(ev) == 4
    assert list(ev) == ["Event", "Variable", "Value", "Empty"]


def test_parser_follows_output():
    p = AMIParser()
    p.feed_line("Asterisk Call Manager/1.1")
    for line in ("Response: Follows", "Privilege: Command", "ActionID: 9",
                 "Name/username  Host: 10.0.0.1", "2 sip peers", "--END COMMAND--"):
        assert p.feed_line(line) is None
    msg = p.feed_line("")
    assert msg is not None and msg.output == ("Name/username  Host: 10.0.0.1", "2 sip peers")
    assert msg.action_id == "9"


def test_parser_limits():
    p = AMIParser(max_line=100, max_lines=3)
    with pytest.raises(ProtocolError):
        p.feed_line(b"HTTP/1.1 400 Bad Request\r\n")
    p.feed_line(b"Asterisk Call Manager/5.0.2\r\n")
    with pytest.raises(ProtocolError, match="longer than"):
        p.feed_line(b"Event: " + b"x" * 200 + b"\r\n")
    for i in range(3):
        p.feed_line(f"K{i}: v")
    with pytest.raises(ProtocolError, match="longer than 3 lines"):
        p.feed_line("K9: v")
    assert p.feed_line("Event: Fresh") is None and p.feed_line("").event == "Fresh"  # type: ignore[union-attr]


def test_encode_action():
    assert encode_action("Originate", "a-1", {"Channel": "PJSIP/1", "Variable": ["A=1", "B=2"], "Async": True,
                                              "Priority": 1}) == (
        b"Action: Originate\r\nActionID: a-1\r\nChannel: PJSIP/1\r\nVariable: A=1\r\nVariable: B=2\r\n"
        b"Async: true\r\nPriority: 1\r\n\r\n")


@given(st.lists(st.one_of(st.text(max_size=60), st.binary(max_size=60),
                          st.builds(lambda k, v: f"{k}: {v}", st.text(max_size=10), st.text(max_size=20))),
                max_size=15))
def test_fuzz_parser(lines):
    p = AMIParser(max_lines=8)
    p.feed_line("Asterisk Call Manager/5.0.2")
    for line in lines:
        try:
            msg = p.feed_line(line)
        except ProtocolError:
            continue
        if msg is not None:
            assert isinstance(msg, AMIMessage) and (msg.headers or msg.output)
