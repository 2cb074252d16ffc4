-- chain_definitions: the chain registry (A1..E7 from chainotel.catalog, plus definitions changed
-- through the API). Every change inserts a new row with version + 1; ReplacingMergeTree keeps the
-- highest version per id, and is_deleted = 1 marks a deletion. Read the current registry with
--
--   SELECT * FROM chain_definitions FINAL WHERE is_deleted = 0 ORDER BY id
--
-- definition: the ChainDefinition as JSON (ChainDefinition.model_dump(mode="json")); name/category/
-- description/max_duration_ms are copies for SQL filters. source: 'catalog' (seeded at start from
-- the chainotel package; re-seeded as version + 1 when the package's definition changes) or 'api'
-- (never overwritten by the catalog).
CREATE TABLE IF NOT EXISTS chain_definitions{on_cluster}
(
    id              String,
    version         UInt32,
    name            String,
    category        LowCardinality(String),
    description     String,
    max_duration_ms Nullable(Float64),
    definition      String,
    source          LowCardinality(String),
    catalog_version String,
    updated_at      DateTime64(3, 'UTC'),
    is_deleted      UInt8
)
ENGINE = {replicated_everywhere:ReplacingMergeTree(version, is_deleted)}
ORDER BY id;

-- On a cluster: one replica set over every node (ReplicatedReplacingMergeTree, no {shard} in its path), so each
-- node holds the whole registry and the analyzer reads and writes chain_definitions locally: no Distributed
-- table, and FINAL above stays exact (every version of an ID is on the node that answers).
