-- chain_history: one row per span, written only by the analyzer's batching writer.
--
-- Column                meaning
-- chain_id              the chain instance: the trace ID as a UUID (trace 0123..ef -> 01234567-89ab-cdef-...),
--                       computed by its DEFAULT from trace_id
-- trace_id              trace ID, 32 lowercase hex characters
-- request_id            span ID, 16 lowercase hex characters
-- parent_span_id        parent span ID (16 hex), '' for a root span
-- service_name          resource attribute service.name ('unknown_service' if absent, as the SDK does)
-- operation             span name
-- span_kind             'unspecified' | 'internal' | 'server' | 'client' | 'producer' | 'consumer'
-- event_type            'error' when status is ERROR, else 'complete'
-- timestamp             span start, DateTime64(9) UTC (ns precision)
-- duration_ns           end - start in nanoseconds (0 if end < start)
-- endpoint              span attribute http.route, else the span name
-- user_id               span attribute enduser.id, else ''
-- chain                 chain definition ID (A1..E7) from span attribute chain.id, else ''
-- category              chain.category attribute, else the catalog category of `chain`, else ''
-- status_code           'unset' | 'ok' | 'error'
-- status_message        span status message
-- error_context         from the span's "exception" events: "<type>: <message>\n<stacktrace>", events joined by "\n---\n"
-- peer_service          for client/producer spans: peer.service, else server.address / net.peer.name, else ''
-- scope_name            instrumentation scope name
-- span_attributes       all span attributes as strings (ints/doubles/bools as text, arrays/kvlists as JSON)
-- resource_attributes   all resource attributes, same encoding
-- ingested_at           when the row was inserted (DEFAULT now(), UTC seconds, one value per INSERT);
--                       retention (TTL) counts from here
-- request_digest        64-bit digest of the OTLP request the row came in (no-duplicates-on-retry, see writer.py)
--
-- Partitioned by ingest day: one INSERT writes one part (old or skewed span timestamps never fan out
-- into many partitions), and retention drops whole parts (ttl_only_drop_parts). Queries by span time
-- are pruned by the primary key (chain, service_name, timestamp) and the minmax index on timestamp;
-- trace lookups by the bloom filter on trace_id, or better through chain_traces (0002).
-- Retention: the TTL (ingested_at + CHAINOTEL_RETENTION_DAYS) is set at start by the migrations
-- runner (ALTER TABLE ... MODIFY TTL / REMOVE TTL), not here, because it is configuration.
CREATE TABLE IF NOT EXISTS {local:chain_history}{on_cluster}
(
    chain_id            UUID DEFAULT toUUIDOrZero(concat(substring(trace_id, 1, 8), '-', substring(trace_id, 9, 4), '-',
                            substring(trace_id, 13, 4), '-', substring(trace_id, 17, 4), '-', substring(trace_id, 21, 12)))
                                                        CODEC(ZSTD(1)),
    trace_id            String                              CODEC(ZSTD(1)),
    request_id          String                              CODEC(ZSTD(1)),
    parent_span_id      String                              CODEC(ZSTD(1)),
    service_name        LowCardinality(String)              CODEC(ZSTD(1)),
    operation           LowCardinality(String)              CODEC(ZSTD(1)),
    span_kind           LowCardinality(String)              CODEC(ZSTD(1)),
    event_type          LowCardinality(String)              CODEC(ZSTD(1)),
    timestamp           DateTime64(9, 'UTC')                CODEC(Delta(8), ZSTD(1)),
    duration_ns         UInt64                              CODEC(T64, ZSTD(1)),
    endpoint            LowCardinality(String)              CODEC(ZSTD(1)),
    user_id             String                              CODEC(ZSTD(1)),
    chain               LowCardinality(String)              CODEC(ZSTD(1)),
    category            LowCardinality(String)              CODEC(ZSTD(1)),
    status_code         LowCardinality(String)              CODEC(ZSTD(1)),
    status_message      String                              CODEC(ZSTD(1)),
    error_context       String                              CODEC(ZSTD(1)),
    peer_service        LowCardinality(String)              CODEC(ZSTD(1)),
    scope_name          LowCardinality(String)              CODEC(ZSTD(1)),
    span_attributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ingested_at         DateTime('UTC') DEFAULT now()       CODEC(Delta(4), ZSTD(1)),
    request_digest      UInt64                              CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_timestamp timestamp TYPE minmax GRANULARITY 1,
    INDEX idx_request_digest request_digest TYPE minmax GRANULARITY 1
)
ENGINE = {replicated:MergeTree}
PARTITION BY toDate(ingested_at)
ORDER BY (chain, service_name, timestamp)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- On a cluster (`chainotel-analyzer migrate --cluster NAME`, see analyzer/store/layout.py) each shard keeps
-- its spans in chain_history_local, and chain_history is the Distributed table the analyzer writes and reads.
-- Sharded by trace ID: all spans of a trace, its chain_traces row and its request_digest land on one shard.
-- Nothing on a single node.
{distributed:chain_history BY cityHash64(trace_id)};

-- Migration 0022 renamed chain_id to instance_id and request_id to span_id (the statements above stay as they
-- were applied).
