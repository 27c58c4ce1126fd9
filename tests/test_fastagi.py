"""FastAGI server against a scripted fake Asterisk on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd.adapters.asterisk import (AGICommandError, AGICommandFailed, AGISession, AGITimeout, ChannelHungUp,
                                   FastAGIServer)
from acd.adapters.asterisk.agi import AGIReply
from acd.errors import InvalidInput, ProtocolError
from agi_support import split_args

CLOSE = object()  # reply meaning: the fake Asterisk hangs up the TCP connection


def run(coro: Any, timeout: float = 15.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))




def env_text(script: str = "enqueue?queue=support&priority=2", uniqueid: str = "1700000000.1",
             **extra: str) -> str:
    env = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:4573/{script}",
        "agi_channel": f"PJSIP/100-{uniqueid}",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": uniqueid,
        "agi_version": "20.5.0",
        "agi_callerid": "0612345678",
        "agi_calleridname": "Alice",
        "agi_context": "default",
        "agi_extension": "100",
        "agi_priority": "1",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
    }
    env.update(extra)
    return "".join(f"{k}: {v}\n" for k, v in env.items()) + "\n"


def default_reply(cmd: str) -> str:
    if cmd.startswith(("SET VARIABLE", "VERBOSE")):
        return "200 result=1"
    return "200 result=0"


class Script:
    """Replies to commands in order: each step is (command prefix, reply).  A reply
    is text (may hold several lines), CLOSE, or (delay_seconds, reply).  Commands
    that do not match the next step get ``default``."""

    def __init__(self, *steps: tuple[str, Any], default: Callable[[str], Any] = default_reply) -> None:
        self.steps = list(steps)
        self.default = default

    def __call__(self, cmd: str) -> Any:
        if self.steps and cmd.startswith(self.steps[0][0]):
            return self.steps.pop(0)[1]
        return self.default(cmd)


async def fake_call(port: int, responder: Callable[[str], Any] = default_reply, *, env: str | bytes | None = None,
                    read_timeout: float = 5.0) -> list[str]:
    """Play Asterisk for one call; return the commands received (until the server closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    commands: list[str] = []
    try:
        data = env_text() if env is None else env
        writer.write(data.encode() if isinstance(data, str) else data)
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), read_timeout)
            if not line:
                break
            cmd = line.decode().rstrip("\n")
            commands.append(cmd)
            reply = responder(cmd)
            if isinstance(reply, tuple):
                await asyncio.sleep(reply[0])
                reply = reply[1]
            if reply is CLOSE:
                break
            writer.write((reply + "\n").encode())
            await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return commands


def variables(commands: list[str]) -> dict[str, str]:
    out = {}
    for cmd in commands:
        words = split_args(cmd)
        if words[:2] == ["SET", "VARIABLE"]:
            out[words[2]] = words[3]
    return out


async def serving(server: FastAGIServer) -> int:
    await server.start()
    assert server.port
    return server.port


# ---------------------------------------------------------------- tests


