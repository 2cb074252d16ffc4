"""Client instrumentation for the ``websockets`` library's asyncio API (``websockets >= 13``).

There is no upstream OpenTelemetry instrumentation for it; this one follows the contrib style
(``BaseInstrumentor``, ``wrapt``) and is registered as the ``opentelemetry_instrumentor`` entry
point ``websockets``, so ``opentelemetry-instrument`` loads it (and
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=websockets`` leaves it out). Spans, all of kind
``CLIENT``, follow the per-message model of the WebSocket chains (docs/distro.md) — none lives as
long as the connection:

- ``websocket connect``: one per opening handshake (each redirect its own), from sending the
  upgrade request to the server's response. The handshake request carries what the global
  propagator writes — ``traceparent``, ``baggage`` and, with the chainotel distro, ``X-Chain-ID``
  — so the server's connection span is its child. A header the caller set itself is kept.
- ``websocket send``: one per ``ClientConnection.send`` (a message, or a fragmented message from
  an iterable).
- ``websocket receive``: one per ``ClientConnection.recv`` — also each message of
  ``async for message in connection`` — from the call until a message is there (as the ASGI
  instrumentation's receive spans: for request/reply traffic that is the peer's answer time).

Message spans are children of the span current where ``send``/``recv`` is called; where there is
none (a background consumer task), of the connect span's context (with its baggage), so they stay
in the connection's trace and chain.

Attributes: ``server.address``, ``server.port``, ``url.scheme``, ``url.full`` (no user info,
query values replaced by ``REDACTED``), ``network.protocol.name=websocket``; on connect
``http.request.method=GET`` and ``http.response.status_code``; on messages
``websocket.message.type`` (``text``/``binary``, when the message is ``str``/``bytes``).

Errors: an exception of ``websockets`` is recorded on its span (status ERROR, ``error.type``)
and re-raised unchanged; a normal close (``ConnectionClosedOK``) and cancellation end the span
without error. A failure of the instrumentation itself is logged at debug level and the call
runs untraced — it never raises into the application.

Not covered: the threading client (``websockets.sync``; its handshake still carries the caller's
context, added where the protocol layer both clients share sends the request), ``recv_streaming``,
the legacy API.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Collection
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.propagators.textmap import Setter
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["WebsocketsInstrumentor"]

_logger = logging.getLogger(__name__)
_INSTRUMENTS = ("websockets >= 13.0",)
_CONNECTION = "websockets.asyncio.client"
_PROTOCOL = "websockets.client"
_REDACTED = "REDACTED"
_PATCHED: list[tuple[type, str, bool]] = []
"""(class, attribute, whether the class defined it itself) of each wrapped method."""


class _HeaderSetter(Setter):
    """Writes a header into a ``websockets.datastructures.Headers`` unless the caller set it."""

    def set(self, carrier, key: str, value: str) -> None:
        if key not in carrier:
            carrier[key] = value


_SETTER = _HeaderSetter()


def _url_full(uri) -> str:
    """``ws[s]://host:port/path?name=REDACTED`` of a ``WebSocketURI`` (no user info)."""
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    url = f"{'wss' if uri.secure else 'ws'}://{host}:{uri.port}{uri.path or '/'}"
    if uri.query:
        parts = (f"{part.split('=', 1)[0]}={_REDACTED}" if "=" in part else part for part in uri.query.split("&"))
        url += "?" + "&".join(parts)
    return url


def _uri_attributes(uri) -> dict[str, Any]:
    return {
        "server.address": uri.host,
        "server.port": uri.port,
        "url.scheme": "wss" if uri.secure else "ws",
        "url.full": _url_full(uri),
        "network.protocol.name": "websocket",
    }


def _message_type(message) -> str | None:
    if isinstance(message, str):
        return "text"
    if isinstance(message, (bytes, bytearray, memoryview)):
        return "binary"
    return None


