"""OTLP/HTTP receiver: ``POST /v1/traces`` (OTLP specification, "OTLP/HTTP").

- ``Content-Type: application/x-protobuf`` or ``application/json`` (else 415); the response uses the
  request's content type. ``Content-Encoding: gzip`` or none (else 415).
- Body limits: ``max_request_bytes`` on the bytes sent and ``max_decompressed_bytes`` after gzip → 413.
- Malformed body → 400 with a ``google.rpc.Status`` naming the reason.
- Spans with invalid IDs or times → 200 with ``partial_success`` (``rejected_spans``, ``error_message``).
- A request with more spans than the write queue holds, or too big once decoded (resource attributes
  copied per span, ``max_decoded_request_bytes``) → 413, not retryable.
- Write queue full or decoder backlog full → 503 with ``Retry-After`` before the body is read;
  ClickHouse down → 503 with ``Retry-After``; success is
  answered only after the request's spans are committed (see :mod:`chainotel_analyzer.store.writer`).
- Decoding runs in the decoder processes (:class:`chainotel_analyzer.ingest.receive.DecodePool`).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from google.rpc import status_pb2

from chainotel_analyzer.ingest.otlp_json import InvalidRequest, response_json
from chainotel_analyzer.ingest.receive import ALREADY_STORED_HEADER, BodyTooLarge, DecoderUnavailable, ExportResult, Intake
from chainotel_analyzer.store.interfaces import (
    STORE_UNAVAILABLE_REASON, RequestTooLarge, StoreUnavailable, WriteQueueFull,
)

router = APIRouter(tags=["otlp"])


def get_intake(request: Request) -> Intake:
    """The receiver's :class:`~chainotel_analyzer.ingest.receive.Intake`, set by the app factory
    (:func:`chainotel_analyzer.api.app.create_app`)."""
    return request.app.state.intake

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# google.rpc.Code numbers used in error bodies
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _UNAVAILABLE = 3, 8, 14


def _error(status: int, code: int, message: str, is_json: bool, headers: dict | None = None) -> Response:
    if is_json:
        body = json.dumps({"code": code, "message": message}).encode()
    else:
        body = status_pb2.Status(code=code, message=message).SerializeToString()
    return Response(body, status_code=status, media_type=JSON if is_json else PROTOBUF, headers=headers)


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export",
    responses={400: {}, 413: {}, 415: {}, 503: {}},
    openapi_extra={"requestBody": {"content": {PROTOBUF: {}, JSON: {}}, "required": True}},
)
async def export_traces(request: Request, intake: Intake = Depends(get_intake)) -> Response:
    """Store the spans of an OTLP ``ExportTraceServiceRequest`` (protobuf or JSON, optionally gzip)."""
    settings = intake.settings
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in (PROTOBUF, JSON):
        return Response(
            f"unsupported Content-Type {ctype or '(none)'!r}: use {PROTOBUF} or {JSON}",
            status_code=415,
            media_type="text/plain",
        )
    is_json = ctype == JSON
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        return _error(415, _INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}: use gzip or none", is_json)

    retry_after = {"Retry-After": str(settings.retry_after_s)}
    overloaded = intake.sink.full() or intake.decoders.busy()
    if overloaded:  # answered before the body is read and decoded
        return _error(503, _UNAVAILABLE, f"{overloaded}; retry later", is_json, retry_after)
    with intake.sink.incoming():  # until queued: the writer waits for these spans
        queued = await _read_decode_submit(request, intake, is_json, encoding, retry_after)
    if isinstance(queued, Response):
        return queued
    future, decoded = queued
    headers = {}
    if future is not None:
        try:
            stored_now = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), settings.commit_timeout_s)
        except StoreUnavailable:
            return _error(503, _UNAVAILABLE, f"{STORE_UNAVAILABLE_REASON}; retry later", is_json, retry_after)
        except asyncio.TimeoutError:
            return _error(503, _UNAVAILABLE, "spans not committed in time; retry later", is_json, retry_after)
        if stored_now is False:
            headers[ALREADY_STORED_HEADER] = str(decoded.count)
    result = ExportResult(decoded.rejected, decoded.error_message).response()
    if is_json:
        return Response(response_json(result), media_type=JSON, headers=headers)
    return Response(result.SerializeToString(), media_type=PROTOBUF, headers=headers)


async def _read_decode_submit(request: Request, intake: Intake, is_json: bool, encoding: str, retry_after: dict):
    """Read the body (capped), decode it in the decoder pool, queue it: (commit future | None, decoded)
    or the error Response."""
    settings = intake.settings
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return _error(413, _RESOURCE_EXHAUSTED, f"body of {declared} bytes exceeds {limit} bytes", is_json)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _error(413, _RESOURCE_EXHAUSTED, f"body exceeds {limit} bytes", is_json)
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or cut for sending its body too slowly (api.serving)
        return Response(status_code=400)
    body = b"".join(chunks)
    try:
        decoding = intake.decoders.submit(body, encoding == "gzip", is_json, settings.max_decompressed_bytes)
        del body, chunks  # the decoder holds its own copy
        payload = await asyncio.wrap_future(decoding)
    except BodyTooLarge as exc:
        return _error(413, _RESOURCE_EXHAUSTED, str(exc), is_json)
    except InvalidRequest as exc:
        return _error(400, _INVALID_ARGUMENT, str(exc), is_json)
    except DecoderUnavailable as exc:
        return _error(503, _UNAVAILABLE, str(exc), is_json, retry_after)
    try:
        return intake.sink.submit(payload.digest, payload.spans), payload.spans
    except RequestTooLarge as exc:
        return _error(413, _RESOURCE_EXHAUSTED, str(exc), is_json)
    except StoreUnavailable:
        return _error(503, _UNAVAILABLE, f"{STORE_UNAVAILABLE_REASON}; retry later", is_json, retry_after)
    except WriteQueueFull as exc:
        return _error(503, _UNAVAILABLE, f"{exc}; retry later", is_json, retry_after)
