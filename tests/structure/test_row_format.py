"""The row format has one owner (:mod:`chainotel_analyzer.model.rows`): the table the migrations
create holds exactly its columns, in order, with types that take what the writer inserts, and a
decoded request is exactly its decoder schema."""

from __future__ import annotations

import re

import pyarrow as pa

from chainotel_analyzer.model import rows
from tests.ingest.otlp_data import request


def clickhouse_accepts(arrow_type: pa.DataType, ch_type: str) -> bool:
    """Whether a ClickHouse column of ``ch_type`` is the one an Arrow ``arrow_type`` is meant for."""
    base = re.sub(r"^LowCardinality\((.*)\)$", r"\1", ch_type)
    if pa.types.is_string(arrow_type):
        return base == "String"
    if pa.types.is_timestamp(arrow_type):
        return base == "DateTime64(9, 'UTC')"
    if pa.types.is_uint64(arrow_type):
        return base == "UInt64"
    if pa.types.is_map(arrow_type):
        return re.fullmatch(r"Map\((LowCardinality\()?String\)?, String\)", base) is not None
    return False


def test_migrated_chain_history_has_exactly_the_owners_columns(tmp_path):
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}"))
    try:
        migrate(store.client)
        table = store.client.query(
            "SELECT name, type, default_kind FROM system.columns WHERE database = currentDatabase()"
            " AND table = 'chain_history' ORDER BY position"
        ).result_rows
    finally:
        store.close()
    assert [name for name, _, _ in table] == [c.name for c in rows.CHAIN_HISTORY]
    by_name = {c.name: c for c in rows.CHAIN_HISTORY}
    for name, ch_type, default_kind in table:
        column = by_name[name]
        if column.filled_by == "default":
            assert default_kind == "DEFAULT", f"{name}: the owner says ClickHouse fills it, the DDL has no DEFAULT"
        else:
            assert clickhouse_accepts(column.arrow, ch_type), f"{name}: Arrow {column.arrow} vs ClickHouse {ch_type}"


def test_decoded_and_inserted_tables_follow_the_owners_schemas():
    from chainotel_analyzer.ingest.otlp import decode_request

    decoded = decode_request(request(n_traces=1, spans_per_trace=2))
    assert decoded.table.schema.equals(rows.DECODED_SCHEMA)
    table = rows.insert_table([(7, decoded), (8, rows.DecodedSpans())])
    assert table.schema.equals(rows.INSERT_SCHEMA)
    assert table.column("request_digest").to_pylist() == [7, 7]


def test_span_select_lists_one_expression_per_span_field():
    from chainotel_analyzer.model.span import Span

    expressions = [e for e in re.split(r",\s*(?![^()]*\))", rows.SPAN_SELECT)]
    assert len(expressions) == len(Span._fields)
