"""The pure parts of discovery and drift on plain spans (no store, no process)."""

from __future__ import annotations

import pytest

from chainotel.discovery.rules import acyclic, free_ids, guess_category, round_up_ms
from chainotel_analyzer.analysis.discovery import confidence, entry_of, is_catch_all, propose
from chainotel_analyzer.analysis.drift import topology_drift
from chainotel_analyzer.model.span import CLIENT, SERVER, Span


def span(span_id, parent, service, name, start_ms, end_ms, kind=SERVER, trace="t1", chain=""):
    return Span(span_id, parent, service, name, int(start_ms * 1e6), int(end_ms * 1e6), kind, False, trace, chain)


@pytest.mark.parametrize("value, expected", [(0.2, 1.0), (1.0, 1.0), (3.21, 3.3), (99.0, 99.0), (99.01, 100.0),
                                             (237.4, 240.0), (1001, 1100.0)])
def test_round_up_keeps_two_significant_digits_and_never_rounds_down(value, expected):
    assert round_up_ms(value) == expected >= value


@pytest.mark.parametrize("route, expected", [("/*", True), ("/{path:path}", True), ("/api/{rest...}", True),
                                             ("/{*rest}", True), ("*", True), ("/api/v1/orders", False),
                                             ("/{id}", False), ("/api/*/x", False), ("", False)])
def test_catch_all_routes(route, expected):
    assert is_catch_all(route) is expected


def test_acyclic_drops_self_loops_and_edges_closing_a_cycle():
    assert acyclic([("a", "b"), ("b", "c"), ("c", "a"), ("a", "a"), ("a", "c")]) == [("a", "b"), ("b", "c"), ("a", "c")]


def test_free_ids_skip_taken_ones_per_letter():
    ids = free_ids(["B1", "B2", "B4"])
    assert [next(ids["B"]) for _ in range(3)] == ["B3", "B5", "B6"] and next(ids["A"]) == "A1"


@pytest.mark.parametrize("route, websocket, category", [
    ("/ws/quotes", False, "user_experience"), ("/stream", True, "user_experience"),
    ("/v1/models/bert/predict", False, "ai_ml_processing"), ("/healthz", False, "infrastructure"),
    ("/metrics", False, "infrastructure"), ("/api/v1/ingest", False, "data_flow"),
    ("/dashboard", False, "user_experience"), ("/api/v1/orders", False, "service_communication"),
])  # fmt: skip
def test_category_guess_with_a_reason(route, websocket, category):
    got, reason = guess_category(route, "", websocket)
    assert got == category and reason


def test_confidence_grows_with_traces_stability_and_observation():
    base = confidence(20, 0.8, 60)
    assert 0 < base < 1
    assert confidence(200, 0.8, 60) > base and confidence(20, 1.0, 60) > base and confidence(20, 0.8, 600) > base
    assert confidence(10_000, 1.0, 10_000) < 1


def test_catch_all_gateway_without_a_server_below_keeps_its_own_entry():
    spans = [span("a", "", "gw", "GET /{path:path}", 0, 10), span("b", "a", "gw", "GET upstream", 1, 9, CLIENT)]
    entry = entry_of(spans, {"a": {"http.route": "/{path:path}", "http.request.method": "GET"}})
    assert (entry.service, entry.route, entry.gateway) == ("gw", "/{path:path}", "")


def test_orphan_spans_make_the_earliest_root_the_entry():
    spans = [span("b", "missing", "late", "x", 5, 6), span("a", "", "early", "y", 1, 9)]
    assert entry_of(spans, {}).service == "early" and entry_of([], {}) is None


def test_tagged_traces_are_not_proposed():
    traces = {f"t{i}": [span("a", "", "svc", "GET /x", 0, 5, trace=f"t{i}", chain="B3" if i % 2 else "")] for i in range(10)}
    [p] = propose(traces, {}, min_traces=5)
    assert p.traces == 5 and p.definition["match"] == [{"service": "svc", "span_name": "GET /x"}]


def test_drift_without_declared_edges_compares_services_only():
    traces = [[span("a", "", "gw", "x", 0, 5), span("b", "a", "extra", "y", 1, 4)]]
    d = topology_drift(traces, ["gw", "gone"], [])
    assert d.unexpected_services == [{"service": "extra", "traces": 1}] and d.missing_services == [{"service": "gone"}]
    assert d.unexpected_edges == [] and not d.edges_checked and d.drifted
    empty = topology_drift([], ["gw"], [("gw", "x")])
    assert empty.traces == 0 and empty.missing_services == [] and not empty.drifted
