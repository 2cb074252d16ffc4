"""Analysis API through a running analyzer (``chainotel-analyzer serve`` subprocess, real chDB
store in tmp_path) fed synthetic traces through its OTLP/HTTP endpoint: registry CRUD, health,
performance, anomalies, chain views, Jaeger links, parameter errors. Needs no trace data set (the
Online Boutique tests are in ``test_api_onlineboutique.py``)."""

from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError

from chainotel_analyzer.api.chains import jaeger_url
from chainotel_analyzer.settings import AnalyzerSettings
from tests.processes import serve

JAEGER_UI = "http://jaeger.example:16686/jaeger/"  # with a base path and a trailing slash


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("analyzer") / "db", {"CHAINOTEL_JAEGER_UI_URL": JAEGER_UI}) as client:
        yield client


def test_unknown_and_malformed_ids_and_parameters(api):
    assert api.get("/api/v1/traces/0123456789abcdef0123456789abcdef/critical-path").status_code == 404
    assert api.get("/api/v1/chains/events/0123456789abcdef0123456789abcdef").status_code == 404
    r = api.get("/api/v1/traces/not-an-id/critical-path")
    assert r.status_code == 422 and "chain instance ID" in r.text
    r = api.get("/api/v1/analytics/bottlenecks", params={"since": "yesterday"})
    assert r.status_code == 422 and "since" in r.text
    r = api.get("/api/v1/analytics/bottlenecks", params={"since": 10, "until": 5})
    assert r.status_code == 422
    r = api.get("/api/v1/analytics/bottlenecks", params={"since": 1, "until": 5, "group_by": "pod"})
    assert r.status_code == 422 and "group_by" in r.text
    r = api.get("/api/v1/analytics/bottlenecks", params={"chain": "x'; DROP TABLE chain_history; --"})
    assert r.status_code == 422
    assert api.get("/api/v1/chains/Z9/bottlenecks").status_code == 422
    assert api.get("/api/v1/chains/E99/dependency-graph").status_code == 404


def test_chain_registry_crud(api):
    chains = api.get("/api/v1/chains").json()["chains"]
    assert {c["id"] for c in chains} >= {"A1", "B1"}
    doc = {"id": "E9", "name": "Nightly export", "category": "infrastructure", "max_duration_ms": 500,
           "match": [{"span_name": "export*"}]}  # fmt: skip
    r = api.post("/api/v1/chains", json=doc)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    assert api.post("/api/v1/chains", json=doc).status_code == 409
    r = api.put("/api/v1/chains/E9", json={**doc, "max_duration_ms": 800})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert api.get("/api/v1/chains/E9").json()["definition"]["max_duration_ms"] == 800
    bad = api.post("/api/v1/chains", json={**doc, "id": "E10", "category": "nope"})
    assert bad.status_code == 422 and "category" in bad.text
    assert api.put("/api/v1/chains/E77", json={**doc, "id": "E77"}).status_code == 404
    assert api.delete("/api/v1/chains/E9").status_code == 204
    assert api.get("/api/v1/chains/E9").status_code == 404
    assert api.delete("/api/v1/chains/E9").status_code == 404
    # a chain path that is no chain ID is refused by its pattern; a free-form path value is a bound
    # parameter: a quote in it is just an unknown service; the registry is intact
    assert api.get("/api/v1/chains/A1' OR '1'='1").status_code == 422
    assert api.delete("/api/v1/chains/A1' OR '1'='1").status_code == 422
    assert api.get("/api/v1/analytics/services/x' OR '1'='1/impact").status_code == 404
    assert len(api.get("/api/v1/chains").json()["chains"]) == len(chains)


