"""The compiled classic AGI relay (``acd-agi-native``, protocol acd-agi-relay/2).

Most checks are differential: the same call, played by the same fake Asterisk
against the same real FastAGIServer, must give Asterisk exactly the same
commands, the same exit status and the same stderr with the compiled relay as
with the Python script (``acd-agi``), which tests/test_agi_script*.py check
against the documented behaviour."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acd.adapters.asterisk import AGISession, ChannelHungUp, FastAGIServer
from acd.adapters.asterisk.fastagi import DropSession
from acd.adapters.asterisk.script import NATIVE_NAME, native_path
from acd.errors import InvalidInput
from agi_support import PipeAsterisk, ServerThread

pytestmark = pytest.mark.skipif(os.name != "posix" or not hasattr(signal, "SIGHUP"), reason="POSIX relay")

PYTHON = [sys.executable, "-c", "import sys; from acd.adapters.asterisk.__main__ import run; sys.exit(run())"]


@pytest.fixture(scope="module")
def native() -> list[str]:
    # built by setup.py with the extensions: missing means a broken build, never a skip
    return [native_path()]


def classic_env(uniqueid: str, *args: str) -> dict[str, str]:
    env = {"agi_request": "acd-agi", "agi_channel": f"PJSIP/trunk-{uniqueid}",  # agi_request: as Asterisk 22 gives it
           "agi_language": "fr", "agi_type": "PJSIP", "agi_uniqueid": uniqueid, "agi_version": "22.10.1",
           "agi_callerid": "0612345678", "agi_calleridname": "Alice", "agi_context": "acd-in",
           "agi_extension": "100", "agi_priority": "2", "agi_enhanced": "0.0", "agi_accountcode": "",
           "agi_threadid": "1"}
    env.update({f"agi_arg_{i}": a for i, a in enumerate(args, 1)})
    return env


def fake_reply(command: str) -> str:
    if command.startswith("STREAM FILE"):
        return "200 result=49 endpos=1234"
    if command.startswith("GET VARIABLE"):
        return "200 result=1 (fr)"
    return "200 result=1" if command.startswith(("SET VARIABLE", "VERBOSE")) else "200 result=0"


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    d = tempfile.mkdtemp(prefix="acd-", dir="/tmp")
    path = os.path.join(d, "agi.sock")
    seen: dict[str, Any] = {}
    srv = FastAGIServer(port=None, unix_path=path, env_timeout=5)

    @srv.route("enqueue")
    async def enqueue(session: AGISession, args: dict[str, str]) -> None:
        seen[session.env.uniqueid] = {"args": args, "channel": session.env.channel,
                                      "language": session.env.get("agi_language")}
        await session.answer()
        seen[session.env.uniqueid]["digit"] = await session.stream_file("welcome", "12")
        seen[session.env.uniqueid]["var"] = await session.get_variable("LANG")

    @srv.route("hold")
    async def hold(session: AGISession, args: dict[str, str]) -> None:
        uid = session.env.uniqueid or "?"
        seen[uid] = "started"
        await session.answer()
        hung = await session.wait_hangup(timeout=15)
        seen[uid] = "hangup" if hung else "timeout"
        await session.set_variable("ACD_RESULT", "ABANDONED" if hung else "TIMEOUT")

    @srv.route("report")
    async def report(session: AGISession, args: dict[str, str]) -> None:
        seen[session.env.uniqueid or "?"] = ("reported", session.hung_up)
        await session.verbose("acd: report taken")

    @srv.route("fails")
    async def fails(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        raise InvalidInput(f"queue {args.get('queue')!r} is not configured")

    @srv.route("dropped")
    async def dropped(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        raise DropSession("lost the lead")

    @srv.route("dies")
    async def dies(session: AGISession, args: dict[str, str]) -> None:
        await session.answer()
        try:
            await session.stream_file("welcome")
        except ChannelHungUp:
            seen[session.env.uniqueid or "?"] = "hung up"
            raise

    thread = ServerThread(srv)
    try:
        yield path, seen
    finally:
        thread.stop()
        shutil.rmtree(d, ignore_errors=True)


def play(argv: list[str], env: dict[str, str], socket_path: str) -> tuple[int | None, list[str], str]:
    fake = PipeAsterisk(argv, env, os_env={**os.environ, "ACD_AGI_SOCKET": socket_path}, reply=fake_reply)
    status, err = fake.finish()
    return status, fake.commands, err


CALLS = [
    ("enqueue?queue=support", "priority=2"),   # commands both ways, route arguments
    ("nosuch",),                               # UNKNOWN_SCRIPT before admission
    (),                                        # no script: BAD_REQUEST
    ("enqueue?queue=",),                       # a bad route argument
    ("fails?queue=x",),                        # the handler's AcdError
    ("dropped",),                              # dropped without a status (HA step-down)
    ("report",),
]


@pytest.mark.parametrize("args", CALLS, ids=lambda a: a[0] if a else "none")
def test_the_compiled_relay_gives_asterisk_what_the_python_script_gives(server, native, args):
    path, seen = server
    results = []
    for name, argv in (("python", PYTHON), ("native", native)):
        status, commands, err = play(argv, classic_env(f"{name}.1", *args), path)
        results.append((status, commands, err))
        if args and args[0].startswith("enqueue?queue=support"):
            assert seen.pop(f"{name}.1") == {"args": {"queue": "support", "priority": "2"},
                                             "channel": f"PJSIP/trunk-{name}.1", "language": "fr",
                                             "digit": "1", "var": "fr"}
    (py_status, py_commands, py_err), (status, commands, err) = results
    assert (status, commands) == (py_status, py_commands)
    assert status in (0, 1) and commands, results
    if py_err.startswith("acd-agi: BAD_REQUEST"):
        # the Python script checks the route itself and says so on stderr too; the compiled
        # relay leaves it to the dispatcher, whose report reaches the channel all the same
        assert err == "" and any("BAD_REQUEST" in c for c in commands)
    else:
        assert err == py_err


def test_dispatcher_down_is_the_same_error(native, tmp_path):
    nobody = str(tmp_path / "nobody.sock")
    py = play(PYTHON, classic_env("d.1", "enqueue"), nobody)
    nat = play(native, classic_env("d.1", "enqueue"), nobody)
    assert nat == py
    status, commands, err = nat
    assert status == 1 and commands[:2] == ['SET VARIABLE "ACD_STATUS" "ERROR"', 'SET VARIABLE "ACD_ERROR" "UNAVAILABLE"']
    assert err == f"acd-agi: UNAVAILABLE: dispatcher unavailable at {nobody}: No such file or directory\n"


def test_a_stale_socket_file_is_dispatcher_down(native, tmp_path):
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # the file stays, nobody listens
    assert play(native, classic_env("s.1", "enqueue"), str(stale)) == play(PYTHON, classic_env("s.1", "enqueue"),
                                                                            str(stale))


def test_a_sighup_at_any_instant_is_relayed(server, native):
    """The handler is in place before main() does anything else: every SIGHUP from a few hundred
    microseconds after exec on reaches the dispatcher as a hang-up."""
    path, seen = server
    os_env = {**os.environ, "ACD_AGI_SOCKET": path}
    killed = caught = 0
    for when_ms in [0, 0.2, 0.5, 1, 2, 3, 5, 8, 12, 20, "session"]:
        uid = f"h.{when_ms}"
        fake = PipeAsterisk(native, classic_env(uid, "hold"), os_env=os_env)
        if when_ms == "session":
            until(lambda: seen.get(uid) == "started")
        else:
            time.sleep(max(0.0, fake.started + float(when_ms) / 1000 - time.monotonic()))
        installed = fake.handler_installed(signal.SIGHUP)
        fake.proc.send_signal(signal.SIGHUP)
        status, err = fake.finish()
        if status == -signal.SIGHUP:  # only before the loader handed over to main()
            assert not installed and fake.commands == [] and uid not in seen
            killed += 1
            continue
        assert (status, err) == (0, ""), (when_ms, status, err)
        assert seen.get(uid) == "hangup", (when_ms, seen.get(uid), fake.commands)
        assert fake.commands == ["ANSWER", 'SET VARIABLE "ACD_RESULT" "ABANDONED"']
        caught += installed
    # how many land before main() depends on the machine's load (the loader runs first)
    print(f"SIGHUP relayed: {caught} with the handler seen in place, died before main(): {killed}, of 11")
    assert caught >= 2


def test_a_report_whose_channel_hung_up_before_the_environment_still_arrives(server, native):
    path, seen = server
    fake = PipeAsterisk(native, {}, os_env={**os.environ, "ACD_AGI_SOCKET": path})
    until(lambda: fake.handler_installed(signal.SIGHUP))
    fake.proc.send_signal(signal.SIGHUP)
    time.sleep(0.05)
    fake.send_env(classic_env("r.early", "report"))
    status, err = fake.finish()
    assert (status, err) == (0, "")
    assert seen["r.early"][0] == "reported"
    assert fake.commands == ['VERBOSE "acd: report taken" "1"']  # hung up: the server sets no ACD_STATUS


def test_a_hangup_never_cuts_a_reply_in_two(server, native):
    """SIGHUP while Asterisk's reply is half written: the HANGUP line waits for the line's end
    (the server would call anything else a protocol error)."""
    path, seen = server
    proc = subprocess.Popen(native, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "ACD_AGI_SOCKET": path})
    try:
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(b"".join(f"{k}: {v}\n".encode() for k, v in classic_env("c.1", "dies").items()) + b"\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"ANSWER\n"
        proc.stdin.write(b"200 result=0\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b'STREAM FILE "welcome" ""\n'
        proc.stdin.write(b"200 res")
        proc.stdin.flush()
        time.sleep(0.1)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.1)
        proc.stdin.write(b"ult=-1 endpos=0\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f:
                f.close()
    until(lambda: seen.get("c.1") == "hung up")


def test_asterisk_closing_stdin_is_a_hangup(server, native):
    path, seen = server
    proc = subprocess.Popen(native, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "ACD_AGI_SOCKET": path})
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(b"".join(f"{k}: {v}\n".encode() for k, v in classic_env("e.1", "dies").items()) + b"\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"ANSWER\n"
    proc.stdin.write(b"200 result=0\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b'STREAM FILE "welcome" ""\n'
    proc.stdin.close()  # no reply: the channel is gone
    assert proc.wait(10) == 0
    assert proc.stderr.read() == b""
    proc.stdout.close()
    proc.stderr.close()
    until(lambda: seen.get("e.1") == "hung up")


def raw_dispatcher(path: str, plan: Any) -> threading.Thread:
    """A one-connection dispatcher speaking the raw relay by hand (what a crash looks like)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as rfile:
            plan(conn, rfile)
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_preamble_and_the_environment_arrive_verbatim_and_a_lost_dispatcher_is_reported(native, tmp_path):
    path = str(tmp_path / "raw.sock")
    got: dict[str, Any] = {}

    def plan(conn: socket.socket, rfile: Any) -> None:
        got["preamble"] = rfile.readline()
        env = []
        while (line := rfile.readline()) != b"\n":
            env.append(line)
        got["env"] = env
        conn.sendall(b"ANSWER\n")
        got["reply"] = rfile.readline()
        conn.sendall(b"STREAM FILE \"welcome\" \"\"\n")  # then crash, before the reply

    thread = raw_dispatcher(path, plan)
    env = classic_env("l.1", "enqueue?queue=support")
    status, commands, err = play(native, env, path)
    thread.join(5)
    assert got["preamble"] == b"acd-agi-relay/2\n"
    assert got["env"] == [f"{k}: {v}\n".encode() for k, v in env.items()]
    assert got["reply"] == b"200 result=0\n"
    assert status == 1 and err == "acd-agi: DISPATCHER_LOST: the dispatcher closed the connection\n"
    assert commands[:2] == ["ANSWER", 'STREAM FILE "welcome" ""']
    assert commands[2:5] == ['SET VARIABLE "ACD_STATUS" "ERROR"', 'SET VARIABLE "ACD_ERROR" "DISPATCHER_LOST"',
                             'SET VARIABLE "ACD_ERROR_DETAIL" "the dispatcher closed the connection"']


