-- chain_traces: a small per-trace index, so a trace lookup does not scan chain_history.
-- Filled by chain_traces_mv from every INSERT into chain_history. One trace may have several rows
-- (one per INSERT it arrived in, until background merges combine them): always read with GROUP BY:
--
--   SELECT trace_id, any(chain_id) AS chain_id, min(start) AS start, max(end) AS end,
--          sum(span_count) AS span_count, sum(error_count) AS error_count, max(chain) AS chain,
--          argMinMerge(root) AS root          -- tuple (service_name, operation) of the root span
--   FROM chain_traces WHERE trace_id = {trace_id:String} GROUP BY trace_id
--
-- start/end are span start/end (DateTime64(9) UTC); `root` is the span without parent that starts
-- first, or the earliest span when the trace has no root (yet).
CREATE TABLE IF NOT EXISTS {local:chain_traces}{on_cluster}
(
    trace_id    String                                                  CODEC(ZSTD(1)),
    chain_id    SimpleAggregateFunction(any, UUID)                      CODEC(ZSTD(1)),
    start       SimpleAggregateFunction(min, DateTime64(9, 'UTC'))      CODEC(ZSTD(1)),
    end         SimpleAggregateFunction(max, DateTime64(9, 'UTC'))      CODEC(ZSTD(1)),
    span_count  SimpleAggregateFunction(sum, UInt64)                    CODEC(T64, ZSTD(1)),
    error_count SimpleAggregateFunction(sum, UInt64)                    CODEC(T64, ZSTD(1)),
    chain       SimpleAggregateFunction(max, LowCardinality(String))    CODEC(ZSTD(1)),
    root        AggregateFunction(argMin, Tuple(String, String), Tuple(UInt8, DateTime64(9, 'UTC'))),
    ingested_at SimpleAggregateFunction(max, DateTime('UTC'))           CODEC(ZSTD(1)),
    INDEX idx_start start TYPE minmax GRANULARITY 1
)
ENGINE = {replicated:AggregatingMergeTree}
PARTITION BY toDate(ingested_at)
ORDER BY trace_id
SETTINGS ttl_only_drop_parts = 1;

-- On a cluster: the view below fills each shard's chain_traces_local from the spans stored on that shard
-- (all spans of a trace, see 0001), and chain_traces reads every shard; a trace lookup reads one shard
-- (same sharding key, optimize_skip_unused_shards). Nothing on a single node.
{distributed:chain_traces BY cityHash64(trace_id)};

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
    max(ingested_at)                                                AS ingested_at
FROM {local:chain_history}
GROUP BY trace_id;

-- Migration 0022 renamed chain_id to instance_id here and in chain_traces_mv (the statements above stay as
-- they were applied).
