"""Shared by the service tests: a loop runner, a polling wait, a small configuration, HTTP GET."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from acd.errors import UnknownCall
from acd.service import Dispatcher, config_from_dict


def run(coro: Any, timeout: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def make_config(tmp_path: Path, *, ami_port: Optional[int] = None, queue: Optional[Dict[str, Any]] = None,
                **extra: Any) -> Any:
    q = {"name": "support", "wrap_up": 0, "steps": [{"after": 0, "requirements": {"tech": 1}}]}
    q.update(queue or {})
    data: Dict[str, Any] = {
        "skills": ["fr"],
        "queues": [q],
        "agents": [{"id": "1001", "dial": "PJSIP/1001", "skills": {"tech": 5}, "callerid": ["1001"]},
                   {"id": "1002", "dial": "PJSIP/1002", "skills": {"tech": 5, "fr": 3}}],
        "fastagi": {"port": 0},
        "http": {"port": 0, "refresh": 2},
        "journal": {"path": str(tmp_path / "journal.sqlite3"), "sync": "normal"},
        "prompts": {"music_on_hold": "default"},
        "callback": {"ring_timeout": 2.0, "offer_timeout": 1.0},
        "service": {"shutdown_timeout": 2.0, "reattach_timeout": 5.0},
    }
    if ami_port is not None:
        data["ami"] = {"enabled": True, "port": ami_port, "secret": "s3cret", "ping_interval": 0}
    for key, value in extra.items():   # tables are merged with the defaults above
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return config_from_dict(data)


def state(d: Dispatcher, call: str) -> Optional[str]:
    try:
        return d.engine.call_state(call)
    except UnknownCall:
        return None



async def http_get(port: int, path: str, method: str = "GET", extra: bytes = b"") -> tuple[int, Dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n".encode() + extra + b"\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


async def callback_pending(d: Dispatcher, call: str, agent: str = "1001", **kw: Any) -> Any:
    """An agent logged in and paused, and a caller who accepts the call-back offer (digit 1):
    the call is ``callback_pending`` until the agent is made ready."""
    from fakes.channel import agi
    await agi(d.fastagi_port, f"agent_login?agent={agent}")
    await agi(d.fastagi_port, f"agent_pause?agent={agent}")
    return await agi(d.fastagi_port, "enqueue?queue=support", uniqueid=call, digits="1", **kw)
