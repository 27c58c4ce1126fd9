"""Classic AGI script mode: stdin/stdout AGI relayed to the dispatcher over a UNIX socket."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acd.adapters.asterisk import AGISession, ChannelHungUp, FastAGIServer
from acd.adapters.asterisk.agi import main
from agi_support import ServerThread, split_args

SRC = str(Path(__file__).resolve().parents[1] / "src")

ENV = {
    "agi_request": "/var/lib/asterisk/agi-bin/acd-agi",
    "agi_channel": "PJSIP/100-00000001",
    "agi_language": "fr",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1700000000.1",
    "agi_version": "20.5.0",
    "agi_callerid": "0612345678",
    "agi_calleridname": "Alice",
    "agi_context": "default",
    "agi_extension": "100",
    "agi_priority": "1",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "1",
    "agi_arg_1": "enqueue?queue=support",
    "agi_arg_2": "priority=2",
}


def env_bytes(**over: str | None) -> bytes:
    env = dict(ENV)
    for k, v in over.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()




def commands_of(stdout: io.BytesIO) -> list[list[str]]:
    return [split_args(line) for line in stdout.getvalue().decode().splitlines()]


def variables(cmds: list[list[str]]) -> dict[str, str]:
    return {c[2]: c[3] for c in cmds if c[:2] == ["SET", "VARIABLE"]}


@pytest.fixture
def sock_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="acd-", dir="/tmp")  # AF_UNIX paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_script(stdin: bytes, socket_path: str, argv: list[str] | None = None) -> tuple[int, list[list[str]], str]:
    out, err = io.BytesIO(), io.StringIO()
    code = main(argv or [], stdin=io.BytesIO(stdin), stdout=out, stderr=err, socket_path=socket_path,
                connect_timeout=2)
    return code, commands_of(out), err.getvalue()


# ---------------------------------------------------------- dispatcher down


def test_dispatcher_down_sets_error_and_exits_nonzero(sock_dir):
    path = os.path.join(sock_dir, "missing.sock")
    code, cmds, err = run_script(env_bytes() + b"200 result=1\n" * 4, path)
    assert code == 1
    v = variables(cmds)
    assert v["ACD_STATUS"] == "ERROR" and v["ACD_ERROR"] == "UNAVAILABLE"
    assert path in v["ACD_ERROR_DETAIL"]
    assert cmds[-1][0] == "VERBOSE" and "UNAVAILABLE" in cmds[-1][1]
    assert "Traceback" not in err and err.count("\n") == 1 and "UNAVAILABLE" in err


def test_stale_socket_file_is_dispatcher_down(sock_dir):
    path = os.path.join(sock_dir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays, nobody listens
    code, cmds, _ = run_script(env_bytes() + b"200 result=1\n" * 4, path)
    assert code == 1 and variables(cmds)["ACD_ERROR"] == "UNAVAILABLE"


def test_socket_path_from_argv_and_environment(sock_dir, monkeypatch):
    path = os.path.join(sock_dir, "argv.sock")
    out, err = io.BytesIO(), io.StringIO()
    assert main(["enqueue", "--socket", path], stdin=io.BytesIO(env_bytes() + b"200 result=1\n" * 4),
                stdout=out, stderr=err) == 1
    assert path in err.getvalue()
    monkeypatch.setenv("ACD_AGI_SOCKET", path + ".env")
    err = io.StringIO()
    main([], stdin=io.BytesIO(env_bytes() + b"200 result=1\n" * 4), stdout=io.BytesIO(), stderr=err)
    assert path + ".env" in err.getvalue()


def test_garbage_environment_exits_2_without_talking(sock_dir):
    out, err = io.BytesIO(), io.StringIO()
    code = main([], stdin=io.BytesIO(b"hello there\n\n"), stdout=out, stderr=err, socket_path="/nonexistent")
    assert code == 2 and out.getvalue() == b"" and "PROTOCOL" in err.getvalue() and "Traceback" not in err.getvalue()


def test_no_script_argument_is_a_bad_request(sock_dir):
    code, cmds, _ = run_script(env_bytes(agi_arg_1=None, agi_arg_2=None) + b"200 result=1\n" * 4,
                               os.path.join(sock_dir, "x.sock"))
    assert code == 1 and variables(cmds)["ACD_ERROR"] == "BAD_REQUEST"


def test_asterisk_gone_while_reporting_is_quiet(sock_dir):
    code, cmds, err = run_script(env_bytes(), os.path.join(sock_dir, "x.sock"))  # no replies at all
    assert code == 1 and cmds[0][:3] == ["SET", "VARIABLE", "ACD_STATUS"] and len(cmds) == 1
    assert "Traceback" not in err


# --------------------------------------------------------- fake dispatcher


class FakeDispatcher:
    """A blocking UNIX-socket peer run in a thread: ``plan(rfile, sock, log)``."""

    def __init__(self, path: str, plan: Callable[[Any, socket.socket, list[Any]], None]) -> None:
        self.log: list[Any] = []
        self.error: BaseException | None = None
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(path)
        self._srv.listen(1)
        self._srv.settimeout(5)
        self._plan = plan
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self._srv.accept()
            conn.settimeout(5)
            with conn, conn.makefile("rb") as rfile:
                self.log.append(json.loads(rfile.readline()))
                self._plan(rfile, conn, self.log)
        except BaseException as exc:  # surfaced by join()
            self.error = exc
        finally:
            self._srv.close()

    def join(self) -> None:
        self._thread.join(10)
        assert not self._thread.is_alive()
        if self.error is not None:
            raise self.error


def send(conn: socket.socket, **msg: Any) -> None:
    conn.sendall((json.dumps(msg) + "\n").encode())


def test_relay_against_a_fake_dispatcher(sock_dir):
    path = os.path.join(sock_dir, "d.sock")

    def plan(rfile: Any, conn: socket.socket, log: list[Any]) -> None:
        for name, args in (("ANSWER", []), ("NO SUCH", []), ("STREAM FILE", ["welcome", ""]),
                           ("SET VARIABLE", ["ACD_STATUS", "OK"])):
            send(conn, op="command", name=name, args=args)
            while True:  # "hangup" notices may come before a reply
                log.append(json.loads(rfile.readline()))
                if log[-1]["op"] == "reply":
                    break
        send(conn, op="end", status="OK")

    fake = FakeDispatcher(path, plan)
    code, cmds, err = run_script(env_bytes() + b"200 result=0\n510 Invalid or unknown command\n"
                                 b"HANGUP\n200 result=-1 endpos=0\n200 result=1\n", path)
    fake.join()
    assert code == 0 and err == ""
    hello = fake.log[0]
    assert hello["op"] == "hello" and hello["v"] == 1 and hello["script"] == "enqueue"
    assert hello["args"] == {"queue": "support", "priority": "2"}
    assert hello["env"]["agi_channel"] == "PJSIP/100-00000001"
    assert fake.log[1] == {"op": "reply", "code": 200, "result": "0", "data": None, "extra": [], "message": "",
                           "usage": None}
    assert fake.log[2]["code"] == 510 and fake.log[2]["message"] == "Invalid or unknown command"
    assert fake.log[3] == {"op": "hangup"}  # HANGUP line relayed before the reply
    assert fake.log[4]["result"] == "-1" and fake.log[4]["extra"] == [["endpos", "0"]]
    assert fake.log[5]["code"] == 200
    assert cmds == [["ANSWER"], ["NO", "SUCH"], ["STREAM", "FILE", "welcome", ""], ["SET", "VARIABLE", "ACD_STATUS", "OK"]]


def test_dispatcher_lost_mid_call(sock_dir):
    path = os.path.join(sock_dir, "d.sock")

    def plan(rfile: Any, conn: socket.socket, log: list[Any]) -> None:
        send(conn, op="command", name="ANSWER", args=[])
        log.append(json.loads(rfile.readline()))
        # then vanish without "end"

    fake = FakeDispatcher(path, plan)
    code, cmds, err = run_script(env_bytes() + b"200 result=0\n" + b"200 result=1\n" * 4, path)
    fake.join()
    assert code == 1
    assert variables(cmds)["ACD_ERROR"] == "DISPATCHER_LOST" and "Traceback" not in err


@pytest.mark.parametrize("bad", [b"not json\n", b'{"op": "launch"}\n', b'{"op": "command", "name": "rm -rf", "args": []}\n',
                                 b'{"op": "command", "name": "VERBOSE", "args": ["a\\nb"]}\n', b"[1, 2]\n"])
def test_garbage_from_dispatcher(sock_dir, bad):
    path = os.path.join(sock_dir, "d.sock")

    def plan(rfile: Any, conn: socket.socket, log: list[Any]) -> None:
        conn.sendall(bad)
        rfile.read()  # wait until the script hangs up

    fake = FakeDispatcher(path, plan)
    code, cmds, err = run_script(env_bytes() + b"200 result=1\n" * 4, path)
    fake.join()
    assert code == 1 and variables(cmds)["ACD_ERROR"] == "PROTOCOL"
    assert not any(c[0] == "rm" for c in cmds)


def test_end_with_error_status_exits_1(sock_dir):
    path = os.path.join(sock_dir, "d.sock")
    fake = FakeDispatcher(path, lambda rfile, conn, log: send(conn, op="end", status="ERROR"))
    code, cmds, _ = run_script(env_bytes(), path)
    fake.join()
    assert code == 1 and cmds == []


def test_end_with_hangup_status_exits_0(sock_dir):
    path = os.path.join(sock_dir, "d.sock")
    fake = FakeDispatcher(path, lambda rfile, conn, log: send(conn, op="end", status="HANGUP"))
    code, _, _ = run_script(env_bytes(), path)
    fake.join()
    assert code == 0


def test_unexpected_failure_is_one_line_not_a_traceback(sock_dir):
    class Exploding(io.BytesIO):
        def read1(self, *a: Any) -> bytes:  # what the session reads stdin with
            raise RuntimeError("disk on fire")

    err = io.StringIO()
    assert main([], stdin=Exploding(), stdout=io.BytesIO(), stderr=err, socket_path="/nonexistent") == 1
    assert err.getvalue() == "acd-agi: INTERNAL: RuntimeError: disk on fire\n"


def test_asterisk_closes_stdin_mid_relay(sock_dir):
    path = os.path.join(sock_dir, "d.sock")

    def plan(rfile: Any, conn: socket.socket, log: list[Any]) -> None:
        send(conn, op="command", name="ANSWER", args=[])
        log.append(json.loads(rfile.readline()))
        log.append(rfile.readline())  # EOF: the script left

    fake = FakeDispatcher(path, plan)
    code, _, _ = run_script(env_bytes(), path)  # no reply to ANSWER: stdin ends
    fake.join()
    assert code == 0 and fake.log[1] == {"op": "hangup"} and fake.log[2] == b""


# ------------------------------------------------- the real dispatcher relay


@pytest.fixture
def relay_server(sock_dir) -> Iterator[tuple[FastAGIServer, str, dict[str, Any]]]:
    path = os.path.join(sock_dir, "agi.sock")
    seen: dict[str, Any] = {}
    server = FastAGIServer(port=None, unix_path=path, env_timeout=2)

    @server.route("enqueue")
    async def enqueue(session: AGISession, args: dict[str, str]) -> None:
        seen["args"] = args
        seen["channel"] = session.env.channel
        await session.answer()
        seen["digit"] = await session.stream_file("welcome", "12")
        seen["var"] = await session.get_variable("LANG")

    @server.route("wait-hangup")
    async def wait_hangup(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        hung = await session.wait_hangup(timeout=10)
        await session.set_variable("ACD_RESULT", "ABANDONED" if hung else "TIMEOUT")

    @server.route("dies")
    async def dies(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        try:
            await session.stream_file("welcome")
        except ChannelHungUp:
            seen["dies"] = "hung up"
            raise

    thread = ServerThread(server)
    try:
        yield server, path, seen
    finally:
        thread.stop()
    assert not os.path.exists(path)  # the socket file is removed on stop


def test_end_to_end_relay_through_the_real_server(relay_server):
    server, path, seen = relay_server
    code, cmds, err = run_script(env_bytes() + b"200 result=0\n200 result=49 endpos=100\n200 result=1 (fr)\n"
                                 b"200 result=1\n", path)
    assert (code, err) == (0, "")
    assert seen == {"args": {"queue": "support", "priority": "2"}, "channel": "PJSIP/100-00000001",
                    "digit": "1", "var": "fr"}
    assert cmds == [["ANSWER"], ["STREAM", "FILE", "welcome", "12"], ["GET", "VARIABLE", "LANG"],
                    ["SET", "VARIABLE", "ACD_STATUS", "OK"]]
    assert os.stat(path).st_mode & 0o777 == 0o660


def test_unknown_script_over_the_relay(relay_server):
    _, path, _ = relay_server
    code, cmds, _ = run_script(env_bytes(agi_arg_1="nosuch", agi_arg_2=None) + b"200 result=1\n" * 4, path)
    assert code == 1
    v = variables(cmds)
    assert v["ACD_STATUS"] == "ERROR" and v["ACD_ERROR"] == "UNKNOWN_SCRIPT"


def test_relay_script_vanishing_is_a_hangup(relay_server):
    server, path, seen = relay_server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall((json.dumps({"op": "hello", "v": 1, "script": "dies", "args": {},
                               "env": {"agi_request": "x", "agi_channel": "SIP/1"}}) + "\n").encode())
        f = s.makefile("rb")
        assert json.loads(f.readline())["name"] == "ANSWER"
        s.sendall(b'{"op":"reply","code":200,"result":"0"}\n')
        assert json.loads(f.readline())["name"] == "STREAM FILE"
        f.close()
    for _ in range(200):
        if seen.get("dies"):
            break
        time.sleep(0.01)
    assert seen["dies"] == "hung up"


@pytest.mark.parametrize("hello", [
    b"garbage\n",
    b'{"op": "hello", "v": 99, "script": "enqueue", "args": {}, "env": {}}\n',
    b'{"op": "hello", "v": 1, "script": "enqueue", "args": {}, "env": {"agi_channel": "x"}}\n',
    b'{"op": "hello", "v": 1, "script": "../x", "args": {}, "env": {"agi_request": "x", "agi_channel": "x"}}\n',
    b'{"op": "hello", "v": 1, "script": "enqueue", "args": {"k": 1}, "env": {"agi_request": "x", "agi_channel": "x"}}\n',
])
def test_bad_relay_hello_is_answered(relay_server, hello):
    server, path, _ = relay_server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(hello)
        f = s.makefile("rb")
        msgs = []
        while True:
            line = f.readline()
            if not line:
                break
            msg = json.loads(line)
            msgs.append(msg)
            if msg["op"] == "command":
                s.sendall(b'{"op":"reply","code":200,"result":"1"}\n')
        f.close()
    assert msgs[-1] == {"op": "end", "status": "ERROR"}
    assert ["ACD_ERROR", "BAD_REQUEST"] in [m["args"] for m in msgs if m["op"] == "command"]


def _read_line(fd: int, timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"timeout, got {buf!r}"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
    return buf


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="needs SIGHUP")
def test_sighup_reaches_the_handler_as_a_hangup(relay_server):
    """A real script process: Asterisk signals a hang-up with SIGHUP."""
    _, path, _ = relay_server
    proc = subprocess.Popen([sys.executable, "-m", "acd.adapters.asterisk", "--socket", path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": SRC})
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(env_bytes(agi_arg_1="wait-hangup", agi_arg_2=None))
        proc.stdin.flush()
        assert _read_line(proc.stdout.fileno()) == b"ANSWER\n"
        proc.stdin.write(b"200 result=0\n")
        proc.stdin.flush()
        time.sleep(0.2)  # let the handler reach wait_hangup
        proc.send_signal(signal.SIGHUP)
        assert _read_line(proc.stdout.fileno()) == b'SET VARIABLE "ACD_RESULT" "ABANDONED"\n'
        proc.stdin.write(b"200 result=1\n")
        proc.stdin.flush()
        proc.stdin.close()
        assert proc.wait(10) == 0
        assert proc.stderr is not None and proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
