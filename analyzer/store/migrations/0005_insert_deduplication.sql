-- Retries are deduplicated by ClickHouse itself, not by the analyzer's memory.
--
-- The writer sends each OTLP request as its own INSERT with insert_deduplication_token derived from the
-- request digest (writer.py). A MergeTree table refuses a block whose token it has seen among its last
-- N inserted blocks: non_replicated_deduplication_window on one node (a log under the table's data
-- directory, so it survives a restart and is shared by every process writing to that server), the
-- replicated_deduplication_window(_seconds) hashes in ClickHouse Keeper on a cluster.
-- Window: the last 100 000 INSERTs of each table (one INSERT per request), on a cluster also at most
-- 3 600 s old. A retry later than that is stored again.
--
-- Every table an INSERT reaches carries the same window: with deduplicate_blocks_in_dependent_materialized_views
-- (sent by the writer) each view's block gets a token derived from the request's, so a retry after a crash
-- that left chain_history written but a view not is refused by chain_history and stored by that view only
-- (the view is healed), and a view that already has the block refuses it too (never counted twice).
ALTER TABLE {local:chain_history}{on_cluster} MODIFY SETTING non_replicated_deduplication_window = 100000,
    replicated_deduplication_window = 100000, replicated_deduplication_window_seconds = 3600;
ALTER TABLE {local:chain_traces}{on_cluster} MODIFY SETTING non_replicated_deduplication_window = 100000,
    replicated_deduplication_window = 100000, replicated_deduplication_window_seconds = 3600;
ALTER TABLE {local:chain_metrics}{on_cluster} MODIFY SETTING non_replicated_deduplication_window = 100000,
    replicated_deduplication_window = 100000, replicated_deduplication_window_seconds = 3600;

-- chain_requests: one row per stored request (per shard on a cluster), filled by chain_requests_mv.
-- The writer looks a batch's digests up here (primary key) to tell a sender "already stored", and the
-- importer reports it; ClickHouse's deduplication above is what keeps the rows single. Read with
--
--   SELECT request_digest, sum(span_count) FROM chain_requests WHERE request_digest IN (...) GROUP BY request_digest
CREATE TABLE IF NOT EXISTS {local:chain_requests}{on_cluster}
(
    request_digest UInt64,
    span_count     SimpleAggregateFunction(sum, UInt64),
    ingested_at    SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = {replicated:AggregatingMergeTree}
PARTITION BY toDate(ingested_at)
ORDER BY request_digest
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 100000,
    replicated_deduplication_window = 100000, replicated_deduplication_window_seconds = 3600;

-- On a cluster: each shard counts the rows it stored (the view writes chain_requests_local), chain_requests
-- sums the shards at read time, so the key only matters for direct INSERTs. Nothing on a single node.
{distributed:chain_requests BY rand()};

CREATE MATERIALIZED VIEW IF NOT EXISTS chain_requests_mv{on_cluster} TO {local:chain_requests} AS
SELECT request_digest, count() AS span_count, max(ingested_at) AS ingested_at
FROM {local:chain_history}
GROUP BY request_digest;

-- The chain registry: a write of version N + 1 carries the token '<id>:<N + 1>', so of two writers that
-- both read version N, ClickHouse stores the first and refuses the second (compare-and-set; the API
-- answers the slower writer 409). On a cluster the replicated table deduplicates by default.
ALTER TABLE chain_definitions{on_cluster} MODIFY SETTING non_replicated_deduplication_window = 100000;
