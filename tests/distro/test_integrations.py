"""A service's whole stack under ``opentelemetry-instrument`` with the chainotel distro: every span
of a chain's trace — database (SQLAlchemy on SQLite and on a real PostgreSQL), cache (a real
Redis), outgoing HTTP (``requests``) and model calls (the OpenAI client, instrumented by
``opentelemetry-instrumentation-openai-v2``, against a local OpenAI-compatible server) — carries
the chain attributes; the ``aiohttp`` client, whose instrumentation is not published for the
pinned OpenTelemetry version, is named at start-up as skipped and why. Spans are exported over
OTLP/HTTP to the test's sink."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from importlib.metadata import version

import httpx
import pytest

from chainotel import attributes as attr
from tests.distro import servers
from tests.distro.services import otel_env

SERVER, CLIENT = 2, 3  # OTLP SpanKind
CHAIN_ATTRS = (attr.CHAIN_ID, attr.CHAIN_CATEGORY, attr.CHAIN_NAME, attr.CHAIN_INSTANCE_ID)


@pytest.fixture(scope="module")
def backing(tmp_path_factory):
    """PostgreSQL and Redis servers: name → URL, or the skip reason when one is not installed
    (outside CI; in CI a missing server fails)."""
    found: dict[str, object] = {}
    with ExitStack() as stack:
        for name, server in (("postgres", servers.postgres), ("redis", servers.redis)):
            try:
                found[name] = stack.enter_context(server(tmp_path_factory.mktemp(name)))
            except pytest.skip.Exception as exc:
                found[name] = exc
        yield found


def need(backing, name: str) -> str:
    value = backing[name]
    if isinstance(value, BaseException):
        pytest.skip(str(value))
    return value


@pytest.fixture(scope="module")
def stack(sink, start, backing, tmp_path_factory):
    model = start("model_server", {}, instrument=False)
    backend = start("backend", otel_env(sink, "test-backend"))
    env = otel_env(
        sink, "test-gateway",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="",
        BACKEND_URL=backend.url,
        STACK_SQLITE_PATH=str(tmp_path_factory.mktemp("sqlite") / "orders.db"),
        OPENAI_BASE_URL=f"{model.url}/v1",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="false",
    )
    for name, variable in (("postgres", "STACK_POSTGRES_URL"), ("redis", "STACK_REDIS_URL")):
        if not isinstance(backing[name], BaseException):
            env[variable] = backing[name]
    return start("stack", env)


def chain_trace(sink, service, path: str, predicate) -> list[dict]:
    """GET ``path`` with a new X-Chain-ID; the trace's spans once ``predicate(spans)`` holds."""
    chain = uuid.uuid4()
    response = httpx.get(f"{service.url}{path}", headers={"X-Chain-ID": str(chain)}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["x-chain-id"] == str(chain)
    return sink.wait_trace(chain.int, predicate), chain


def assert_all_tagged(spans, chain: uuid.UUID, chain_id: str = "B3"):
    assert spans
    for span in spans:
        values = span["attributes"]
        assert values.get(attr.CHAIN_ID) == chain_id, span
        assert values.get(attr.CHAIN_INSTANCE_ID) == str(chain), span
        assert all(name in values for name in CHAIN_ATTRS), span


def db_spans(spans, system: str) -> list[dict]:
    return [s for s in spans if s["kind"] == CLIENT
            and system in (s["attributes"].get("db.system"), s["attributes"].get("db.system.name"))]


def test_sqlalchemy_on_sqlite(stack, sink):
    spans, chain = chain_trace(sink, stack, "/api/v1/trading/sqlite", lambda sp: len(db_spans(sp, "sqlite")) >= 3)
    assert len(db_spans(spans, "sqlite")) >= 3, spans  # CREATE, INSERT, SELECT
    assert_all_tagged(spans, chain)


def test_sqlalchemy_on_postgresql(stack, sink, backing):
    need(backing, "postgres")
    spans, chain = chain_trace(sink, stack, "/api/v1/trading/postgres",
                               lambda sp: len(db_spans(sp, "postgresql")) >= 3)
    statements = db_spans(spans, "postgresql")
    assert len(statements) >= 3, spans
    assert any(s["attributes"].get("server.address", s["attributes"].get("net.peer.name")) == "127.0.0.1"
               for s in statements), statements
    assert_all_tagged(spans, chain)


def test_redis(stack, sink, backing):
    need(backing, "redis")
    spans, chain = chain_trace(sink, stack, "/api/v1/trading/redis", lambda sp: len(db_spans(sp, "redis")) >= 2)
    commands = db_spans(spans, "redis")
    assert {s["name"] for s in commands} >= {"SET", "GET"}, commands
    assert_all_tagged(spans, chain)


def test_requests_to_a_downstream_service(stack, sink):
    def client(sp):
        return [s for s in sp if s["kind"] == CLIENT and s["service"] == "test-gateway"
                and ("http.request.method" in s["attributes"] or "http.method" in s["attributes"])]

    def done(sp):
        return bool(client(sp)) and any(s["kind"] == SERVER and s["service"] == "test-backend" for s in sp)

    spans, chain = chain_trace(sink, stack, "/api/v1/trading/requests", done)
    assert done(spans), spans
    assert_all_tagged(spans, chain)  # the backend learned B3 from the baggage requests carried


def test_openai_client_model_call_is_a_tagged_d_chain_span(stack, sink):
    def model_call(sp):
        return [s for s in sp if "gen_ai.request.model" in s["attributes"]]

    spans, chain = chain_trace(sink, stack, "/api/v1/ai/decision", lambda sp: bool(model_call(sp)))
    (call,) = model_call(spans)
    assert call["kind"] == CLIENT
    assert call["attributes"]["gen_ai.request.model"] == "test-model"
    assert call["attributes"].get("gen_ai.usage.input_tokens") == 7
    assert call["attributes"].get("gen_ai.usage.output_tokens") == 1
    assert_all_tagged(spans, chain, "D2")
    assert {s["attributes"][attr.CHAIN_CATEGORY] for s in spans} == {"ai_ml_processing"}


def test_aiohttp_client_without_its_instrumentation_is_named_at_start_up_and_why(stack, sink):
    """No opentelemetry-instrumentation-aiohttp-client is published for the pinned
    opentelemetry-instrumentation (docs/distro.md): the start-up line says so, and an aiohttp call
    indeed leaves without trace context — the hop the line warns about."""
    (line,) = [l for l in stack.log().splitlines() if l.startswith("chainotel: instrumentations loaded:")]
    skipped = line.split("; skipped: ", 1)[1]
    wanted = f"opentelemetry-instrumentation-aiohttp-client=={version('opentelemetry-instrumentation')}"
    assert f"aiohttp-client (aiohttp {version('aiohttp')} is installed, its instrumentation {wanted} is not)" in skipped, line
    assert "pydantic" not in skipped  # the distro's own dependencies are not the service's libraries

    chain = uuid.uuid4()
    response = httpx.get(f"{stack.url}/api/v1/trading/aiohttp", headers={"X-Chain-ID": str(chain)}, timeout=30)
    assert response.status_code == 200, response.text
    received = response.json()["backend"]["headers"]
    assert "traceparent" not in received and "x-chain-id" not in received, received
    spans = sink.wait_trace(chain.int, lambda sp: any(s["kind"] == SERVER for s in sp))
    assert not [s for s in spans if s["kind"] == CLIENT], spans  # no span for the aiohttp call
    assert_all_tagged(spans, chain)  # the service's own spans still carry the chain


def _ws_spans(spans, name):
    return [s for s in spans if s["name"] == name and s["service"] == "test-gateway"]


def test_websockets_client_carries_the_chain_on_the_handshake_with_spans_per_connect_and_message(stack, sink):
    """chainotel's own instrumentation of the websockets client (entry point ``websockets``):
    the handshake carries traceparent, baggage and X-Chain-ID; one CLIENT span per connect and
    per message, the server's connection span under the connect span, all tagged."""
    (line,) = [l for l in stack.log().splitlines() if l.startswith("chainotel: instrumentations loaded:")]
    assert "websockets" in line.split("; skipped: ")[0].split(": ", 1)[1].split(", "), line

    def complete(sp):
        return (len(_ws_spans(sp, "websocket connect")) == 1 and len(_ws_spans(sp, "websocket send")) == 2
                and len(_ws_spans(sp, "websocket receive")) == 2
                and any(s["kind"] == SERVER and s["service"] == "test-backend" for s in sp))

    chain = uuid.uuid4()
    response = httpx.get(f"{stack.url}/api/v1/trading/websocket", headers={"X-Chain-ID": str(chain)}, timeout=30)
    assert response.status_code == 200, response.text
    replies = response.json()["replies"]
    assert [r["symbol"] for r in replies] == ["ACME", "INIT"]
    handshake = replies[0]["handshake"]
    assert handshake["x-chain-id"] == str(chain)
    assert handshake["traceparent"].split("-")[1] == chain.hex
    assert "chain.id=B3" in handshake["baggage"]

    spans = sink.wait_trace(chain.int, complete)
    assert complete(spans), [(s["service"], s["name"]) for s in spans]
    (connect,) = _ws_spans(spans, "websocket connect")
    assert connect["kind"] == CLIENT
    assert connect["attributes"]["http.response.status_code"] == 101
    assert connect["attributes"]["server.address"] == "127.0.0.1"
    assert connect["attributes"]["url.full"].endswith("/ws/quotes?token=REDACTED")  # no secret in the span
    assert int(handshake["traceparent"].split("-")[2], 16) == connect["span_id"]
    (server,) = [s for s in spans if s["kind"] == SERVER and s["service"] == "test-backend"]
    assert server["parent_span_id"] == connect["span_id"]  # the connection hangs under the connect span
    messages = _ws_spans(spans, "websocket send") + _ws_spans(spans, "websocket receive")
    assert {m["kind"] for m in messages} == {CLIENT}
    assert {m["attributes"].get("websocket.message.type") for m in messages} == {"text"}
    assert {m["parent_span_id"] for m in messages} == {connect["parent_span_id"]}  # the request's span
    assert_all_tagged(spans, chain)  # gateway and backend, connection and message spans


def test_websockets_client_failure_reaches_the_app_unchanged_and_is_recorded(stack, sink):
    chain = uuid.uuid4()
    response = httpx.get(f"{stack.url}/api/v1/trading/websocket-refused", headers={"X-Chain-ID": str(chain)}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"error": "InvalidStatus", "status": 403}  # the library's exception, as without tracing
    spans = sink.wait_trace(chain.int, lambda sp: bool(_ws_spans(sp, "websocket connect")))
    (connect,) = _ws_spans(spans, "websocket connect")
    assert connect["status"] == 2  # ERROR
    assert connect["attributes"]["http.response.status_code"] == 403
    assert connect["attributes"]["error.type"] == "InvalidStatus"
    assert_all_tagged(spans, chain)
