"""The console's pure parts: time ranges from the query string, SVG charts, the waterfall's order and
critical sections, number formats."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from chainotel_analyzer.api.console import charts, fmt
from chainotel_analyzer.api.console.timerange import TimeRange
from chainotel_analyzer.api.console.waterfall import span_details, waterfall

NOW = 1_764_590_000 * 10**9


def test_time_ranges_presets_custom_and_errors():
    tr = TimeRange.from_query(None, None, None, NOW)
    assert (tr.key, tr.until_ns - tr.since_ns, tr.until_ns) == ("1h", 3600 * 10**9, NOW)
    assert TimeRange.from_query("15m", None, None, NOW).params() == {"range": "15m"}
    custom = TimeRange.from_query("custom", "2025-12-01T10:00", "2025-12-01T11:30:15", NOW)  # datetime-local = UTC
    assert custom.since_ns == 1_764_583_200 * 10**9 and custom.seconds == 5415
    assert TimeRange.from_query(**{"range_": None, "since": "1764583200", "until": None}, now_ns=NOW).key == "custom"
    assert custom.params() == {"range": "custom", "since": "2025-12-01T10:00:00", "until": "2025-12-01T11:30:15"}
    assert custom.previous().until_ns == custom.since_ns and custom.previous().seconds == custom.seconds
    assert TimeRange.from_query("24h", None, None, NOW).buckets <= 30
    for bad in (("2h", None, None), ("custom", None, None), ("custom", "2025-12-01T11:00", "2025-12-01T10:00"),
                ("custom", "yesterday", None)):  # fmt: skip
        with pytest.raises(HTTPException) as err:
            TimeRange.from_query(*bad, now_ns=NOW)
        assert err.value.status_code == 422


def test_charts_draw_gaps_sla_and_escape_text():
    svg = str(charts.time_chart("p95 <b>", NOW, 60, 10, [("p95", {0: 5.0, 1: 7.0, 5: 3.0, 7: 2.0, 8: 4.0})], "ms", sla=6.0))
    assert svg.count("<path") == 2 and svg.count("<circle") == 1  # runs 0–1 and 7–8, lone point 5
    assert 'class="sla"' in svg and "<b>" not in svg and "p95 &lt;b&gt;" in svg
    spark = str(charts.sparkline([None, None], None, "empty"))
    assert "<path" not in spark and "sla" not in spark
    graph = str(charts.service_graph(
        [{"service": "a", "spans": 2, "errors": 0}, {"service": "b", "spans": 2, "errors": 1}],
        [{"caller": "a", "callee": "b", "calls": 3}, {"caller": "b", "callee": "a", "calls": 1}], {"b": 0.5},
        href=lambda s: f"/ui/services/{s}"))  # fmt: skip
    assert graph.count('class="node') == 2 and "3 calls" in graph and "50% of critical path" in graph
    assert charts._layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")]) == [["a"], ["b"], ["c"]]


def _span(sid, parent, start, dur, crit=0):
    return {"span_id": sid, "parent_span_id": parent, "service": "s", "operation": sid, "start_unix_nano": start,
            "duration_ns": dur, "self_time_ns": 0, "critical_time_ns": crit}  # fmt: skip


def test_waterfall_lists_spans_in_tree_order_with_their_critical_sections():
    cp = {"spans": [_span("r", "", 0, 100), _span("b", "r", 50, 40), _span("a", "r", 10, 30), _span("a1", "a", 15, 5),
                    _span("orphan", "gone", 20, 10)],
          "roots": [{"sections": [{"span_id": "r", "start_unix_nano": 0, "end_unix_nano": 10},
                                  {"span_id": "b", "start_unix_nano": 50, "end_unix_nano": 90}]}]}  # fmt: skip
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
                              "scopeSpans": [{"scope": {"name": "lib", "version": "2"}, "spans": [{
        "spanId": "a", "kind": 3, "status": {"code": 2, "message": "boom"}, "traceState": "k=v", "flags": 1,
        "attributes": [{"key": "n", "value": {"intValue": "3"}}, {"key": "ok", "value": {"boolValue": False}},
                       {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}}],
        "events": [{"name": "exception", "timeUnixNano": "12", "attributes": [
            {"key": "exception.type", "value": {"stringValue": "E"}}]}],
        "links": [{"traceId": "ab" * 16, "spanId": "cd" * 8, "traceState": "t=1", "attributes": []}],
        "droppedEventsCount": 4}]}]}]}  # fmt: skip
    details = span_details(doc)
    view = waterfall(cp, details)
    assert [(r.span_id, r.depth) for r in view.rows] == [("r", 0), ("a", 1), ("a1", 2), ("b", 1), ("orphan", 0)]
    by_id = {r.span_id: r for r in view.rows}
    assert by_id["b"].sections == [(50.0, 40.0)] and by_id["b"].critical and not by_id["a"].critical
    a = by_id["a"].details
    assert by_id["a"].error and a["events"][0]["attributes"] == [("exception.type", "E", "string")]
    assert a["events"][0]["time_ns"] == 12 and a["links"][0]["trace_id"] == "ab" * 16 and by_id["r"].details == {}
    assert a["attributes"] == [("n", "3", "int"), ("ok", "false", "bool"), ("tags", '["x"]', "array")]
    assert (a["kind"], a["status_code"], a["status_message"], a["trace_state"], a["flags"]) == ("client", "error", "boom", "k=v", 1)
    assert a["scope"] == {"name": "lib", "version": "2", "attributes": []} and a["resource"] == [("service.name", "s", "string")]
    assert a["dropped"] == {"events": 4} and a["links"][0]["trace_state"] == "t=1"


def test_number_formats():
    assert [fmt.ms(v) for v in (None, 0.421, 12.34, 1250, 12_500)] == ["–", "0.42 ms", "12.3 ms", "1.25 s", "12.5 s"]
    assert fmt.pct(0.975) == "97.5%" and fmt.clock(1_764_590_000_123_000_000) == "2025-12-01 11:53:20.123"


def _health_row(chain, status, p95_ms, traces=10, sla=None):
    return {"chain": chain, "status": status, "p95_ms": p95_ms, "traces": traces, "max_duration_ms": sla, "score": None}


def test_overview_rows_filter_sort_and_draw_each_chains_buckets():
    from chainotel_analyzer.api.console.pages import overview_rows

    chains = [_health_row("A1", "healthy", 5.0), _health_row("B1", "unhealthy", 9.0, sla=8.0),
              _health_row("B2", "no_data", None, traces=0)]  # fmt: skip
    categories = {"A1": "data_flow", "B1": "user", "B2": "user"}
    buckets = [{"chain": "B1", "bucket": 0, "p95_ms": 9.0}, {"chain": "B1", "bucket": 2, "p95_ms": 4.0},
               {"chain": "A1", "bucket": 1, "p95_ms": 5.0}]  # fmt: skip
    rows = overview_rows(chains, categories, buckets, 3, None, "status", "asc")
    assert [r["chain"] for r in rows] == ["B1", "A1", "B2"]  # worst first
    assert [r["category"] for r in rows] == ["user", "data_flow", "user"]
    b1, a1 = str(rows[0]["spark"]), str(rows[1]["spark"])
    assert b1.count("<circle") == 2 and 'class="sla"' in b1  # buckets 0 and 2, a gap at 1
    assert a1.count("<circle") == 1 and "sla" not in a1
    assert "<path" not in str(rows[2]["spark"]) and "<circle" not in str(rows[2]["spark"])
    # a missing value sorts after the others ascending; desc reverses the whole order
    assert [r["chain"] for r in overview_rows(chains, categories, buckets, 3, None, "p95_ms", "desc")] == ["B2", "B1", "A1"]
    assert [r["chain"] for r in overview_rows(chains, categories, buckets, 3, None, "p95_ms", "asc")] == ["A1", "B1", "B2"]
    assert [r["chain"] for r in overview_rows(chains, categories, buckets, 3, "user", "chain", "asc")] == ["B1", "B2"]


def test_failure_notice_says_what_the_api_would_without_internals():
    from clickhouse_connect.driver.exceptions import OperationalError

    from chainotel_analyzer.api.console.pages import failure_notice

    assert "404: unknown chain &#39;Z9&#39;" in failure_notice(HTTPException(404, "unknown chain 'Z9'"))
    assert "the store is unreachable; retry later" in failure_notice(OperationalError("http://10.0.0.1:8123 refused"))
    internal = failure_notice(RuntimeError("SELECT secret FROM x"))
    assert "internal error" in internal and "secret" not in internal and 'role="alert"' in internal


def test_a_streamed_page_whose_second_part_fails_says_so_and_ends():
    import asyncio

    from clickhouse_connect.driver.exceptions import OperationalError

    from chainotel_analyzer.api.console.pages import _streamed
    from chainotel_analyzer.api.console.timerange import form_time

    def store_gone():
        raise OperationalError("connection refused")

    tr = TimeRange.from_query("1h", None, None, NOW)
    top = dict(title="Chains", path="/ui/", tr=tr, base_params={}, headers=[], category=None, refresh=0,
               form_time=form_time, range_query="range=1h")  # fmt: skip
    response = _streamed("overview.html", top, store_gone)

    async def body():
        return [chunk async for chunk in response.body_iterator]

    head, failed, tail = asyncio.run(body())
    assert response.status_code == 200 and "<h1>Chains</h1>" in head and "<!--chainotel:rest-->" not in head + tail
    assert 'role="alert"' in failed and "the store is unreachable; retry later" in failed
    assert tail.rstrip().endswith("</html>")
