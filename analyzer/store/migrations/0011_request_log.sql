-- Several OTLP requests per INSERT, each still stored once: the writer inserts a batch of requests as
-- one INSERT (one part per table and view instead of one per request) and keeps, per request, a row
-- in chain_request_log saying which batch carried it and whether that batch is known to be stored
-- whole — in chain_history and in every table fed by its views. See analyzer/store/writer.py.
--
-- insert_batch (chain_history): the random 63-bit ID of the INSERT (batch) that wrote the row; 0 for
-- rows written before this migration (one INSERT per request, its deduplication token derived from
-- request_digest). The batch's INSERT carries insert_deduplication_token 'otlp-batch-<16 hex>' of it,
-- so re-inserting a batch's rows read back from chain_history is refused by chain_history and stored
-- by each view that lacks them (how a batch cut short by a crash is completed).
ALTER TABLE {local:chain_history}{on_cluster} ADD COLUMN IF NOT EXISTS insert_batch UInt64 CODEC(ZSTD(1));

-- On a cluster the chain_history the analyzer writes (over all shards) needs it too; on a single node this is
-- the statement above again (IF NOT EXISTS: nothing to do).
ALTER TABLE chain_history{on_cluster} ADD COLUMN IF NOT EXISTS insert_batch UInt64 CODEC(ZSTD(1));

-- chain_request_log: per request and batch that carried it, the batch's state:
--
-- Column          meaning
-- request_digest  the request (chain_history.request_digest: BLAKE2b of its decompressed body, 63 bits)
-- insert_batch    the batch (chain_history.insert_batch)
-- span_count      the request's spans in that batch
-- state           0 pending: written before the batch's INSERT (the INSERT may not have happened, or
--                   may have been cut short);
--                 1 stored: the INSERT returned, or was completed later — chain_history and its views
--                   hold the request once;
--                 2 abandoned: the batch's INSERT left no row in chain_history (it failed or never
--                   ran); the request is not stored by it
-- logged_at       when the row was written (server clock)
--
-- Read with GROUP BY request_digest, insert_batch and max(state) (a batch moves from 0 to 1 or 2, never
-- back); ReplacingMergeTree(state) folds the rows of a batch into its last state as parts merge.
-- On a cluster one replica set over every node (like chain_definitions): each node answers locally.
-- Rows expire after 7 days, the longest deduplication window (dedup_window_s) that is honoured.
CREATE TABLE IF NOT EXISTS chain_request_log{on_cluster}
(
    request_digest UInt64,
    insert_batch   UInt64,
    span_count     UInt32,
    state          UInt8,
    logged_at      DateTime('UTC') DEFAULT now()
)
ENGINE = {replicated_everywhere:ReplacingMergeTree(state)}
PARTITION BY toDate(logged_at)
ORDER BY (request_digest, insert_batch)
TTL logged_at + toIntervalDay(7)
SETTINGS ttl_only_drop_parts = 1;

-- chain_requests (migration 0005) is no longer written: the log above says what is stored. Its view
-- goes (one view less for every INSERT); the table stays for the requests stored before this
-- migration, which the writer still looks up within dedup_window_s, and may be dropped after that.
DROP VIEW IF EXISTS chain_requests_mv{on_cluster};
