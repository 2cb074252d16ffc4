-- The stored columns take the names the API and the code use: a chain *instance* (the trace ID as a UUID) is
-- instance_id, a span's ID is span_id; `chain` stays the chain *definition* (B3).
--
-- Column renamed                 to            holds
-- chain_history.chain_id         instance_id   the chain instance, the trace ID as a UUID (its DEFAULT from trace_id, 0001)
-- chain_history.request_id       span_id       the span ID, 16 lowercase hex characters
-- chain_traces.chain_id          instance_id   the trace's chain instance (SimpleAggregateFunction(any, UUID), 0002)
--
-- What the upgrade does: RENAME COLUMN changes the table's metadata and renames each part's column files (a
-- mutation that rewrites no data; parts not yet renamed are read under the new name meanwhile). None of these
-- columns is in a partition or sorting key, whose columns RENAME COLUMN refuses. A materialized view's query is
-- not rewritten by a rename: chain_traces_mv reads chain_history.chain_id, so it is dropped before the rename and
-- created again over the new names (as 0020 did; spans inserted between the two would miss it, which is why the
-- analyzer applies migrations at start, before it takes any OTLP request). chain_metrics_mv reads neither column
-- and stays. An analyzer of an earlier version still writing to the renamed table (during a rolling update) has
-- its INSERTs refused (no column request_id): its requests are answered 503 and the senders retry them, to be
-- stored by an updated analyzer.
--
-- Restart-safe: DROP VIEW IF EXISTS, RENAME COLUMN IF EXISTS (nothing to do for a column already renamed) and
-- CREATE ... IF NOT EXISTS, so a start interrupted anywhere in this file re-applies it whole. Both renames of a
-- table are one ALTER (one mutation).
DROP VIEW IF EXISTS chain_traces_mv{on_cluster};

ALTER TABLE {local:chain_history}{on_cluster}
    RENAME COLUMN IF EXISTS chain_id TO instance_id,
    RENAME COLUMN IF EXISTS request_id TO span_id;

-- On a cluster the chain_history the analyzer writes and reads (over all shards; its columns are metadata of its
-- own) is renamed alike; on a single node this is the statement above again (IF EXISTS: nothing to do).
ALTER TABLE chain_history{on_cluster}
    RENAME COLUMN IF EXISTS chain_id TO instance_id,
    RENAME COLUMN IF EXISTS request_id TO span_id;

ALTER TABLE {local:chain_traces}{on_cluster} RENAME COLUMN IF EXISTS chain_id TO instance_id;

ALTER TABLE chain_traces{on_cluster} RENAME COLUMN IF EXISTS chain_id TO instance_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS chain_traces_mv{on_cluster} TO {local:chain_traces} AS
SELECT
    trace_id,
    any(instance_id)                                                AS instance_id,
    min(timestamp)                                                  AS start,
    max(timestamp + toIntervalNanosecond(duration_ns))              AS end,
    count()                                                         AS span_count,
    countIf(event_type = 'error')                                   AS error_count,
    max(chain)                                                      AS chain,
    argMinState((toString(service_name), toString(operation)), (toUInt8(parent_span_id != ''), timestamp)) AS root,
    max(ingested_at)                                                AS ingested_at,
    max(toUInt8(span_attributes['chain.synthetic'] = 'true'))       AS synthetic
FROM {local:chain_history}
GROUP BY trace_id;
