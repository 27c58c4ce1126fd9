"""Who may see and do what over HTTP.

Actions (``POST /api/...``) always need the supervisor token of ``[http]
token``, sent as ``Authorization: Bearer <token>``; with no token configured
they are refused.  Pages need it too when the server listens beyond loopback
(the configuration refuses such an address without a token).  The health
checks stay open: load balancers and systemd call them without secrets.
"""

from __future__ import annotations

import hmac
from typing import Optional

from .server import Request, Response, text

__all__ = ("TokenGuard", "OPEN_PATHS")

#: paths anyone may GET (health checks)
OPEN_PATHS = frozenset({"/healthz", "/primary", "/standby"})   # health checks of load balancers


class TokenGuard:
    def __init__(self, token: str, *, pages_need_token: bool) -> None:
        self._token = token.encode()
        self.pages_need_token = pages_need_token

    def __call__(self, request: Request) -> Optional[Response]:
        if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
            return None
        action = request.method == "POST"
        if not action and not self.pages_need_token:
            return None
        if not self._token:
            return text(403, "supervisor actions are disabled: set [http] token in the configuration")
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self._token):
            return text(401, "a supervisor token is required (Authorization: Bearer <token>)",
                        **{"WWW-Authenticate": 'Bearer realm="acd"'})
        return None
