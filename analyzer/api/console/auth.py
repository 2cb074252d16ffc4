"""Who is using the console: browser sessions in front of the pages, the login and logout pages, and
the CSRF check of the console's forms.

With an auth file (``CHAINOTEL_AUTH_FILE``) the API keeps its bearer tokens
(:class:`~chainotel_analyzer.security.http.AuthMiddleware`), but a browser cannot send one. So the
console's paths (``/``, ``/ui``, ``/ui/...``) go through :class:`ConsoleAuthMiddleware` instead:

- a page without a live session answers **303** to ``/ui/login?next=<the page>``;
- ``/ui/login`` takes a token (an entry with the ``read`` scope at least), starts a session
  (:mod:`chainotel_analyzer.security.session`: the cookie holds a random session ID, never the
  token) and answers 303 back to the page; ``POST /ui/logout`` ends it;
- the session acts as its token entry (``request.state.principal``): resolving an alert needs
  ``admin``, as ``POST /api/v1/alerts/{id}/resolve`` does;
- every form that changes something carries the session's CSRF token, and a POST whose ``Origin``
  is another site is refused (:func:`check_form`).

The API's routes never accept the cookie: only the bearer header, so a page of another site can
never call them with the user's session. Without an auth file (loopback only) every browser gets
an anonymous session all the same, for the CSRF token of the alert form.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from chainotel_analyzer.security.http import AuthMiddleware
from chainotel_analyzer.security.policy import UNAUTHENTICATED
from chainotel_analyzer.security.session import Session, SessionStore, clear_cookie, cookie_value, set_cookie
from chainotel_analyzer.security.tokens import Principal, Scope, TokenSet

LOGIN_PATH = "/ui/login"
OPEN_CONSOLE_PATHS = (LOGIN_PATH, "/ui/static/")
"""Console paths served without a session: the login page and the stylesheet/script it uses."""

MAX_FORM_BYTES = 16 * 1024
"""A console form's body at most (a note of 2 000 characters fits many times)."""

FAILED_LOGIN_DELAY_S = 0.5
"""A wrong token is answered after this pause (the event loop goes on serving others)."""

NOBODY = Principal("nobody", frozenset())
"""The principal of a request to an open console path without a session."""

current_session: ContextVar[Session | None] = ContextVar("console_session", default=None)
"""The request's console session, for the templates (navigation, forms' CSRF token)."""


def is_console_path(path: str) -> bool:
    """``/``, ``/ui`` and everything under ``/ui/``."""
    return path in ("/", "/ui") or path.startswith("/ui/")


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


class ConsoleAuthMiddleware:
    """ASGI middleware: console paths are authenticated by session (module docstring), every other
    path by :class:`~chainotel_analyzer.security.http.AuthMiddleware` with the same ``tokens()``."""

    def __init__(self, app, tokens: Callable[[], TokenSet | None], sessions: SessionStore | None = None):
        self.app = app
        self.tokens = tokens
        self.sessions = sessions or SessionStore()
        self.api = AuthMiddleware(app, tokens)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_console_path(scope["path"]):
            return await self.api(scope, receive, send)
        state = scope.setdefault("state", {})
        state["console_sessions"] = self.sessions
        secure = scope.get("scheme") == "https"
        session = self.sessions.get(cookie_value(_headers(scope).get("cookie")))
        new_cookie = None
        if self.tokens() is None:
            if session is None:  # auth off: an anonymous session, for the forms' CSRF token
                session = self.sessions.create(UNAUTHENTICATED)
                new_cookie = set_cookie(session, secure, self.sessions.ttl_s)
        elif session is None and not scope["path"].startswith(OPEN_CONSOLE_PATHS):
            return await _to_login(scope, send)
        state["principal"] = session.principal if session else NOBODY
        state["console_session"] = session
        token = current_session.set(session)
        try:
            if new_cookie is None:
                return await self.app(scope, receive, send)

            async def send_with_cookie(message):
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", new_cookie.encode())]}
                await send(message)

            return await self.app(scope, receive, send_with_cookie)
        finally:
            current_session.reset(token)


