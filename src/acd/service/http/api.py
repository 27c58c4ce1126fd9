"""The HTTP surface of ``acd serve``: pages, health, and the supervisor API.

GET (``HEAD`` too):

* ``/`` -- the supervisor's page; ``/metrics`` -- Prometheus; ``/snapshot.json``
  -- the whole status;
* ``/healthz`` -- 200 ``running`` while the service takes calls; 503 with the
  reason otherwise (``journal down: ...``, ``draining``, ``starting``): a
  journal that cannot write refuses every call, and says so here;
* ``/primary`` -- 200 on the node that serves calls, 503 elsewhere;
  ``/standby`` -- 200 on a standby whose lag is within ``[ha] max_lag``, 503
  otherwise (Patroni's convention, for load balancers; docs/ha.md).

POST (``Authorization: Bearer <[http] token>``; answers JSON):

* ``/api/calls/<call>/end`` -- end a stuck call;
* ``/api/agents/<agent>/logout`` -- log an agent out at once (its call ended first);
* ``/api/agents/<agent>/ready`` -- make an agent available at once.

Errors: 400 bad input, 401 no or wrong token, 403 no token configured, 404
unknown call or agent, 409 not allowed in its state, 503 the journal is down
or the service is stopping.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict
from urllib.parse import unquote

from ...errors import AcdError, InvalidInput, InvalidState, JournalError, Shutdown, UnknownAgent, UnknownCall
from .dashboard import render_dashboard
from .metrics import render_metrics
from .server import Handler, Request, Response, json_response, text

if TYPE_CHECKING:
    from ..app import Dispatcher

__all__ = ("pages", "actions", "render_json")


def render_json(status: Any) -> bytes:
    return (json.dumps(status, indent=1, sort_keys=True, allow_nan=False, default=str) + "\n").encode()


def pages(app: "Dispatcher") -> Dict[str, Handler]:
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

    return {"/metrics": metrics, "/snapshot.json": snapshot, "/": dashboard, "/healthz": health,
            "/primary": primary, "/standby": standby}


_STATUS = ((InvalidInput, 400), (UnknownCall, 404), (UnknownAgent, 404), (InvalidState, 409),
           (JournalError, 503), (Shutdown, 503))


def _error(exc: AcdError) -> Response:
    code = next((c for cls, c in _STATUS if isinstance(exc, cls)), 400)
    return json_response(code, render_json({"ok": False, "error": type(exc).__name__, "detail": str(exc)}))


def actions(app: "Dispatcher") -> Dict[str, Handler]:
    sup = app.supervisor
    on_calls: Dict[str, Callable[[str, str], Dict[str, Any]]] = {"end": sup.end_call}
    on_agents: Dict[str, Callable[[str, str], Dict[str, Any]]] = {"logout": sup.logout, "ready": sup.ready}

    def api(request: Request) -> Response:
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

    return {"/api/": api}
