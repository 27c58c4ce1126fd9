"""A loopback HTTP receiver for webhooks: answers each POST with a scripted status and delay,
checks the signature, and keeps what it received."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional, Tuple

from acd.service.outputs.webhooks import verify


class WebhookReceiver:
    """``statuses``/``delays``: consumed one per request (then 200 / no delay).  ``(status,
    {"Retry-After": "1"})`` answers with extra headers."""

    def __init__(self, secret: str, *, statuses: Optional[List[Any]] = None,
                 delays: Optional[List[float]] = None) -> None:
        self.secret = secret
        self.statuses: List[Any] = list(statuses or [])
        self.delays: List[float] = list(delays or [])
        #: every request received: (headers, body, status answered or None if the sender left first)
        self.requests: List[Tuple[Dict[str, str], bytes, Optional[int]]] = []
        self.bad_signatures = 0
        self.port = 0
        self._server: Optional[asyncio.AbstractServer] = None
        self._writers: "set[asyncio.StreamWriter]" = set()
        self._tasks: "set[asyncio.Task[Any]]" = set()

    async def start(self, port: int = 0) -> "WebhookReceiver":
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):    # a handler still sleeping on a scripted delay
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            assert lines[0].startswith("POST "), lines[0]
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
            body = await reader.readexactly(int(headers["content-length"]))
            if not verify(self.secret, headers.get("x-acd-timestamp", ""), body, headers.get("x-acd-signature", "")):
                self.bad_signatures += 1
            index = len(self.requests)
            self.requests.append((headers, body, None))
            # the script is read in arrival order (a retry may arrive while a slow answer sleeps)
            delay = self.delays.pop(0) if self.delays else 0.0
            answer = self.statuses.pop(0) if self.statuses else 200
            if delay:
                await asyncio.sleep(delay)
            status, extra = answer if isinstance(answer, tuple) else (answer, {})
            text = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(f"HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\n{text}\r\nok".encode())
            await writer.drain()
            self.requests[index] = (headers, body, status)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    # -- what arrived
    @property
    def events(self) -> List[Dict[str, Any]]:
        return [json.loads(b) for _, b, _ in self.requests]

    @property
    def accepted(self) -> List[Dict[str, Any]]:
        """Events this receiver answered with a 2xx, in order."""
        return [json.loads(b) for _, b, s in self.requests if s is not None and 200 <= s < 300]
