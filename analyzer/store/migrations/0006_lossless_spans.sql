-- Everything in a span is kept: each chain_history row also holds its span, resource and scope as the
-- OTLP protobuf messages they arrived as (opentelemetry-proto trace/v1/trace.proto), every field:
--
-- Column          holds (binary protobuf, as String)
-- span_otlp       the Span message without what the row's own columns hold exactly (trace_id, span_id,
--                 start time, a parent_span_id that is not all zero): trace_state, flags, name, kind,
--                 end time, attributes with their
--                 OTLP types (string, bool, int, double, bytes, array, kvlist), events (time, name,
--                 attributes), links (trace ID, span ID, trace_state, flags, attributes), status code and
--                 message, and every dropped_*_count
-- resource_otlp   a ResourceSpans message without its scope_spans: the resource (attributes, dropped
--                 count) and schema_url
-- scope_otlp      a ScopeSpans message without its spans: the instrumentation scope (name, version,
--                 attributes, dropped count) and schema_url
--
-- GET /api/v1/traces/{trace_id} gives them back as OTLP/JSON (analyzer/model/otlp_trace.py). The
-- other columns stay what queries and views read. Rows stored before this migration have '' here and
-- are given back from those columns (attribute values then as strings).
-- Compared with the OpenTelemetry Collector's ClickHouse exporter (otel_traces: Events.*/Links.* Nested
-- columns, attributes as Map(String, String)) and Jaeger v2's ClickHouse schema (typed attribute arrays
-- per value type): the messages keep the OTLP types and every field, future ones included, without a
-- column per field; the price is that events and links are not SQL columns. Resource and scope bytes
-- repeat on each row of a request and compress to almost nothing (ZSTD).
ALTER TABLE {local:chain_history}{on_cluster}
    ADD COLUMN IF NOT EXISTS span_otlp String CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS resource_otlp String CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS scope_otlp String CODEC(ZSTD(3));

-- On a cluster the chain_history the analyzer writes (over all shards) needs them too; on a single node this is the
-- statement above again (IF NOT EXISTS: nothing to do).
ALTER TABLE chain_history{on_cluster}
    ADD COLUMN IF NOT EXISTS span_otlp String CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS resource_otlp String CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS scope_otlp String CODEC(ZSTD(3));
