"""Fault injection: `acd serve` killed (SIGKILL) or stopped (SIGTERM) in the middle of a burst.

A fake Asterisk (tests/fakes/pbx.py) runs the example dialplan for a burst of
callers against a real `acd serve` process; some callers give up, some accept
a call-back, agents' phones sometimes ring unanswered.  At a random moment
(seeded) the process is killed or stopped, then started again on the same
journal, sometimes twice.  Once the burst is over and every call-back has run,
Asterisk's truth and acd's must agree:

* no agent busy or ringing without a live channel, no call left in the engine;
* every call ended exactly once in the journal;
* every call-back's customer dialled at most once (exactly once unless its
  attempts ran out);
* every counter of /metrics after a restart at least what it was before.

``ACD_FAULT_SEEDS`` sets how many seeds run (3 by default, 12 with the ci
hypothesis profile).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from acd._core import Exit
from acd.journal import JournaledEngine, SqliteJournal
from acd.journal.calls import replay_journal
from acd.service.outputs.queue_log import QueueLogWriter
from fakes.pbx import Channel, FakePBX, PhoneBehaviour

ROOT = Path(__file__).resolve().parent.parent
_CI = os.environ.get("ACD_HYPOTHESIS") == "ci"
SEEDS = range(int(os.environ.get("ACD_FAULT_SEEDS", "12" if _CI else "3")))
CALLS = 1000
AGENTS = 60
_COUNTER = re.compile(r"^(acd_\w+_total(?:\{[^}]*\})?) (\S+)$", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, agi_port: int, ami_port: int) -> Path:
    agents = "\n".join(f'[[agents]]\nid = "a{i}"\ndial = "PJSIP/a{i}"\nskills = {{tech = 5}}\n'
                       for i in range(AGENTS))
    path = tmp / "acd.toml"
    path.write_text(f"""
[engine]
ring_no_answer = "ready"
no_answer_delay = 0.2

[[queues]]
name = "support"
steps = [{{after = 0, requirements = {{tech = 1}}}}]
wrap_up = 0
callback_threshold = 1.5
expected_handle_time = 0.5
callback_attempts = 6
callback_retry_delay = 0.3

{agents}
[fastagi]
port = {agi_port}
max_sessions = 5000

[ami]
port = {ami_port}
secret = "acd-test-secret"
ping_interval = 0

[callback]
ring_timeout = 2.0
offer_timeout = 1.0

[http]
port = 0

[journal]
path = "journal.sqlite3"
sync = "normal"

[queue_log]
path = "queue_log"

