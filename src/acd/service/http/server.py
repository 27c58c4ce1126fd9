"""A small HTTP/1.1 server on asyncio streams: GET/HEAD pages and POST actions.

One request per connection (``Connection: close``), so that a streamed body
(a :class:`Response` with ``stream``, e.g. Server-Sent Events) simply ends
when the connection closes: no chunked encoding.  The request head is
bounded to :data:`MAX_REQUEST` bytes, a body to :data:`MAX_BODY` bytes (POST
only), the whole request to :data:`REQUEST_TIMEOUT` seconds.  The request
target must be an origin-form path (``/metrics``) or an absolute URL; ``//x``
is a path of its own, never a host.  A ``guard`` sees every request first
(authentication) and may answer it instead of the handler.

A stream is written chunk by chunk, each write bounded by the timeout (a
client that stops reading is dropped, never buffered for); it ends when the
iterator does, when the client closes its side, or when the server stops.
Its ``aclose()`` is always awaited, even for ``HEAD`` (headers only) or a
client gone before the first chunk, so a stream can release what it holds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ("HTTPServer", "Request", "Response", "Handler", "MAX_REQUEST", "MAX_BODY", "REQUEST_TIMEOUT", "text",
           "json_response")

log = logging.getLogger("acd.service.http")

MAX_REQUEST = 8192
MAX_BODY = 4096
REQUEST_TIMEOUT = 5.0
_REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 411: "Length Required",
            413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable", 505: "HTTP Version Not Supported"}
_PLAIN = "text/plain; charset=utf-8"


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: Dict[str, str] = field(default_factory=dict)
    #: a body written as it comes, after ``body`` (no Content-Length: the connection's end ends it)
    stream: Optional[AsyncIterator[bytes]] = None


@dataclass
class Request:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]      # lower-case names
    body: bytes
    remote: str


Handler = Callable[[Request], Union[Response, Awaitable[Response]]]


def text(status: int, message: str, **headers: str) -> Response:
    return Response(status, _PLAIN, (message.rstrip("\n") + "\n").encode(), dict(headers))


def json_response(status: int, body: bytes) -> Response:
    return Response(status, "application/json", body)


class HTTPServer:
    """Serve ``get[path](request)`` for GET and HEAD, ``post[path](request)`` for POST.

    Paths of ``post`` ending in ``/`` are prefixes (``/api/`` takes ``/api/calls/c1/end``)."""

    def __init__(self, get: Mapping[str, Handler], host: str = "127.0.0.1", port: int = 8573, *,
                 post: Optional[Mapping[str, Handler]] = None, guard: Optional[Callable[[Request], Any]] = None,
                 max_request: int = MAX_REQUEST, max_body: int = MAX_BODY, timeout: float = REQUEST_TIMEOUT) -> None:
        self.get = dict(get)
        self.post = dict(post or {})
        self.guard = guard
        self.host = host
        self._port = port
        self.max_request = max_request
        self.max_body = max_body
        self.timeout = timeout
        self.requests = 0
        self._server: Optional[asyncio.Server] = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._conn, self.host, self._port, limit=self.max_request,
                                                  reuse_address=True)
        log.info("HTTP server listening on %s:%d", self.host, self.port,
                 extra={"acd": {"event": "http_listening", "host": self.host, "port": self.port}})

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        stream: Optional[AsyncIterator[bytes]] = None
        peer = writer.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, tuple) and peer else "unix"
        try:
            try:
                got = await asyncio.wait_for(self._request(reader, remote), self.timeout)
            except asyncio.TimeoutError:
                got = (text(408, "request timeout"), False)
            if got is None:  # the client went away before sending a request
                return
            resp, head_only = got
            stream = resp.stream
            self.requests += 1
            length = [] if stream is not None else [f"Content-Length: {len(resp.body)}"]
            headers = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Error')}",
                       f"Content-Type: {resp.content_type}", *length,
                       "Cache-Control: no-store", "Connection: close",
                       *(f"{k}: {v}" for k, v in resp.headers.items())]
            writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
            if not head_only:
                writer.write(resp.body)
            async with asyncio.timeout(self.timeout):   # (see _stream: not wait_for)
                await writer.drain()
            if stream is not None and not head_only:
                await self._stream(reader, writer, stream)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:  # never let a page bug take the server down
            log.exception("HTTP request failed")
        finally:
            self._tasks.discard(task)
            if stream is not None:
                await _aclose(stream)
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
                writer.transport.abort()

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      stream: AsyncIterator[bytes]) -> None:
        """Write ``stream`` until it ends or the client closes (a read returns: EOF, or bytes a
        one-request connection has no use for)."""
        gone = asyncio.ensure_future(reader.read(1))
        try:
            while True:
                chunk = asyncio.ensure_future(stream.__anext__())
                await asyncio.wait((chunk, gone), return_when=asyncio.FIRST_COMPLETED)
                if not chunk.done():
                    chunk.cancel()
                    await asyncio.gather(chunk, return_exceptions=True)
                    return
                try:
                    data = chunk.result()
                except StopAsyncIteration:
                    return
                writer.write(data)
                # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancel that comes as the
                # drain completes, and a stream would then outlive the server's stop
                async with asyncio.timeout(self.timeout):
                    await writer.drain()
        finally:
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)

    async def _request(self, reader: asyncio.StreamReader, remote: str) -> Optional[Tuple[Response, bool]]:
        head = await self._head(reader)
        if head is None:
            return None
        if isinstance(head, Response):
            return head, False
        method, target, headers = head
        head_only = method == "HEAD"
        path, query = _target(target)
        if path is None:
            return text(400, "bad request target"), False
        handler, allowed = self._route(method, path)
        if handler is None:
            if allowed:
                return text(405, f"{path} allows {allowed}", Allow=allowed), False
            return text(404, "not found"), head_only
        length = headers.get("content-length", "")
        if "transfer-encoding" in headers:
            return text(413, "chunked request bodies are not accepted"), False
        body = b""
        if method == "POST":
            if not length.isdigit():
                return text(411, "POST needs a Content-Length"), False
            n = int(length)
            if n > self.max_body:
                return text(413, f"request body over {self.max_body} bytes"), False
            try:
                body = await reader.readexactly(n)
            except asyncio.IncompleteReadError:
                return text(400, "request body shorter than its Content-Length"), False
        elif length not in ("", "0"):
            return text(413, "request bodies are only accepted with POST"), False
        request = Request(method, path, query, headers, body, remote)
        try:
            if self.guard is not None:
                refused = self.guard(request)
                if refused is not None:
                    return refused, head_only
            resp = handler(request)
            if inspect.isawaitable(resp):
                resp = await resp
        except Exception:
            log.exception("HTTP %s %s failed", method, path)
            return text(500, "internal error"), head_only
        return resp, head_only

    def _route(self, method: str, path: str) -> Tuple[Optional[Handler], str]:
        post = self.post.get(path) or next((h for p, h in self.post.items() if p.endswith("/") and
                                            path.startswith(p) and len(path) > len(p)), None)
        get = self.get.get(path)
        allowed = ", ".join(m for m, h in (("GET, HEAD", get), ("POST", post)) if h is not None)
        if method in ("GET", "HEAD"):
            return get, allowed
        if method == "POST":
            return post, allowed
        return None, allowed or ""

    async def _head(self, reader: asyncio.StreamReader) -> Any:
        total = 0
        lines: List[bytes] = []
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return None if not lines and total == 0 else text(400, "bad request")
            except asyncio.LimitOverrunError:
                return text(431, "request head too large")
            total += len(line)
            if total > self.max_request:
                return text(431, "request head too large")
            if line in (b"\r\n", b"\n"):
                break
            lines.append(line.rstrip(b"\r\n"))
        if not lines:
            return text(400, "bad request")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return text(400, "bad request line")
        method, target, version = (p.decode("latin-1") for p in parts)
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            return text(505, "http version not supported")
        headers: Dict[str, str] = {}
        for h in lines[1:]:
            name, sep, value = h.partition(b":")
            if not sep or not name.strip():
                return text(400, "bad header")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if method not in ("GET", "HEAD", "POST"):
            return text(405, "only GET, HEAD and POST are allowed", Allow="GET, HEAD, POST")
        return method, target, headers


async def _aclose(stream: AsyncIterator[bytes]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:   # a stream's clean-up failing must not hide the connection's own end
            log.exception("closing an HTTP stream failed")


def _target(target: str) -> Tuple[Optional[str], Dict[str, str]]:
    """(path, query) of an origin-form or absolute-form request target; (None, {}) if neither."""
    if target.startswith(("http://", "https://")):
        try:
            parts = urlsplit(target)
        except ValueError:
            return None, {}
        raw_path, raw_query = parts.path or "/", parts.query
    elif target.startswith("/"):
        raw_path, _, raw_query = target.partition("?")   # "//metrics" is a path, not a host
        raw_path = raw_path.partition("#")[0]
    else:
        return None, {}
    path = unquote(raw_path)
    if not path.isprintable():
        return None, {}
    return path, dict(parse_qsl(raw_query.partition("#")[0]))
