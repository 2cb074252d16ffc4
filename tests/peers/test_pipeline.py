"""The full pipeline through the real programs: demo services under ``opentelemetry-instrument`` →
the Collector running collector-config/otel-collector.yaml → Jaeger v2 and the analyzer."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from chainotel.cli.demo import Stack, load_traffic
from tests.processes import running

from .peers import FULL, Collector, wait_for

REQUESTS = 36  # three cycles of the traffic mix: every flow, every chain


def _tags(span: dict) -> dict[str, str]:
    return {t["key"]: str(t["value"]) for t in span.get("tags", [])}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, jaeger):
    """Analyzer (Jaeger links on), Collector, five demo services exporting to the Collector; drive
    REQUESTS flows; yield ``(analyzer_url, results)`` once every successful trace is in the analyzer."""
    tmp = tmp_path_factory.mktemp("pipeline")
    with running(tmp / "data", env={"CHAINOTEL_JAEGER_UI_URL": jaeger.query}, grpc=False) as analyzer:
        collector = Collector(tmp, [FULL], analyzer=analyzer.http, jaeger=jaeger.otlp_grpc).start()
        try:
            with Stack(tmp / "stack", mode="chainotel", free_ports=True, with_analyzer=False, otlp_endpoint=collector.http,
                       slow="", error_rate=0.0, seed=3) as stack:  # fmt: skip
                results = asyncio.run(load_traffic().drive(stack.entry(), REQUESTS, 4, deadline_s=90))
            # The services flushed their spans on SIGTERM; the Collector forwards within its batch timeout.
            ok = [r for r in results if r.ok]
            with httpx.Client(base_url=analyzer.http, timeout=10) as client:
                wait_for(lambda: all(client.get(f"/api/v1/chains/events/{r.instance_id}").status_code == 200 for r in ok), 30)
            yield analyzer.http, results
        finally:
            collector.stop()


def test_every_request_succeeded(pipeline):
    _, results = pipeline
    assert len(results) == REQUESTS and all(r.ok for r in results), [r for r in results if not r.ok]


def test_every_trace_is_in_jaeger_with_the_chain_tags(pipeline, jaeger):
    _, results = pipeline
    for r in results:
        trace_id = r.instance_id.replace("-", "")
        assert wait_for(lambda: jaeger.trace(trace_id) is not None, 20), f"{r.flow}: trace {trace_id} not in Jaeger"
        trace = jaeger.trace(trace_id)
        assert trace["traceID"] == trace_id
        tagged = [_tags(s) for s in trace["spans"] if "chain.id" in _tags(s)]
        assert tagged, f"{r.flow}: no span of trace {trace_id} carries chain.id"
        assert {t["chain.id"] for t in tagged} == {r.chain}
        assert {t["chain.instance_id"] for t in tagged} == {r.instance_id}
        assert all(t.get("chain.category") and t.get("chain.name") for t in tagged)
    # Also through the v3 API (OTLP JSON, trace IDs in hex).
    one = results[0]
    v3 = httpx.get(f"{jaeger.query}/api/v3/traces/{one.instance_id.replace('-', '')}", timeout=10)
    assert v3.status_code == 200
    spans = [s for rs in v3.json()["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert {s["traceId"] for s in spans} == {one.instance_id.replace("-", "")}
    attrs = [{a["key"]: a["value"].get("stringValue") for a in s.get("attributes", [])} for s in spans]
    assert {a["chain.id"] for a in attrs if "chain.id" in a} == {one.chain}


def test_jaeger_finds_the_traces_by_tag_chain_id(pipeline, jaeger):
    _, results = pipeline
    for chain in sorted({r.chain for r in results}):
        expected = {r.instance_id.replace("-", "") for r in results if r.chain == chain}
        entry = {"A1": "data-bridge", "D1": "ai-provider"}.get(chain, "api-gateway")
        params = {"service": entry, "tags": json.dumps({"chain.id": chain}), "lookback": "1h", "limit": 1000}
        found = {t["traceID"] for t in httpx.get(f"{jaeger.query}/api/traces", params=params, timeout=10).json()["data"]}
        assert expected <= found, f"{chain}: {len(expected - found)} traces not found by tag"
        others = {r.instance_id.replace("-", "") for r in results if r.chain != chain}
        assert not found & others, f"tag search for {chain} returned traces of other chains"


def test_the_analyzer_has_the_same_instance_and_a_jaeger_link_jaeger_answers(pipeline, jaeger):
    analyzer_url, results = pipeline
    with httpx.Client(base_url=analyzer_url, timeout=10) as client:
        for r in results:
            doc = client.get(f"/api/v1/chains/events/{r.instance_id}").json()
            assert doc["instance_id"] == r.instance_id
            assert {e["chain"] for e in doc["events"] if e["chain"]} == {r.chain}
            trace_id = r.instance_id.replace("-", "")
            assert doc["jaeger_url"] == f"{jaeger.query}/trace/{trace_id}"
        page = httpx.get(doc["jaeger_url"], timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        # The UI's page loads the trace from the query API under the same ID.
        assert httpx.get(f"{jaeger.query}/api/traces/{trace_id}", timeout=10).status_code == 200
