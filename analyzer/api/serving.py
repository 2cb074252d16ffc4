"""The HTTP server: uvicorn with read deadlines and a connection cap, and an in-flight request limit
that answers 503 with ``Retry-After``.

uvicorn (h11) bounds header size but not the time a client may take to send them, nor its body:
a client that opens a connection and trickles a partial request holds it forever, and uvicorn's
``limit_concurrency`` counts such idle connections, answering every other caller 503 (without
``Retry-After``). Here instead:

- :func:`guarded_protocol` — a ``uvicorn.protocols.http.h11_impl.H11Protocol`` whose connections
  must deliver a request's headers within ``http_header_timeout_s`` of starting it (or of
  connecting) and its body within ``http_body_timeout_s`` of the headers; past a deadline a client
  still sending headers gets ``408`` and is disconnected, one still sending a body is disconnected
  (the handler sees the client gone). More than ``http_max_connections`` open connections → new
  ones are closed at once. Idle keep-alive connections are closed by uvicorn's
  ``timeout_keep_alive``.
- :class:`ConcurrencyLimit` — at most ``http_max_concurrency`` requests in progress (``/health``
  excepted, so probes answer under load), and at most ``http_max_body_bytes`` of their bodies
  (each counted by its ``Content-Length`` from the start, since a body is held whole until it is
  decoded; without one, by what arrived): beyond, ``503`` + ``Retry-After``, before the body is
  read. Slow uploads are bounded in bytes while they wait for their body deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from chainotel_analyzer.security import tls
from chainotel_analyzer.settings import AnalyzerSettings

log = logging.getLogger(__name__)

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 37\r\nconnection: close\r\n\r\nrequest headers not received in time\n"


def guarded_protocol(header_timeout_s: float, body_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """An ``H11Protocol`` subclass enforcing the deadlines and the cap of the module docstring;
    pass it as uvicorn's ``http=``."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase = ""

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning("%d HTTP connections open already: closing a new one", max_connections)
                transport.close()
                return
            self._arm("headers", header_timeout_s)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._track()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._track()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _track(self) -> None:
            """Arm the deadline of the phase the client is in (h11's view of its side)."""
            if self.transport is None or self.transport.is_closing():
                return self._disarm()
            state = self.conn.their_state
            if state is h11.IDLE:
                # between requests: idle waits are uvicorn's keep-alive timeout; data of a new
                # request that is not complete yet starts the header deadline
                if self.conn.trailing_data[0]:
                    if self._phase != "headers":
                        self._arm("headers", header_timeout_s)
                elif self._phase:
                    self._disarm()
            elif state is h11.SEND_BODY:
                if self._phase != "body":
                    self._arm("body", body_timeout_s)
            else:  # DONE, MUST_CLOSE, CLOSED, ERROR: nothing more to read for this request
                self._disarm()

        def _arm(self, phase: str, seconds: float) -> None:
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expired, phase)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._phase = None, ""

        def _expired(self, phase: str) -> None:
            self._deadline, self._phase = None, ""
            if self.transport.is_closing():
                return
            if phase == "headers" and (self.cycle is None or self.cycle.response_complete):
                self.transport.write(_REQUEST_TIMEOUT)
            log.info("closing an HTTP connection from %s: request %s not received in time", self.client, phase)
            self.transport.close()

    return GuardedH11Protocol


class ConcurrencyLimit:
    """ASGI middleware: at most ``limit`` HTTP requests in progress (``exempt`` paths not counted)
    and at most ``max_body_bytes`` of their bodies (announced by ``Content-Length``, else received so
    far; a lone request always passes, its size is ``max_request_bytes``' business); beyond, ``503``
    with ``Retry-After: retry_after_s`` and ``{"detail": ...}``. A body without ``Content-Length``
    that grows past the bytes left is cut (the handler sees the client gone)."""

    def __init__(self, app, limit: int, retry_after_s: int, max_body_bytes: int | None = None,
                 exempt: frozenset[str] = frozenset({"/health"})):  # fmt: skip
        self.app = app
        self.limit = limit
        self.max_body_bytes = max_body_bytes
        self.retry_after = str(retry_after_s).encode()
        self.exempt = exempt
        self.active = 0
        self.body_bytes = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.exempt:
            return await self.app(scope, receive, send)
        if self.active >= self.limit:
            return await self._refuse(send, f"{self.limit} requests in progress already; retry later")
        declared = _content_length(scope)
        if self.max_body_bytes is not None and self.body_bytes and self.body_bytes + declared > self.max_body_bytes:
            return await self._refuse(send, f"{self.body_bytes} bytes of request bodies in progress already; retry later")
        counted = declared
        self.active += 1
        self.body_bytes += declared

        async def counting_receive():
            nonlocal counted
            message = await receive()
            if declared == 0 and message["type"] == "http.request" and self.max_body_bytes is not None:
                size = len(message.get("body", b""))
                if self.body_bytes + size > self.max_body_bytes and self.body_bytes > counted:
                    return {"type": "http.disconnect"}
                counted += size
                self.body_bytes += size
            return message

        try:
            await self.app(scope, counting_receive, send)
        finally:
            self.active -= 1
            self.body_bytes -= counted

    async def _refuse(self, send, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", self.retry_after)]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def run(app, settings: AnalyzerSettings, log_level: str) -> None:
    """Serve ``app`` on ``settings.host:settings.http_port`` until SIGTERM/SIGINT (one worker: the
    process owns the store), over TLS when configured (:mod:`chainotel_analyzer.security.tls`)."""
    import uvicorn

    protocol = guarded_protocol(settings.http_header_timeout_s, settings.http_body_timeout_s,
                                settings.http_max_connections)  # fmt: skip
    uvicorn.run(
        app, host=settings.host, port=settings.http_port, workers=1, log_level=log_level.lower(), access_log=False,
        http=protocol, timeout_keep_alive=settings.http_keep_alive_timeout_s, **tls.uvicorn_options(settings),
    )  # fmt: skip
