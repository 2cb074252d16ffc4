"""The OpenAPI document says what authentication does: a ``bearerAuth`` HTTP bearer scheme, and
on every operation that needs a scope (:func:`~chainotel_analyzer.security.policy.required_scope`)
its ``security`` requirement and the ``401`` / ``403`` answers: the API's ``Error`` body
(``{"detail": ...}``, :mod:`chainotel_analyzer.api.errors`), or for ``/v1/traces`` a
``google.rpc.Status`` in the request's content type (``OtlpStatus`` or protobuf)."""

from __future__ import annotations

from fastapi import FastAPI

from chainotel_analyzer.security.policy import OTLP_HTTP_PATH, required_scope

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_OTLP_STATUS = {"application/json": {"schema": {"$ref": "#/components/schemas/OtlpStatus"}},
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}  # fmt: skip


def document_security(app: FastAPI, enabled: bool) -> None:
    """Make ``app.openapi()`` carry the bearer scheme and each operation's scope (``enabled``: a
    token file is configured; without one the document says that no token is needed)."""

    generate = app.openapi  # FastAPI's own, which caches the document in app.openapi_schema
    done = False

    def openapi() -> dict:
        nonlocal done
        doc = generate()
        if enabled and not done:
            done = True
            components = doc.setdefault("components", {})
            components.setdefault("securitySchemes", {})["bearerAuth"] = {
                "type": "http", "scheme": "bearer",
                "description": "A token of CHAINOTEL_AUTH_FILE; scopes ingest, read, admin (docs/security.md).",
            }  # fmt: skip
            for path, operations in doc.get("paths", {}).items():
                for method, operation in operations.items():
                    scope = required_scope(method.upper(), path)
                    if scope is None:
                        continue
                    operation["security"] = [{"bearerAuth": []}]
                    operation["description"] = (operation.get("description", "") + f"\n\nNeeds a token with the "
                                                f"`{scope.value}` scope.").strip()  # fmt: skip
                    body = _OTLP_STATUS if path == OTLP_HTTP_PATH else _ERROR
                    responses = operation.setdefault("responses", {})
                    responses.setdefault("401", {"description": "No bearer token, or an unknown one "
                                                 "(WWW-Authenticate: Bearer)", "content": body})  # fmt: skip
                    responses.setdefault("403", {"description": f"The token lacks the {scope.value!r} scope",
                                                 "content": body})  # fmt: skip
        return doc

    app.openapi = openapi