def _safely(what: str, fn, *args) -> Any:
    """``fn(*args)``; an exception is logged at debug level and ``None`` returned."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - the instrumentation must never break the application
        _logger.debug("chainotel websockets instrumentation: %s failed", what, exc_info=True)
        return None


class _Connections:
    """Per client connection (weakly held): the attributes of its spans and the context its
    connect span ran in (the parent of message spans that have no span of their own)."""

    def __init__(self) -> None:
        self._by_connection: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def remember(self, connection, attributes: dict[str, Any], connected: context.Context) -> None:
        self._by_connection[connection] = (attributes, connected)

    def get(self, connection) -> tuple[dict[str, Any], context.Context | None]:
        found = self._by_connection.get(connection)
        if found is not None:
            return found
        return _uri_attributes(connection.protocol.uri), None


def _record_error(span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute("error.type", type(exc).__qualname__)
    response = getattr(exc, "response", None)  # InvalidStatus carries the server's response
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)


def _handshake_wrapper(tracer, connections: _Connections):
    async def handshake(wrapped, instance, args, kwargs):
        try:
            attributes = _uri_attributes(instance.protocol.uri)
            span = tracer.start_span("websocket connect", kind=SpanKind.CLIENT,
                                     attributes={**attributes, "http.request.method": "GET"})
            token = context.attach(trace.set_span_in_context(span))
        except Exception:  # noqa: BLE001
            _logger.debug("chainotel websockets instrumentation: connect span failed", exc_info=True)
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                _safely("recording a handshake error", _record_error, span, exc)
            raise
        else:
            _safely("recording the handshake", _connected, span, instance, attributes, connections)
            return result
        finally:
            _safely("detaching the context", context.detach, token)
            _safely("ending the connect span", span.end)

    return handshake


def _connected(span, connection, attributes: dict[str, Any], connections: _Connections) -> None:
    response = getattr(connection, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", int(status))
    connections.remember(connection, attributes, context.get_current())


def _inject(wrapped, instance, args, kwargs):
    """``ClientProtocol.send_request(request)`` sends the handshake request, with the caller's
    headers already in it: add the propagation headers it does not have."""
    request = args[0] if args else kwargs.get("request")
    _safely("injecting the context", propagate.inject, getattr(request, "headers", None), None, _SETTER)
    return wrapped(*args, **kwargs)


def _message_wrapper(tracer, connections: _Connections, direction: str, closed_ok: type[BaseException]):
    name = f"websocket {direction}"

    async def message(wrapped, instance, args, kwargs):
        try:
            attributes, connected = connections.get(instance)
            parent = None if trace.get_current_span().get_span_context().is_valid else connected
            span = tracer.start_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attributes)
            if direction == "send" and args:
                kind = _message_type(args[0])
                if kind:
                    span.set_attribute("websocket.message.type", kind)
        except Exception:  # noqa: BLE001
            _logger.debug("chainotel websockets instrumentation: %s span failed", direction, exc_info=True)
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            if not isinstance(exc, (asyncio.CancelledError, closed_ok)):
                _safely(f"recording a {direction} error", _record_error, span, exc)
            raise
        else:
            if direction == "receive":
                kind = _message_type(result)
                if kind:
                    _safely("recording the message type", span.set_attribute, "websocket.message.type", kind)
            return result
        finally:
            _safely(f"ending the {direction} span", span.end)

    return message


class WebsocketsInstrumentor(BaseInstrumentor):
    """Instruments the ``websockets`` asyncio client (see the module docstring for the spans).

    ``instrument(tracer_provider=...)`` as every ``BaseInstrumentor``; ``uninstrument()`` restores
    the library's methods.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs) -> None:
        import wrapt  # noqa: PLC0415
        from websockets.asyncio.client import ClientConnection  # noqa: PLC0415
        from websockets.client import ClientProtocol  # noqa: PLC0415
        from websockets.exceptions import ConnectionClosedOK  # noqa: PLC0415

        tracer = trace.get_tracer(__name__, tracer_provider=kwargs.get("tracer_provider"),
                                  schema_url="https://opentelemetry.io/schemas/1.44.0")
        connections = _Connections()
        wrappers = (
            (ClientProtocol, "send_request", _inject),
            (ClientConnection, "handshake", _handshake_wrapper(tracer, connections)),
            (ClientConnection, "send", _message_wrapper(tracer, connections, "send", ConnectionClosedOK)),
            (ClientConnection, "recv", _message_wrapper(tracer, connections, "receive", ConnectionClosedOK)),
        )
        patched = []
        for cls, attribute, wrapper in wrappers:
            own = attribute in vars(cls)  # send/recv are inherited from websockets' Connection
            wrapt.wrap_function_wrapper(cls, attribute, wrapper)
            patched.append((cls, attribute, own))
        _PATCHED[:] = patched

    def _uninstrument(self, **kwargs) -> None:
        for cls, attribute, own in _PATCHED:
            current = vars(cls).get(attribute)
            original = getattr(current, "__wrapped__", None)
            if original is None:
                continue
            if own:
                setattr(cls, attribute, original)
            else:
                delattr(cls, attribute)
        _PATCHED.clear()