def test_every_reply_code_through_a_handler():
    out: dict[str, Any] = {}

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        out["args"] = args
        out["script"] = session.script
        out["answer"] = await session.answer()
        out["var"] = await session.get_variable("FOO")
        out["novar"] = await session.get_variable("NOPE")
        out["digit"] = await session.stream_file("welcome", "0123456789")
        out["data"] = await session.get_data("enter-number", 5, 4)
        out["nodata"] = await session.get_data("enter-number", 5, 4)
        out["raw"] = await session.command("CHANNEL STATUS")
        try:
            await session.command("NO SUCH THING")
        except AGICommandError as exc:
            out["510"] = exc.code
        try:
            await session.say_number(12)
        except AGICommandError as exc:
            out["520"] = (exc.code, exc.usage)
        try:
            await session.stream_file("missing")
        except AGICommandFailed as exc:
            out["-1"] = (type(exc).__name__, session.hung_up)
        out["exec"] = await session.exec("Playback", "hello", "noanswer")
        await session.verbose("done", 2)

    script = Script(
        ("ANSWER", "200 result=0"),
        ("GET VARIABLE", "200 result=1 (bar (baz))"),
        ("GET VARIABLE", "200 result=0"),
        ("STREAM FILE", "200 result=50 endpos=1234"),
        ("GET DATA", "200 result=1234 (timeout)"),
        ("GET DATA", "200 result= (timeout)"),
        ("CHANNEL STATUS", "200 result=6"),
        ("NO SUCH THING", "510 Invalid or unknown command"),
        ("SAY NUMBER", "520-Invalid command syntax.  Proper usage follows:\n"
                       " Usage: SAY NUMBER <number> <escape digits> [gender]\n"
                       "520 End of proper usage."),
        ("STREAM FILE", "200 result=-1 endpos=0"),
        ("EXEC", "200 result=0"),
    )

    async def main() -> list[str]:
        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            return await fake_call(port, script)
        finally:
            await server.stop()

    commands = run(main())
    assert out["args"] == {"queue": "support", "priority": "2"} and out["script"] == "enqueue"
    assert out["answer"] is None and out["var"] == "bar (baz)" and out["novar"] is None
    assert out["digit"] == "2" and out["data"] == "1234" and out["nodata"] == ""
    assert out["raw"] == AGIReply(200, "6")
    assert out["510"] == 510
    assert out["520"] == (520, " Usage: SAY NUMBER <number> <escape digits> [gender]")
    assert out["-1"] == ("AGICommandFailed", False)
    assert out["exec"] == 0
    assert [split_args(c) for c in commands] == [
        ["ANSWER"],
        ["GET", "VARIABLE", "FOO"],
        ["GET", "VARIABLE", "NOPE"],
        ["STREAM", "FILE", "welcome", "0123456789"],
        ["GET", "DATA", "enter-number", "5000", "4"],
        ["GET", "DATA", "enter-number", "5000", "4"],
        ["CHANNEL", "STATUS"],
        ["NO", "SUCH", "THING"],
        ["SAY", "NUMBER", "12", ""],
        ["STREAM", "FILE", "missing", ""],
        ["EXEC", "Playback", "hello,noanswer"],
        ["VERBOSE", "done", "2"],
        ["SET", "VARIABLE", "ACD_STATUS", "OK"],
    ]


def _run_handler(handler: Any, responder: Any, **server_kw: Any) -> tuple[list[str], FastAGIServer]:
    async def main() -> tuple[list[str], FastAGIServer]:
        server = FastAGIServer(port=0, **server_kw)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            return await fake_call(port, responder), server
        finally:
            await server.stop(timeout=3)
    return run(main())


def test_511_dead_channel_raises_channel_hung_up():
    seen: list[Any] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        try:
            await session.stream_file("welcome")
        except ChannelHungUp as exc:
            seen.append((exc.reply.code, session.hung_up))
            raise

    commands, server = _run_handler(handler, Script(("STREAM FILE", "511 Command Not Permitted on a dead channel")))
    assert seen == [(511, True)]
    assert "ACD_STATUS" not in variables(commands)  # nobody listens to a dead channel
    assert server.stats.hangups == 1 and server.stats.errors == 0


def test_hangup_line_during_a_command():
    seen: list[str] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        try:
            await session.stream_file("welcome")
        except ChannelHungUp:
            seen.append("hung up")
            await session.set_variable("ACD_RESULT", "ABANDONED")  # allowed on a dead channel

    commands, server = _run_handler(handler, Script(("STREAM FILE", "HANGUP\n200 result=-1 endpos=0")))
    assert seen == ["hung up"]
    assert variables(commands) == {"ACD_RESULT": "ABANDONED"}


def test_hangup_line_while_idle_wakes_the_handler():
    seen: list[Any] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        seen.append(await session.wait_hangup(timeout=5))
        seen.append(session.hung_up)
        await session.set_variable("ACD_RESULT", "ABANDONED")

    commands, _ = _run_handler(handler, Script(("ANSWER", (0.05, "200 result=0\nHANGUP"))))
    assert seen == [True, True]
    assert variables(commands) == {"ACD_RESULT": "ABANDONED"}


def test_wait_hangup_timeout():
    seen: list[Any] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        seen.append(await session.wait_hangup(timeout=0.05))

    _run_handler(handler, default_reply)
    assert seen == [False]


def test_eof_mid_session_then_server_still_serves():
    seen: list[str] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        try:
            await session.stream_file("welcome")
        except ChannelHungUp:
            seen.append("eof")
            raise

    async def main() -> list[str]:
        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            await fake_call(port, Script(("STREAM FILE", CLOSE)))
            for _ in range(50):
                if server.active_sessions == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.stats.hangups == 1
            return await fake_call(port, default_reply)  # the next call works
        finally:
            await server.stop()

    second = run(main())
    assert seen == ["eof"]
    assert variables(second)["ACD_STATUS"] == "OK"


