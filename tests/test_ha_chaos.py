"""Chaos: two `acd serve` processes on one PostgreSQL journal; the primary fails mid-burst.

A fake Asterisk (tests/fakes/pbx.py) runs the example dialplan, whose AGI
subroutine tries the primary's FastAGI address then the standby's, for a
burst of 1,000 callers (some give up, some accept a call-back).  With
call-backs pending, the primary (node A) is

* ``kill``: SIGKILLed, then started again (it comes back as a standby);
* ``stop``: SIGSTOPped until the standby has taken over, then SIGCONTed: it
  must find it was deposed and write nothing;
* ``cut``: cut from the database (its connections go through a proxy that
  stops forwarding), then reconnected.

Then, once everything has settled:

* nothing acknowledged was lost: every call Asterisk was told about (queued,
  call-back accepted) is in the journal, every agent logged in still is;
* nothing was repeated: every call ended exactly once, no customer was dialled
  twice;
* at most one primary wrote at any instant: the journal's epochs never go back;
* the standby answered FastAGI within 3 s of a kill -9 (printed and kept in
  the report as ``takeover_s``).

``ACD_HA_SEEDS`` sets how many seeds run per fault (1 by default).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from acd._core import Exit
from acd.journal import JournaledEngine
from fakes.pbx import Channel, FakePBX, PhoneBehaviour
from test_service_crash import AGENTS, CallEnds, free_port, monotonic, settled

psycopg = pytest.importorskip("psycopg")

ROOT = Path(__file__).resolve().parent.parent
_CI = os.environ.get("ACD_HYPOTHESIS") == "ci"
SEEDS = range(int(os.environ.get("ACD_HA_SEEDS", "1")))
CALLS = 1000
LEASE = 3.0
#: warnings a burst against a loaded fake Asterisk produces in a passing run
_ROUTINE = {"late_answer", "auto_withdraw"}


def write_config(tmp: Path, name: str, agi_port: int, ami_port: int, url: str) -> Path:
    agents = "\n".join(f'[[agents]]\nid = "a{i}"\ndial = "PJSIP/a{i}"\nskills = {{tech = 5}}\n'
                       for i in range(AGENTS))
    path = tmp / f"{name}.toml"
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
url = "{url}"

[ha]
node = "{name}"
lease = {LEASE}
max_lag = 5.0

[service]
shutdown_timeout = 2.0
reattach_timeout = 4.0
dial_report_timeout = 5.0
log_level = "info"
""")
    return path


class Node:
    """One `acd serve` process; its JSON log in a file."""

    def __init__(self, name: str, config: Path, log: Path, agi_port: int) -> None:
        self.name, self.config, self.log, self.agi_port = name, config, log, agi_port
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.http_port = 0

    async def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        with open(self.log, "ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "acd.service", "--config", str(self.config), stdout=asyncio.subprocess.DEVNULL,
                stderr=err, env=env)
        await self.wait_log(('"event": "standby"',), offset, 30)

    async def wait_log(self, needles: tuple, offset: int = 0, timeout: float = 30.0) -> Dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            with open(self.log, "rb") as f:
                f.seek(offset)
                for line in f.read().decode(errors="replace").splitlines():
                    if any(n in line for n in needles):
                        rec = json.loads(line)
                        if rec.get("http_port"):
                            self.http_port = rec["http_port"]
                        return rec
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name}: no {needles} in its log within {timeout} s")

    def notable(self, last: int = 25) -> str:
        """The last warnings and errors of this node's log, one line each."""
        lines = []
        for line in (self.log.read_text(errors="replace").splitlines() if self.log.exists() else []):
            try:
                rec = json.loads(line)
            except ValueError:
                lines.append(line[:300])     # a traceback or a crash: keep it
                continue
            if rec.get("level") in ("warning", "error", "critical") and rec.get("event") not in _ROUTINE \
                    and rec.get("logger") != "acd.adapters.asterisk.fastagi":
                lines.append(f"{rec.get('ts', '')[11:23]} {rec.get('level')} {rec.get('event', '')}: "
                             f"{str(rec.get('msg', ''))[:300]}")
        return f"--- {self.name}: last {min(last, len(lines))} of {len(lines)} warnings/errors ---\n" + \
            "\n".join(lines[-last:])

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    async def get(self, path: str) -> tuple:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.http_port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    async def primary(self) -> bool:
        try:
            return (await self.get("/primary"))[0] == 200
        except OSError:
            return False

    async def answers_fastagi(self) -> bool:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", self.agi_port)
        except OSError:
            return False
        w.close()
        return True

    async def counters(self) -> Dict[str, float]:
        from test_service_crash import _COUNTER
        return {k: float(v) for k, v in _COUNTER.findall((await self.get("/metrics"))[1].decode())}

    async def snapshot(self) -> Dict[str, Any]:
        return json.loads((await self.get("/snapshot.json"))[1])

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self) -> Optional[int]:
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except asyncio.TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


