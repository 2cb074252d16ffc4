"""Migration 0022 renames ``chain_history.chain_id``/``request_id`` and ``chain_traces.chain_id`` to
``instance_id``/``span_id`` on a store that has rows: they read back the same (spans, per-trace index,
RED metrics), the reader serves them under the same names as before, and a new INSERT through the
writer fills the views again. A start cut short anywhere in the migration applies it whole at the next
start.

chDB store at the previous migration (0021), rows inserted as the previous writer did (its Arrow table,
columns under their old names), then the real :func:`migrate`.
"""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from chainotel_analyzer.ingest.otlp import decode_request
from chainotel_analyzer.ingest.receive import request_digest
from chainotel_analyzer.model import rows
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store import migrations
from chainotel_analyzer.store.client import open_store
from chainotel_analyzer.store.queries import ClickHouseTraceReader
from chainotel_analyzer.store.writer import SpanWriter
from tests.ingest.otlp_data import request

RENAMED_IN = 22

SPANS = (
    "SELECT toString({instance}), trace_id, {span}, parent_span_id, service_name, operation, span_kind, event_type,"
    " toUnixTimestamp64Nano(timestamp), duration_ns, chain, span_attributes, resource_attributes, span_otlp,"
    " request_digest, insert_batch, ingested_at FROM chain_history ORDER BY trace_id, {span}"
)
TRACES = (
    "SELECT trace_id, toString(any({instance})), min(start), max(end), sum(span_count), sum(error_count), max(chain),"
    " argMinMerge(root), max(synthetic) FROM chain_traces GROUP BY trace_id ORDER BY trace_id"
)
METRICS = (
    "SELECT minute, chain, service_name, operation, synthetic, sum(calls), sum(errors), sum(duration_sum_ns),"
    " max(duration_max_ns), quantilesTDigestMerge(0.5, 0.99)(duration_quantiles) FROM chain_metrics"
    " GROUP BY minute, chain, service_name, operation, synthetic ORDER BY ALL"
)
OLD = {"instance": "chain_id", "span": "request_id"}
NEW = {"instance": "instance_id", "span": "span_id"}


def _body(service: str, start_ns: int) -> bytes:
    """An OTLP request of two three-span traces of ``service``; a CLIENT span of the first failed."""
    req = request(n_traces=2, spans_per_trace=3, service=service, start_ns=start_ns)
    req.resource_spans[0].scope_spans[0].spans[1].status.code = 2
    return req.SerializeToString()


def _read(client, sql: str, names: dict[str, str]) -> list[tuple]:
    return client.query(sql.format(**names), column_formats={"span_otlp": "bytes"}).result_rows


def _as_uuid(trace_id: str) -> str:
    return str(uuid.UUID(trace_id))


@pytest.mark.parametrize("cut", range(len(next(m for m in migrations.load_migrations() if m.version == RENAMED_IN).statements) + 1))
def test_rename_keeps_the_rows_and_the_views_fill_again(tmp_path, monkeypatch, cut):
    """``cut``: how many of the migration's statements a previous start ran before it stopped (0: a clean
    upgrade; all of them: stopped before the version was recorded)."""
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", batch_max_wait_s=0)
    store = open_store(settings)
    try:
        every = migrations.load_migrations()
        monkeypatch.setattr(migrations, "load_migrations", lambda layout=migrations.SINGLE_NODE: [m for m in every if m.version < RENAMED_IN])
        migrations.migrate(store.client)
        monkeypatch.undo()
        # what the previous writer inserted: the Arrow table of the row format with the columns' old names
        body = _body("checkout", 1_700_000_000_000_000_000)
        old_table = rows.insert_table([(request_digest(body), decode_request(ExportTraceServiceRequest.FromString(body)))], batch=7)
        store.client.insert_arrow("chain_history", old_table.rename_columns(
            ["request_id" if name == "span_id" else name for name in old_table.column_names]))
        before = [_read(store.client, sql, OLD) for sql in (SPANS, TRACES, METRICS)]
        assert len(before[0]) == 6 and len(before[1]) == 2 and before[2]

        for statement in next(m for m in every if m.version == RENAMED_IN).statements[:cut]:
            store.client.command(statement)  # a start that stopped there
        assert RENAMED_IN in migrations.migrate(store.client)
        assert migrations.migrate(store.client) == []

        columns = dict(store.client.query(
            "SELECT table, groupArray(name) FROM system.columns WHERE database = currentDatabase()"
            " AND table IN ('chain_history', 'chain_traces') GROUP BY table").result_rows)  # fmt: skip
        for table in ("chain_history", "chain_traces"):
            assert "instance_id" in columns[table] and "chain_id" not in columns[table]
        assert "span_id" in columns["chain_history"] and "request_id" not in columns["chain_history"]
        assert [_read(store.client, sql, NEW) for sql in (SPANS, TRACES, METRICS)] == before

        # the reader serves the old rows under the names it served before
        reader = ClickHouseTraceReader(store.client)
        for trace_id, instance_id, *_ in before[1]:
            span_ids = sorted(r[2] for r in before[0] if r[1] == trace_id)
            assert instance_id == _as_uuid(trace_id)
            events = reader.trace_events(trace_id)
            assert {e["instance_id"] for e in events} == {instance_id}
            assert sorted(e["span_id"] for e in events) == span_ids
            assert sorted(s.span_id for s in reader.trace_spans(trace_id)) == span_ids
            assert sorted(s.span_id for s in reader.trace_otlp(trace_id)) == span_ids
            assert sorted(reader.span_attributes([trace_id], ("chain.id",))) == span_ids

        # a new INSERT through the writer: the column DEFAULT and both views fill as before
        writer = SpanWriter(store, settings)
        writer.start()
        try:
            new_body = _body("payments", 1_700_000_060_000_000_000)
            assert writer.submit(request_digest(new_body), decode_request(ExportTraceServiceRequest.FromString(new_body))).result(30)
        finally:
            writer.stop()
        spans, traces, metrics = (_read(store.client, sql, NEW) for sql in (SPANS, TRACES, METRICS))
        old_traces = {t[0] for t in before[1]}
        assert [s for s in spans if s[1] in old_traces] == before[0]
        added = [s for s in spans if s[1] not in old_traces]
        assert len(added) == 6 and all(s[0] == _as_uuid(s[1]) and len(s[2]) == 16 for s in added)
        assert [t for t in traces if t[0] in old_traces] == before[1]
        added_traces = [t for t in traces if t[0] not in old_traces]
        assert [(t[1], t[4], t[6], t[7]) for t in added_traces] == [
            (_as_uuid(t[0]), 3, "B3", ("payments", "POST /orders")) for t in added_traces]  # fmt: skip
        assert len(added_traces) == 2 and sorted(t[5] for t in added_traces) == [0, 1]  # the failed span's trace
        assert [m for m in metrics if m[2] == "checkout"] == before[2]
        assert sum(m[5] for m in metrics if m[2] == "payments") == 6
        assert sum(m[6] for m in metrics if m[2] == "payments") == 1
    finally:
        store.close()