async def _to_login(scope, send) -> None:
    target = scope["path"] if scope["method"] in ("GET", "HEAD") else "/ui/"
    query = scope.get("query_string", b"").decode("latin-1")
    if query and scope["method"] in ("GET", "HEAD"):
        target += "?" + query
    location = f"{LOGIN_PATH}?next={quote(target, safe='')}"
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0"), (b"cache-control", b"no-store")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b""})


def safe_next(value: str | None) -> str:
    """A console path to go back to after login (anything else — another host, ``//``, a scheme — is ``/ui/``)."""
    if not value or not value.startswith("/ui") or value.startswith("//") or "\\" in value:
        return "/ui/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/ui/"


async def read_form(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body as ``{field: first value}``; 413 past
    :data:`MAX_FORM_BYTES`, 415 for another content type."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in fields.items()}


def check_form(request: Request, form: dict[str, str]) -> Session:
    """The request's session, after checking that the form came from one of its pages: the
    ``csrf`` field is the session's CSRF token and the ``Origin`` header, when sent, is this site.
    Raises ``HTTPException(403)`` saying what to do."""
    session = getattr(request.state, "console_session", None)
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "the form was sent from another site; use the console's own page")
    if session is None or not session.csrf_ok(form.get("csrf")):
        raise HTTPException(403, "the form is stale (the session changed): reload the page and send it again")
    return session


def has_scope(request: Request, scope: Scope) -> bool:
    """The console session's principal holds ``scope``."""
    principal = getattr(request.state, "principal", NOBODY)
    return scope in principal.scopes


router = APIRouter(include_in_schema=False)


def _login_page(render, status: int, next_path: str, error: str | None = None) -> HTMLResponse:
    response = render("login.html", status, title="Log in", path=LOGIN_PATH, tr=None, base_params={},
                      next_path=next_path, error=error)  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


def _render(template: str, status: int = 200, **ctx) -> HTMLResponse:
    from chainotel_analyzer.api.console.pages import _render as render

    return render(template, status, **ctx)


def _tokens(request: Request) -> TokenSet | None:
    return request.app.state.services.tokens


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the parameter's name in the URL
    """The login form (a token with the ``read`` scope at least); without an auth file, straight to the console."""
    if _tokens(request) is None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(_render, 200, safe_next(next))


@router.post(LOGIN_PATH, response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the token; on success start a new session (a new ID, whatever cookie came) and 303 to ``next``."""
    tokens = _tokens(request)
    try:
        form = await read_form(request)
    except HTTPException as exc:
        return _login_page(_render, exc.status_code, "/ui/", str(exc.detail))
    next_path = safe_next(form.get("next"))
    if tokens is None:
        return RedirectResponse(next_path, status_code=303)
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return _login_page(_render, 403, next_path, "The login form was sent from another site.")
    token = form.get("token", "").strip()
    principal = tokens.authenticate(token) if token else None
    if principal is None:
        await asyncio.sleep(FAILED_LOGIN_DELAY_S)
        return _login_page(_render, 401, next_path, "Unknown token." if token else "Enter a token.")
    if Scope.READ not in principal.scopes:
        return _login_page(_render, 403, next_path, f"Token {principal.name!r} lacks the 'read' scope the console needs.")
    sessions: SessionStore = request.state.console_sessions
    sessions.end(cookie_value(request.headers.get("cookie")))
    session = sessions.create(principal)
    response = RedirectResponse(next_path, status_code=303)
    response.headers["Set-Cookie"] = set_cookie(session, request.url.scheme == "https", sessions.ttl_s)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked form) and go to the login page."""
    try:
        session = check_form(request, await read_form(request))
    except HTTPException as exc:
        from chainotel_analyzer.api.console.pages import error_page

        return error_page(exc)
    request.state.console_sessions.end(session.session_id)
    response = RedirectResponse(LOGIN_PATH if _tokens(request) is not None else "/ui/", status_code=303)
    response.headers["Set-Cookie"] = clear_cookie(request.url.scheme == "https")
    return response