class Proxy:
    """A TCP relay to PostgreSQL that can be cut: it then stops forwarding without closing (a
    network partition as both ends see it), and new connections hang."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_off = asyncio.Event()
        self.conns: List[asyncio.StreamWriter] = []
        self.server: Optional[asyncio.AbstractServer] = None
        self.port = 0

    async def start(self) -> "Proxy":
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off.is_set():
            self.conns.append(writer)
            return       # accepted, never answered: libpq's connect_timeout ends it
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.conns += [writer, uw]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await r.read(65536)
                    if not data or self.cut_off.is_set():
                        break
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            if not self.cut_off.is_set():
                w.close()
        await asyncio.gather(pipe(reader, uw), pipe(ur, writer))

    def cut(self) -> None:
        self.cut_off.set()

    def restore(self) -> None:
        """The network is back: connections that lived through the cut are reset (their peers
        gave up on them), new ones are relayed again."""
        for w in self.conns:
            w.transport.abort()
        self.conns.clear()
        self.cut_off.clear()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        self.restore()


def journal_facts(url: str) -> Dict[str, Any]:
    from acd.journal.postgres import PostgresJournal
    ends = CallEnds()
    j = PostgresJournal(url, node="audit")
    je = JournaledEngine(j, observer=ends)
    je.load()
    epochs = j.epochs()
    je.close()
    return {"ends": ends, "epochs": epochs}


async def scenario(tmp: Path, pg_url: str, fault: str, seed: int) -> Dict[str, Any]:
    rng = random.Random(f"{fault}-{seed}")
    pg_port = int(pg_url.rsplit(":", 1)[1].split("/")[0])
    proxy = await Proxy(pg_port).start()
    url_a = pg_url.replace(f":{pg_port}/", f":{proxy.port}/")
    ports = [free_port(), free_port()]
    pbx = await FakePBX(ports, seed=seed, behaviour=PhoneBehaviour(callback_talk=(3.0, 4.0), retry_wait=1.0,
                                                                   enqueue_retries=4)).start()
    a = Node("a", write_config(tmp, "a", ports[0], pbx.ami.port, url_a), tmp / "a.log", ports[0])
    b = Node("b", write_config(tmp, "b", ports[1], pbx.ami.port, pg_url), tmp / "b.log", ports[1])
    report: Dict[str, Any] = {"fault": fault, "seed": seed}
    loop = asyncio.get_running_loop()
    try:
        await _run(report, loop, rng, pbx, proxy, a, b, fault)
    except Exception as e:
        # CI shows only the failure: say what the nodes said (their warnings and errors)
        raise AssertionError(f"{type(e).__name__}: {e}\n{a.notable()}\n{b.notable()}") from e
    finally:
        for n in (a, b):
            if n.proc is not None and n.proc.returncode is None:
                n.proc.send_signal(signal.SIGCONT)
                n.proc.kill()
                await n.proc.wait()
        await pbx.stop()
        await proxy.stop()
    report["pbx"] = pbx
    report["journal"] = journal_facts(pg_url)
    return report


async def _run(report: Dict[str, Any], loop: asyncio.AbstractEventLoop, rng: random.Random, pbx: FakePBX,
               proxy: Proxy, a: Node, b: Node, fault: str) -> None:
    await a.start()
    await a.wait_log(('"event": "started"',))
    await b.start()
    assert await a.primary() and not await b.primary()
    for i in range(AGENTS):
        v = await pbx.agi(Channel(f"login-{i}", f"PJSIP/a{i}-login", f"a{i}", "acd-agents"),
                          f"agent_login?agent=a{i}")
        assert v is not None and v.get("ACD_STATUS") == "OK", v
    t0 = loop.time()
    arrivals = sorted(rng.uniform(0, 4.0) for _ in range(CALLS))
    acked: set = set()

    async def one(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, t0 + at - loop.time()))
        patience = rng.uniform(0.3, 3.0) if rng.random() < 0.3 else 60.0
        uid = f"1733000000.{i}"
        out = await pbx.caller(uid, f"06{i:08d}", patience=patience, press="1" if rng.random() < 0.6 else "")
        if out in ("talked", "callback") or out.startswith("dial:"):
            acked.add(uid)
    callers = [pbx.spawn(one(i, at)) for i, at in enumerate(arrivals)]
    end = loop.time() + 20
    while len(pbx.accepted) < 10 and loop.time() < end:
        await asyncio.sleep(0.05)
    await asyncio.sleep(rng.uniform(0.0, 2.0))
    before = await a.counters()
    b_offset = b.offset()
    a_offset = a.offset()      # a may step down before b has taken over (its write fails first)
    # the burst alone never costs the primary its lead (its heartbeat does not wait on its loop)
    assert await a.primary() and not await b.primary()
    t_fault = loop.time()
    if fault == "kill":
        a.signal(signal.SIGKILL)
    elif fault == "stop":
        a.signal(signal.SIGSTOP)
    else:
        proxy.cut()
    while not await b.answers_fastagi():
        assert loop.time() - t_fault < 30, "the standby did not take over"
        await asyncio.sleep(0.01)
    report["takeover_s"] = loop.time() - t_fault
    await b.wait_log(('"event": "took_over"',), b_offset)
    back = monotonic(before, await b.counters())
    assert not back, f"counters went back across the take-over: {back}"
    if fault == "kill":
        assert a.proc is not None
        await a.proc.wait()
        await a.start()                       # back as a standby of b
    elif fault == "stop":
        await asyncio.sleep(0.5)
        a.signal(signal.SIGCONT)
        await a.wait_log(('"event": "deposed"',), a_offset, 15)
        await a.wait_log(('"event": "standby"',), a_offset, 30)
    else:
        await a.wait_log(('"event": "deposed"',), a_offset, 15)
        await asyncio.sleep(0.5)
        proxy.restore()
        await a.wait_log(('"event": "standby"',), a_offset, 30)
    assert await b.primary() and not await a.primary()
    await asyncio.wait_for(asyncio.gather(*callers), 150)
    snap = await settled(b, pbx)
    # the standby that is a left behind follows: same engine once caught up
    await asyncio.sleep(1.0)
    snap_a = await a.snapshot()
    assert snap_a["calls"] == snap["calls"] and snap_a["agents"].keys() == snap["agents"].keys()
    report["snapshot"], report["acked"] = snap, acked
    assert await b.stop() == 0
    assert await a.stop() == 0
    report["logs"] = a.log.read_text() + b.log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", ["kill", "stop", "cut"])
def test_primary_fails_mid_burst_standby_takes_over(tmp_path, pg_url, fault, seed):
    report = asyncio.run(asyncio.wait_for(scenario(tmp_path, pg_url, fault, seed), 400))
    pbx: FakePBX = report["pbx"]
    facts: CallEnds = report["journal"]["ends"]
    epochs = report["journal"]["epochs"]
    print(f"{fault} seed {seed}: standby answered FastAGI {report['takeover_s']:.3f} s after the fault; "
          f"epochs {epochs}")
    # at most one writer at any instant: epochs only go up along the log
    runs = [e for e, _, _ in epochs]
    assert runs == sorted(runs) and len(runs) == len(set(runs)) and len(runs) >= 2, epochs
    # nothing acknowledged lost
    lost = report["acked"] - facts.entered
    assert not lost, f"acknowledged calls missing from the journal: {sorted(lost)[:10]}"
    assert pbx.accepted <= facts.entered
    assert all(facts.logged.get(f"a{i}") for i in range(AGENTS)), "an agent's log-in was lost"
    assert all(s["state"] != "logged_out" for s in report["snapshot"]["agents"].values())
    # nothing repeated, nothing left open
    facts.check()
    dialled_twice = {c: n for c, n in pbx.customer_dials.items() if n > 1}
    assert not dialled_twice, f"customers dialled twice: {dialled_twice}"
    for call in pbx.accepted:
        assert pbx.customer_dials[call] == 1 or facts.how.get(call) == "exit:callback_failed", \
            (call, pbx.customer_dials[call], facts.how.get(call))
    cb = report["snapshot"]["queues"]["support"]["callbacks"]
    assert cb["dialled"] == cb["reached"] + cb["failed"], cb
    tracebacks = [line for line in report["logs"].splitlines() if '"exc":' in line]
    assert not tracebacks, tracebacks[:3]
    if fault == "kill":
        assert report["takeover_s"] <= 3.0, report["takeover_s"]
