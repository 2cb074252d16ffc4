-- synthetic: the aggregate tables tell the traces of synthetic probes from real traffic.
--
-- A probe's trace carries the span attribute chain.synthetic=true on every span (the distro writes it
-- from the probe's baggage; docs/monitoring.md). The read side leaves synthetic traces out of the SLA,
-- health, bottleneck and RED figures of real traffic unless asked to include them
-- (include_synthetic=true on the analysis endpoints).
--
-- Column                           meaning
-- chain_traces.synthetic           1 when any span of the trace has chain.synthetic = 'true'
--                                  (SimpleAggregateFunction(max): a trace that arrived in several INSERTs
--                                  is synthetic once any of its rows is); read with max(synthetic)
-- chain_metrics.synthetic          1 for the spans marked chain.synthetic = 'true'; part of the sorting key,
--                                  so a minute's synthetic and real spans are two rows that merges never mix
--
-- What the upgrade does: both columns are added and read 0 for every row stored before (chain_metrics'
-- column has no explicit DEFAULT because a column with one may not join a sorting key), so older rows
-- count as real traffic: probe traces stored before the upgrade stay in the figures (the alert evaluation
-- still leaves out the traces named in probe_results, older ones included). chain_metrics' sorting key gets
-- synthetic at its end (allowed for a column added by the same ALTER; the primary key stays, no part is
-- rewritten). The two materialized views are dropped and created again with the new column (ALTER of a
-- view's query is experimental in ClickHouse); spans inserted between the two statements would miss the
-- views, which is why the analyzer applies migrations at start, before it takes any OTLP request.
-- Nothing in chain_history changes.
ALTER TABLE {local:chain_traces}{on_cluster}
    ADD COLUMN IF NOT EXISTS synthetic SimpleAggregateFunction(max, UInt8) DEFAULT 0 CODEC(ZSTD(1));

-- On a cluster the chain_traces the analyzer reads (over all shards) needs it too; on a single node this is the
-- statement above again (IF NOT EXISTS: nothing to do).
ALTER TABLE chain_traces{on_cluster}
    ADD COLUMN IF NOT EXISTS synthetic SimpleAggregateFunction(max, UInt8) DEFAULT 0 CODEC(ZSTD(1));

ALTER TABLE {local:chain_metrics}{on_cluster}
    ADD COLUMN IF NOT EXISTS synthetic UInt8 CODEC(ZSTD(1)),
    MODIFY ORDER BY (chain, service_name, operation, minute, synthetic);

ALTER TABLE chain_metrics{on_cluster}
    ADD COLUMN IF NOT EXISTS synthetic UInt8 CODEC(ZSTD(1));

DROP VIEW IF EXISTS chain_traces_mv{on_cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS chain_traces_mv{on_cluster} TO {local:chain_traces} AS
SELECT
    trace_id,
    any(chain_id)                                                   AS chain_id,
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

DROP VIEW IF EXISTS chain_metrics_mv{on_cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS chain_metrics_mv{on_cluster} TO {local:chain_metrics} AS
SELECT
    toStartOfMinute(timestamp)                                      AS minute,
    chain,
    service_name,
    operation,
    toUInt8(span_attributes['chain.synthetic'] = 'true')            AS synthetic,
    count()                                                         AS calls,
    countIf(event_type = 'error')                                   AS errors,
    sum(duration_ns)                                                AS duration_sum_ns,
    max(duration_ns)                                                AS duration_max_ns,
    quantileTDigestState(duration_ns)                               AS duration_quantiles,
    max(ingested_at)                                                AS ingested_at
FROM {local:chain_history}
GROUP BY minute, chain, service_name, operation, synthetic;
