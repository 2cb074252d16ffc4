"""Discovery from traffic through a real analyzer (chDB, OTLP/HTTP): generated traces with known
flows come back as exactly those proposals (entry, service set, edges, category, free IDs); the
CLI's catalog passes ``chainotel catalog validate`` and every chain is taken by ``POST /api/v1/chains``;
drift reports a chain whose traffic gained one service and lost another."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chainotel_analyzer.analysis.discovery import confidence
from tests.discovery.traffic import Hop, build, send
from tests.processes import serve

CHAINOTEL = str(Path(sys.executable).with_name("chainotel"))
START_NS = (int(time.time()) - 1200) * 10**9  # 20 minutes ago, spread over 5 minutes
SINCE, UNTIL = START_NS // 10**9 - 1, START_NS // 10**9 + 301


def checkout(with_fraud: bool) -> Hop:
    calls = [Hop("inventory", "/stock/{sku}"), Hop("payments", "/charge", "POST", calls=[Hop("ledger", "/entries", "POST")])]
    if with_fraud:
        calls.append(Hop("fraud", "/score", "POST"))
    return Hop("edge-gateway", "/{path:path}", "POST", calls=[Hop("orders", "/orders", "POST", self_ms=5, calls=calls)])


UNTAGGED = [
    (checkout(False), 40),
    (checkout(True), 10),  # fraud in 20 % of checkouts: observed, not expected
    (Hop("quotes-gw", "/ws/quotes", "", attributes={"url.scheme": "ws"}, calls=[Hop("pricing", "/prices/{symbol}")]), 20),
    (Hop("ml-api", "/v1/inference", "POST", self_ms=30, calls=[Hop("model-server", "/v2/models/{name}/infer", "POST")]), 15),
    (Hop("status-page", "/healthz"), 8),
    (Hop("misc", "/rare"), 3),  # below min_traces
]
B3_SHAPES = [  # a tagged chain whose traces take two clearly different paths
    (Hop("api-gateway", "/api/v1/trading/orders", "POST", calls=[Hop("trading-engine", "/trading/orders", "POST", calls=[
        Hop("database-service", "/db/orders", "POST")])]), 12),
    (Hop("api-gateway", "/api/v1/trading/orders", "POST", calls=[Hop("trading-engine", "/trading/orders", "POST", calls=[
        Hop("risk-engine", "/risk", "POST")])]), 12),
]
E9 = {"id": "E9", "name": "Nightly export", "category": "infrastructure", "max_duration_ms": 500,
      "match": [{"service": "cron", "route": "/jobs/export"}], "expected_services": ["cron", "exporter", "s3-proxy"],
      "edges": ["cron -> exporter", "exporter -> s3-proxy"]}  # fmt: skip
E9_TRAFFIC = [(Hop("cron", "/jobs/export", "POST", calls=[Hop("exporter", "/export", "POST", calls=[
    Hop("blob-store", "/put", "PUT")])]), 9)]  # fmt: skip


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("analyzer") / "db") as client:
        send(client, build(UNTAGGED, START_NS, 300))
        send(client, build(B3_SHAPES, START_NS, 300, chain="B3", seed=2))
        send(client, build(E9_TRAFFIC, START_NS, 300, chain="E9", seed=3))
        assert client.post("/api/v1/chains", json=E9).status_code == 201
        deadline = time.monotonic() + 30
        while client.get("/api/v1/analytics/performance/real-time", params={"since": SINCE, "until": UNTIL}).json()["traces"] < 129:
            assert time.monotonic() < deadline, "spans not readable"
            time.sleep(0.2)
        yield client


@pytest.fixture(scope="module")
def scan(api):
    r = api.post("/api/v1/discovery/scan", json={"since": str(SINCE), "until": str(UNTIL)})
    assert r.status_code == 200, r.text
    return r.json()


def test_known_flows_are_recovered_exactly(scan):
    assert scan["traces"] == 129 and scan["untagged_traces"] == 96
    got = {(p["evidence"]["entry"]["service"], p["evidence"]["entry"]["route"]): p for p in scan["proposals"]}
    assert set(got) == {("orders", "/orders"), ("quotes-gw", "/ws/quotes"), ("ml-api", "/v1/inference"),
                        ("status-page", "/healthz")}  # the 3 traces of misc are below min_traces
    checkout = got[("orders", "/orders")]
    d = checkout["definition"]
    assert checkout["traces"] == 50
    assert d["match"] == [{"service": "orders", "route": "/orders", "method": "POST"}]
    assert checkout["evidence"]["entry"]["gateway"] == "edge-gateway /{path:path}"
    assert set(d["expected_services"]) == {"edge-gateway", "orders", "inventory", "payments", "ledger"}
    assert {s["service"]: s["share"] for s in checkout["services"]}["fraud"] == 0.2
    assert set(d["edges"]) == {"edge-gateway -> orders", "orders -> inventory", "orders -> payments", "payments -> ledger"}
    assert d["category"] == "service_communication" and d["id"] == "B9"  # B1–B8 are registered
    assert checkout["evidence"]["service_sets"] == 2 and checkout["evidence"]["modal_service_set_share"] == 0.8
    # category guesses, each with its reason, and the lowest free ID of the category
    ws = got[("quotes-gw", "/ws/quotes")]["definition"]
    assert (ws["id"], ws["category"], ws["match"]) == ("C6", "user_experience", [{"service": "quotes-gw", "route": "/ws/quotes"}])
    assert "WebSocket" in got[("quotes-gw", "/ws/quotes")]["evidence"]["category_reason"]
    assert got[("ml-api", "/v1/inference")]["definition"]["category"] == "ai_ml_processing"
    assert got[("ml-api", "/v1/inference")]["definition"]["id"] == "D5"
    health = got[("status-page", "/healthz")]
    assert (health["definition"]["id"], health["definition"]["category"]) == ("E8", "infrastructure")  # E9 is taken
    assert health["definition"]["expected_services"] == ["status-page"] and health["definition"]["edges"] == []
    # the built-in E1 (health checks, /health* on any service) covers this entry: the scan says so
    assert health["evidence"]["matches_registered_chain"] == "E1"
    assert checkout["evidence"]["matches_registered_chain"] is None


def test_sla_confidence_and_evidence(scan):
    p = next(p for p in scan["proposals"] if p["evidence"]["entry"]["service"] == "ml-api")
    ev = p["evidence"]
    # p99 of durations: one ml-api hop (30 ms self) + model-server (2 ms) + 0.4 ms of client gaps
    assert 32 <= ev["p99_ms"] <= 33 and p["definition"]["max_duration_ms"] == 33
    assert 0 < ev["observed_s"] <= 300 and ev["traces"] == p["traces"] == 15
    assert len(ev["example_trace_ids"]) == 3
    # confidence grows with traces and with a stable service set
    by = {p["evidence"]["entry"]["service"]: p["confidence"] for p in scan["proposals"]}
    assert all(0 < c < 1 for c in by.values())
    assert by["ml-api"] > by["status-page"]  # 15 traces against 8, both one shape
    orders = next(p for p in scan["proposals"] if p["evidence"]["entry"]["service"] == "orders")
    assert orders["confidence"] == confidence(50, 0.8, orders["evidence"]["observed_s"])  # two shapes: 80 % modal
    assert confidence(50, 1.0, 300) > orders["confidence"]


def test_tagged_chain_with_two_shapes_is_reported(scan):
    shapes = {s["chain"]: s for s in scan["shapes"]}
    assert set(shapes) == {"B3"}
    assert sorted(tuple(s["services"]) for s in shapes["B3"]["shapes"]) == [
        ("api-gateway", "database-service", "trading-engine"), ("api-gateway", "risk-engine", "trading-engine")]


def test_cli_output_is_a_valid_catalog_the_registry_takes(api, tmp_path):
    out = subprocess.run([CHAINOTEL, "discover", "--since", str(SINCE), "--until", str(UNTIL), "--analyzer",
                          str(api.base_url).rstrip("/")], capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    proposals = tmp_path / "proposals.yaml"
    proposals.write_text(out.stdout)
    assert "# proposal B9: confidence" in out.stdout and "chain B3 has 2 different shapes" in out.stdout
    check = subprocess.run([CHAINOTEL, "catalog", "validate", str(proposals)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    chains = yaml.safe_load(out.stdout)["chains"]
    assert sorted(c["id"] for c in chains) == ["B9", "C6", "D5", "E8"]
    for chain in chains:
        r = api.post("/api/v1/chains", json=chain)
        assert r.status_code == 201, r.text
    # once registered, a new scan proposes other IDs, and says which registered chain covers the entry
    again = api.post("/api/v1/discovery/scan", json={"since": str(SINCE), "until": str(UNTIL)}).json()
    assert {p["definition"]["id"] for p in again["proposals"]} == {"B10", "C7", "D6", "E10"}
    # (the built-in E1 matches /health* on any service, and comes first in the registry)
    assert {p["evidence"]["matches_registered_chain"] for p in again["proposals"]} == {"B9", "C6", "D5", "E1"}
    for chain in chains:
        assert api.delete(f"/api/v1/chains/{chain['id']}").status_code == 204


def test_drift_reports_a_gained_and_a_lost_service(api):
    r = api.get("/api/v1/chains/E9/drift", params={"since": SINCE, "until": UNTIL})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["traces"] == 9 and d["drifted"] and d["edges_checked"]
    assert d["unexpected_services"] == [{"service": "blob-store", "traces": 9}]
    assert d["missing_services"] == [{"service": "s3-proxy"}]
    assert d["unexpected_edges"] == [{"caller": "exporter", "callee": "blob-store", "traces": 9}]
    # a chain whose traffic matches its definition has no drift
    b3 = api.get("/api/v1/chains/B3/drift", params={"since": SINCE, "until": UNTIL}).json()
    assert [s["service"] for s in b3["unexpected_services"]] == ["risk-engine"] and b3["missing_services"] == []
    assert api.get("/api/v1/chains/E77/drift").status_code == 404
    assert api.get("/api/v1/chains/B3/drift", params={"since": "soon"}).status_code == 422


def test_scan_rejects_bad_parameters(api):
    assert api.post("/api/v1/discovery/scan", json={"min_traces": 0}).status_code == 422
    r = api.post("/api/v1/discovery/scan", json={"since": "yesterday"})
    assert r.status_code == 422 and "since" in r.text
    empty = api.post("/api/v1/discovery/scan", json={"since": "1", "until": "2"}).json()
    assert empty["proposals"] == [] and empty["traces"] == 0
