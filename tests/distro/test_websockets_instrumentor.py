"""chainotel's websockets client instrumentor with the real SDK, a real ``websockets`` server and
client over 127.0.0.1 in one event loop: span shapes, the parent of message spans without a
current span, the caller's own headers, a broken tracer, and ``uninstrument``. (Under
``opentelemetry-instrument`` against a FastAPI server: ``test_integrations.py``.)"""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosedOK

from chainotel.instrumentation.websockets_client import WebsocketsInstrumentor


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    WebsocketsInstrumentor().instrument(tracer_provider=provider)
    yield exporter, provider
    WebsocketsInstrumentor().uninstrument()


async def _echo(ws):
    """Replies to each message with the handshake's traceparent header (or '-')."""
    async for message in ws:
        await ws.send(f"{message}|{ws.request.headers.get('traceparent', '-')}|{len(ws.request.headers.get_all('traceparent'))}")


def _run(client, handler=_echo):
    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            return await client(f"ws://127.0.0.1:{port}/stream")

    return asyncio.run(main())


def test_spans_per_connect_and_message_with_the_context_on_the_handshake(exporter):
    memory, provider = exporter
    tracer = provider.get_tracer("test")

    async def client(url):
        with tracer.start_as_current_span("request") as request:
            async with connect(url) as ws:
                await ws.send("a")
                reply = await ws.recv()
            return request.get_span_context(), reply

    request, reply = _run(client)
    spans = {s.name: s for s in memory.get_finished_spans()}
    assert set(spans) == {"request", "websocket connect", "websocket send", "websocket receive"}
    connect_span = spans["websocket connect"]
    _, traceparent, count = reply.split("|")
    assert traceparent.startswith(f"00-{request.trace_id:032x}-{connect_span.context.span_id:016x}-") and count == "1"
    for name in ("websocket connect", "websocket send", "websocket receive"):
        span = spans[name]
        assert span.kind == trace.SpanKind.CLIENT and span.parent.span_id == request.span_id, name
        assert span.attributes["server.address"] == "127.0.0.1" and span.attributes["url.full"].endswith("/stream")
    assert connect_span.attributes["http.response.status_code"] == 101
    assert spans["websocket receive"].attributes["websocket.message.type"] == "text"
    # no span lives for the connection: connect ends before the first message
    assert connect_span.end_time <= spans["websocket send"].start_time


def test_messages_without_a_current_span_stay_in_the_connections_trace(exporter):
    memory, _ = exporter

    async def client(url):
        ws = await connect(url)
        async def consume():  # a background task that has no span of its own
            await ws.send("b")
            return await ws.recv()
        reply = await asyncio.create_task(consume())
        await ws.close()
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        return reply

    _run(client)
    spans = memory.get_finished_spans()
    (connect_span,) = [s for s in spans if s.name == "websocket connect"]
    assert connect_span.parent is None
    messages = [s for s in spans if s.name != "websocket connect"]
    assert len(messages) == 3  # send, receive, and the receive that met the close
    assert {s.parent.span_id for s in messages} == {connect_span.context.span_id}
    assert all(s.status.status_code != trace.StatusCode.ERROR for s in messages)  # a normal close is no error


def test_a_traceparent_the_caller_sets_is_kept(exporter):
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def client(url):
        async with connect(url, additional_headers={"traceparent": mine}) as ws:
            await ws.send("c")
            return await ws.recv()

    _, traceparent, count = _run(client).split("|")
    assert traceparent == mine and count == "1"


def test_a_failing_tracer_never_breaks_the_client():
    class Broken(trace.NoOpTracerProvider):
        def get_tracer(self, *args, **kwargs):
            tracer = super().get_tracer(*args, **kwargs)
            def start_span(*_a, **_k):
                raise RuntimeError("tracer broken")
            tracer.start_span = start_span
            return tracer

    WebsocketsInstrumentor().instrument(tracer_provider=Broken())
    try:
        async def client(url):
            async with connect(url) as ws:
                await ws.send("d")
                return await ws.recv()

        assert _run(client).startswith("d|")
    finally:
        WebsocketsInstrumentor().uninstrument()


def test_uninstrument_restores_the_library():
    WebsocketsInstrumentor().instrument(tracer_provider=TracerProvider())
    assert hasattr(ClientConnection.send, "__wrapped__")
    WebsocketsInstrumentor().uninstrument()
    assert "send" not in vars(ClientConnection) and "recv" not in vars(ClientConnection)
    assert not hasattr(ClientConnection.handshake, "__wrapped__")
