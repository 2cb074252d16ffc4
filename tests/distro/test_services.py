"""Real processes: gateway → backend (FastAPI + httpx) under ``opentelemetry-instrument uvicorn``
with the chainotel distro, exporting OTLP/HTTP to a sink; assertions on the exported spans."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from chainotel import attributes as attr
from chainotel.ids import format_instance_id, parse_instance_id
from tests.distro.otlp_sink import GrpcOtlpSink
from tests.distro.services import APPS, otel_env

SERVER = 2  # OTLP Span.SpanKind SPAN_KIND_SERVER
CHAIN_ATTRS = (attr.CHAIN_ID, attr.CHAIN_CATEGORY, attr.CHAIN_NAME, attr.CHAIN_INSTANCE_ID)


def both_services_done(spans):
    servers = {s["service"] for s in spans if s["kind"] == SERVER}
    return {"test-gateway", "test-backend"} <= servers and len(spans) >= 7


def server_span(spans, service="test-gateway"):
    found = [s for s in spans if s["kind"] == SERVER and s["service"] == service]
    assert len(found) == 1, spans
    return found[0]


def test_lone_chain_id_becomes_trace_id_and_root(pair, sink):
    gateway, _ = pair
    chain = uuid.uuid4()
    response = httpx.get(f"{gateway.url}/api/v1/trading/orders", headers={"X-Chain-ID": str(chain).upper()})
    assert response.status_code == 200
    assert response.headers["x-chain-id"] == str(chain)
    sent = response.json()["backend"]["headers"]
    assert sent["x-chain-id"] == str(chain)
    assert sent["traceparent"].split("-")[1] == chain.hex
    assert "chain.id=B3" in sent["baggage"]

    spans = sink.wait_trace(chain.int, both_services_done)
    assert both_services_done(spans), spans
    root = server_span(spans)
    assert root["parent_span_id"] == 0  # a root: no parent pointing at a span that does not exist
    ids = {s["span_id"] for s in spans}
    assert all(s["parent_span_id"] in ids for s in spans if s is not root)
    for s in spans:  # every span of both services carries the chain
        assert s["attributes"][attr.CHAIN_ID] == "B3", s
        assert s["attributes"][attr.CHAIN_CATEGORY] == "service_communication"
        assert s["attributes"][attr.CHAIN_NAME] == "Trading API request"
        assert s["attributes"][attr.CHAIN_INSTANCE_ID] == str(chain)


def test_dashless_hex_chain_id_accepted(pair, sink):
    gateway, _ = pair
    chain = uuid.uuid4()
    response = httpx.post(f"{gateway.url}/api/v1/trading/orders", headers={"X-Chain-ID": chain.hex.upper()})
    assert response.headers["x-chain-id"] == str(chain)
    spans = sink.wait_trace(chain.int, both_services_done)
    assert server_span(spans)["attributes"][attr.CHAIN_ID] == "B3"


def test_no_incoming_header_still_gets_response_header(pair, sink):
    gateway, _ = pair
    response = httpx.get(f"{gateway.url}/api/v1/trading/orders")
    trace_id = parse_instance_id(response.headers["x-chain-id"])
    spans = sink.wait_trace(trace_id, both_services_done)
    assert both_services_done(spans)
    assert server_span(spans)["attributes"][attr.CHAIN_INSTANCE_ID] == response.headers["x-chain-id"]


@pytest.mark.parametrize("path,status", [("/nowhere", 404), ("/boom", 500)])
def test_error_responses_carry_chain_id(pair, sink, path, status):
    gateway, _ = pair
    response = httpx.get(f"{gateway.url}{path}")
    assert response.status_code == status
    trace_id = parse_instance_id(response.headers["x-chain-id"])
    spans = sink.wait_trace(trace_id, lambda sp: any(s["kind"] == SERVER for s in sp))
    assert server_span(spans)["attributes"]["http.status_code"] == status

    chain = uuid.uuid4()
    response = httpx.get(f"{gateway.url}{path}", headers={"X-Chain-ID": str(chain)})
    assert response.status_code == status
    assert response.headers["x-chain-id"] == str(chain)


def test_traceparent_wins_and_conflict_is_recorded(pair, sink):
    gateway, _ = pair
    trace_id, parent_span = uuid.uuid4().int, 0x1122334455667788
    other = str(uuid.uuid4())
    response = httpx.get(
        f"{gateway.url}/api/v1/trading/orders",
        headers={"traceparent": f"00-{trace_id:032x}-{parent_span:016x}-01", "X-Chain-ID": other},
    )
    assert response.headers["x-chain-id"] == format_instance_id(trace_id)
    spans = sink.wait_trace(trace_id, both_services_done)
    root = server_span(spans)
    assert root["parent_span_id"] == parent_span
    assert root["attributes"][attr.CHAIN_INSTANCE_CONFLICT] == other
    assert root["attributes"][attr.CHAIN_ID] == "B3"
    assert not sink.trace(uuid.UUID(other).int)


def test_traceparent_and_same_chain_id_is_no_conflict(pair, sink):
    gateway, _ = pair
    chain = uuid.uuid4()
    httpx.get(f"{gateway.url}/plain", headers={"traceparent": f"00-{chain.hex}-{1:016x}-01", "X-Chain-ID": str(chain)})
    spans = sink.wait_trace(chain.int, lambda sp: any(s["kind"] == SERVER for s in sp))
    assert attr.CHAIN_INSTANCE_CONFLICT not in server_span(spans)["attributes"]


INVALID = [
    "not-a-chain-id",
    "z" * 32,
    "0" * 32,
    "00000000-0000-0000-0000-000000000000",
    "a" * 200,
    "0x" + "a" * 30,
    "3f2504e0_4f89_11d3_9a0c_0305e82c3301",
    "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
    "3f2504e04f8911d39a0c0305e82c330",  # 31 digits
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("value", INVALID + ["exotic-\xe9\xff-bytes"])
def test_invalid_chain_id_starts_new_trace_and_is_recorded(pair, sink, value):
    gateway, _ = pair
    header = value.encode("latin-1")
    response = httpx.get(f"{gateway.url}/api/v1/trading/orders", headers=[(b"X-Chain-ID", header)])
    assert response.status_code == 200
    trace_id = parse_instance_id(response.headers["x-chain-id"])
    spans = sink.wait_trace(trace_id, both_services_done)
    root = server_span(spans)
    assert root["parent_span_id"] == 0
    recorded = root["attributes"][attr.CHAIN_INSTANCE_INVALID]
    assert len(recorded) <= attr.INVALID_VALUE_MAX_CHARS
    if value.isascii():
        assert recorded == value[: attr.INVALID_VALUE_MAX_CHARS]
    assert root["attributes"][attr.CHAIN_ID] == "B3"  # served and tagged normally


def test_parent_chain_id_becomes_link(pair, sink):
    gateway, _ = pair
    chain, parent = uuid.uuid4(), uuid.uuid4()
    httpx.get(f"{gateway.url}/plain", headers={"X-Chain-ID": str(chain), "X-Parent-Chain-ID": parent.hex})
    spans = sink.wait_trace(chain.int, lambda sp: any(s["kind"] == SERVER for s in sp))
    root = server_span(spans)
    assert [link["trace_id"] for link in root["links"]] == [parent.int]
    assert root["links"][0]["attributes"][attr.CHAIN_PARENT_INSTANCE_ID] == str(parent)
    assert root["attributes"][attr.CHAIN_PARENT_INSTANCE_ID] == str(parent)


def test_concurrent_requests_keep_their_chain_ids(pair, sink):
    gateway, _ = pair
    chains = [uuid.uuid4() for _ in range(16)]

    async def run():
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(
                *(client.get(f"{gateway.url}/api/v1/trading/orders", headers={"X-Chain-ID": str(c)}) for c in chains)
            )

    responses = asyncio.run(run())
    assert [r.headers["x-chain-id"] for r in responses] == [str(c) for c in chains]
    assert [r.json()["backend"]["headers"]["x-chain-id"] for r in responses] == [str(c) for c in chains]
    for chain in chains:
        spans = sink.wait_trace(chain.int, both_services_done)
        assert server_span(spans)["parent_span_id"] == 0
        assert server_span(spans, "test-backend")["attributes"][attr.CHAIN_INSTANCE_ID] == str(chain)


def test_unmatched_trace_has_no_chain(pair, sink):
    gateway, _ = pair
    chain = uuid.uuid4()
    httpx.get(f"{gateway.url}/plain", headers={"X-Chain-ID": str(chain)})
    spans = sink.wait_trace(chain.int, lambda sp: len(sp) >= 3)
    assert spans and all(attr.CHAIN_ID not in s["attributes"] for s in spans), spans


def test_distro_defaults_in_the_process(pair):
    gateway, _ = pair
    info = httpx.get(f"{gateway.url}/debug/otel").json()
    assert info["propagators"] == ["TraceContextTextMapPropagator", "W3CBaggagePropagator", "XChainPropagator"]
    assert info["id_generator"] == "XChainIdGenerator"
    assert info["env"]["OTEL_TRACES_EXPORTER"] == "otlp"
    assert info["env"]["OTEL_METRICS_EXPORTER"] == "none"


def test_user_otel_values_are_not_overridden(sink, start):
    service = start(
        "gateway",
        otel_env(sink, "test-user-env", OTEL_PROPAGATORS="tracecontext", OTEL_METRICS_EXPORTER="console",
                 OTEL_PYTHON_ID_GENERATOR="random"),
    )
    info = httpx.get(f"{service.url}/debug/otel").json()
    assert info["propagators"] == ["TraceContextTextMapPropagator"]
    assert info["id_generator"] == "RandomIdGenerator"
    assert info["env"]["OTEL_PROPAGATORS"] == "tracecontext"
    assert info["env"]["OTEL_METRICS_EXPORTER"] == "console"
    response = httpx.get(f"{service.url}/plain")  # still traced and exported; header still written
    trace_id = parse_instance_id(response.headers["x-chain-id"])
    spans = sink.wait_trace(trace_id, lambda sp: any(s["kind"] == SERVER for s in sp))
    assert server_span(spans, "test-user-env")


def test_invalid_catalog_logs_one_error_and_runs_untagged(sink, start):
    bad = APPS / "bad_chains.yaml"
    service = start("gateway", otel_env(sink, "test-gateway", CHAINOTEL_CATALOG=str(bad)))
    chain = uuid.uuid4()
    response = httpx.get(f"{service.url}/plain", headers={"X-Chain-ID": str(chain)})
    assert response.status_code == 200
    assert response.headers["x-chain-id"] == str(chain)
    spans = sink.wait_trace(chain.int, lambda sp: any(s["kind"] == SERVER for s in sp))
    assert server_span(spans)["parent_span_id"] == 0
    assert all(attr.CHAIN_ID not in s["attributes"] for s in spans)
    log = service.log()
    assert log.count("invalid CHAINOTEL_CATALOG") == 1, log
    assert f"{bad}: chain B3 (chains[0]): field category:" in log


def test_every_worker_exports(sink, start):
    service = start("gateway", otel_env(sink, "test-workers"), workers=2)
    pids: dict[int, int] = {}
    for _ in range(200):  # bounded: stop as soon as both workers answered
        with httpx.Client() as client:  # a new connection each time
            response = client.get(f"{service.url}/plain")
        pids.setdefault(response.json()["pid"], parse_instance_id(response.headers["x-chain-id"]))
        if len(pids) == 2:
            break
    assert len(pids) == 2, "the kernel never routed a connection to the second worker"
    instances = set()
    for trace_id in pids.values():
        spans = sink.wait_trace(trace_id, lambda sp: any(s["kind"] == SERVER for s in sp))
        instances.add(server_span(spans, "test-workers")["instance"])
    assert len(instances) == 2


def test_readme_setup_exports_otlp_grpc_by_default(start):
    """The README's variables only (no OTEL_EXPORTER_OTLP_PROTOCOL): ``otlp`` means OTLP/gRPC."""
    grpc_sink = GrpcOtlpSink()
    env = otel_env(grpc_sink, "test-grpc")
    del env["OTEL_EXPORTER_OTLP_PROTOCOL"]
    del env["CHAINOTEL_CATALOG"]  # built-in catalog: /healthz is E1 (health checks)
    service = start("backend", env)
    try:
        chain = uuid.uuid4()
        httpx.get(f"{service.url}/healthz", headers={"X-Chain-ID": str(chain)})
        spans = grpc_sink.wait_trace(chain.int, lambda sp: any(s["kind"] == SERVER for s in sp))
        root = server_span(spans, "test-grpc")
        assert root["attributes"][attr.CHAIN_ID] == "E1"
        assert root["attributes"][attr.CHAIN_CATEGORY] == "infrastructure"
    finally:
        service.stop()  # before the sink goes away, so the exporter's final flush succeeds
        grpc_sink.close()
