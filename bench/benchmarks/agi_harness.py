"""A real ``acd serve`` and a fake Asterisk driving it, for the AGI benchmarks.

Used by ``bench/agi_script.py`` (the report) and ``bench_agi.py`` (asv).  The
fake plays what ``examples/asterisk/extensions.conf`` makes Asterisk do, with
either transport:

* ``classic``: every ``AGI()`` step starts a classic AGI program -- the
  installed ``acd-agi`` script (the real one, found next to this Python) or the
  compiled relay ``acd-agi-native`` -- with the AGI environment on its stdin,
  as res_agi does; a hang-up of the channel while it runs is a SIGHUP;
* ``fastagi``: every step is a TCP connection to the service's FastAGI port;
  a hang-up is a ``HANGUP`` line.

Replies are Asterisk 22's (``tests/fakes/pbx.py`` has the same rules): 200
for what succeeds, 511 once the channel is gone except for SET VARIABLE,
VERBOSE, GET VARIABLE and EXEC, which a dead channel still accepts.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
MODES = ("fastagi", "classic")


def find_native_relay() -> str:
    """The compiled relay (``acd-agi-native``) built with this Python's acd."""
    from acd.adapters.asterisk.script import native_path
    from acd.errors import InvalidInput

    try:
        return native_path()
    except InvalidInput as exc:
        raise SystemExit(str(exc)) from None


def find_agi_script() -> str:
    """The ``acd-agi`` console script installed with this Python's acd."""
    path = shutil.which("acd-agi", path=os.path.dirname(sys.executable))
    if path is None:
        raise SystemExit(f"acd-agi is not installed next to {sys.executable}: pip install -e . first")
    return path


def split_args(line: str) -> List[str]:
    """An AGI command line split as res_agi does ('"' quoting, '\\' escapes)."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escapedquotes = '"'
    lexer.escape = "\\"
    return list(lexer)


def reply(words: List[str], dead: bool) -> str:
    verb = " ".join(words[:2]).upper()
    if verb == "SET VARIABLE" or words[:1] == ["VERBOSE"]:
        return "200 result=1"
    if words[:1] in (["NOOP"], ["EXEC"]) or verb == "GET VARIABLE":
        return "200 result=0"
    if dead:
        return DEAD
    if verb == "STREAM FILE":
        return "200 result=0 endpos=8000"
    if verb == "GET DATA":
        return "200 result= (timeout)"
    return "200 result=0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss(pid: int) -> int:
    """Peak resident set of a live process since its exec (VmHWM), bytes; 0 once it is gone.

    (``ru_maxrss`` of a child would not do: it keeps the high-water mark of the
    forking parent's memory from before the exec.)"""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the service

class Service:
    """``acd serve`` in a subprocess: one queue, ``agents`` agents, FastAGI on TCP and
    the relay socket, no AMI, no HTTP, journal with ``sync = "normal"``."""

    def __init__(self, agents: int, *, log_level: str = "info") -> None:
        self.dir = tempfile.mkdtemp(prefix="acd-bench-", dir="/tmp")  # AF_UNIX paths must stay short
        self.socket_path = os.path.join(self.dir, "agi.sock")
        self.port = _free_port()
        self.journal = os.path.join(self.dir, "journal.sqlite3")
        self.agents = [f"a{i:04d}" for i in range(1, agents + 1)]
        config = os.path.join(self.dir, "acd.toml")
        with open(config, "w") as f:
            f.write('skills = ["tech"]\n\n[[queues]]\nname = "support"\nwrap_up = 0\n'
                    'steps = [{after = 0, requirements = {tech = 1}}]\n\n')
            for a in self.agents:
                f.write(f'[[agents]]\nid = "{a}"\ndial = "PJSIP/{a}"\nskills = {{tech = 5}}\n\n')
            f.write(f'[fastagi]\nhost = "127.0.0.1"\nport = {self.port}\nunix_path = "{self.socket_path}"\n'
                    'max_sessions = 2000\n\n[http]\nenabled = false\n\n'
                    f'[journal]\npath = "{self.journal}"\nsync = "normal"\n\n'
                    '[prompts]\nmusic_on_hold = "default"\n')
        self.log = open(os.path.join(self.dir, "acd.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "acd.service", "--config", config,
                                      "--log-level", log_level], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log.name) as f:
                    raise RuntimeError(f"acd serve did not start:\n{f.read()[-2000:]}")
            time.sleep(0.05)
        for a in self.agents:
            variables = fastagi_sync(self.port, "agent_login", {"agent": a}, f"PJSIP/{a}-login", f"login.{a}")
            if variables.get("ACD_STATUS") != "OK":
                raise RuntimeError(f"agent {a} could not log in: {variables}")

    def _ready(self) -> bool:
        for family, addr in ((socket.AF_UNIX, self.socket_path), (socket.AF_INET, ("127.0.0.1", self.port))):
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.connect(addr)
            except OSError:
                return False
        return True

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def journal_ops(self, calls: List[str]) -> Dict[str, Dict[str, float]]:
        """For each call: the engine time of each of its journaled commands (op -> now)."""
        wanted = set(calls)
        out: Dict[str, Dict[str, float]] = {c: {} for c in calls}
        db = sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)
        try:
            for op, args in db.execute("SELECT op, args FROM commands"):
                a = json.loads(args)
                if not (isinstance(a, list) and a and isinstance(a[0], str) and a[0] in wanted):
                    continue
                if op == "enqueue":
                    out[a[0]][op] = float(a[2])
                elif len(a) > 1 and isinstance(a[-1], (int, float)):
                    out[a[0]][op] = float(a[-1])
        finally:
            db.close()
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------ AGI environments

