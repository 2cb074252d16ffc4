"""Aggregation (CRISP), hop attribution, bottleneck ranking, health, anomalies, graph, impact and
recommendations on hand-built traces."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from chainotel_analyzer.analysis import anomalies
from chainotel_analyzer.analysis.aggregate import chain_critical_path, chain_operations
from chainotel_analyzer.analysis.attribution import attribute, callee_of, critical_by_operation
from chainotel_analyzer.analysis.bottlenecks import contributions, group_contributions, rank_bottlenecks
from chainotel_analyzer.analysis.critical_path import analyze_trace
from chainotel_analyzer.analysis.graph import dependency_graph
from chainotel_analyzer.analysis.health import chain_health
from chainotel_analyzer.analysis.impact import service_impact
from chainotel_analyzer.model.span import CLIENT, INTERNAL, SERVER, Span
from chainotel_analyzer.analysis.recommendations import recommend, recommend_attributed

MS = 1_000_000


def hop_trace(n: int, gap_ms: int, cart_ms: int = 2) -> list[Span]:
    """frontend server → frontend client span → cart server span (kinds unknown, as in real data)."""
    return [
        Span(f"{n:04d}r", "", "frontend", "Recv", 0, 100 * MS, trace_id=f"t{n}"),
        Span(f"{n:04d}c", f"{n:04d}r", "frontend", "CartService/GetCart", 10 * MS, (10 + 2 * gap_ms + cart_ms) * MS, trace_id=f"t{n}"),
        Span(f"{n:04d}s", f"{n:04d}c", "cartservice", "GetCart", (10 + gap_ms) * MS, (10 + gap_ms + cart_ms) * MS, trace_id=f"t{n}"),
    ]


def test_call_hop_time_is_charged_to_the_callee():
    r = analyze_trace(hop_trace(1, gap_ms=20))
    ops = critical_by_operation(r)
    assert ops[("cartservice", "GetCart")] == 42 * MS  # 2 ms server + 40 ms of network around it
    assert ops[("frontend", "Recv")] == 58 * MS
    assert sum(ops.values()) == 100 * MS


def test_internal_span_keeps_its_own_critical_time_when_a_child_runs_elsewhere():
    # api SERVER 0..100 → api INTERNAL "render" 10..90 (60 ms of own work) → cart SERVER 20..40
    spans = [
        Span("r", "", "api", "GET /page", 0, 100 * MS, SERVER),
        Span("i", "r", "api", "render", 10 * MS, 90 * MS, INTERNAL),
        Span("s", "i", "cart", "GetCart", 20 * MS, 40 * MS, SERVER),
    ]
    ops = critical_by_operation(analyze_trace(spans))
    assert ops == {("api", "GET /page"): 20 * MS, ("api", "render"): 60 * MS, ("cart", "GetCart"): 20 * MS}
    # the same shape with a CLIENT span is a call hop: its 60 ms go to the callee
    hop = [s._replace(kind=CLIENT) if s.span_id == "i" else s for s in spans]
    assert critical_by_operation(analyze_trace(hop)) == {("api", "GET /page"): 20 * MS, ("cart", "GetCart"): 80 * MS}


def test_client_span_without_callee_goes_to_peer_service():
    spans = [Span("r", "", "api", "GET", 0, 10), Span("c", "r", "api", "SELECT", 2, 8, CLIENT, peer_service="postgres")]
    assert critical_by_operation(analyze_trace(spans)) == {("api", "GET"): 4, ("postgres", "SELECT"): 6}


def test_ranking_with_baseline_names_what_got_slower():
    base = contributions(analyze_trace(hop_trace(i, gap_ms=2)) for i in range(20))
    slow = contributions(analyze_trace(hop_trace(i, gap_ms=30)) for i in range(20))
    ranking = rank_bottlenecks(slow, base)
    assert [e.service for e in ranking.ranking] == ["cartservice", "frontend"]
    top = ranking.ranking[0]
    assert top.delta_ms_per_trace == pytest.approx(56.0)
    assert top.critical_ms_per_trace == pytest.approx(62.0)
    assert top.score == pytest.approx(56.0 * 56.0 / 62.0)
    plain = rank_bottlenecks(slow)
    assert plain.baseline_traces is None and plain.ranking[0].score == plain.ranking[0].critical_ms_per_trace
    assert sum(e.share for e in plain.ranking) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        contributions([], group_by="pod")


def test_crisp_aggregation_per_call_path():
    agg = asdict(chain_critical_path([analyze_trace(hop_trace(i, gap_ms=i)) for i in range(1, 5)]))
    assert agg["traces"] == 4
    paths = {tuple(p["call_path"]): p for p in agg["by_call_path"]}
    leaf = paths[("frontend:Recv", "frontend:CartService/GetCart", "cartservice:GetCart")]
    assert leaf["per_trace_ms"] == pytest.approx(2.0) and leaf["traces"] == 4
    client = paths[("frontend:Recv", "frontend:CartService/GetCart")]
    assert client["total_ms"] == pytest.approx(2 * (1 + 2 + 3 + 4))
    assert client["p50_ms"] == pytest.approx(5.0)


def test_health_score_and_status():
    h = chain_health("B1", traces=100, error_traces=10, root_error_traces=5, within_sla=90, p50_ms=100.0,
                     p95_ms=900.0, p99_ms=900.0, window_s=600, max_duration_ms=500)  # fmt: skip
    assert h.throughput_per_min == 10 and h.error_rate == 0.1 and h.sla_compliance == 0.9
    assert h.score == round(100 * (0.4 * 0.95 + 0.3 * 0.9 + 0.3 * 0.9)) == 92 and h.status == "healthy"
    bad = chain_health("B1", 10, 10, 10, 0, 900.0, 900.0, 900.0, 60, 500)
    assert bad.score == 0 and bad.status == "unhealthy"
    mid = chain_health("B1", 10, 2, 0, 5, 1.0, 1.0, 1.0, 60, 500)
    assert mid.score == round(100 * (0.4 + 0.3 * 0.8 + 0.3 * 0.5)) == 79 and mid.status == "degraded"
    no_sla = chain_health("B1", 10, 0, 0, 0, 1.0, 1.0, 1.0, 60)
    assert no_sla.sla_compliance == 1.0 and no_sla.score == 100
    assert chain_health("B1", 0, 0, 0, 0, 0.0, 0.0, 0.0, 60).status == "no_data"
    with pytest.raises(ValueError):
        chain_health("B1", 1, 2, 0, 0, 0.0, 0.0, 0.0, 60)
    with pytest.raises(ValueError):
        chain_health("B1", 1, 0, 0, 0, 0.0, 0.0, 0.0, 0)


def test_anomalies_thresholds():
    history = [anomalies.Bucket(100, 1, 50 + i % 3) for i in range(12)]
    found = anomalies.detect("service", "cart", anomalies.Bucket(100, 1, 300), history)
    assert [a.metric for a in found] == ["latency_p95_ms"] and found[0].severity == "critical"
    assert anomalies.detect("service", "cart", anomalies.Bucket(100, 1, 54), history) == []
    found = anomalies.detect("chain", "B1", anomalies.Bucket(100, 20, 50), history)
    assert [a.metric for a in found] == ["error_rate"]
    found = anomalies.detect("chain", "B1", anomalies.Bucket(10, 0, 50), history)
    assert [(a.metric, a.direction) for a in found] == [("throughput_per_min", "down")]
    assert anomalies.detect("chain", "B1", anomalies.Bucket(10, 0, 500), history[:2]) == []


def test_a_new_or_idle_key_is_not_anomalous():
    empty = anomalies.Bucket(0.0, 0.0, 0.0)
    # first traffic ever: no latency/error basis and no throughput basis (was: critical, z=250)
    assert anomalies.detect("chain", "A2", anomalies.Bucket(10, 0, 250), [empty] * 12) == []
    assert anomalies.detect("chain", "A2", anomalies.Bucket(10, 10, 250), [empty] * 12) == []
    # traffic in only two earlier buckets: still too little history for any metric
    two = [empty] * 10 + [anomalies.Bucket(10, 0, 50)] * 2
    assert anomalies.detect("chain", "A2", anomalies.Bucket(40, 40, 900), two) == []


def test_idle_buckets_do_not_drag_the_latency_baseline_down():
    # traffic in 3 of 12 buckets at ~100 ms: the empty ones are no p95 of 0 ms
    history = [anomalies.Bucket(0.0, 0.0, 0.0)] * 9 + [anomalies.Bucket(5, 0, p) for p in (95, 100, 105)]
    assert anomalies.detect("service", "cart", anomalies.Bucket(5, 0, 110), history) == []
    found = anomalies.detect("service", "cart", anomalies.Bucket(5, 0, 400), history)
    assert [(a.metric, a.baseline_mean) for a in found] == [("latency_p95_ms", 100.0)]
    # idle buckets are real zeros for throughput once the key has traffic in >= 3 buckets
    surge = anomalies.detect("service", "cart", anomalies.Bucket(60, 0, 100), history)
    assert [(a.metric, a.direction) for a in surge] == [("throughput_per_min", "up")]


def test_dependency_graph_and_impact():
    g = asdict(dependency_graph([hop_trace(i, gap_ms=5) for i in range(3)]))
    assert g["edges"] == [{"caller": "frontend", "callee": "cartservice", "calls": 3, "errors": 0,
                           "avg_ms": 12.0, "p50_ms": 12.0, "p95_ms": 12.0}]  # fmt: skip
    assert {n["service"] for n in g["nodes"]} == {"frontend", "cartservice"}
    per_chain = {"B1": contributions(analyze_trace(hop_trace(i, gap_ms=5)) for i in range(3))}
    impact = [asdict(c) for c in service_impact("cartservice", per_chain)]
    assert impact[0]["chain"] == "B1" and impact[0]["share"] == pytest.approx(0.12)
    assert service_impact("nosuch", per_chain) == []


def test_recommendations_n_plus_one_parallel_and_sla():
    traces = []
    for t in range(5):
        spans = [Span(f"{t}r", "", "web", "GET /cart", 0, 1000 * MS)]
        for i in range(6):  # six sequential calls of the same endpoint
            s = (10 + 100 * i) * MS
            spans.append(Span(f"{t}c{i}", f"{t}r", "web", "price", s, s + 90 * MS))
            spans.append(Span(f"{t}s{i}", f"{t}c{i}", "pricing", "GetPrice", s + MS, s + 89 * MS))
        traces.append(analyze_trace(spans))
    recs = [asdict(r) for r in recommend(traces, max_duration_ms=500)]
    kinds = {r["type"]: r for r in recs}
    assert kinds["n_plus_one"]["service"] == "pricing" and kinds["n_plus_one"]["evidence"]["calls_per_trace"] == 6
    assert kinds["parallelize"]["evidence"]["estimated_saving_ms_per_trace"] == pytest.approx(450.0)
    assert kinds["sla_breach"]["service"] == "pricing"
    assert recommend([]) == []


def _cart_traces() -> list:
    """Five traces matching every recommendation rule: six sequential calls to one endpoint, 1 s > a 500 ms SLA."""
    traces = []
    for t in range(5):
        spans = [Span(f"{t}r", "", "web", "GET /cart", 0, 1000 * MS)]
        for i in range(6):
            s = (10 + 100 * i) * MS
            spans.append(Span(f"{t}c{i}", f"{t}r", "web", "price", s, s + 90 * MS, CLIENT))
            spans.append(Span(f"{t}s{i}", f"{t}c{i}", "pricing", "GetPrice", s + MS, s + 89 * MS))
        traces.append(analyze_trace(spans))
    return traces + [analyze_trace(hop_trace(i, gap_ms=i)) for i in range(1, 4)]


def test_one_attribution_per_trace_gives_what_each_step_computes_alone():
    results = _cart_traces()
    attributed = [attribute(r) for r in results]
    for a, r in zip(attributed, results):
        assert a.result is r and a.callees == callee_of(r.spans) and a.by_operation == critical_by_operation(r)
        assert critical_by_operation(r, a.callees) == a.by_operation
    by_operation = [a.by_operation for a in attributed]
    for group_by in ("service", "operation"):
        assert group_contributions(by_operation, group_by) == contributions(results, group_by)
    assert group_contributions(by_operation)[0] == {"web": 460 * MS, "pricing": 540 * MS}
    with pytest.raises(ValueError):
        group_contributions([], "pod")
    for sla in (None, 500, 5000):
        assert [asdict(r) for r in recommend_attributed(attributed, sla)] == [asdict(r) for r in recommend(results, sla)]
    assert {r.type for r in recommend_attributed(attributed, 500)} == {"n_plus_one", "parallelize", "sla_breach"}
    assert recommend_attributed([]) == []


def test_operations_alone_are_the_aggregated_critical_paths_operations():
    results = _cart_traces()
    whole, alone = asdict(chain_critical_path(results)), asdict(chain_operations(results))
    assert alone["traces"] == whole["traces"] == 8 and alone["by_operation"] == whole["by_operation"]
    assert alone["by_call_path"] == [] and whole["by_call_path"]
    # the span's own operation, call hops not re-attributed: the client span keeps its time
    hop = analyze_trace(hop_trace(1, gap_ms=20))
    assert critical_by_operation(hop, callees={}) == {("frontend", "Recv"): 58 * MS, ("frontend", "CartService/GetCart"): 40 * MS,
                                                      ("cartservice", "GetCart"): 2 * MS}  # fmt: skip
