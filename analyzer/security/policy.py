"""Which scope a request needs, and whether serving without authentication is allowed.

The rule, in one place (docs/security.md):

============================================  ===========
request                                        scope
============================================  ===========
``GET /health``, the OpenAPI document, /docs   none
``POST /v1/traces``, gRPC ``TraceService/*``    ``ingest``
any other ``GET`` / ``HEAD``                   ``read``
any other method (registry writes, alerts)     ``admin``
============================================  ===========
"""

from __future__ import annotations

import ipaddress
import logging

from chainotel_analyzer.security.tokens import Principal, Scope, TokenSet

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
"""Paths answered without a token: liveness (nothing sensitive) and the API's documentation."""

OTLP_HTTP_PATH = "/v1/traces"

UNAUTHENTICATED = Principal("unauthenticated", frozenset(Scope))
"""The caller when no auth file is configured (loopback, or CHAINOTEL_ALLOW_UNAUTHENTICATED)."""


class ExposureError(ValueError):
    """Serving a non-loopback interface without authentication was not allowed explicitly."""


def required_scope(method: str, path: str) -> Scope | None:
    """The scope an HTTP request needs (module docstring); ``None`` for the open paths."""
    if path in OPEN_PATHS and method in ("GET", "HEAD"):
        return None
    if path == OTLP_HTTP_PATH:
        return Scope.INGEST
    if method in ("GET", "HEAD"):
        return Scope.READ
    return Scope.ADMIN


def is_loopback(host: str) -> bool:
    """``host`` (an interface to bind) reaches only this machine: ``localhost``, 127.0.0.0/8, ``::1``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_tokens(auth_file, allow_unauthenticated: bool, host: str) -> TokenSet | None:
    """The token set to enforce, or ``None`` (no authentication), and the start-up log line saying which.

    Raises :class:`~chainotel_analyzer.security.tokens.AuthFileError` for a bad file and
    :class:`ExposureError` when ``host`` is not loopback, no file is given and
    ``allow_unauthenticated`` is false.
    """
    if auth_file:
        tokens = TokenSet.load(auth_file)
        log.warning("authentication on: %d token(s) from %s (%s)", len(tokens), auth_file, ", ".join(tokens.names))
        return tokens
    if not is_loopback(host):
        if not allow_unauthenticated:
            raise ExposureError(
                f"refusing to serve {host} without authentication: set CHAINOTEL_AUTH_FILE to a token file "
                "(docs/security.md), bind 127.0.0.1, or set CHAINOTEL_ALLOW_UNAUTHENTICATED=true to accept "
                "anyone who reaches the port"
            )
        log.warning("authentication OFF on %s (CHAINOTEL_ALLOW_UNAUTHENTICATED=true): anyone who reaches the port "
                    "can export, read and change the registry", host)
    else:
        log.warning("authentication off (no CHAINOTEL_AUTH_FILE): serving on loopback %s only", host)
    return None


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (scheme case-insensitive, RFC 6750), else None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
