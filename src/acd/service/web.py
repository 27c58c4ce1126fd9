"""The supervisor's window on ``acd serve``: a tiny HTTP/1.1 server (GET only).

* ``/metrics`` -- Prometheus text format (version 0.0.4);
* ``/snapshot.json`` -- the service status as JSON (see :meth:`Dispatcher.status`);
* ``/`` -- an auto-refreshing HTML dashboard (queues and agents);
* ``/healthz`` -- ``ok``.

Hand-written on asyncio streams: one request per connection (``Connection:
close``), the request head bounded to :data:`MAX_REQUEST` bytes and
:data:`REQUEST_TIMEOUT` seconds, bodies refused.  Binds 127.0.0.1 unless told
otherwise: the pages show live operational data and carry no authentication.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

__all__ = ("HTTPServer", "render_metrics", "render_dashboard", "render_json", "MAX_REQUEST", "REQUEST_TIMEOUT")

log = logging.getLogger(__name__)

MAX_REQUEST = 8192
REQUEST_TIMEOUT = 5.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            505: "HTTP Version Not Supported"}

Response = Tuple[int, str, bytes]


class HTTPServer:
    """Serve ``pages[path]() -> (status, content type, body)`` for GET and HEAD."""

    def __init__(self, pages: Mapping[str, Callable[[], Response]], host: str = "127.0.0.1", port: int = 8573, *,
                 max_request: int = MAX_REQUEST, timeout: float = REQUEST_TIMEOUT) -> None:
        self.pages = dict(pages)
        self.host = host
        self._port = port
        self.max_request = max_request
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
        try:
            try:
                status, ctype, body, head_only, extra = await asyncio.wait_for(self._request(reader), self.timeout)
            except asyncio.TimeoutError:
                status, ctype, body, head_only, extra = 408, "text/plain; charset=utf-8", b"request timeout\n", \
                    False, {}
            if status == 0:  # the client went away before sending a request
                return
            self.requests += 1
            headers = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                       f"Content-Type: {ctype}", f"Content-Length: {len(body)}",
                       "Cache-Control: no-store", "Connection: close", *(f"{k}: {v}" for k, v in extra.items())]
            writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
            if not head_only:
                writer.write(body)
            await asyncio.wait_for(writer.drain(), self.timeout)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:  # never let a page bug take the server down
            log.exception("HTTP request failed")
        finally:
            self._tasks.discard(task)
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
                writer.transport.abort()

    async def _request(self, reader: asyncio.StreamReader) -> Tuple[int, str, bytes, bool, Dict[str, str]]:
        plain = "text/plain; charset=utf-8"
        total = 0
        lines: List[bytes] = []
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return (0, "", b"", False, {}) if not lines and total == 0 else (400, plain, b"bad request\n",
                                                                                  False, {})
            except asyncio.LimitOverrunError:
                return 431, plain, b"request head too large\n", False, {}
            total += len(line)
            if total > self.max_request:
                return 431, plain, b"request head too large\n", False, {}
            if line in (b"\r\n", b"\n"):
                break
            lines.append(line.rstrip(b"\r\n"))
        if not lines:
            return 400, plain, b"bad request\n", False, {}
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return 400, plain, b"bad request line\n", False, {}
        method, target, version = (p.decode("latin-1") for p in parts)
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            return 505, plain, b"http version not supported\n", False, {}
        for h in lines[1:]:
            name, sep, value = h.partition(b":")
            if not sep:
                return 400, plain, b"bad header\n", False, {}
            if name.strip().lower() in (b"content-length", b"transfer-encoding") and value.strip() not in (b"0", b""):
                return 413, plain, b"request bodies are not accepted\n", False, {}
        if method not in ("GET", "HEAD"):
            return 405, plain, b"only GET and HEAD are allowed\n", False, {"Allow": "GET, HEAD"}
        try:
            path = urlsplit(target).path or "/"
        except ValueError:
            return 400, plain, b"bad request target\n", False, {}
        page = self.pages.get(path)
        if page is None:
            return 404, plain, b"not found\n", method == "HEAD", {}
        try:
            status, ctype, body = page()
        except Exception:
            log.exception("HTTP page %s failed", path)
            return 500, plain, b"internal error\n", method == "HEAD", {}
        return status, ctype, body, method == "HEAD", {}


# ------------------------------------------------------------------ rendering

def _num(v: Any) -> str:
    if v is None:
        return "NaN"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        if math.isnan(v):
            return "NaN"
        return repr(v)
    return str(v)


def _label(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metrics:
    def __init__(self) -> None:
        self.out: List[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[Tuple[Mapping[str, Any], Any]]) -> None:
        self.out.append(f"# HELP {name} {help_}")
        self.out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
                self.out.append(f"{name}{{{text}}} {_num(value)}")
            else:
                self.out.append(f"{name} {_num(value)}")

    def text(self) -> str:
        return "\n".join(self.out) + "\n"


_QUEUE_COUNTERS = (("entered", "calls that entered the queue"),
                   ("answered", "calls answered by an agent"),
                   ("abandoned", "callers who hung up while waiting"),
                   ("exited", "calls that left unanswered (max wait, failed call-back)"),
                   ("overflowed", "calls moved to another queue"))
_AGENT_STATES = ("available", "reserved", "busy", "wrap_up", "paused")


def render_metrics(status: Mapping[str, Any]) -> str:
    """Prometheus exposition text for :meth:`Dispatcher.status`."""
    m = _Metrics()
    queues: Mapping[str, Any] = status["queues"]
    m.family("acd_queue_waiting", "gauge", "Calls in line (live callers and call-backs).",
             (({"queue": q}, d["waiting"]) for q, d in queues.items()))
    m.family("acd_queue_oldest_wait_seconds", "gauge", "Wait of the longest-waiting call in line.",
             (({"queue": q}, d["oldest_wait"]) for q, d in queues.items()))
    m.family("acd_queue_estimated_wait_seconds", "gauge", "Estimated wait of a caller joining now (+Inf: no agent).",
             (({"queue": q}, _inf(d["ewt"])) for q, d in queues.items()))
    for key, help_ in _QUEUE_COUNTERS:
        m.family(f"acd_queue_{key}_total", "counter", help_[0].upper() + help_[1:] + ".",
                 (({"queue": q}, d[key]) for q, d in queues.items()))
    m.family("acd_queue_answered_within_target_total", "counter",
             "Calls answered within the queue's service-level seconds (since the service started).",
             (({"queue": q}, d["service_level"]["answered_within"]) for q, d in queues.items()))
    m.family("acd_queue_service_level_target_seconds", "gauge", "Service-level target: answer within this many seconds.",
             (({"queue": q}, d["service_level"]["seconds"]) for q, d in queues.items()))
    m.family("acd_queue_callbacks_total", "counter", "Call-back events by kind.",
             (({"queue": q, "event": k}, v) for q, d in queues.items() for k, v in d["callbacks"].items()
              if k != "pending"))
    m.family("acd_queue_callbacks_pending", "gauge", "Call-backs accepted and not yet dialled back.",
             (({"queue": q}, d["callbacks"].get("pending", 0)) for q, d in queues.items()))
    m.family("acd_queue_agents", "gauge", "Agents serving the queue, by state.",
             (({"queue": q, "state": s}, d["agents"].get(s, 0)) for q, d in queues.items() for s in _AGENT_STATES))
    agents: Mapping[str, Any] = status["agents"]
    counts = {s: 0 for s in _AGENT_STATES}
    for a in agents.values():
        counts[a["state"]] = counts.get(a["state"], 0) + 1
    m.family("acd_agents", "gauge", "Logged-in agents by state.", (({"state": s}, n) for s, n in counts.items()))
    svc = status["service"]
    m.family("acd_decisions_total", "counter", "Engine decisions by kind (since the service started).",
             (({"kind": k}, v) for k, v in sorted(svc["decisions"].items())))
    m.family("acd_commands_total", "counter", "Engine commands accepted, by command (since the service started).",
             (({"command": k}, v) for k, v in sorted(svc["commands"].items())))
    m.family("acd_command_errors_total", "counter", "Engine commands refused, by command.",
             (({"command": k}, v) for k, v in sorted(svc["command_errors"].items())))
    m.family("acd_engine_time_seconds", "gauge", "Engine clock (seconds of service operation).",
             [({}, status["now"])])
    m.family("acd_uptime_seconds", "gauge", "Seconds since this process started serving.", [({}, svc["uptime"])])
    fa = svc["fastagi"]
    m.family("acd_fastagi_sessions_active", "gauge", "AGI sessions in progress.", [({}, fa["active"])])
    m.family("acd_fastagi_sessions_total", "counter", "AGI sessions by outcome.",
             (({"outcome": k}, fa[k]) for k in ("accepted", "completed", "hangups", "refused", "errors")))
    m.family("acd_ami_connected", "gauge", "1 when logged in to the Asterisk manager.",
             [({}, svc["ami"]["connected"])])
    m.family("acd_dialbacks_in_progress", "gauge", "Call-backs being dialled right now.",
             [({}, svc["dialbacks_in_progress"])])
    return m.text()


def _inf(v: Optional[float]) -> float:
    return math.inf if v is None else v


def render_json(status: Mapping[str, Any]) -> bytes:
    return (json.dumps(status, indent=1, sort_keys=True, allow_nan=False, default=str) + "\n").encode()


def _fmt_secs(v: Optional[float]) -> str:
    if v is None:
        return "&ndash;"
    v = int(round(v))
    return f"{v // 60}:{v % 60:02d}" if v >= 60 else f"{v} s"



def _after_call_text(agent: Dict[str, Any]) -> str:
    """A pause or log-out the agent asked for during its call (carried out when the call is over)."""
    what = agent.get("after_call")
    return f"{what} after this call" if what else ""


def render_dashboard(status: Mapping[str, Any], refresh: int = 5) -> str:
    """A small self-contained HTML page (no scripts) refreshing itself every ``refresh`` seconds."""
    e = html.escape
    rows = []
    for q, d in sorted(status["queues"].items()):
        sl = d["service_level"]
        measured = sl["measured"]
        sl_text = "&ndash;" if measured is None else f"{measured * 100:.0f} %"
        late = measured is not None and measured < sl["fraction"]
        ag = d["agents"]
        rows.append(
            f"<tr><td>{e(q)}</td><td class=n>{d['waiting']}</td><td class=n>{_fmt_secs(d['oldest_wait'])}</td>"
            f"<td class=n>{_fmt_secs(d['ewt'])}</td><td class=n>{d['entered']}</td><td class=n>{d['answered']}</td>"
            f"<td class=n>{d['abandoned']}</td><td class=n>{d['exited'] + d['overflowed']}</td>"
            f"<td class=\"n{' late' if late else ''}\">{sl_text}</td>"
            f"<td class=n>{sl['fraction'] * 100:.0f} % / {sl['seconds']:g} s</td>"
            f"<td class=n>{d['callbacks'].get('pending', 0)}</td>"
            f"<td class=n>{ag.get('available', 0)} / {ag.get('reserved', 0) + ag.get('busy', 0)} / "
            f"{ag.get('wrap_up', 0)} / {ag.get('paused', 0)}</td></tr>")
    arows = []
    for a, d in sorted(status["agents"].items()):
        arows.append(f"<tr><td>{e(str(a))}</td><td class=\"st {e(d['state'])}\">{e(d['state'])}</td>"
                     f"<td>{e(d.get('reason') or _after_call_text(d))}</td><td>{e(str(d.get('call') or ''))}</td>"
                     f"<td class=n>{d.get('answered', 0)}</td><td>{e(d.get('dial') or '')}</td></tr>")
    svc = status["service"]
    ami = svc["ami"]
    ami_text = "disabled" if not ami["enabled"] else ("connected" if ami["connected"] else "NOT CONNECTED")
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{meta}<title>acd - supervisor</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left}}
th{{background:#f3f3f3}} td.n{{text-align:right;font-variant-numeric:tabular-nums}}
td.late{{color:#b00;font-weight:bold}} .st.available{{color:#070}} .st.paused{{color:#a60}}
.st.busy,.st.reserved{{color:#05a}} small{{color:#666}}
</style></head><body>
<h1>acd supervisor</h1>
<p><small>engine time {status['now']:.0f} s &middot; up {svc['uptime']:.0f} s &middot; AMI {ami_text}
&middot; {svc['fastagi']['active']} AGI session(s) &middot; refreshed every {refresh} s</small></p>
<h2>Queues</h2>
<table><tr><th>queue</th><th>waiting</th><th>oldest wait</th><th>est. wait</th><th>entered</th><th>answered</th>
<th>abandoned</th><th>exited/overflowed</th><th>service level</th><th>target</th><th>call-backs pending</th>
<th>agents avail / on call / wrap-up / paused</th></tr>
{''.join(rows) or '<tr><td colspan=12>no queue</td></tr>'}
</table>
<p><small>Service level: calls answered within the target seconds / (answered + abandoned), since the service
started.</small></p>
<h2>Agents</h2>
<table><tr><th>agent</th><th>state</th><th>reason</th><th>call</th><th>answered</th><th>phone</th></tr>
{''.join(arows) or '<tr><td colspan=6>no agent logged in</td></tr>'}
</table>
</body></html>
"""