def test_cancelled_command_keeps_the_session_in_step():
    seen: list[Any] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        try:
            await asyncio.wait_for(session.get_data("menu", 10, 1), 0.05)
        except asyncio.TimeoutError:
            seen.append("cancelled")
        seen.append(await session.get_variable("X"))

    commands, _ = _run_handler(handler, Script(("GET DATA", (0.3, "200 result=5")),
                                               ("GET VARIABLE", "200 result=1 (after)")))
    assert seen == ["cancelled", "after"]
    assert [split_args(c)[0] for c in commands] == ["GET", "GET", "SET"]


def _error_vars(commands: list[str]) -> tuple[str, str, str]:
    v = variables(commands)
    verbose = [c for c in commands if c.startswith("VERBOSE")]
    assert verbose, commands
    return v.get("ACD_STATUS", ""), v.get("ACD_ERROR", ""), v.get("ACD_ERROR_DETAIL", "")


def test_unknown_script(caplog):
    async def handler(session: AGISession, args: dict[str, str]) -> None:
        raise AssertionError("not called")

    async def main() -> list[str]:
        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            return await fake_call(port, env=env_text("nosuch?x=1"))
        finally:
            await server.stop()

    with caplog.at_level(logging.WARNING, logger="acd.adapters.asterisk.fastagi"):
        commands = run(main())
    status, code, detail = _error_vars(commands)
    assert (status, code) == ("ERROR", "UNKNOWN_SCRIPT") and "'nosuch'" in detail and "enqueue" in detail
    assert any("UNKNOWN_SCRIPT" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("script", [
    "enqueue?queue", "enqueue?queue=a&queue=b", "enqueue?=x", "enqueue?q=%0Abad", "../etc/passwd", "a b",
])
def test_bad_request_arguments(script):
    async def handler(session: AGISession, args: dict[str, str]) -> None:
        raise AssertionError("not called")

    async def main() -> list[str]:
        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            return await fake_call(port, env=env_text(script))
        finally:
            await server.stop()

    status, code, _ = _error_vars(run(main()))
    assert (status, code) == ("ERROR", "BAD_REQUEST")


def test_handler_errors_reach_the_channel(caplog):
    async def bad_input(session: AGISession, args: dict[str, str]) -> None:
        raise InvalidInput(f"priority must be an int in 0..9, got {args['priority']!r}")

    async def crash(session: AGISession, args: dict[str, str]) -> None:
        raise RuntimeError("boom")

    async def main() -> tuple[list[str], list[str], list[str], FastAGIServer]:
        server = FastAGIServer(port=0)
        server.route("enqueue", bad_input)
        server.route("crash", crash)
        server.route("ok", lambda s, a: asyncio.sleep(0))
        port = await serving(server)
        try:
            a = await fake_call(port, env=env_text("enqueue?queue=x&priority=high"))
            b = await fake_call(port, env=env_text("crash"))
            c = await fake_call(port, env=env_text("ok"))
            return a, b, c, server
        finally:
            await server.stop()

    with caplog.at_level(logging.WARNING, logger="acd.adapters.asterisk.fastagi"):
        a, b, c, server = run(main())
    assert _error_vars(a) == ("ERROR", "INVALID_INPUT", "priority must be an int in 0..9, got 'high'")
    status, code, detail = _error_vars(b)
    assert (status, code) == ("ERROR", "INTERNAL") and "RuntimeError" in detail
    assert variables(c) == {"ACD_STATUS": "OK"}
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)
    assert server.stats.by_code == {"INVALID_INPUT": 1, "INTERNAL": 1} and server.stats.completed == 1


def test_handler_may_set_its_own_status():
    async def handler(session: AGISession, args: dict[str, str]) -> None:
        await session.set_variable("ACD_STATUS", "CALLBACK")

    commands, _ = _run_handler(handler, default_reply)
    assert [c for c in commands if "ACD_STATUS" in c] == ['SET VARIABLE "ACD_STATUS" "CALLBACK"']


@pytest.mark.parametrize("env, why", [
    ("\n", "empty"),
    ("agi_channel: SIP/1\n\n", "no agi_request"),
    ("agi_request: agi://h/enqueue\nthis is not an env line\n\n", "garbage"),
    ("agi_request: agi://h/enqueue\nagi_channel: " + "x" * 10000 + "\n\n", "over-long"),
    ("".join(f"agi_v{i}: x\n" for i in range(300)) + "\n", "too many lines"),
    (b"agi_request: agi://h/enqueue\nagi_channel: \x00\x01\n\n", "control characters"),
])
def test_malformed_environment_gets_an_error(env, why):
    async def handler(session: AGISession, args: dict[str, str]) -> None:
        raise AssertionError("not called")

    async def main() -> tuple[list[str], list[str]]:
        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            bad = await fake_call(port, env=env)
            good = await fake_call(port)
            return bad, good
        finally:
            await server.stop()

    bad, good = run(main())
    status, code, detail = _error_vars(bad)
    assert (status, code) == ("ERROR", "BAD_REQUEST"), why
    assert "environment" in detail
    assert variables(good)["ACD_STATUS"] == "ERROR"  # handler raised AssertionError -> INTERNAL, server alive


