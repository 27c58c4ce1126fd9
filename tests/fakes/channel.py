"""A fake Asterisk channel running one AGI() over FastAGI (the Asterisk side of a session).

Replies as Asterisk 22 does: ``200 result=...`` for what succeeds, ``HANGUP``
then ``511 Command Not Permitted on a dead channel or intercepted channel``
once the caller has hung up, ``GET DATA`` giving the digits it was told to
press: the same every time (a str), or one entry per ``GET DATA`` (a list;
``""`` lets it time out, ``None`` hangs up during it -- ``200 result=-1`` then
``HANGUP``, as Asterisk 22 does -- and once the list is used up it times out).  See tests/data/asterisk22/ for the recordings it is checked against.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Sequence, Union

from agi_support import split_args

__all__ = ("FakeChannel", "agi")


class FakeChannel:
    """Plays Asterisk for one AGI() of one channel over FastAGI."""

    def __init__(self, port: int, script: str, *, uniqueid: str = "1700000000.1", callerid: str = "0612345678",
                 digits: Union[str, Sequence[Optional[str]]] = "") -> None:
        self.port = port
        self.script = script
        self.uniqueid = uniqueid
        self.callerid = callerid
        self.digits = digits
        self.commands: List[str] = []
        self.hung_up = False
        self._gets = 0                      # GET DATA commands answered
        self._writer: Optional[asyncio.StreamWriter] = None
        self._task: Optional[asyncio.Task[None]] = None

    def env(self) -> bytes:
        env = {
            "agi_network": "yes", "agi_network_script": self.script,
            "agi_request": f"agi://127.0.0.1:{self.port}/{self.script}",
            "agi_channel": f"PJSIP/{self.callerid}-{self.uniqueid}", "agi_language": "en", "agi_type": "PJSIP",
            "agi_uniqueid": self.uniqueid, "agi_version": "22.10.1", "agi_callerid": self.callerid,
            "agi_calleridname": "Caller", "agi_callingpres": "0", "agi_callingani2": "0", "agi_callington": "0",
            "agi_callingtns": "0", "agi_dnid": "unknown", "agi_rdnis": "unknown", "agi_context": "acd-in",
            "agi_extension": "100", "agi_priority": "2", "agi_enhanced": "0.0", "agi_accountcode": "",
            "agi_threadid": "140445167187648",
        }
        return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()

    def reply(self, cmd: str) -> str:
        if cmd.startswith(("SET VARIABLE", "VERBOSE")):
            return "200 result=1"
        if self.hung_up:
            return "511 Command Not Permitted on a dead channel or intercept routine"
        if cmd.startswith("GET DATA"):
            digits: Optional[str] = self.digits if isinstance(self.digits, str) else \
                (self.digits[self._gets] if self._gets < len(self.digits) else "")
            self._gets += 1
            if digits is None:
                self.hung_up = True
                return "200 result=-1\nHANGUP"
            return f"200 result={digits}" if digits else "200 result= (timeout)"
        return "200 result=0"

    async def start(self) -> "FakeChannel":
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer = writer
        writer.write(self.env())
        await writer.drain()
        self._task = asyncio.get_running_loop().create_task(self._loop(reader, writer))
        return self

    async def _loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                cmd = line.decode().rstrip("\n")
                self.commands.append(cmd)
                writer.write((self.reply(cmd) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def hangup(self) -> None:
        self.hung_up = True
        assert self._writer is not None
        self._writer.write(b"HANGUP\n")
        await self._writer.drain()

    async def done(self, timeout: float = 5.0) -> "FakeChannel":
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout)
        return self

    @property
    def variables(self) -> Dict[str, str]:
        out = {}
        for cmd in self.commands:
            words = split_args(cmd)
            if words[:2] == ["SET", "VARIABLE"]:
                out[words[2]] = words[3]
        return out

    def saw(self, prefix: str) -> bool:
        """A command starting so was received (compared word by word, quotes removed)."""
        return any(" ".join(split_args(c)).startswith(prefix) for c in self.commands)


async def agi(port: int, script: str, **kw: Any) -> FakeChannel:
    """One short AGI session, run to its end."""
    ch = await FakeChannel(port, script, **kw).start()
    return await ch.done()
