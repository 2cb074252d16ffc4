-- chain_metrics: RED metrics per minute x chain x service x operation, filled by chain_metrics_mv
-- from every INSERT into chain_history. Several rows may hold the same key until merges combine
-- them: always aggregate when reading, e.g.
--
--   SELECT minute, chain, service_name, operation,
--          sum(calls) AS calls, sum(errors) AS errors,
--          sum(duration_sum_ns) / sum(calls) AS avg_ns, max(duration_max_ns) AS max_ns,
--          quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(duration_quantiles) AS q_ns   -- [p50, p90, p95, p99] in ns
--   FROM chain_metrics WHERE minute >= {since:DateTime} GROUP BY minute, chain, service_name, operation
--
-- minute: start of the minute of the span's start time (UTC); chain '' = spans with no chain.id.
-- All durations are nanoseconds. Quantiles are t-digest estimates (quantileTDigest).
CREATE TABLE IF NOT EXISTS {local:chain_metrics}{on_cluster}
(
    minute             DateTime('UTC')                              CODEC(Delta(4), ZSTD(1)),
    chain              LowCardinality(String)                       CODEC(ZSTD(1)),
    service_name       LowCardinality(String)                       CODEC(ZSTD(1)),
    operation          LowCardinality(String)                       CODEC(ZSTD(1)),
    calls              SimpleAggregateFunction(sum, UInt64)         CODEC(T64, ZSTD(1)),
    errors             SimpleAggregateFunction(sum, UInt64)         CODEC(T64, ZSTD(1)),
    duration_sum_ns    SimpleAggregateFunction(sum, UInt64)         CODEC(T64, ZSTD(1)),
    duration_max_ns    SimpleAggregateFunction(max, UInt64)         CODEC(T64, ZSTD(1)),
    duration_quantiles AggregateFunction(quantileTDigest, UInt64),
    ingested_at        SimpleAggregateFunction(max, DateTime('UTC')) CODEC(ZSTD(1))
)
ENGINE = {replicated:AggregatingMergeTree}
PARTITION BY toDate(ingested_at)
ORDER BY (chain, service_name, operation, minute)
SETTINGS ttl_only_drop_parts = 1;

-- On a cluster: the view below fills each shard's chain_metrics_local, and chain_metrics merges the states
-- of every shard at read time, so no key keeps rows together: rand() only matters for direct INSERTs.
-- Nothing on a single node.
{distributed:chain_metrics BY rand()};

CREATE MATERIALIZED VIEW IF NOT EXISTS chain_metrics_mv{on_cluster} TO {local:chain_metrics} AS
SELECT
    toStartOfMinute(timestamp)              AS minute,
    chain,
    service_name,
    operation,
    count()                                 AS calls,
    countIf(event_type = 'error')           AS errors,
    sum(duration_ns)                        AS duration_sum_ns,
    max(duration_ns)                        AS duration_max_ns,
    quantileTDigestState(duration_ns)       AS duration_quantiles,
    max(ingested_at)                        AS ingested_at
FROM {local:chain_history}
GROUP BY minute, chain, service_name, operation;