def test_silent_peer_times_out():
    async def main() -> tuple[list[str], float]:
        server = FastAGIServer(port=0, env_timeout=0.2)
        server.route("enqueue", lambda s, a: asyncio.sleep(0))
        port = await serving(server)
        try:
            t0 = time.monotonic()
            commands = await fake_call(port, env=b"agi_request: agi://h/enqueue\n")  # never finishes
            return commands, time.monotonic() - t0
        finally:
            await server.stop()

    commands, elapsed = run(main())
    assert _error_vars(commands)[:2] == ("ERROR", "TIMEOUT")
    assert elapsed < 3


def test_peer_that_disconnects_before_the_environment():
    async def main() -> FastAGIServer:
        server = FastAGIServer(port=0)
        server.route("enqueue", lambda s, a: asyncio.sleep(0))
        port = await serving(server)
        try:
            for payload in (b"", b"agi_request: x\n", b"\xff\xfe garbage"):
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(payload)
                w.close()
                await w.wait_closed()
            assert variables(await fake_call(port))["ACD_STATUS"] == "OK"
            return server
        finally:
            await server.stop()

    server = run(main())
    assert server.stats.completed == 1


def test_garbage_reply_mid_session():
    seen: list[str] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        try:
            await session.answer()
        except ProtocolError as exc:
            seen.append(str(exc))
            raise

    commands, server = _run_handler(handler, Script(("ANSWER", "what is this")))
    assert seen and "malformed AGI reply" in seen[0]
    status, code, _ = _error_vars(commands)
    assert (status, code) == ("ERROR", "PROTOCOL")
    assert server.stats.by_code == {"PROTOCOL": 1}


def test_overlong_reply_line_mid_session():
    async def handler(session: AGISession, args: dict[str, str]) -> None:
        await session.get_variable("BIG")

    commands, server = _run_handler(handler, Script(("GET VARIABLE", "200 result=1 (" + "x" * 20000 + ")")))
    assert _error_vars(commands)[:2] == ("ERROR", "PROTOCOL")


def test_command_timeout_on_a_silent_asterisk():
    seen: list[str] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        try:
            await session.answer()
        except AGITimeout:
            seen.append("timeout")
            assert not session.usable
            with pytest.raises(AGITimeout):
                await session.verbose("x")
            raise

    def silent(cmd: str) -> Any:
        return (0.4, "200 result=0") if cmd == "ANSWER" else default_reply(cmd)

    commands, server = _run_handler(handler, silent, command_timeout=0.1)
    assert seen == ["timeout"]
    assert server.stats.by_code == {"TIMEOUT": 1}
    assert "ACD_ERROR" in " ".join(commands)


def test_connection_cap_refuses_clearly():
    async def main() -> tuple[list[str], list[str], FastAGIServer]:
        gate = asyncio.Event()
        started = asyncio.Event()

        async def handler(session: AGISession, args: dict[str, str]) -> None:
            started.set()
            await gate.wait()

        server = FastAGIServer(port=0, max_sessions=1)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            first = asyncio.create_task(fake_call(port))
            await started.wait()
            second = await fake_call(port)
            gate.set()
            return await first, second, server
        finally:
            await server.stop()

    first, second, server = run(main())
    assert variables(first)["ACD_STATUS"] == "OK"
    assert _error_vars(second)[:2] == ("ERROR", "BUSY")
    assert server.stats.refused == 1


def test_graceful_shutdown_waits_for_sessions():
    async def main() -> tuple[list[str], bool]:
        started = asyncio.Event()

        async def handler(session: AGISession, args: dict[str, str]) -> None:
            started.set()
            await asyncio.sleep(0.3)
            await session.set_variable("ACD_RESULT", "DONE")

        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        call = asyncio.create_task(fake_call(port))
        await started.wait()
        await server.stop(timeout=5)
        commands = await call
        refused = False
        try:
            await fake_call(port)
        except OSError:
            refused = True
        return commands, refused

    commands, refused = run(main())
    assert variables(commands) == {"ACD_RESULT": "DONE", "ACD_STATUS": "OK"}
    assert refused