def _env_bytes(env: Dict[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()


def _base_env(channel: str, uniqueid: str) -> Dict[str, str]:
    return {"agi_channel": channel, "agi_language": "en", "agi_type": channel.split("/")[0],
            "agi_uniqueid": uniqueid, "agi_version": "22.10.1", "agi_callerid": "0612345678",
            "agi_calleridname": "unknown", "agi_callingpres": "0", "agi_callingani2": "0", "agi_callington": "0",
            "agi_callingtns": "0", "agi_dnid": "100", "agi_rdnis": "unknown", "agi_context": "acd-in",
            "agi_extension": "100", "agi_priority": "2", "agi_enhanced": "0.0", "agi_accountcode": "",
            "agi_threadid": "140445167187648"}


def classic_env(script: str, target: str, channel: str, uniqueid: str) -> bytes:
    env = {"agi_request": script, **_base_env(channel, uniqueid), "agi_arg_1": target}
    return _env_bytes(env)


def fastagi_env(port: int, target: str, channel: str, uniqueid: str) -> bytes:
    env = {"agi_network": "yes", "agi_network_script": target,
           "agi_request": f"agi://127.0.0.1:{port}/{target}", **_base_env(channel, uniqueid)}
    return _env_bytes(env)


def _variables(commands: List[List[str]]) -> Dict[str, str]:
    return {c[2]: (c[3] if len(c) > 3 else "") for c in commands if c[:2] == ["SET", "VARIABLE"] and len(c) > 2}


def fastagi_sync(port: int, script: str, args: Dict[str, str], channel: str, uniqueid: str,
                 dead: bool = False) -> Dict[str, str]:
    """One FastAGI session, blocking; the variables it set."""
    target = f"{script}?{urlencode(args)}" if args else script
    commands: List[List[str]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s, s.makefile("rwb") as f:
        f.write(fastagi_env(port, target, channel, uniqueid))
        f.flush()
        for line in f:
            words = split_args(line.decode().rstrip("\n"))
            commands.append(words)
            f.write((reply(words, dead) + "\n").encode())
            f.flush()
    return _variables(commands)


@dataclass
class ProcessRun:
    """One classic AGI process: exit status, variables, and its cost from exec to exit."""

    status: int
    variables: Dict[str, str]
    commands: List[List[str]]
    stderr: str
    cpu: float          # user + system seconds (getrusage of the child)
    wall: float         # seconds from fork to reaped
    max_rss: int        # peak resident set since exec (VmHWM at its last command), bytes
    decided: Optional[float] = None  # seconds from fork to "SET VARIABLE ACD_STATUS"


def classic_sync(agi_bin: str, socket_path: str, script: str, args: Dict[str, str], channel: str,
                 uniqueid: str, dead: bool = False) -> ProcessRun:
    """Run the real classic script once against a blocking fake Asterisk on its pipes."""
    target = f"{script}?{urlencode(args)}" if args else script
    env = dict(os.environ, ACD_AGI_SOCKET=socket_path)
    t0 = time.perf_counter()
    proc = subprocess.Popen([agi_bin, target], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    commands: List[List[str]] = []
    decided = None
    rss = 0
    try:
        proc.stdin.write(classic_env(agi_bin, target, channel, uniqueid))
        out = proc.stdout
        while True:
            line = out.readline()
            if not line:
                break
            words = split_args(line.decode().rstrip("\n"))
            commands.append(words)
            rss = max(rss, peak_rss(proc.pid))  # it waits for our reply: still alive
            if words[:3] == ["SET", "VARIABLE", "ACD_STATUS"] and decided is None:
                decided = time.perf_counter() - t0
            try:
                proc.stdin.write((reply(words, dead) + "\n").encode())
            except BrokenPipeError:
                break
    finally:
        proc.stdin.close()
    _, wstatus, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(wstatus)
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.close()
    proc.stderr.close()
    return ProcessRun(proc.returncode, _variables(commands), commands, err, usage.ru_utime + usage.ru_stime, wall,
                      rss, decided)


# ------------------------------------------------------------------ the burst

@dataclass
class Channel:
    name: str
    uniqueid: str
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class AGIRun:
    script: str
    started: float
    ended: float = 0.0
    decided: Optional[float] = None
    status: Optional[int] = None          # classic: exit status
    signalled: bool = False               # classic: SIGHUP sent / FastAGI: HANGUP line sent
    variables: Dict[str, str] = field(default_factory=dict)
    verbose: List[str] = field(default_factory=list)
    stderr: str = ""


@dataclass
class CallResult:
    call: str
    origination: float
    enqueue: AGIRun
    dial_result: Optional[AGIRun] = None
    call_end: Optional[AGIRun] = None
    outcome: str = ""
    leg_hung_up_during_report: bool = False  # the agent hung up while dial_result ran


class FakeAsterisk:
    """Callers through [acd-in] over one transport (``mode``), every AGI step real."""

    def __init__(self, mode: str, service: Service, agi_bin: str, *, seed: int = 0,
                 answer_delay: Tuple[float, float] = (0.02, 0.15), talk: Tuple[float, float] = (0.0, 0.8),
                 sighup_reports: bool = False) -> None:
        """``sighup_reports``: whether the agent's channel signals its hang-up to the ``U()``
        ``dial_result`` step; the README's dialplan sets ``AGISIGHUP=no`` there (False)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.sighup_reports = sighup_reports
        self.service = service
        self.agi_bin = agi_bin
        self.rng = random.Random(seed)
        self.answer_delay = answer_delay
        self.talk = talk
        self.env = dict(os.environ, ACD_AGI_SOCKET=service.socket_path)

    async def agi(self, ch: Channel, script: str, args: Dict[str, str], *, sighup: bool = True) -> AGIRun:
        """One AGI() step of ``ch``; a channel already hung up runs it in dead mode (no signal),
        ``sighup=False`` is ``AGISIGHUP=no`` (no signal either)."""
        target = f"{script}?{urlencode(args)}"
        run = AGIRun(script, time.perf_counter())
        dead_at_start = ch.hung_up.is_set() or not sighup
        proc = None
        if self.mode == "classic":
            proc = await asyncio.create_subprocess_exec(
                self.agi_bin, target, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self.env)
            assert proc.stdin is not None and proc.stdout is not None
            reader, writer = proc.stdout, proc.stdin
            writer.write(classic_env(self.agi_bin, target, ch.name, ch.uniqueid))
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.service.port)
            writer.write(fastagi_env(self.service.port, target, ch.name, ch.uniqueid))
        try:
            await writer.drain()
            while True:
                read = asyncio.ensure_future(reader.readline())
                if not run.signalled and not dead_at_start:
                    gone = asyncio.ensure_future(ch.hung_up.wait())
                    await asyncio.wait({read, gone}, return_when=asyncio.FIRST_COMPLETED)
                    gone.cancel()
                    if not read.done():  # res_agi: SIGHUP to a process, a HANGUP line to FastAGI
                        run.signalled = True
                        if proc is not None:
                            try:
                                proc.send_signal(signal.SIGHUP)
                            except ProcessLookupError:
                                pass
                        else:
                            writer.write(b"HANGUP\n")
                line = await read
                if not line:
                    break
                words = split_args(line.decode().rstrip("\n"))
                if words[:2] == ["SET", "VARIABLE"] and len(words) > 2:
                    run.variables[words[2]] = words[3] if len(words) > 3 else ""
                    if words[2] == "ACD_STATUS" and run.decided is None:
                        run.decided = time.perf_counter()
                elif words[:1] == ["VERBOSE"] and len(words) > 1:
                    run.verbose.append(words[1])
                writer.write((reply(words, ch.hung_up.is_set()) + "\n").encode())
                try:
                    await writer.drain()
                except (ConnectionError, BrokenPipeError):
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            if proc is not None:
                assert proc.stderr is not None
                run.stderr = (await proc.stderr.read()).decode(errors="replace")
                run.status = await proc.wait()
            run.ended = time.perf_counter()
        return run

    async def caller(self, n: int, prefix: str) -> CallResult:
        """One caller: enqueue, Dial (ring, answer, U() dial_result on the agent's leg, talk), h: call_end."""
        call = f"{prefix}.{n}"
        ch = Channel(f"PJSIP/trunk-{prefix}-{n:05d}", call)
        origination = time.perf_counter()
        enq = await self.agi(ch, "enqueue", {"queue": "support", "priority": "2"})
        result = CallResult(call, origination, enq)
        dial = enq.variables.get("ACD_AGENT_DIAL", "")
        if enq.variables.get("ACD_STATUS") != "OK" or not dial:
            result.outcome = f"fallback:{enq.variables.get('ACD_ERROR', 'AGI_FAILURE')}"
        else:
            await asyncio.sleep(self.rng.uniform(*self.answer_delay))
            leg = Channel(f"{dial}-{n:08x}", f"{call}-leg")
            talk = self.rng.uniform(*self.talk)
            leg_hangs_up = asyncio.get_running_loop().call_later(talk, leg.hung_up.set)   # the agent's phone
            # Dial(...,U(acd-answered^${UNIQUEID})): the bridge waits for the subroutine
            report = {"call": call, "status": "ANSWER", "agent": enq.variables.get("ACD_AGENT", "")}
            result.dial_result = await self.agi(leg, "dial_result", report,
                                                sighup=self.sighup_reports)
            result.leg_hung_up_during_report = leg.hung_up.is_set()
            await leg.hung_up.wait()
            leg_hangs_up.cancel()
            result.outcome = "talked"
        ch.hung_up.set()  # no g option: the caller's channel ends with the agent's
        result.call_end = await self.agi(ch, "call_end", {"status": "ANSWER" if result.outcome == "talked" else ""})
        return result

    async def burst(self, calls: int, over: float, prefix: str) -> List[CallResult]:
        """``calls`` callers, arriving evenly over ``over`` seconds."""
        start = time.perf_counter()
        tasks = []
        for n in range(calls):
            delay = start + n * over / calls - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(self.caller(n, prefix)))
        return list(await asyncio.gather(*tasks))


def burst_report(results: List[CallResult], service: Service) -> Dict[str, Any]:
    """What a burst shows: decision latencies, and whether every dial_result reached the engine
    (its VERBOSE line, sent by the route after the engine took the answer, came back).  ``journal``:
    each call's journaled commands (op -> engine time), for a closer look."""
    decisions = sorted(r.enqueue.decided - r.origination for r in results if r.enqueue.decided is not None)
    dial_starts = sorted(r.enqueue.ended - r.origination for r in results if r.outcome == "talked")
    talked = [r for r in results if r.outcome == "talked"]
    relayed = [r for r in talked if r.dial_result is not None
               and any("dial status ANSWER -> answer" in v for v in r.dial_result.verbose)]
    signalled = [r for r in talked if r.leg_hung_up_during_report]
    killed = [r for r in talked if r.dial_result is not None and r.dial_result.status == -signal.SIGHUP]
    errors = [run.stderr.strip() for r in results for run in (r.enqueue, r.dial_result, r.call_end)
              if run is not None and run.stderr.strip()]
    return {"calls": len(results), "talked": len(talked), "decided": len(decisions),
            "decision": decisions, "dial_start": dial_starts,
            "dial_results_relayed": len(relayed), "journal": service.journal_ops([r.call for r in results]),
            "hangups_during_dial_result": len(signalled), "killed_by_sighup": len(killed), "stderr": errors,
            "outcomes": {o: sum(1 for r in results if r.outcome == o) for o in sorted({r.outcome for r in results})}}


def handler_delay(argv: List[str], samples: int) -> List[float]:
    """Seconds from fork to the moment the process catches SIGHUP (SigCgt in /proc), for
    ``samples`` starts of ``argv`` with its stdin left open: how long a hang-up kills it.
    Polled every 0.5 ms (reading /proc/<pid>/status in a tight loop slows the child down)."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                with open(f"/proc/{proc.pid}/status") as f:
                    caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
                if caught & 1:
                    out.append(time.perf_counter() - t0)
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited before catching SIGHUP")
                time.sleep(0.0005)
        finally:
            proc.kill()
            proc.wait()
            assert proc.stdin is not None
            proc.stdin.close()
    return out


def quantile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]
