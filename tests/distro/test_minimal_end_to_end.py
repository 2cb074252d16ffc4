"""``CHAINOTEL_SPAN_ATTRIBUTES=minimal`` end to end: gateway → backend under ``opentelemetry-instrument
uvicorn`` with the chainotel distro, exporting OTLP/HTTP to a real analyzer (chDB store); assertions
through the analyzer's HTTP API on what it stored and how it analyses the trace.

The catalog's chain is ``B42``, which the built-in catalog does not have: the analyzer must take the
category of the spans without ``chain.category`` from the chain ID itself.
"""

from __future__ import annotations

import time
import types
import uuid

import httpx
import pytest

from chainotel import attributes as attr
from tests.distro.services import APPS, otel_env
from tests.processes import running

FOUR = {attr.CHAIN_ID, attr.CHAIN_CATEGORY, attr.CHAIN_NAME, attr.CHAIN_INSTANCE_ID}
CHAIN = "B42"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, start):
    """An analyzer and the two services in ``minimal`` mode exporting to it; yields the analyzer."""
    tmp = tmp_path_factory.mktemp("minimal")
    catalog = tmp / "chains.yaml"
    catalog.write_text((APPS / "chains.yaml").read_text().replace("id: B3\n", f"id: {CHAIN}\n"))
    with running(tmp / "db", grpc=False) as analyzer:
        to_analyzer = types.SimpleNamespace(endpoint=analyzer.http)
        minimal = {"CHAINOTEL_SPAN_ATTRIBUTES": "minimal", "CHAINOTEL_CATALOG": str(catalog)}
        backend = start("backend", otel_env(to_analyzer, "test-backend", **minimal))
        gateway = start("gateway", otel_env(to_analyzer, "test-gateway", BACKEND_URL=backend.url, **minimal))
        yield analyzer, gateway


def stored_events(client: httpx.Client, instance_id: str, count: int, timeout_s: float = 30) -> list[dict]:
    """The stored spans of ``instance_id`` once there are ``count`` (the last seen after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    events: list[dict] = []
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/chains/events/{instance_id}")
        if response.status_code == 200:
            events = response.json()["events"]
            if len(events) >= count:
                break
        time.sleep(0.3)
    return events


def test_minimal_mode_is_stored_and_analysed_as_full(stack):
    analyzer, gateway = stack
    instance_id = str(uuid.uuid4())
    response = httpx.get(f"{gateway.url}/api/v1/trading/orders", headers={"X-Chain-ID": instance_id}, timeout=30)
    assert response.status_code == 200
    with httpx.Client(base_url=analyzer.http, timeout=30) as client:
        events = stored_events(client, instance_id, 7)
        assert len(events) >= 7, events
        assert {e["service_name"] for e in events} == {"test-gateway", "test-backend"}
        servers = [e for e in events if e["span_kind"] == "server"]
        assert {e["service_name"] for e in servers} == {"test-gateway", "test-backend"}
        for e in events:
            # every span: chain.id as an attribute; the stored chain and category as in full mode
            assert (e["chain"], e["category"]) == (CHAIN, "service_communication"), e
            chain_keys = {k for k in e["span_attributes"] if k.startswith("chain.")}
            if e["span_kind"] == "server":  # each service's entry span: all four
                assert chain_keys == FOUR, e
                assert e["span_attributes"][attr.CHAIN_INSTANCE_ID] == instance_id
                assert e["span_attributes"][attr.CHAIN_NAME] == "Trading API request"
            else:
                assert chain_keys == {attr.CHAIN_ID}, e
        analysis = client.get(f"/api/v1/chains/analysis/{instance_id}")
        assert analysis.status_code == 200, analysis.text
        body = analysis.json()
        assert body["service_count"] == 2
        assert {(edge["caller"], edge["callee"]) for edge in body["dependency_graph"]["edges"]} >= {
            ("test-gateway", "test-backend")
        }
        path = client.get("/api/v1/analytics/critical-path", params={"chain": CHAIN})
        assert path.status_code == 200, path.text
        assert path.json()["traces"] >= 1
