"""Discovery from traffic on the demo services with chain tagging off (their catalog is empty), real
processes under ``opentelemetry-instrument``: each of the six demo flows comes back as one proposal,
with the entry the built-in catalog's chain for that flow matches and exactly the services and calls
the demo's code makes (``examples/``)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from chainotel.cli.demo import Stack, load_traffic
from tests.discovery.demo_flows import DEMO_FLOWS

REQUESTS = 96  # 8 cycles of the 12-request mix: ≥ 8 traces of every flow


def _by_chain(body: dict) -> dict:
    return {p["evidence"]["matches_registered_chain"]: p for p in body.get("proposals", [])}


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    empty = workdir / "empty-catalog.yaml"
    empty.write_text("chains: []\n")
    traffic = load_traffic()
    with Stack(workdir, free_ports=True, error_rate=0.0, extra_env={"CHAINOTEL_CATALOG": str(empty)}) as stack:
        since = int(time.time()) - 2
        results = asyncio.run(traffic.drive(stack.entry(), REQUESTS, 8, deadline_s=120))
        assert sum(r.ok for r in results) == REQUESTS
        sent = {c: sum(r.chain == c for r in results) for c in DEMO_FLOWS}
        with httpx.Client(base_url=stack.analyzer_url, timeout=60) as client:
            deadline = time.monotonic() + 60
            body: dict = {}
            while time.monotonic() < deadline:  # until every flow's spans are stored, downstream ones too
                body = client.post("/api/v1/discovery/scan", json={"since": str(since)}).json()
                got = _by_chain(body)
                if all(c in got and got[c]["traces"] >= n and set(got[c]["definition"]["expected_services"]) >= DEMO_FLOWS[c][0]
                       for c, n in sent.items()):  # fmt: skip
                    break
                time.sleep(0.5)
            yield sent, body


def test_every_demo_flow_is_proposed_with_the_services_and_calls_of_its_code(scan):
    sent, body = scan
    assert body["untagged_traces"] >= REQUESTS and body["shapes"] == []  # tagging off: nothing carries a chain
    got = _by_chain(body)
    assert set(DEMO_FLOWS) <= set(got), [(p["definition"]["match"], p["traces"]) for p in body["proposals"]]
    for chain, (services, calls) in DEMO_FLOWS.items():
        p = got[chain]
        assert p["traces"] == sent[chain], chain
        assert set(p["definition"]["expected_services"]) == services, (chain, p["definition"]["expected_services"])
        assert set(p["definition"]["edges"]) == calls, (chain, p["definition"]["edges"])
        assert p["definition"]["max_duration_ms"] >= p["evidence"]["p99_ms"]
    assert got["C1"]["definition"]["category"] == "user_experience"  # the WebSocket entry
    assert got["D1"]["definition"]["category"] == "ai_ml_processing"
    assert got["E1"]["definition"]["category"] == "infrastructure"
    assert got["A1"]["definition"]["category"] == "data_flow"
