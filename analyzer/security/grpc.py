"""gRPC authentication: a server interceptor reading the ``authorization`` metadata
(``Bearer <token>``, what OTLP exporters send for ``OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer …``
and the Collector's ``headers`` / ``bearertokenauth``).

No token or an unknown one → ``UNAUTHENTICATED``; a token without the ``ingest`` scope →
``PERMISSION_DENIED`` (neither is retried by OTLP exporters). Both are decided before the message
is handed to the service.
"""

from __future__ import annotations

import grpc

from chainotel_analyzer.security.policy import bearer_token
from chainotel_analyzer.security.tokens import Scope, TokenSet


def _refuse(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def handler(request, context):
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(handler)


class AuthInterceptor(grpc.ServerInterceptor):
    """Enforces ``tokens``: every method needs a known token with the ``ingest`` scope."""

    def __init__(self, tokens: TokenSet):
        self._tokens = tokens

    def intercept_service(self, continuation, handler_call_details):
        value = None
        for key, val in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                value = val if isinstance(val, str) else val.decode("latin-1")
                break
        token = bearer_token(value)
        principal = self._tokens.authenticate(token) if token else None
        if principal is None:
            reason = "missing bearer token" if token is None else "unknown bearer token"
            return _refuse(grpc.StatusCode.UNAUTHENTICATED, f"{reason}: send metadata authorization: Bearer <token>")
        if Scope.INGEST not in principal.scopes:
            return _refuse(grpc.StatusCode.PERMISSION_DENIED, f"token {principal.name!r} lacks the 'ingest' scope")
        return continuation(handler_call_details)