def test_concurrent_registry_updates_each_get_their_own_version(api):
    doc = {"id": "E8", "name": "Cache warm-up", "category": "infrastructure", "max_duration_ms": 100,
           "match": [{"span_name": "warm*"}]}  # fmt: skip
    assert api.post("/api/v1/chains", json=doc).status_code == 201
    threads, per_thread = 6, 4
    statuses: list[int] = []

    def put(n: int) -> None:
        for i in range(per_thread):
            r = api.put("/api/v1/chains/E8", json={**doc, "max_duration_ms": 1000 * n + i + 1})
            statuses.append(r.status_code)

    workers = [threading.Thread(target=put, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert statuses == [200] * threads * per_thread
    # every PUT wrote its own version: none was lost to another PUT writing the same N + 1
    assert api.get("/api/v1/chains/E8").json()["version"] == 1 + threads * per_thread
    assert api.delete("/api/v1/chains/E8").status_code == 204


def _otlp_chain_traces(chain: str, t0_s: int, durations_ms: list[int], root_errors: list[bool]) -> dict:
    """OTLP JSON: one trace per duration, gateway → (client) → backend, tagged with ``chain.id``."""
    spans_gw, spans_be = [], []
    for n, (dur, err) in enumerate(zip(durations_ms, root_errors)):
        tid = f"{0xC0FFEE:08x}{t0_s:016x}{n:08x}"
        start = (t0_s + n) * 10**9
        attrs = [{"key": "chain.id", "value": {"stringValue": chain}}]
        status = {"code": 2} if err else {}
        spans_gw.append({"traceId": tid, "spanId": f"{n:08x}00000001", "name": "GET /api", "kind": 2,
                         "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur * 10**6),
                         "attributes": attrs, "status": status})  # fmt: skip
        spans_gw.append({"traceId": tid, "spanId": f"{n:08x}00000002", "parentSpanId": f"{n:08x}00000001",
                         "name": "GET backend", "kind": 3, "startTimeUnixNano": str(start + 10**6),
                         "endTimeUnixNano": str(start + (dur - 1) * 10**6), "attributes": attrs})  # fmt: skip
        spans_be.append({"traceId": tid, "spanId": f"{n:08x}00000003", "parentSpanId": f"{n:08x}00000002",
                         "name": "GET /work", "kind": 2, "startTimeUnixNano": str(start + 2 * 10**6),
                         "endTimeUnixNano": str(start + (dur - 2) * 10**6), "attributes": attrs})  # fmt: skip

    def rs(service, spans):
        return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}  # fmt: skip

    return {"resourceSpans": [rs("gateway", spans_gw), rs("backend", spans_be)]}


def test_chain_health_performance_and_chain_views_from_tagged_traces(api):
    sla = api.get("/api/v1/chains/B1").json()["definition"]["max_duration_ms"]
    t0 = 1_500_000_000
    durations = [sla // 2] * 6 + [sla * 3] * 2
    errors = [False] * 7 + [True]
    r = api.post("/v1/traces", json=_otlp_chain_traces("B1", t0, durations, errors))
    assert r.status_code == 200, r.text
    window = {"since": t0, "until": t0 + 60}
    health = {c["chain"]: c for c in api.get("/api/v1/analytics/chains/health/overview", params=window).json()["chains"]}
    b1 = health["B1"]
    assert b1["traces"] == 8 and b1["error_rate"] == pytest.approx(1 / 8) and b1["availability"] == pytest.approx(7 / 8)
    assert b1["sla_compliance"] == pytest.approx(6 / 8) and b1["throughput_per_min"] == pytest.approx(8.0)
    assert b1["score"] == round(100 * (0.4 * 7 / 8 + 0.3 * 7 / 8 + 0.3 * 6 / 8)) and b1["status"] == "degraded"
    assert b1["p99_ms"] == pytest.approx(float(sla * 3)) and health["A1"]["status"] == "no_data"
    perf = api.get("/api/v1/analytics/performance/real-time", params=window).json()
    assert perf["active_chains"] == 1 and perf["traces"] == 8
    assert perf["avg_duration_ms"] == pytest.approx(sum(durations) / 8)
    ranking = api.get("/api/v1/chains/B1/bottlenecks", params=window).json()
    assert ranking["traces"] == 8 and ranking["ranking"][0]["service"] == "backend"  # the hop goes to the callee
    graph = api.get("/api/v1/chains/B1/dependency-graph", params=window).json()
    assert [(e["caller"], e["callee"], e["calls"]) for e in graph["edges"]] == [("gateway", "backend", 8)]
    recs = api.get("/api/v1/analytics/optimization/recommendations", params={**window, "chain": "B1"}).json()
    assert any(x["type"] == "sla_breach" and x["service"] == "backend" for x in recs["recommendations"])
    # the older spellings under the /analytics/chains/ prefix of health/overview redirect (308, query kept)
    for path in ("performance/real-time", "optimization/recommendations", "services/backend/impact"):
        moved = api.get(f"/api/v1/analytics/chains/{path}", params=window)
        assert moved.status_code == 308 and moved.headers["location"].startswith(f"/api/v1/analytics/{path}?"), path
        assert api.get(f"/api/v1/analytics/chains/{path}", params=window, follow_redirects=True).json() == \
            api.get(f"/api/v1/analytics/{path}", params=window).json(), path
    moved = api.get("/api/v1/analytics/chains/anomalies/detect", params={"until": t0 + 60}, follow_redirects=True)
    assert moved.status_code == 200 and moved.url.path == "/api/v1/analytics/anomalies/detect"


def test_per_trace_responses_link_to_the_trace_in_jaeger(api):
    t0 = 1_400_000_000
    assert api.post("/v1/traces", json=_otlp_chain_traces("B2", t0, [120], [False])).status_code == 200
    trace_id = f"{0xC0FFEE:08x}{t0:016x}{0:08x}"
    link = f"http://jaeger.example:16686/jaeger/trace/{trace_id}"
    uuid = f"{trace_id[:8]}-{trace_id[8:12]}-{trace_id[12:16]}-{trace_id[16:20]}-{trace_id[20:]}"
    for path in (f"/api/v1/traces/{uuid}/critical-path", f"/api/v1/chains/events/{trace_id}",
                 f"/api/v1/chains/analysis/{uuid}"):  # fmt: skip
        r = api.get(path)
        assert r.status_code == 200, r.text
        assert r.json()["jaeger_url"] == link, path


def test_jaeger_link_setting(monkeypatch):
    monkeypatch.delenv("CHAINOTEL_JAEGER_UI_URL", raising=False)
    tid = "0af7651916cd43dd8448eb211c80319c"
    assert jaeger_url(AnalyzerSettings(), tid) is None
    monkeypatch.setenv("CHAINOTEL_JAEGER_UI_URL", "")  # empty = unset, as for OTEL_* variables
    assert jaeger_url(AnalyzerSettings(), tid) is None
    monkeypatch.setenv("CHAINOTEL_JAEGER_UI_URL", "https://tracing.example.com")
    assert jaeger_url(AnalyzerSettings(), tid) == f"https://tracing.example.com/trace/{tid}"
    with pytest.raises(ValidationError, match="jaeger_ui_url"):
        AnalyzerSettings(jaeger_ui_url="localhost:16686")  # no scheme: a browser could not follow it


def test_window_queries_see_a_whole_trace_whose_spans_arrive_late(api):
    # the root (gateway, 1 s) arrives first; an asynchronous consumer span 70 s later, in another
    # request: two rows of the per-trace index, the second one starting after the window's end
    t0 = 1_300_000_000
    tid = f"{0xC0FFEE:08x}{t0:016x}{1:08x}"
    root = {"traceId": tid, "spanId": "00000000000000a1", "name": "POST /jobs", "kind": 2,
            "startTimeUnixNano": str(t0 * 10**9), "endTimeUnixNano": str((t0 + 1) * 10**9),
            "attributes": [{"key": "chain.id", "value": {"stringValue": "E2"}}]}  # fmt: skip
    late = {"traceId": tid, "spanId": "00000000000000a2", "parentSpanId": "00000000000000a1", "name": "job",
            "kind": 5, "startTimeUnixNano": str((t0 + 70) * 10**9), "endTimeUnixNano": str((t0 + 75) * 10**9),
            "status": {"code": 2}}  # fmt: skip
    before = {**root, "traceId": f"{0xC0FFEE:08x}{t0:016x}{2:08x}", "startTimeUnixNano": str((t0 - 10) * 10**9)}

    def body(service, spans):
        return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                                   "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}  # fmt: skip

    assert api.post("/v1/traces", json=body("gateway", [root, before])).status_code == 200
    assert api.post("/v1/traces", json=body("worker", [late])).status_code == 200
    perf = api.get("/api/v1/analytics/performance/real-time", params={"since": t0, "until": t0 + 60}).json()
    assert [(c["chain"], c["traces"]) for c in perf["chains"]] == [("E2", 1)]  # the one before t0 is outside
    assert perf["avg_duration_ms"] == pytest.approx(75_000.0) and perf["error_rate"] == 1.0


def test_anomaly_detection_flags_a_latency_spike_against_its_own_history(api):
    t0 = 1_600_000_020  # minute-aligned windows below: 1_600_000_020 is 20 s into a minute
    for minute in range(13):
        durations = [1000] * 5 if minute == 12 else [100 + 10 * (minute % 3)] * 5
        body = _otlp_chain_traces("C1", t0 + 60 * minute, durations, [False] * 5)
        assert api.post("/v1/traces", json=body).status_code == 200
    # the first minute of a chain and its services: nothing to compare with, so no anomaly
    first = api.get("/api/v1/analytics/anomalies/detect", params={"until": t0 - 20 + 60, "window_minutes": 1})
    assert first.status_code == 200 and first.json()["anomalies"] == []
    until = t0 - 20 + 13 * 60  # end of the 13th minute
    r = api.get("/api/v1/analytics/anomalies/detect", params={"until": until, "window_minutes": 1})
    assert r.status_code == 200, r.text
    found = {(a["scope"], a["key"], a["metric"]) for a in r.json()["anomalies"]}
    assert ("chain", "C1", "latency_p95_ms") in found
    assert ("service", "backend", "latency_p95_ms") in found
    assert not any(metric == "throughput_per_min" for _, _, metric in found)
    calm = api.get("/api/v1/analytics/anomalies/detect", params={"until": until - 60, "window_minutes": 1}).json()
    assert not [a for a in calm["anomalies"] if a["key"] in ("C1", "backend", "gateway")]


def test_openapi_lists_the_analysis_endpoints(api):
    doc = api.get("/openapi.json").json()
    for path in ("/api/v1/traces/{instance_id}/critical-path", "/api/v1/analytics/bottlenecks",
                 "/api/v1/analytics/chains/health/overview", "/api/v1/analytics/anomalies/detect",
                 "/api/v1/chains/{chain}/dependency-graph", "/api/v1/analytics/services/{service}/impact"):  # fmt: skip
        assert path in doc["paths"], path
    assert "self_time_ns" in doc["components"]["schemas"]["SpanTimes"]["properties"]
    assert "jaeger_url" in doc["components"]["schemas"]["CriticalPathResponse"]["properties"]
