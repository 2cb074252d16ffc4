"""One shape for every API error, the answers that say so in the OpenAPI document, and ``405``
with the right ``Allow``.

The shape is FastAPI's own, so that a FastAPI client needs nothing new:

- **422** (a parameter or body that does not validate): ``{"detail": [{"loc": [...], "msg": "...",
  "type": "..."}]}`` — FastAPI's ``HTTPValidationError``, also for the checks a route makes itself
  (:func:`invalid`), so ``loc`` always names the parameter (``["query", "since"]``);
- **every other error** (400, 401, 403, 404, 405, 409, 413, 503): ``{"detail": "<what is wrong and
  what to do>"}`` — :class:`ErrorBody`, the ``Error`` schema of the document.

``/v1/traces`` is the exception the OTLP specification makes: its errors are a ``google.rpc.Status``
in the request's content type. No answer carries a server path or a store error: those are logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from chainotel_analyzer.security.policy import OTLP_HTTP_PATH

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    400: "The body is not readable (not UTF-8 or not JSON)",
    404: "No such resource; the detail says how to list what exists",
    409: "Another writer changed the resource first: read it again and retry",
    503: "Overloaded or the store is unreachable: retry after Retry-After seconds",
}


class ErrorBody(BaseModel):
    """Body of every API error but 422: ``{"detail": "<what is wrong and what to do>"}``."""

    detail: str = Field(description="What is wrong and what to do instead.")


def error_responses(*codes: int) -> dict[int, dict]:
    """``responses=`` of a route that can answer ``codes`` with :class:`ErrorBody` (descriptions in
    :data:`DESCRIPTIONS`). 401/403 (authentication), 422 (validation) and 503 (overload) are added to
    every operation by :func:`document_errors`; 400 to every operation with a body."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}


class Invalid(HTTPException):
    """The 422 of a check a route makes itself (:func:`invalid`): ``detail`` is the reason (what a
    Python caller such as the console shows), :attr:`errors` the body's list in FastAPI's shape."""

    def __init__(self, loc: tuple[str, ...], msg: str, value: object = None):
        super().__init__(422, msg)
        self.errors = [{"type": "value_error", "loc": list(loc), "msg": msg, "input": value}]


def invalid(loc: tuple[str, ...], msg: str, value: object = None) -> Invalid:
    """The 422 of a check a route makes itself, answered in FastAPI's validation shape: raise it.
    ``loc`` as FastAPI gives it (``("query", "since")``, ``("body", "id")``); ``msg`` the reason."""
    return Invalid(loc, msg, value)


def _pattern_messages() -> dict[str, str]:
    from chainotel_analyzer.api.paths import CHAIN_ID_PATTERN, INSTANCE_ID_PATTERN
    from chainotel_analyzer.api.time_params import TIME_PATTERN

    return {
        CHAIN_ID_PATTERN: "{input!r} is not a chain ID: a letter A-E and a number (A1..E7); list them with GET /api/v1/chains",
        INSTANCE_ID_PATTERN: "not a chain instance ID: {input!r}; expected a UUID (8-4-4-4-12) or 32 hex digits",
        TIME_PATTERN: "{input!r} is neither RFC 3339 with an offset (2022-08-22T04:27:03Z) nor Unix seconds "
                      "(1661142423.25) in 1971..2260",
    }  # fmt: skip


async def _validation_error(request: Request, exc: RequestValidationError):
    """FastAPI's 422, with a pattern mismatch of a known grammar told in words (what to send)."""
    messages = _pattern_messages()
    errors = []
    for error in exc.errors():
        pattern = (error.get("ctx") or {}).get("pattern")
        if error.get("type") == "string_pattern_mismatch" and pattern in messages:
            name = error["loc"][-1] if error.get("loc") else "value"
            error = {**error, "msg": f"{name}: " + messages[pattern].format(input=error.get("input"))}
        errors.append(error)
    return JSONResponse({"detail": jsonable_encoder(errors)}, 422)


async def _http_error(request: Request, exc: StarletteHTTPException):
    if isinstance(exc, Invalid):
        return JSONResponse({"detail": jsonable_encoder(exc.errors)}, 422)
    if exc.status_code == 422 and isinstance(exc.detail, str):  # any other 422, in the same shape
        return JSONResponse({"detail": [{"type": "value_error", "loc": [], "msg": exc.detail}]}, 422,
                            headers=exc.headers)  # fmt: skip
    return await http_exception_handler(request, exc)


async def _unexpected(request: Request, exc: Exception):
    """An exception no route handled: logged with its traceback (a store error can name server paths
    and query text), answered without it — 503 with ``Retry-After`` when the store is unreachable,
    else 500."""
    from clickhouse_connect.driver.exceptions import OperationalError

    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, OperationalError):
        retry_after = request.app.state.services.settings.retry_after_s
        return JSONResponse(ErrorBody(detail="the store is unreachable; retry later").model_dump(), 503,
                            headers={"Retry-After": str(retry_after)})  # fmt: skip
    return JSONResponse(ErrorBody(detail="internal error, logged by the analyzer; retry, or report it "
                                         "with the time of the request").model_dump(), 500)  # fmt: skip


