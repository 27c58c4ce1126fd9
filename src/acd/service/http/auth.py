"""Who may see and do what over HTTP.

Actions (``POST /api/...``) always need the supervisor token of ``[http]
token``, sent as ``Authorization: Bearer <token>``; with no token configured
they are refused.  Pages need it too when the server listens beyond loopback
(the configuration refuses such an address without a token).  The health
checks stay open: load balancers and systemd call them without secrets.

A browser cannot add a header to a page it opens, nor to an ``EventSource``:
it logs in once at ``/login`` (a form posting the token), which sets a
session cookie (``HttpOnly; SameSite=Strict``), good for pages and
``/events`` -- never for actions, so that another site cannot make a logged-in
browser act (the API is for scripts, which send the header).  The cookie is
not the token: it is ``<expiry>.<HMAC-SHA256 of the expiry under the
token>``, so it expires (:data:`SESSION_SECONDS`) and changing the token
ends every session.  A token in a URL (``/?token=...``) is refused outright:
URLs end up in browser history, proxy logs and screenshots.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import time
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import parse_qsl

from .server import Handler, Request, Response, text

__all__ = ("TokenGuard", "OPEN_PATHS", "LOGIN_PATH", "LOGOUT_PATH", "COOKIE", "SESSION_SECONDS", "login_pages")

#: paths anyone may GET (health checks)
OPEN_PATHS = frozenset({"/healthz", "/primary", "/standby"})   # health checks of load balancers
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
COOKIE = "acd_session"
#: a session's life: a wall screen stays logged in for a month (renewed as its page reloads)
SESSION_SECONDS = 30 * 86400
_WRONG_TOKEN_DELAY = 1.0    # seconds before a refused login answers: guessing stays slow


class TokenGuard:
    def __init__(self, token: str, *, pages_need_token: bool, clock: Callable[[], float] = time.time) -> None:
        self._token = token.encode()
        self.pages_need_token = pages_need_token
        self._clock = clock

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    def __call__(self, request: Request) -> Optional[Response]:
        if "token" in request.query:
            return text(400, "a token is never accepted in a URL (it stays in browser history and logs): send "
                             f"Authorization: Bearer <token>, or log in at {LOGIN_PATH}")
        if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
            return None
        if request.path in (LOGIN_PATH, LOGOUT_PATH):
            return None          # their handlers check the token themselves
        action = request.method == "POST"
        if not action and not self.pages_need_token:
            return None
        if not self._token:
            return text(403, "supervisor actions are disabled: set [http] token in the configuration")
        if self.bearer_ok(request) or (not action and self.session_ok(request)):
            return None
        if not action and request.path == "/" and request.method == "GET":
            return Response(303, "text/plain; charset=utf-8", b"log in first\n", {"Location": LOGIN_PATH})
        return text(401, "a supervisor token is required (Authorization: Bearer <token>"
                         f"{'' if action else f', or the session cookie of {LOGIN_PATH}'})",
                    **{"WWW-Authenticate": 'Bearer realm="acd"'})

    def token_ok(self, given: str) -> bool:
        return bool(self._token) and hmac.compare_digest(given.strip().encode(), self._token)

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(value)

    # -- sessions
    def _mac(self, expiry: int) -> str:
        return hmac.new(self._token, f"acd-session/{expiry}".encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        expiry = int(self._clock()) + SESSION_SECONDS
        return f"{expiry}.{self._mac(expiry)}"

    def session_left(self, request: Request) -> float:
        """Seconds left to the request's session cookie (0: none, expired or forged)."""
        value = _cookies(request).get(COOKIE, "")
        expiry, _, mac = value.partition(".")
        if not self._token or not expiry.isdigit() or len(expiry) > 12:
            return 0.0
        if not hmac.compare_digest(mac.encode(), self._mac(int(expiry)).encode()):
            return 0.0
        return max(0.0, int(expiry) - self._clock())

    def session_ok(self, request: Request) -> bool:
        return self.session_left(request) > 0

    def set_cookie(self, request: Request, value: Optional[str] = None) -> str:
        """A Set-Cookie value starting a session (``value`` None) or ending it (``""``)."""
        secure = "; Secure" if request.headers.get("x-forwarded-proto", "").lower() == "https" else ""
        if value == "":
            return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
        return (f"{COOKIE}={value or self.session_value()}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; "
                f"SameSite=Strict{secure}")


def _cookies(request: Request) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for part in request.headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out.setdefault(name, value)
    return out


_SECURITY = {"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
             "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                        "frame-ancestors 'none'; base-uri 'none'"}


def _login_page(status: int, message: str, *, form: bool = True) -> Response:
    e = html.escape
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>acd - log in</title>
<style>
body{{font-family:system-ui,sans-serif;background:#0b0d10;color:#f2f4f7;display:flex;min-height:100vh;margin:0;
align-items:center;justify-content:center}}
form,div{{background:#171b21;padding:2em;border-radius:.5em;max-width:28em;width:90%}}
h1{{margin-top:0;font-size:1.5em}} label{{display:block;margin-bottom:.4em}}
input{{font-size:1.1em;width:100%;box-sizing:border-box;padding:.5em;margin-bottom:1em;background:#0b0d10;
color:#fff;border:1px solid #5b6573;border-radius:.3em}}
button{{font-size:1.1em;padding:.5em 1.5em;background:#2f6fed;color:#fff;border:0;border-radius:.3em;cursor:pointer}}
p.msg{{color:#ffb4a8;font-weight:bold}}
</style></head><body>
{'<form method="post" action="' + LOGIN_PATH + '">' if form else '<div>'}
<h1>acd supervisor</h1>
{f'<p class="msg">{e(message)}</p>' if message else ''}
{'<label for="token">Supervisor token</label><input id="token" name="token" type="password" '
 'autocomplete="current-password" required autofocus><button type="submit">Log in</button></form>'
 if form else '<p><a href="/">wallboard</a></p></div>'}
</body></html>
"""
    return Response(status, "text/html; charset=utf-8", body.encode(), dict(_SECURITY))


def login_pages(guard: TokenGuard) -> Tuple[Dict[str, Handler], Dict[str, Handler]]:
    """``(get, post)`` handlers of :data:`LOGIN_PATH` and :data:`LOGOUT_PATH`."""
    def form(request: Request) -> Response:
        if not guard.has_token:
            return _login_page(403, "No supervisor token is configured ([http] token): the pages are open to "
                                    "this machine only, and need no log-in.", form=False)
        if guard.session_ok(request):
            return _login_page(200, "You are logged in.", form=False)
        return _login_page(200, "")

    async def login(request: Request) -> Response:
        if not guard.has_token:
            return form(request)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return _login_page(400, "the log-in form posts application/x-www-form-urlencoded")
        given = dict(parse_qsl(request.body.decode("utf-8", "replace"))).get("token", "")
        if not guard.token_ok(given):
            await asyncio.sleep(_WRONG_TOKEN_DELAY)
            return _login_page(401, "Wrong token.")
        return Response(303, "text/plain; charset=utf-8", b"logged in\n",
                        {"Location": "/", "Set-Cookie": guard.set_cookie(request)})

    def logout(request: Request) -> Response:
        return Response(303, "text/plain; charset=utf-8", b"logged out\n",
                        {"Location": LOGIN_PATH, "Set-Cookie": guard.set_cookie(request, "")})

    return {LOGIN_PATH: form}, {LOGIN_PATH: login, LOGOUT_PATH: logout}
