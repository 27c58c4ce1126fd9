"""The HTTP surface of ``acd serve``: pages, health, and the supervisor API.

GET (``HEAD`` too):

* ``/`` -- the supervisor's wallboard, pushed live by ``/events`` (Server-Sent
  Events, :mod:`.sse`); ``/wallboard.json`` -- its state once;
  ``/dashboard`` -- the same as plain tables refreshed by the browser (no
  script); ``/metrics`` -- Prometheus; ``/snapshot.json`` -- the whole status;
* ``/login`` -- the form that logs a browser in (``POST /login``, ``POST
  /logout``; :mod:`.auth`);
* ``/healthz`` -- 200 ``running`` while the service takes calls; 503 with the
  reason otherwise (``journal down: ...``, ``draining``, ``starting``): a
  journal that cannot write refuses every call, and says so here;
* ``/primary`` -- 200 on the node that serves calls, 503 elsewhere;
  ``/standby`` -- 200 on a standby whose lag is within ``[ha] max_lag``, 503
  otherwise (Patroni's convention, for load balancers; docs/ha.md).

POST (``Authorization: Bearer <[http] token>``; answers JSON):

* ``/api/calls/<call>/end`` -- end a stuck call;
* ``/api/agents/<agent>/logout`` -- log an agent out at once (its call ended first);
* ``/api/agents/<agent>/ready`` -- make an agent available at once;
* ``/api/reload`` -- reload the configuration file (as SIGHUP does; docs/reload.md): 200 with what
  changed (and what needs a restart), 400 with the reason when the file is invalid (nothing changed).

Errors: 400 bad input, 401 no or wrong token, 403 no token configured, 404
unknown call or agent, 409 not allowed in its state, 503 the journal is down
or the service is stopping.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional
from urllib.parse import unquote

from ...errors import AcdError, InvalidInput, InvalidState, JournalError, Shutdown, UnknownAgent, UnknownCall
from .dashboard import render_dashboard
from .metrics import render_metrics
from .auth import SESSION_SECONDS, TokenGuard, login_pages
from .server import Handler, Request, Response, json_response, text
from .sse import EventStreams
from .wallboard import render_wallboard

if TYPE_CHECKING:
    from ..app import Dispatcher

__all__ = ("pages", "actions", "render_json")


def render_json(status: Any) -> bytes:
    return (json.dumps(status, indent=1, sort_keys=True, allow_nan=False, default=str) + "\n").encode()


def _renewed(guard: Optional[TokenGuard], request: Request, resp: Response) -> Response:
    """A session cookie past half its life is renewed as its page loads or its stream opens:
    a wall screen stays logged in."""
    if guard is not None:
        left = guard.session_left(request)
        if 0 < left < SESSION_SECONDS / 2 and not guard.bearer_ok(request):
            resp.headers["Set-Cookie"] = guard.set_cookie(request)
    return resp


def pages(app: "Dispatcher", guard: Optional[TokenGuard] = None) -> Dict[str, Handler]:
    """GET handlers; ``guard``: the log-in pages and session renewal (None: neither)."""
    streams = EventStreams(app.live)

    def wallboard(request: Request) -> Response:
        page, headers = render_wallboard(app.live.state(), logout=guard is not None and guard.session_ok(request))
        return _renewed(guard, request, Response(200, "text/html; charset=utf-8", page.encode(), headers))

    def wallboard_json(_: Request) -> Response:
        return json_response(200, app.live.state_json(fresh=True) + b"\n")

    def events(request: Request) -> Response:
        return _renewed(guard, request, streams(request))

    def metrics(_: Request) -> Response:
        return Response(200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(app.status()).encode())

    def snapshot(_: Request) -> Response:
        return json_response(200, render_json(app.status()))

    def dashboard(_: Request) -> Response:
        return Response(200, "text/html; charset=utf-8",
                        render_dashboard(app.status(), app.config.http.refresh).encode())

    def health(_: Request) -> Response:
        ok, why = app.health()
        return text(200 if ok else 503, why)

    def primary(_: Request) -> Response:
        ok, why = app.primary_health()
        return text(200 if ok else 503, why)

    def standby(_: Request) -> Response:
        ok, why = app.standby_health()
        return text(200 if ok else 503, why)

    out: Dict[str, Handler] = {"/metrics": metrics, "/snapshot.json": snapshot, "/": wallboard, "/wallboard.json": wallboard_json,
           "/events": events, "/dashboard": dashboard, "/healthz": health, "/primary": primary, "/standby": standby}
    if guard is not None:
        out.update(login_pages(guard)[0])
    return out


_STATUS = ((InvalidInput, 400), (UnknownCall, 404), (UnknownAgent, 404), (InvalidState, 409),
           (JournalError, 503), (Shutdown, 503))


def _error(exc: AcdError) -> Response:
    code = next((c for cls, c in _STATUS if isinstance(exc, cls)), 400)
    return json_response(code, render_json({"ok": False, "error": type(exc).__name__, "detail": str(exc)}))


def actions(app: "Dispatcher", guard: Optional[TokenGuard] = None) -> Dict[str, Handler]:
    """POST handlers; ``guard``: ``/login`` and ``/logout`` too."""
    sup = app.supervisor
    on_calls: Dict[str, Callable[[str, str], Dict[str, Any]]] = {"end": sup.end_call}
    on_agents: Dict[str, Callable[[str, str], Dict[str, Any]]] = {"logout": sup.logout, "ready": sup.ready}

    def api(request: Request) -> Response:
        if request.path == "/api/reload":
            try:
                done = app.reload(f"http {request.remote}")
            except AcdError as exc:
                return _error(exc)
            return json_response(200, render_json({"ok": True, **done}))
        parts = request.path.split("/")          # "", "api", kind, id, action
        if len(parts) != 5 or not parts[3]:
            return text(404, "not found: POST /api/calls/<call>/end or /api/agents/<agent>/<logout|ready>")
        kind, ident, action = parts[2], unquote(parts[3]), parts[4]
        table = on_calls if kind == "calls" else on_agents if kind == "agents" else None
        if table is None or action not in table:
            return text(404, f"no action {action!r} on {kind!r}")
        if len(ident) > 128 or not ident.isprintable():
            return _error(InvalidInput(f"{kind[:-1]} id must be printable and at most 128 characters, got {ident!r}"))
        try:
            app.require_running()
            done = table[action](ident, f"http {request.remote}")
        except AcdError as exc:
            return _error(exc)
        return json_response(200, render_json({"ok": True, **done}))

    out: Dict[str, Handler] = {"/api/": api}
    if guard is not None:
        out.update(login_pages(guard)[1])
    return out
