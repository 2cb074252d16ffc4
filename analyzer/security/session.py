"""Browser sessions for the console: a server-side session ID in a cookie, and a CSRF token per session.

A browser cannot send ``Authorization: Bearer``, so the console's login page takes a token once
and the analyzer answers with a session cookie — as Grafana and Jaeger's auth proxies do. What the
cookie holds is a random session ID (256 bits, :func:`secrets.token_urlsafe`); the session (the
token entry's :class:`~chainotel_analyzer.security.tokens.Principal`, its CSRF token, its expiry)
stays in this process's memory, so the token itself is never in a cookie, a URL or a page, and a
logout ends the session for good. Sessions end with the process (log in again after a restart).

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends
it), ``Path=/`` and ``Secure`` when the analyzer serves TLS (OWASP Session Management Cheat Sheet).
Forms that change something carry the session's CSRF token (OWASP "synchronizer token" pattern),
compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from chainotel_analyzer.security.tokens import Principal

COOKIE_NAME = "chainotel_session"

SESSION_TTL_S = 8 * 3600
"""A session lasts this many **seconds** from login (a working day), then the login page is shown again."""

MAX_SESSIONS = 10_000
"""Sessions held at most; past that the oldest is dropped (a flood of logins cannot grow memory)."""


@dataclass(frozen=True)
class Session:
    """One browser session: its ``session_id`` (the cookie value), the ``principal`` it acts as, its
    ``csrf_token`` (for forms) and ``expires_at`` (``time.monotonic()`` seconds)."""

    session_id: str
    principal: Principal
    csrf_token: str
    expires_at: float

    def csrf_ok(self, submitted: str | None) -> bool:
        """``submitted`` is this session's CSRF token (constant-time comparison)."""
        return bool(submitted) and hmac.compare_digest(submitted.encode(), self.csrf_token.encode())


@dataclass
class SessionStore:
    """The process's sessions, thread-safe. ``ttl_s`` and ``max_sessions`` as the module's constants."""

    ttl_s: float = SESSION_TTL_S
    max_sessions: int = MAX_SESSIONS
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, principal: Principal) -> Session:
        """A new session for ``principal`` (the oldest one dropped when :attr:`max_sessions` are held)."""
        session = Session(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32), time.monotonic() + self.ttl_s)
        with self._lock:
            while len(self._sessions) >= self.max_sessions:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of ``session_id`` (a cookie value), ``None`` if unknown or expired."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= time.monotonic():
                del self._sessions[session_id]
                session = None
        return session

    def end(self, session_id: str | None) -> None:
        """Forget the session (logout); unknown IDs are ignored."""
        with self._lock:
            self._sessions.pop(session_id or "", None)


def set_cookie(session: Session, secure: bool, ttl_s: float = SESSION_TTL_S) -> str:
    """The ``Set-Cookie`` value that hands ``session`` to the browser."""
    return f"{COOKIE_NAME}={session.session_id}; Max-Age={int(ttl_s)}; Path=/; HttpOnly; SameSite=Strict" + (
        "; Secure" if secure else ""
    )


def clear_cookie(secure: bool) -> str:
    """The ``Set-Cookie`` value that removes the session cookie."""
    return f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def cookie_value(cookie_header: str | None) -> str | None:
    """The session cookie's value in a ``Cookie`` request header, if any."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME and value:
            return value
    return None