def test_the_end_line_is_kept_from_asterisk_and_sets_the_exit_status(native, tmp_path):
    for status_word, code in (("OK", 0), ("HANGUP", 0), ("DROPPED", 0), ("ERROR", 1)):
        path = str(tmp_path / f"{status_word}.sock")

        def plan(conn: socket.socket, rfile: Any, word: str = status_word) -> None:
            while rfile.readline() != b"\n":
                pass
            # a command and the end at once: the relay lets Asterisk answer before it exits
            conn.sendall(b'VERBOSE "bye" "1"\nacd-relay-end ' + word.encode() + b"\n")
            rfile.readline()

        thread = raw_dispatcher(path, plan)
        status, commands, err = play(native, classic_env("x.1", "enqueue"), path)
        thread.join(5)
        assert (status, commands, err) == (code, ['VERBOSE "bye" "1"'], ""), status_word


@pytest.mark.parametrize("args, out", [(["--help"], "usage: acd-agi-native"), (["-h"], "usage: acd-agi-native"),
                                       (["--version"], "acd-agi-native (acd ")])
def test_help_and_version_print_and_exit_without_reading_stdin(native, args, out):
    proc = subprocess.run(native + args, stdin=subprocess.PIPE, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout.startswith(out)


def test_the_version_is_the_package_version(native):
    from acd import __version__
    out = subprocess.run(native + ["--version"], capture_output=True, text=True, timeout=10).stdout
    assert out == f"acd-agi-native (acd {__version__})\n"


@pytest.mark.parametrize("args, err", [(["--sokcet", "/x"], "acd-agi: unknown option '--sokcet' (see --help)\n"),
                                       (["--socket"], "acd-agi: --socket needs a path\n")])
def test_bad_options_are_one_line_and_status_2(native, args, err):
    proc = subprocess.run(native + args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", err)


@pytest.mark.parametrize("stdin, why", [(b"", "no input"), (b"agi_channel: x\n", "input ended inside it")])
def test_no_environment_is_status_2(native, stdin, why):
    proc = subprocess.run(native, input=stdin, capture_output=True, timeout=10)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode() == f"acd-agi: PROTOCOL: cannot read the AGI environment: {why}\n"


def test_native_path_is_printed_by_acd_agi(native):
    proc = subprocess.run(PYTHON + ["--native-path"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout == native[0] + "\n"
    assert Path(native[0]).name == NATIVE_NAME and os.access(native[0], os.X_OK)


def test_a_burst_of_relays_all_complete(server, native):
    path, seen = server
    fakes = [PipeAsterisk(native, classic_env(f"b.{i}", "enqueue?queue=support", "priority=2"),
                          os_env={**os.environ, "ACD_AGI_SOCKET": path}, reply=fake_reply) for i in range(60)]
    for fake in fakes:
        assert fake.finish() == (0, "")
        assert fake.commands[-1] == 'SET VARIABLE "ACD_STATUS" "OK"'
    assert sum(1 for k in seen if k.startswith("b.")) == 60


def until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.0005)


def test_a_hangup_waits_for_the_end_of_a_multi_line_usage_reply(native, tmp_path):
    path = str(tmp_path / "usage.sock")
    got: list[bytes] = []
    asked = threading.Event()

    def plan(conn: socket.socket, rfile: Any) -> None:
        while rfile.readline() != b"\n":
            pass
        conn.sendall(b'EXEC "Nonsense"\n')
        asked.set()
        while len(got) < 4 and (line := rfile.readline()):
            got.append(line)
        conn.sendall(b"acd-relay-end HANGUP\n")

    thread = raw_dispatcher(path, plan)
    proc = subprocess.Popen(native, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "ACD_AGI_SOCKET": path})
    try:
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(b"".join(f"{k}: {v}\n".encode() for k, v in classic_env("u.1", "enqueue").items()) + b"\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b'EXEC "Nonsense"\n'
        proc.stdin.write(b"520-Invalid command syntax.  Proper usage follows:\n")
        proc.stdin.flush()
        time.sleep(0.1)
        proc.send_signal(signal.SIGHUP)  # inside the reply: the HANGUP line must wait for its end
        time.sleep(0.1)
        proc.stdin.write(b"Usage: EXEC <application> <options>\n520 End of proper usage.\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f:
                f.close()
    thread.join(5)
    assert got == [b"520-Invalid command syntax.  Proper usage follows:\n", b"Usage: EXEC <application> <options>\n",
                   b"520 End of proper usage.\n", b"HANGUP\n"]


def test_an_oversized_environment_is_status_2(native):
    env = b"agi_channel: x\n" + b"agi_x: " + b"y" * 70000 + b"\n\n"
    proc = subprocess.run(native, input=env, capture_output=True, timeout=10)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode() == "acd-agi: PROTOCOL: cannot read the AGI environment: longer than 65536 bytes\n"