def test_shutdown_timeout_cancels_and_tells_the_channel():
    async def main() -> tuple[list[str], float]:
        started = asyncio.Event()

        async def handler(session: AGISession, args: dict[str, str]) -> None:
            started.set()
            await asyncio.sleep(60)

        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        call = asyncio.create_task(fake_call(port))
        await started.wait()
        t0 = time.monotonic()
        await server.stop(timeout=0.1)
        return await call, time.monotonic() - t0

    commands, elapsed = run(main())
    assert _error_vars(commands)[:2] == ("ERROR", "SHUTDOWN")
    assert elapsed < 3


def test_route_registration_and_serve_forever():
    server = FastAGIServer(port=0)

    @server.route("login")
    async def login(session: AGISession, args: dict[str, str]) -> None:
        pass

    assert set(server.routes) == {"login"}
    with pytest.raises(InvalidInput, match="already registered"):
        server.route("login", login)
    for bad in ("", "a b", "../x", None):
        with pytest.raises(InvalidInput):
            server.route(bad, login)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        server.route("x", 42)  # type: ignore[arg-type]
    for kw in ({"port": -1}, {"port": None}, {"max_sessions": 0}, {"env_timeout": 0}, {"command_timeout": -1}):
        with pytest.raises(InvalidInput):
            FastAGIServer(**kw)

    async def main() -> list[str]:
        forever = asyncio.create_task(server.serve_forever())
        for _ in range(100):
            if server.serving:
                break
            await asyncio.sleep(0.01)
        commands = await fake_call(server.port, env=env_text("login"))
        await server.stop()
        await forever
        return commands

    assert variables(run(main())) == {"ACD_STATUS": "OK"}


def test_listens_on_loopback_by_default():
    server = FastAGIServer()
    assert server.host == "127.0.0.1" and server.port == 4573 and server.backlog >= 1024


@pytest.mark.slow
def test_load_500_concurrent_sessions():
    n = 500
    runs: Counter[str] = Counter()

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        runs[session.env.uniqueid or ""] += 1
        await session.answer()
        await asyncio.sleep(0.01)
        await session.set_variable("ACD_CALL", args["id"])

    async def main() -> list[list[str]]:
        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            return await asyncio.gather(*(
                fake_call(port, env=env_text(f"enqueue?id=c{i}", uniqueid=f"1700000000.{i}"), read_timeout=15)
                for i in range(n)))
        finally:
            await server.stop()

    t0 = time.monotonic()
    results = run(main(), timeout=60)
    elapsed = time.monotonic() - t0
    assert len(results) == n
    for i, commands in enumerate(results):
        assert variables(commands) == {"ACD_CALL": f"c{i}", "ACD_STATUS": "OK"}, (i, commands)
    assert len(runs) == n and set(runs.values()) == {1}
    assert elapsed < 20


def test_dialplan_arguments_are_merged_with_the_query():
    seen: list[dict[str, str]] = []

    async def handler(session: AGISession, args: dict[str, str]) -> None:
        seen.append(args)

    async def main() -> list[str]:
        server = FastAGIServer(port=0)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            return await fake_call(port, env=env_text("enqueue?queue=support", agi_arg_1="priority=3",
                                                      agi_arg_2="lang=fr"))
        finally:
            await server.stop()

    assert variables(run(main())) == {"ACD_STATUS": "OK"}
    assert seen == [{"queue": "support", "priority": "3", "lang": "fr"}]


_hostile = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(st.text(max_size=40), st.builds(lambda k, v: f"agi_{k}: {v}", st.text(max_size=10),
                                                       st.text(max_size=40))), max_size=12)
    .map(lambda lines: ("\n".join(lines) + "\n\n").encode("utf-8", "surrogatepass")),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hostile, st.sampled_from(["garbage reply", "200 result=0", "HANGUP", "520-x", "511 dead"]))
def test_fuzz_hostile_peers_never_crash_the_server(payload, reply):
    """Whatever a peer sends, its connection ends and the next call is served."""
    async def handler(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()

    async def main() -> list[str]:
        server = FastAGIServer(port=0, env_timeout=0.05, command_timeout=0.1, error_timeout=0.05)
        server.route("enqueue", handler)
        port = await serving(server)
        try:
            await fake_call(port, lambda cmd: reply, env=payload, read_timeout=3)
            return await fake_call(port)
        finally:
            await server.stop(timeout=1)

    assert variables(run(main()))["ACD_STATUS"] == "OK"
