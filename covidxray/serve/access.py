"""Who may use a served model: an API token, checked before any route runs, for services that listen
beyond this machine (uploads are films of patients).

A request carries the token as `Authorization: Bearer TOKEN`, or the session cookie that the page's
sign-in form sets (HttpOnly, SameSite=Strict), so the page's own fetches need nothing more. Tokens
are compared as SHA-256 digests with hmac.compare_digest (constant time), never logged, never taken
from a URL (URLs end up in access logs).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from urllib.parse import parse_qs

from covidxray import RESEARCH_NOTICE, __version__

__all__ = ["SESSION_COOKIE", "TokenGate"]

SESSION_COOKIE = "covidxray_session"
#: Paths open without the token: liveness (no patient data) and the page's static files (/sign-in is answered here).
OPEN_PATHS = ("/api/v1/health", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)
#: Largest sign-in form body read (a token is short).
MAX_SIGN_IN_BYTES = 4096


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class TokenGate:
    """ASGI middleware: answers 401 (JSON for /api/, the sign-in page otherwise) to a request without the token."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self._token = _digest(token)
        #: The cookie's value: derived from the token, so a new token signs every browser out.
        self._session = hmac.new(token.encode("utf-8"), b"covidxray-session", hashlib.sha256).hexdigest()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/sign-in" and scope.get("method") == "POST":
            await self._sign_in(receive, send)
        elif path == "/sign-in":
            await _send(send, 200, sign_in_page().encode(), "text/html; charset=utf-8")
        elif path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or self._allowed(scope):
            await self.app(scope, receive, send)
        elif path.startswith("/api/"):
            await _send(send, 401, json.dumps({"detail": "this service needs its API token: send 'Authorization: Bearer "
                                                         "TOKEN' (the server's COVIDXRAY_API_TOKEN)",
                                               "notice": RESEARCH_NOTICE}).encode(),
                        "application/json", [(b"www-authenticate", b'Bearer realm="covidxray"')])
        else:
            await _send(send, 401, sign_in_page().encode(), "text/html; charset=utf-8",
                        [(b"www-authenticate", b'Bearer realm="covidxray"')])

    def _allowed(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and given:
            return hmac.compare_digest(_digest(given.strip()), self._token)
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                return hmac.compare_digest(value.encode("latin-1"), self._session.encode("ascii"))
        return False

    async def _sign_in(self, receive, send) -> None:
        """POST /sign-in (form field 'token'): the session cookie and a redirect to the page, or 401."""
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_SIGN_IN_BYTES:
                await _send(send, 413, b"sign-in form too large", "text/plain; charset=utf-8")
                return
            if not message.get("more_body"):
                break
        given = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0].strip()
        if not given or not hmac.compare_digest(_digest(given), self._token):
            await _send(send, 401, sign_in_page("That token is not this server's.").encode(), "text/html; charset=utf-8")
            return
        cookie = f"{SESSION_COOKIE}={self._session}; HttpOnly; SameSite=Strict; Path=/"
        await _send(send, 303, b"", "text/plain", [(b"location", b"/"), (b"set-cookie", cookie.encode("ascii"))])


async def _send(send, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": body})


def sign_in_page(problem: str = "") -> str:
    """The form that asks for the token (posted to /sign-in, never put in the URL)."""
    from covidxray.serve.pages import page

    warning = f'<p class="error" role="alert">{html.escape(problem)}</p>' if problem else ""
    body = ('<section class="card"><h2>Sign in</h2>'
            "<p>This covidxray service asks for its API token (the server's <code>COVIDXRAY_API_TOKEN</code>), "
            "because the X-rays sent to it are films of patients.</p>" + warning +
            '<form method="post" action="/sign-in"><label>API token <input type="password" name="token" '
            'autocomplete="current-password" required autofocus></label> <button type="submit">Sign in</button></form>'
            "</section>")
    return page("Sign in: covidxray", body, RESEARCH_NOTICE, __version__)