class MethodNotAllowed:
    """ASGI middleware: a request to a path of the OpenAPI document with a method that path does not
    have answers **405** with ``Allow`` listing the path's methods (RFC 9110 §15.5.6).

    Starlette answers 405 only from the first route whose path matches, naming that route's method
    alone; and a literal path such as ``/api/v1/chains/validate`` also matches the template
    ``/api/v1/chains/{chain}``. Here the most literal documented template that matches decides
    (fewest ``{parameters}``), and ``Allow`` lists all its methods. ``paths()`` gives the document's
    ``paths`` (read once, at the first request)."""

    def __init__(self, app, paths: Callable[[], dict]):
        self.app = app
        self.paths = paths
        self._table: list[tuple[re.Pattern, list[str]]] | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != OTLP_HTTP_PATH:
            allowed = self.allowed(scope["path"])
            if allowed and scope["method"] not in allowed:
                body = ErrorBody(detail=f"{scope['method']} is not allowed here; use {', '.join(allowed)}")
                response = JSONResponse(body.model_dump(), 405, headers={"Allow": ", ".join(allowed)})
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)

    def allowed(self, path: str) -> list[str]:
        """The methods of the most literal documented path template matching ``path`` ([] if none)."""
        if self._table is None:
            table = []
            for template, operations in sorted(self.paths().items(), key=lambda kv: (kv[0].count("{"), kv[0])):
                pattern = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
                pattern = re.sub(r"\{[^}/]+\}", "[^/]+", pattern)
                table.append((re.compile(pattern + r"\Z"), sorted(m.upper() for m in operations)))
            self._table = table
        for pattern, methods in self._table:
            if pattern.match(path):
                return methods
        return []


def _error_content(schema: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


_OTLP_STATUS = {
    "title": "OtlpStatus", "type": "object",
    "description": "google.rpc.Status (OTLP/HTTP failures): in the request's content type.",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "details": {"type": "array"}},
}  # fmt: skip
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _document_otlp(operation: dict) -> None:
    """``/v1/traces``: bodies are OTLP messages, protobuf or JSON, answered in the request's type."""
    operation["requestBody"] = {"required": True, "content": {
        "application/x-protobuf": _BINARY,
        "application/json": {"schema": {"type": "object", "description": "ExportTraceServiceRequest (OTLP/JSON)"}},
    }}  # fmt: skip
    status = {"application/json": {"schema": {"$ref": "#/components/schemas/OtlpStatus"}},
              "application/x-protobuf": _BINARY}  # fmt: skip
    for code, response in operation["responses"].items():
        if code == "200":
            response["content"] = {"application/json": {"schema": {
                "type": "object", "description": "ExportTraceServiceResponse (OTLP/JSON)"}},
                "application/x-protobuf": _BINARY}  # fmt: skip
        elif code == "415":
            response["content"] = {"text/plain": {"schema": {"type": "string"}}, **status}
        else:
            response["content"] = status


def document_errors(doc: dict) -> dict:
    """Complete an OpenAPI document ``doc`` (FastAPI's) in place with the answers every operation can
    give: the ``Error`` schema; 422 as FastAPI's ``HTTPValidationError``; 400 on operations with a body;
    503 with ``Retry-After`` on all (the in-flight limit, an unreachable store); ``/v1/traces`` in its
    OTLP form. Returns ``doc``."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ErrorBody.model_json_schema() | {"title": "Error"}
    schemas["OtlpStatus"] = _OTLP_STATUS
    schemas.pop("ErrorBody", None)
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if path == OTLP_HTTP_PATH:
                _document_otlp(operation)
                continue
            for response in responses.values():
                for media in response.get("content", {}).values():
                    if media.get("schema", {}).get("$ref") == "#/components/schemas/ErrorBody":
                        media["schema"] = {"$ref": "#/components/schemas/Error"}
            responses.setdefault("422", {"description": "Validation Error", "content": _error_content("HTTPValidationError")})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": DESCRIPTIONS[400], "content": _error_content("Error")})
            responses.setdefault("503", {
                "description": DESCRIPTIONS[503], "content": _error_content("Error"),
                "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
            })  # fmt: skip
    if "HTTPValidationError" not in schemas:  # FastAPI adds it only when some operation validates
        from fastapi.openapi.utils import validation_error_definition, validation_error_response_definition

        schemas["ValidationError"] = validation_error_definition
        schemas["HTTPValidationError"] = validation_error_response_definition
    return doc


def install_errors(app: FastAPI) -> None:
    """Give ``app`` the error shape: the handler turning a route's own ``HTTPException(422, "...")``
    into the validation shape, FastAPI's 422 with the parameter grammars told in words, the one answering an unhandled exception without its text, and :func:`document_errors` on its OpenAPI document (before the
    authentication part: :func:`chainotel_analyzer.security.openapi.document_security`)."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi
