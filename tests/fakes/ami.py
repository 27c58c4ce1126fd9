"""A fake Asterisk manager (AMI) on loopback, shaped after recorded Asterisk 22 sessions.

Speaks the wire format (banner, ``Key: Value`` lines, CRLF, blank line),
answers ``Login``, ``Logoff``, ``Ping``, ``CoreShowChannels`` (an event list
of :attr:`FakeAMI.channels`), ``DeviceStateList`` and ``Originate``, and
broadcasts events to every logged-in connection.  What an ``Originate`` does
is up to ``on_originate`` (the :class:`~fakes.pbx.FakePBX` plays the
call-back); by default the agent leg is answered after a moment
(``answer=True``), fails with "no answer" (``False``) or rings on and on
(``None``), and lives in :attr:`channels` while it rings.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

__all__ = ("FakeAMI", "ami_fmt", "channel_fields", "event_fields")

#: write privileges each action needs (one of them), as Asterisk 22 checks them
NEEDS = {"CoreShowChannels": ("system", "reporting"), "DeviceStateList": ("call", "reporting"),
         "Originate": ("originate",), "Status": ("system", "call", "reporting")}
#: the first fields of every channel event, in Asterisk 22's order
_CHANNEL_KEYS = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
                 "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid",
                 "Linkedid")


def ami_fmt(*pairs: Tuple[str, str], **fields: str) -> bytes:
    items = list(pairs) + list(fields.items())
    return ("".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n").encode()


def channel_fields(uniqueid: str, channel: str, state: str = "Up", bridge: str = "",
                   linkedid: str = "", context: str = "acd-in", exten: str = "100") -> Dict[str, str]:
    """One CoreShowChannel event's fields (the ones acd reads, and the usual others)."""
    code = {"Down": "0", "Ring": "4", "Ringing": "5", "Up": "6"}[state]
    return {"Channel": channel, "ChannelState": code, "ChannelStateDesc": state, "CallerIDNum": "",
            "CallerIDName": "", "ConnectedLineNum": "", "ConnectedLineName": "", "Language": "en",
            "AccountCode": "", "Context": context, "Exten": exten, "Priority": "1", "Uniqueid": uniqueid,
            "Linkedid": linkedid or uniqueid, "Application": "AGI" if state == "Up" else "AppDial", "ApplicationData": "",
            "Duration": "00:00:01", "BridgeId": bridge}


def event_fields(channel: Dict[str, str], **extra: str) -> List[Tuple[str, str]]:
    """A channel event's fields (``Hangup``, ``Newstate``...) from a CoreShowChannel entry."""
    return [("Privilege", "call,all")] + [(k, channel.get(k, "")) for k in _CHANNEL_KEYS] + list(extra.items())


class FakeAMI:
    def __init__(self, *, answer: Optional[bool] = True,
                 on_originate: Optional[Callable[["FakeAMI", Dict[str, Any]], Awaitable[None]]] = None,
                 write: Tuple[str, ...] = ("originate", "call", "reporting")) -> None:
        self.answer = answer
        self.write = write
        self.on_originate = on_originate
        self.originates: List[List[Tuple[str, str]]] = []
        self.actions: List[Dict[str, str]] = []
        self.channels: Dict[str, Dict[str, str]] = {}      # Uniqueid -> CoreShowChannel fields
        self.devices: Dict[str, str] = {}                  # Device -> State
        self.writers: List[asyncio.StreamWriter] = []
        self.logged_in: List[asyncio.StreamWriter] = []
        self.tasks: set = set()
        self.server: Optional[asyncio.AbstractServer] = None
        self.port = 0
        self.logins = 0

    async def start(self, port: int = 0) -> "FakeAMI":
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.close()
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=2)
        await self.server.wait_closed()

    def drop_all(self) -> None:
        """Cut every manager connection (an AMI outage as the client sees it)."""
        for w in list(self.writers):
            w.transport.abort()

    async def event(self, *pairs: Tuple[str, str], **fields: str) -> None:
        data = ami_fmt(*pairs, **fields)
        for w in list(self.logged_in):
            if w.is_closing():
                continue
            try:
                w.write(data)
                # Asterisk gives a slow reader [general] writetimeout (100 ms), then drops the session:
                # a frozen client (SIGSTOP) must not hold up the events of the others
                await asyncio.wait_for(w.drain(), 0.1)
            except asyncio.TimeoutError:
                w.transport.abort()
            except (ConnectionError, OSError, RuntimeError):
                pass

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.writers.append(writer)
        try:
            writer.write(b"Asterisk Call Manager/11.0.0\r\n")
            await writer.drain()
            while True:
                pairs: List[Tuple[str, str]] = []
                while True:
                    line = await reader.readline()
                    if not line:
                        return
                    text = line.decode().rstrip("\r\n")
                    if not text:
                        break
                    k, _, v = text.partition(": ")
                    pairs.append((k, v))
                if not pairs:
                    continue
                msg = dict(pairs)
                self.actions.append(msg)
                action, aid = msg.get("Action", ""), msg.get("ActionID", "")
                if action in NEEDS and not set(NEEDS[action]) & set(self.write):
                    writer.write(ami_fmt(Response="Error", ActionID=aid, Message="Permission denied"))
                elif action == "Login":
                    self.logins += 1
                    writer.write(ami_fmt(Response="Success", ActionID=aid, Message="Authentication accepted"))
                    self.logged_in.append(writer)
                elif action == "Logoff":
                    writer.write(ami_fmt(Response="Goodbye", ActionID=aid, Message="Thanks for all the fish."))
                    await writer.drain()
                    return
                elif action == "Ping":
                    writer.write(ami_fmt(Response="Success", ActionID=aid, Ping="Pong", Timestamp="1700000000.000000"))
                elif action == "CoreShowChannels":
                    writer.write(ami_fmt(Response="Success", ActionID=aid, EventList="start",
                                         Message="Channels will follow"))
                    for fields in list(self.channels.values()):
                        writer.write(ami_fmt(Event="CoreShowChannel", ActionID=aid, **fields))
                    writer.write(ami_fmt(Event="CoreShowChannelsComplete", ActionID=aid, EventList="Complete",
                                         ListItems=str(len(self.channels))))
                elif action == "DeviceStateList":
                    writer.write(ami_fmt(Response="Success", ActionID=aid, EventList="start",
                                         Message="Device State Changes will follow"))
                    for device, state in self.devices.items():
                        writer.write(ami_fmt(Event="DeviceStateChange", ActionID=aid, Device=device, State=state))
                    writer.write(ami_fmt(Event="DeviceStateListComplete", ActionID=aid, EventList="Complete",
                                         ListItems=str(len(self.devices))))
                elif action == "Originate":
                    self.originates.append(pairs)
                    cid = msg.get("ChannelId", "")
                    if cid and cid in self.channels:
                        writer.write(ami_fmt(Response="Error", ActionID=aid,
                                             Message="Originate failed: unique id already in use"))
                    else:
                        writer.write(ami_fmt(Response="Success", ActionID=aid,
                                             Message="Originate successfully queued"))
                        variables = dict(v.split("=", 1) for k, v in pairs if k == "Variable" and "=" in v)
                        info = {**msg, "ActionID": aid, "variables": variables}
                        self._spawn((self.on_originate or FakeAMI._default_originate)(self, info))
                else:
                    writer.write(ami_fmt(Response="Error", ActionID=aid, Message=f"Invalid/unknown command: "
                                         f"{action}. Use Action: ListCommands to show available commands."))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for lst in (self.writers, self.logged_in):
                if writer in lst:
                    lst.remove(writer)
            writer.close()

    async def originate_response(self, info: Dict[str, Any], ok: bool, reason: str, channel: str = "") -> None:
        """The OriginateResponse event, to every session (as Asterisk 22 does)."""
        await self.event(("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", info["ActionID"]),
                         ("Response", "Success" if ok else "Failure"),
                         ("Channel", channel if ok and channel else info.get("Channel", "")),
                         ("Context", info.get("Context", "")), ("Exten", info.get("Exten", "")), ("Reason", reason),
                         ("Uniqueid", info.get("ChannelId") or ("<unknown>" if not ok else channel)),
                         ("CallerIDNum", ""), ("CallerIDName", ""))

    async def channel_event(self, name: str, channel: Dict[str, str], **extra: str) -> None:
        await self.event(("Event", name), *event_fields(channel, **extra))

    async def _default_originate(self, info: Dict[str, Any]) -> None:
        uid = info.get("ChannelId") or f"1700000099.{len(self.originates)}"
        chan = f"{info.get('Channel', 'PJSIP/x')}-{len(self.originates):08x}"
        self.channels[uid] = channel_fields(uid, chan, "Ringing", context=info.get("Context", ""), exten="s")
        if self.answer is None:       # the agent's phone rings on and on
            return
        await asyncio.sleep(0.02)
        ok = self.answer
        if ok:
            self.channels[uid] = channel_fields(uid, chan, "Up", context=info.get("Context", ""), exten="s")
        else:
            self.channels.pop(uid, None)
        await self.originate_response(info, bool(ok), "4" if ok else "3", chan)
