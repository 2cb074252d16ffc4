"""A chain across a service in another language: data-bridge (Python) → go-relay (OpenTelemetry Go
SDK + otelhttp, tests/peers/goservice) → trading-engine (Python). Chainotel runs only in the Python
services; the Go service just propagates W3C trace context and baggage, as the SDK does once its
propagators are set."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from chainotel.cli.demo import Stack, load_traffic

from .peers import GoService, wait_for

FLOWS = 12


@pytest.fixture(scope="module")
def crossed(tmp_path_factory):
    """The demo stack (analyzer included) with trading-engine's callers pointed at the Go relay;
    drives FLOWS market-data ingests (chain A1) and one direct trading-engine call with no upstream
    chain (the control). Yields ``(analyzer_url, results, control_instance_id, since_s)``."""
    tmp = tmp_path_factory.mktemp("go")
    # trading-engine slowed by 30 ms: the branch through go-relay is then the critical one of every
    # ingest, not a race with database-service's parallel store (a few ms apart, noise on a busy machine)
    stack = Stack(tmp / "stack", mode="chainotel", free_ports=True, slow="trading-engine:30ms", error_rate=0.0, seed=5)
    relay = GoService(tmp, upstream=stack.url("trading-engine"), otlp_endpoint=stack.analyzer_url)
    stack.extra_env["DEMO_TRADING_ENGINE_URL"] = relay.url
    traffic = load_traffic()
    with stack:
        relay.start()
        try:
            since = int(time.time()) - 5

            async def drive():
                async with httpx.AsyncClient(timeout=30) as client:
                    return await asyncio.gather(*(traffic.run_flow(client, stack.entry(), "market-data-ingest") for _ in range(FLOWS)))

            results = asyncio.run(drive())
            control = str(uuid.uuid4())
            direct = httpx.post(f"{stack.url('trading-engine')}/trading/signals", json={"ticks": []},
                                headers={"X-Chain-ID": control}, timeout=10)  # fmt: skip
            assert direct.status_code == 200
        finally:
            relay.stop()  # flushes the Go service's spans
        with httpx.Client(base_url=stack.analyzer_url, timeout=10) as client:
            def complete(cid: str) -> bool:
                response = client.get(f"/api/v1/chains/events/{cid}")
                return response.status_code == 200 and {"data-bridge", "go-relay", "trading-engine", "database-service"} <= {e["service_name"] for e in response.json()["events"]}

            wait_for(lambda: all(complete(r.instance_id) for r in results) and client.get(f"/api/v1/chains/events/{control}").status_code == 200, 30)
        yield stack.analyzer_url, results, control, since


def _events(analyzer_url: str, instance_id: str) -> list[dict]:
    response = httpx.get(f"{analyzer_url}/api/v1/chains/events/{instance_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def test_the_trace_id_stays_the_chain_instance_id_through_the_go_service(crossed):
    analyzer_url, results, _, _ = crossed
    assert all(r.ok for r in results)
    for r in results:
        events = _events(analyzer_url, r.instance_id)
        assert {e["trace_id"] for e in events} == {r.instance_id.replace("-", "")}
        services = {e["service_name"] for e in events}
        assert {"data-bridge", "go-relay", "trading-engine", "database-service"} <= services
        go = [e for e in events if e["service_name"] == "go-relay"]
        assert sorted(e["span_kind"] for e in go) == ["client", "server"], go  # otelhttp's handler and transport
        assert not any(e["chain"] for e in go)  # no chainotel in Go: its spans carry no chain.* attributes
        # Parent links are unbroken: trading-engine's server span has the Go client span as parent.
        go_ids = {e["span_id"] for e in go}
        engine_roots = [e for e in events if e["service_name"] == "trading-engine" and e["parent_span_id"] in go_ids]
        assert engine_roots, "trading-engine's span does not hang under the Go service's span"


def test_the_downstream_python_service_gets_the_chain_decided_upstream_from_baggage(crossed):
    analyzer_url, results, control, _ = crossed
    for r in results:
        engine = [e for e in _events(analyzer_url, r.instance_id) if e["service_name"] == "trading-engine"]
        assert engine and {e["chain"] for e in engine} == {"A1"}
        assert all(e["span_attributes"].get("chain.instance_id") == r.instance_id for e in engine)
    # Control: the same endpoint called without an upstream chain is not A1 — the chain above came
    # through the Go service in W3C baggage, not from trading-engine's own rules.
    assert {e["chain"] for e in _events(analyzer_url, control)} != {"A1"}


def test_the_analyzer_counts_the_go_services_spans_in_the_chain(crossed):
    """The analyzer assigns a trace's chain to all its spans: the Go service is ranked within A1."""
    analyzer_url, results, _, since = crossed
    with httpx.Client(base_url=analyzer_url, timeout=30) as client:
        ranking = client.get("/api/v1/analytics/bottlenecks", params={"chain": "A1", "since": since}).json()["ranking"]
        assert "go-relay" in {row["service"] for row in ranking}, ranking
        path = client.get(f"/api/v1/traces/{results[0].instance_id}/critical-path").json()
    assert "go-relay" in str(path)
