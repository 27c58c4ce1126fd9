"""A small Asterisk for fault-injection tests: callers run the example dialplan against acd.

:class:`FakePBX` plays, over real sockets, what ``examples/asterisk/extensions.conf``
makes Asterisk do:

* ``[acd-in]``: a caller's channel runs ``AGI(enqueue)``; on ``ACD_STATUS=OK`` it
  dials ``${ACD_AGENT_DIAL}`` (the agent's phone rings, answers or not, is busy);
  on answer the ``U()`` subroutine runs ``AGI(dial_result?status=ANSWER)`` on the
  agent's channel; after ``Dial`` the caller runs ``AGI(dial_result?status=...)``
  and loops back to ``enqueue`` when ``ACD_REQUEUE=1``; with
  :attr:`PhoneBehaviour.after_dial` (``Dial``'s ``g`` option), when the agent hangs up
  first the caller goes on: ``AGI(dial_result?status=ANSWER)``, then ``AGI(survey)``
  when ``enqueue`` set ``ACD_SURVEY=1`` (the caller presses
  :attr:`PhoneBehaviour.survey_press`); ``CALLBACK``, ``EXIT``,
  ``ERROR`` or an unreachable ACD end the call (the fallback); the channel's
  hang-up handler runs ``AGI(call_end?status=${DIALSTATUS})`` however it ended
  (inside an AGI step too: docs/asterisk22.md section 6);
* ``[acd-callback]``: an AMI ``Originate`` rings the agent's phone under the
  ``ChannelId`` acd gave; once answered it runs ``AGI(callback_answered)``, dials
  the customer, ``AGI(callback_result)``, then its hang-up handler: ``AGI(call_end)``;
* the manager (:class:`~fakes.ami.FakeAMI`) lists the live channels, sends
  ``Hangup``/``Newstate``/``OriginateResponse`` events.

A caller hangs up when their patience runs out before an agent answers (the
AGI session then gets ``HANGUP`` and ``511`` replies, as from Asterisk 22).  The
PBX keeps running while acd is killed and restarted: AGI to a closed port fails
(``AGISTATUS=FAILURE``), and the dialplan carries on, as Asterisk's does.

What it records is the truth the tests compare acd with: which channels live,
how often each call-back's customer was dialled, each caller's outcome.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from agi_support import split_args
from fakes.ami import FakeAMI, channel_fields

__all__ = ("FakePBX", "PhoneBehaviour", "Channel")

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


@dataclass
class PhoneBehaviour:
    answer_delay: tuple = (0.02, 0.15)   # seconds an agent's phone rings before it is picked up
    no_answer: float = 0.03              # share of rings nobody picks up
    talk: tuple = (0.2, 0.8)             # seconds of conversation
    callback_talk: tuple = (1.0, 2.0)    # seconds a call-back's conversation lasts
    ring_timeout: float = 2.0            # Dial(${ACD_AGENT_DIAL},<this>)
    retry_wait: float = 0.5              # Wait() before the example's next enqueue when acd gave no status
    enqueue_retries: int = 3             # how many times the example retries an enqueue that got no status
    # the example's Dial(...,g): the caller's side goes on after the agent hangs up (a call_end lost
    # to a deposed node is made up for by the caller's AMI Hangup: Dispatcher._on_ami_hangup)
    after_dial: bool = True
    survey_press: str = "4"              # the digits a caller presses at each survey question


@dataclass
class Channel:
    uniqueid: str
    name: str
    callerid: str
    context: str = "acd-in"
    linkedid: str = ""
    state: str = "Up"
    bridge: str = ""
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    in_h: bool = False


class FakePBX:
    """``agi_port``: acd's FastAGI port, or the ports of a primary and its standbys: like the
    example's ``acd-agi`` subroutine, each AGI() tries them in order while the connection fails."""

    def __init__(self, agi_port: "int | List[int]", *, seed: int = 0,
                 behaviour: Optional[PhoneBehaviour] = None) -> None:
        self.agi_ports = [agi_port] if isinstance(agi_port, int) else list(agi_port)
        self.agi_port = self.agi_ports[0]
        self.rng = random.Random(seed)
        self.b = behaviour or PhoneBehaviour()
        self.ami = FakeAMI(on_originate=self._originate)
        self.busy_phones: Dict[str, str] = {}            # dial string -> uniqueid of its channel
        self.customer_dials: collections.Counter = collections.Counter()
        self.accepted: set = set()                       # calls that got ACD_STATUS=CALLBACK
        self.outcomes: Dict[str, str] = {}
        self.agi_failures = 0
        self.agi_sessions = 0
        self.tasks: set = set()
        self._ids = itertools.count(1)
        self._bridges = itertools.count(1)

    # ---------------------------------------------------------------- life
    async def start(self, ami_port: int = 0) -> "FakePBX":
        await self.ami.start(ami_port)
        return self

    async def stop(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        await self.ami.stop()

    def spawn(self, coro: Any) -> "asyncio.Task[Any]":
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    @property
    def channels(self) -> Dict[str, Dict[str, str]]:
        return self.ami.channels

    def idle(self) -> bool:
        return not self.channels and not self.busy_phones and not self.tasks

    # ------------------------------------------------------------ channels
    def _open(self, ch: Channel) -> None:
        self.channels[ch.uniqueid] = channel_fields(ch.uniqueid, ch.name, ch.state, ch.bridge, ch.linkedid,
                                                    ch.context)

    def _update(self, ch: Channel) -> None:
        if ch.uniqueid in self.channels:
            self._open(ch)

    async def _hangup(self, ch: Channel, cause: str = "16") -> None:
        if ch.hung_up.is_set():
            return
        ch.hung_up.set()
        fields = self.channels.pop(ch.uniqueid, None) or channel_fields(ch.uniqueid, ch.name, ch.state, "",
                                                                         ch.linkedid, ch.context)
        await self.ami.channel_event("Hangup", fields, Cause=cause, **{"Cause-txt": "Normal Clearing"})

    # ---------------------------------------------------------------- AGI
    async def agi(self, ch: Channel, script: str, *, digits: str = "") -> Optional[Dict[str, str]]:
        """One AGI() of the channel; the variables it set, or None when acd was unreachable."""
        self.agi_sessions += 1
        for port in self.agi_ports:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:     # AGISTATUS=FAILURE: the subroutine tries the next address
                continue
        else:
            self.agi_failures += 1
            return None
        env = {"agi_network": "yes", "agi_network_script": script,
               "agi_request": f"agi://127.0.0.1:{port}/{script}", "agi_channel": ch.name,
               "agi_language": "en", "agi_type": ch.name.split("/")[0], "agi_uniqueid": ch.uniqueid,
               "agi_version": "22.10.1", "agi_callerid": ch.callerid, "agi_calleridname": "unknown",
               "agi_callingpres": "0", "agi_callingani2": "0", "agi_callington": "0", "agi_callingtns": "0",
               "agi_dnid": "100", "agi_rdnis": "unknown", "agi_context": ch.context, "agi_extension": "100",
               "agi_priority": "2", "agi_enhanced": "0.0", "agi_accountcode": "", "agi_threadid": "1"}
        variables: Dict[str, str] = {}
        told_hangup = False
        try:
            writer.write(("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode())
            await writer.drain()
            while True:
                read = asyncio.ensure_future(reader.readline())
                if not told_hangup and not ch.in_h:
                    gone = asyncio.ensure_future(ch.hung_up.wait())
                    await asyncio.wait({read, gone}, return_when=asyncio.FIRST_COMPLETED)
                    gone.cancel()
                    if not read.done():          # the caller hung up while acd holds the session
                        told_hangup = True
                        writer.write(b"HANGUP\n")
                        await writer.drain()
                line = await read
                if not line:
                    return variables
                cmd = line.decode().rstrip("\n")
                words = split_args(cmd)
                reply = self._reply(ch, words, digits)
                if words[:2] == ["SET", "VARIABLE"] and reply.startswith("200"):
                    variables[words[2]] = words[3] if len(words) > 3 else ""
                writer.write((reply + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            return variables if variables else None
        finally:
            writer.close()

    def _reply(self, ch: Channel, words: List[str], digits: str) -> str:
        verb = " ".join(words[:2]).upper()
        if verb in ("SET VARIABLE",) or words[:1] == ["VERBOSE"]:
            return "200 result=1"
        if words[:1] == ["NOOP"] or verb in ("GET VARIABLE", "GET FULL") or words[:1] == ["EXEC"]:
            return "200 result=0"                  # allowed on a dead channel too
        if ch.hung_up.is_set():
            return DEAD
        if words[:1] == ["ANSWER"]:
            ch.state = "Up"
            self._update(ch)
            return "200 result=0"
        if verb == "GET DATA":
            return f"200 result={digits}" if digits else "200 result= (timeout)"
        if verb in ("STREAM FILE",):
            return "200 result=0 endpos=8000"
        return "200 result=0"

    # ------------------------------------------------------------- callers
    async def caller(self, uniqueid: str, number: str, *, patience: float, press: str = "",
                     queue: str = "support") -> str:
        """One caller through [acd-in]; returns its outcome."""
        ch = Channel(uniqueid, f"PJSIP/trunk-{next(self._ids):08x}", number, state="Ring")
        self._open(ch)
        connected = asyncio.Event()

        async def patience_runs_out() -> None:
            try:
                await asyncio.wait_for(connected.wait(), patience)
            except asyncio.TimeoutError:
                await self._hangup(ch)
        watcher = self.spawn(patience_runs_out())
        dialstatus = ""
        outcome = "hangup"
        retries = 0
        try:
            while not ch.hung_up.is_set():
                v = await self.agi(ch, f"enqueue?queue={queue}&priority=2", digits=press)
                if ch.hung_up.is_set():
                    break
                if not (v or {}).get("ACD_STATUS") and retries < self.b.enqueue_retries:
                    retries += 1            # the example retries after Wait(1)
                    await asyncio.sleep(self.b.retry_wait)
                    continue
                status = (v or {}).get("ACD_STATUS", "")
                if status == "CALLBACK":
                    self.accepted.add(uniqueid)
                    outcome = "callback"
                    break
                if status == "EXIT":
                    outcome = "exit"
                    break
                if status != "OK" or not (v or {}).get("ACD_AGENT_DIAL"):
                    outcome = f"fallback:{(v or {}).get('ACD_ERROR', 'AGI_FAILURE')}"
                    break
                agent = v.get("ACD_AGENT", "")
                dialstatus = await self._dial(ch, v["ACD_AGENT_DIAL"], connected, agent)
                if dialstatus == "ANSWER" and self.b.after_dial and not ch.hung_up.is_set():
                    # Dial's g option: the agent hung up and the caller's side goes on
                    await self.agi(ch, f"dial_result?status=ANSWER&agent={agent}")
                    if v.get("ACD_SURVEY") == "1" and not ch.hung_up.is_set():
                        await self.agi(ch, "survey", digits=self.b.survey_press)
                if ch.hung_up.is_set() or dialstatus == "ANSWER":
                    outcome = "talked" if dialstatus == "ANSWER" else "hangup"
                    break
                r = await self.agi(ch, f"dial_result?status={dialstatus}&agent={agent}")
                if (r or {}).get("ACD_REQUEUE") != "1":
                    outcome = f"dial:{dialstatus}"
                    break
        finally:
            watcher.cancel()
            await self._hangup(ch)
            ch.in_h = True
            await self.agi(ch, f"call_end?status={dialstatus}")
            self.outcomes[uniqueid] = outcome
        return outcome

    async def _dial(self, ch: Channel, dial: str, connected: asyncio.Event, agent: str) -> str:
        """Dial(${ACD_AGENT_DIAL},ring_timeout,U(acd-answered^${UNIQUEID}^${ACD_AGENT}))."""
        if dial in self.busy_phones:
            return "BUSY"
        leg = Channel(f"{ch.uniqueid}-{next(self._ids)}", f"{dial}-{next(self._ids):08x}", dial, "acd-agents",
                      ch.uniqueid, "Ringing")
        self.busy_phones[dial] = leg.uniqueid
        self._open(leg)
        try:
            delay = self.rng.uniform(*self.b.answer_delay)
            if self.rng.random() < self.b.no_answer:
                delay = self.b.ring_timeout + 1
            try:
                await asyncio.wait_for(ch.hung_up.wait(), min(delay, self.b.ring_timeout))
                return "CANCEL"                       # the caller hung up while it rang
            except asyncio.TimeoutError:
                pass
            if delay > self.b.ring_timeout:
                return "NOANSWER"
            connected.set()
            bridge = f"bridge-{next(self._bridges)}"
            for c in (ch, leg):
                c.state, c.bridge = "Up", bridge
                self._update(c)
            await self.agi(leg, f"dial_result?call={ch.uniqueid}&status=ANSWER&agent={agent}")   # U(), agent's channel
            try:
                await asyncio.wait_for(ch.hung_up.wait(), self.rng.uniform(*self.b.talk))
            except asyncio.TimeoutError:
                pass
            ch.bridge = ""
            self._update(ch)
            return "ANSWER"
        finally:
            await self._hangup(leg)
            self.busy_phones.pop(dial, None)

    # ----------------------------------------------------------- call-backs
    async def _originate(self, ami: FakeAMI, info: Dict[str, Any]) -> None:
        """[acd-callback], started by acd's Originate."""
        dial = info["Channel"]
        uid = info.get("ChannelId") or f"orig-{next(self._ids)}"
        var = info["variables"]
        call, attempt = var.get("ACD_CALL", ""), var.get("ACD_CALLBACK_ID", "")
        timeout = int(info.get("Timeout", "30000")) / 1000.0

        async def respond(ok: bool, reason: str) -> None:
            await ami.originate_response(info, ok, reason, f"{dial}-{next(self._ids):08x};1")
        if dial in self.busy_phones:
            await respond(False, "5")
            return
        leg = Channel(uid, f"{dial}-{next(self._ids):08x}", "", "acd-callback", uid, "Ringing")
        self.busy_phones[dial] = uid
        self._open(leg)
        try:
            delay = self.rng.uniform(*self.b.answer_delay)
            if self.rng.random() < self.b.no_answer:
                delay = timeout + 1
            await asyncio.sleep(min(delay, timeout))
            if delay > timeout:
                await respond(False, "3")
                return
            leg.state = "Up"
            self._update(leg)
            await respond(True, "4")
            await ami.channel_event("Newstate", self.channels[uid])
            await self.agi(leg, f"callback_answered?call={call}&attempt={attempt}")
            self.customer_dials[call] += 1            # Dial(PJSIP/${ACD_CALLBACK_NUMBER}@trunk)
            await asyncio.sleep(self.rng.uniform(*self.b.callback_talk))
            # answered: Dial (no g option) hangs the agent's leg up with the customer; only h runs
        finally:
            await self._hangup(leg)
            self.busy_phones.pop(dial, None)
        if leg.state == "Up":
            leg.in_h = True
            await self.agi(leg, f"call_end?call={call}&status=ANSWER&attempt={attempt}")
