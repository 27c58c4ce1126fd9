"""The compiled relay replays what a real Asterisk 22 did through it.

``tests/data/asterisk22/classic-*.jsonl`` were recorded with Asterisk 22.10.1
running classic AGI through ``acd-agi-native`` and a recording proxy on acd's
UNIX socket (format: ``tests/data/asterisk22/README.md``; what was learned:
``docs/asterisk22.md``, "Classic AGI").  Each relay connection is played
again: a fake Asterisk writes the recorded environment and replies on the
relay's stdin (a recorded ``HANGUP`` line, which the relay makes from a
SIGHUP, is sent as a SIGHUP), a fake dispatcher sends the recorded command
lines; both sides must receive exactly the recorded bytes, and the relay
must exit as it did."""

from __future__ import annotations

import glob
import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from acd.adapters.asterisk.script import native_path

DATA = Path(__file__).resolve().parent / "data" / "asterisk22"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX relay")


def relay_connections() -> List[Tuple[str, List[Tuple[str, str]]]]:
    out = []
    for path in sorted(glob.glob(str(DATA / "classic-*.jsonl"))):
        conns: Dict[str, List[Tuple[str, str]]] = {}
        closed_by_asterisk: set = set()
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        for r in records:
            conn = r.get("conn", "")
            if not conn.startswith("relay"):
                continue
            if "data" in r:
                conns.setdefault(conn, []).append((r["dir"], r["data"]))
            elif r.get("event") == "write_failed":    # AGIEXITONHANGUP: stdin closed under the relay
                closed_by_asterisk.add(conn)
        for conn, events in conns.items():
            if conn not in closed_by_asterisk:
                out.append((f"{Path(path).stem}/{conn}", events))
    return out


CONNECTIONS = relay_connections()


def test_the_recordings_are_there():
    assert len(CONNECTIONS) >= 40
    assert any(("asterisk->acd", "HANGUP\n") in ev for _, ev in CONNECTIONS)     # SIGHUPs relayed
    assert all(ev[0] == ("asterisk->acd", "acd-agi-relay/2\n") for _, ev in CONNECTIONS)


def wait_for_handler(pid: int, timeout: float = 5.0) -> None:
    """Until the process catches SIGHUP (SigCgt in /proc; a short pause elsewhere)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        except OSError:
            time.sleep(0.05)
            return
        if caught >> (signal.SIGHUP - 1) & 1:
            return
        time.sleep(0.0005)
    raise AssertionError("the relay never caught SIGHUP")


def _read_line(fd: int, timeout: float = 10.0) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no line within {timeout} s (got {buf!r})"
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf


@pytest.mark.parametrize("name, events", CONNECTIONS, ids=[n for n, _ in CONNECTIONS])
def test_the_relay_replays_a_real_asterisk_session(name, events):
    d = tempfile.mkdtemp(prefix="acd-", dir="/tmp")
    path = os.path.join(d, "agi.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    got_by_dispatcher: List[bytes] = []
    want_by_dispatcher = b"".join(data.encode() for direction, data in events if direction == "asterisk->acd")
    problems: List[str] = []
    seen = [b""]                                  # what the dispatcher has received so far

    def dispatcher() -> None:
        conn, _ = listener.accept()
        conn.settimeout(10)
        try:
            received = expected = b""
            for direction, data in events:
                if direction == "asterisk->acd":
                    expected += data.encode()
                    while len(received) < len(expected):
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                        seen[0] = received
                else:
                    conn.sendall(data.encode())
            got_by_dispatcher.append(received)
        except OSError as exc:
            problems.append(f"dispatcher: {exc}")
        finally:
            conn.close()

    thread = threading.Thread(target=dispatcher, daemon=True)
    thread.start()
    proc = subprocess.Popen([native_path()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "ACD_AGI_SOCKET": path})
    assert proc.stdin and proc.stdout and proc.stderr
    end_status = None
    relayed_so_far = 0                              # bytes the dispatcher must have before the next signal
    try:
        for direction, data in events:
            if direction == "asterisk->acd":
                if data == "acd-agi-relay/2\n":
                    relayed_so_far += len(data)
                    continue                            # the relay's own
                if data == "HANGUP\n":
                    wait_for_handler(proc.pid)          # in the recording it ran long before
                    # what Asterisk wrote before hanging up reached acd first: let the relay forward it
                    deadline = time.monotonic() + 5
                    while len(seen[0]) < relayed_so_far and time.monotonic() < deadline:
                        time.sleep(0.001)
                    relayed_so_far += len(data)
                    proc.send_signal(signal.SIGHUP)     # res_agi signals a classic AGI process
                    # the signal and the next bytes on stdin race in the relay: keep the recorded order
                    deadline = time.monotonic() + 5
                    while b"HANGUP\n" not in seen[0] and time.monotonic() < deadline:
                        time.sleep(0.001)
                    continue
                proc.stdin.write(data.encode())
                proc.stdin.flush()
                relayed_so_far += len(data.encode())
            elif data.startswith("acd-relay-end "):
                end_status = data.split()[1]            # kept from Asterisk
            else:
                assert _read_line(proc.stdout.fileno()) == data.encode(), name
        if end_status is None:
            # the dispatcher died (kill -9): the relay tells the channel itself, in commands the
            # recording (of the socket) does not hold; answer them as Asterisk does
            told = []
            while line := _read_line(proc.stdout.fileno()):
                told.append(line.decode())
                proc.stdin.write(b"200 result=1\n")
                proc.stdin.flush()
            assert 'SET VARIABLE "ACD_ERROR" "DISPATCHER_LOST"\n' in told, told
            end_status = "ERROR"
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()
        thread.join(10)
        listener.close()
        os.unlink(path)
        os.rmdir(d)
    assert not problems, problems
    assert got_by_dispatcher == [want_by_dispatcher]
    assert end_status is not None and code == (1 if end_status == "ERROR" else 0), (end_status, code)
