"""HTTP authentication: an ASGI middleware in front of every route (OTLP/HTTP and the API).

It answers before the application reads the body:

- no ``Authorization: Bearer`` or an unknown token → **401** with ``WWW-Authenticate: Bearer``;
- a known token without the scope :func:`~chainotel_analyzer.security.policy.required_scope`
  names → **403** (``WWW-Authenticate: Bearer error="insufficient_scope"``, RFC 6750 §3.1).

Bodies: ``/v1/traces`` answers a ``google.rpc.Status`` in the request's content type (OTLP/HTTP
spec, "Failures"); the API answers ``{"detail": "<reason>"}``. The caller's :class:`Principal` is
put in the request state as ``principal`` (``request.state.principal``) for routes that record who
changed what.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from google.rpc import status_pb2

from chainotel_analyzer.security.policy import OTLP_HTTP_PATH, UNAUTHENTICATED, bearer_token, required_scope
from chainotel_analyzer.security.tokens import Principal, TokenSet

_UNAUTHENTICATED_CODE, _PERMISSION_DENIED_CODE = 16, 7  # google.rpc.Code


def principal_of(request) -> Principal:
    """The caller of a Starlette/FastAPI ``request`` (:data:`UNAUTHENTICATED` when auth is off)."""
    return getattr(request.state, "principal", UNAUTHENTICATED)


class AuthMiddleware:
    """ASGI middleware enforcing the token set ``tokens()`` returns (``None``: everything allowed,
    principal :data:`UNAUTHENTICATED`); a callable because the runtime holding it starts with the app."""

    def __init__(self, app, tokens: Callable[[], TokenSet | None]):
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        needed = required_scope(scope["method"], scope["path"])
        tokens = self.tokens()
        if tokens is None:
            state["principal"] = UNAUTHENTICATED
            return await self.app(scope, receive, send)
        if needed is None:
            return await self.app(scope, receive, send)
        headers = dict(_headers(scope))
        token = bearer_token(headers.get("authorization"))
        principal = tokens.authenticate(token) if token else None
        if principal is None:
            reason = "missing bearer token" if token is None else "unknown bearer token"
            return await _deny(send, scope, headers, 401, f"{reason}: send Authorization: Bearer <token>",
                               'Bearer realm="chainotel"')  # fmt: skip
        if needed not in principal.scopes:
            return await _deny(send, scope, headers, 403, f"token {principal.name!r} lacks the {needed.value!r} scope",
                               f'Bearer realm="chainotel", error="insufficient_scope", scope="{needed.value}"')  # fmt: skip
        state["principal"] = principal
        return await self.app(scope, receive, send)


def _headers(scope):
    for name, value in scope.get("headers", ()):
        yield name.decode("latin-1").lower(), value.decode("latin-1")


async def _deny(send, scope, headers: dict, status: int, message: str, challenge: str) -> None:
    if scope["path"] == OTLP_HTTP_PATH:
        code = _UNAUTHENTICATED_CODE if status == 401 else _PERMISSION_DENIED_CODE
        if headers.get("content-type", "").split(";", 1)[0].strip().lower() == "application/json":
            body, ctype = json.dumps({"code": code, "message": message}).encode(), b"application/json"
        else:
            body = status_pb2.Status(code=code, message=message).SerializeToString()
            ctype = b"application/x-protobuf"
    else:
        body, ctype = json.dumps({"detail": message}).encode(), b"application/json"
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