[service]
shutdown_timeout = 2.0
reattach_timeout = 3.0
dial_report_timeout = 5.0
log_level = "info"
""")
    return path


class Service:
    """`acd serve` as a child process, its JSON log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.http_port = 0
        self.starts = 0

    async def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        with open(self.log, "ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "acd.service", "--config", str(self.config), stdout=asyncio.subprocess.DEVNULL,
                stderr=err, env=env)
        self.starts += 1
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while loop.time() < end:
            with open(self.log, "rb") as f:
                f.seek(offset)
                for line in f.read().decode(errors="replace").splitlines():
                    if '"event": "started"' in line:
                        self.http_port = json.loads(line)["http_port"]
                        return
            if self.proc.returncode is not None:
                raise AssertionError(f"acd serve exited at start: {self.log.read_text()[-3000:]}")
            await asyncio.sleep(0.05)
        raise AssertionError("acd serve did not start within 30 s")

    async def stop(self, how: str) -> int:
        assert self.proc is not None
        if how == "kill":
            self.proc.kill()
        else:
            self.proc.terminate()
        return await asyncio.wait_for(self.proc.wait(), 30)

    async def get(self, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.http_port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return data.partition(b"\r\n\r\n")[2]

    async def counters(self) -> Dict[str, float]:
        return {k: float(v) for k, v in _COUNTER.findall((await self.get("/metrics")).decode())}

    async def snapshot(self) -> Dict[str, Any]:
        return json.loads(await self.get("/snapshot.json"))


def monotonic(before: Dict[str, float], after: Dict[str, float]) -> List[str]:
    """Counters that went back (process-local ones excepted: they say so in their help)."""
    local = ("acd_command_errors_total", "acd_fastagi_sessions_total", "acd_fastagi_errors_total",
             "acd_journal_write_failures_total", "acd_ami_logins_total")
    return [f"{k}: {v} -> {after.get(k)}" for k, v in before.items()
            if not k.startswith(local) and after.get(k, -1) < v]


class CallEnds:
    """A journal observer: per call, how many times it ended less how many times it entered (0 when
    every entry ended exactly once: a call withdrawn because its dialplan came back too late may
    enter again under its id); the calls ever enqueued; how each ended last; agents logged in."""

    def __init__(self) -> None:
        self.ends: collections.Counter = collections.Counter()
        self.entered: set = set()
        self.how: Dict[Any, str] = {}
        self.logged: Dict[str, bool] = {}
        self._alive: set = set()

    def __call__(self, seq: int, op: str, args: tuple, decisions: list) -> None:
        if op in ("enqueue", "schedule_callback") and args[0] not in self._alive:
            self.ends[args[0]] -= 1
            self.entered.add(args[0])
            self._alive.add(args[0])
        if op in ("login", "logout"):
            self.logged[args[0]] = op == "login"
        if op in ("complete", "abandon", "withdraw"):
            self._end(args[0], op)
        for d in decisions:
            if isinstance(d, Exit):
                self._end(d.call, f"exit:{d.reason}")

    def _end(self, call: Any, how: str) -> None:
        self.ends[call] += 1
        self.how[call] = how
        self._alive.discard(call)

    def check(self) -> None:
        twice = {c: n for c, n in self.ends.items() if n > 0}
        assert not twice, f"calls ended more often than they entered (by): {dict(list(twice.items())[:10])}"
        never = sorted(c for c, n in self.ends.items() if n < 0)
        assert not never, f"calls never ended: {never[:10]}"


async def settled(node: Any, pbx: FakePBX, timeout: float = 90.0) -> Dict[str, Any]:
    """Wait until the node holds no call and Asterisk no channel; its snapshot then, with no agent
    left busy or ringing."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        snap = await node.snapshot()
        if not snap["calls"] and pbx.idle():
            break
        if loop.time() > end:
            raise AssertionError(f"not settled: calls {snap['calls']}, channels {list(pbx.channels)[:10]}, "
                                 f"phones {pbx.busy_phones}")
        await asyncio.sleep(0.2)
    stuck = {a: s["state"] for a, s in snap["agents"].items() if s["state"] in ("busy", "reserved")}
    assert not stuck, f"agents busy or ringing with no channel: {stuck}"
    return snap


def journal_ends(path: Path) -> CallEnds:
    ends = CallEnds()
    JournaledEngine.open(str(path), observer=ends).close()
    return ends


async def scenario(tmp: Path, seed: int) -> Dict[str, Any]:
    rng = random.Random(seed)
    agi_port = free_port()
    # call-back conversations outlast the downtime (< 2 s): a call-back answered, talked and hung up
    # entirely while acd is down, its reports lost, is the one window exactly-once leaves open
    # (examples/asterisk/README.md), and it is not what this test is about
    pbx = await FakePBX(agi_port, seed=seed, behaviour=PhoneBehaviour(callback_talk=(3.0, 4.0))).start()
    cfg = write_config(tmp, agi_port, pbx.ami.port)
    svc = Service(cfg, tmp / "acd.log")
    report: Dict[str, Any] = {"seed": seed, "faults": []}
    try:
        await svc.start()
        for i in range(AGENTS):
            v = await pbx.agi(Channel(f"login-{i}", f"PJSIP/a{i}-login", f"a{i}", "acd-agents"),
                              f"agent_login?agent=a{i}")
            assert v is not None and v.get("ACD_STATUS") == "OK", v
        callers = []
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        arrivals = sorted(rng.uniform(0, 4.0) for _ in range(CALLS))

        async def one(i: int, at: float) -> None:
            await asyncio.sleep(max(0.0, t0 + at - loop.time()))
            patience = rng.uniform(0.3, 3.0) if rng.random() < 0.3 else 60.0
            await pbx.caller(f"1733000000.{i}", f"06{i:08d}", patience=patience,
                             press="1" if rng.random() < 0.6 else "")
        for i, at in enumerate(arrivals):
            callers.append(pbx.spawn(one(i, at)))
        # faults at random points, but with call-backs pending (the hard case)
        end = loop.time() + 20
        while len(pbx.accepted) < 10 and loop.time() < end:
            await asyncio.sleep(0.05)
        for _ in range(1 if rng.random() < 0.6 else 2):
            await asyncio.sleep(rng.uniform(0.0, 3.0))
            before = await svc.counters()
            how = rng.choice(["kill", "term"])
            code = await svc.stop(how)
            if how == "term":
                assert code == 0, f"SIGTERM: exit status {code}"
            await asyncio.sleep(rng.uniform(0.0, 0.6))
            await svc.start()
            back = monotonic(before, await svc.counters())
            assert not back, f"counters went back after {how}: {back}"
            report["faults"].append(how)
        await asyncio.wait_for(asyncio.gather(*callers), 120)
        report["snapshot"] = snap = await settled(svc, pbx)
        report["counters"] = await svc.counters()
        assert await svc.stop("term") == 0
        report["log"] = (tmp / "acd.log").read_text()
    finally:
        if svc.proc is not None and svc.proc.returncode is None:
            svc.proc.kill()
            await svc.proc.wait()
        await pbx.stop()
    report["pbx"] = pbx
    report["journal"] = journal_ends(tmp / "journal.sqlite3")
    report["queue_log"] = queue_log_of(tmp / "journal.sqlite3")
    return report


def queue_log_of(path: Path) -> str:
    """The queue_log the journal gives when replayed once, whole."""
    lines: List[str] = []

    class Sink:
        def line(self, seq: int, text: str) -> None:
            lines.append(text)

        def done(self, seq: int) -> None:
            pass

    journal = SqliteJournal(str(path), read_only=True)
    try:
        replay_journal(journal, lambda engine: QueueLogWriter(Sink()))
    finally:
        journal.close()
    return "".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_kill_or_stop_mid_burst_then_restart(tmp_path, seed):
    report = asyncio.run(asyncio.wait_for(scenario(tmp_path, seed), 400))
    pbx: FakePBX = report["pbx"]
    facts: CallEnds = report["journal"]
    facts.check()
    entered, how = facts.entered, facts.how
    dialled_twice = {c: n for c, n in pbx.customer_dials.items() if n > 1}
    assert not dialled_twice, f"customers dialled twice: {dialled_twice}"
    for call in pbx.accepted:
        assert pbx.customer_dials[call] == 1 or how.get(call) == "exit:callback_failed", \
            (call, pbx.customer_dials[call], how.get(call))
    assert set(pbx.customer_dials) <= entered
    # the counters add up at the end too
    q = report["snapshot"]["queues"]["support"]
    cb = q["callbacks"]
    assert cb["dialled"] == cb["reached"] + cb["failed"], cb
    tracebacks = [line for line in report["log"].splitlines() if '"exc":' in line]
    assert not tracebacks, tracebacks[:3]
    assert len(pbx.accepted) > 0 and sum(pbx.customer_dials.values()) > 0   # the scenario exercised call-backs
    # the queue_log written across the kills and restarts holds each record's lines exactly once
    written = (tmp_path / "queue_log").read_text()
    assert written == report["queue_log"] and written.count("ENTERQUEUE") >= len(entered), report["faults"]
