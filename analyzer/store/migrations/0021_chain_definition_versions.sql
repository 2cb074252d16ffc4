-- chain_definition_versions: every version of every chain definition, kept. chain_definitions is a
-- ReplacingMergeTree (0004), so its background merges keep only the newest version of each chain and the
-- registry's history (GET /api/v1/chains/{chain}/history) lost the older ones whenever a merge ran.
-- chain_definition_versions_mv copies each row written to chain_definitions into this plain MergeTree, which
-- never drops a version; the history reads it. A write that the registry's compare-and-set refuses (an
-- INSERT deduplicated by its token, 0005) still reaches the view; the writer sends
-- deduplicate_blocks_in_dependent_materialized_views, so the view's block carries a token derived from the
-- write's and this table, with the same deduplication window, refuses it too: only stored versions are copied.
--
-- Columns: those of chain_definitions that the history shows (0004, changed_by from 0007). Read with
--
--   SELECT * FROM chain_definition_versions WHERE id = {id:String} ORDER BY version
--
-- What the upgrade does: after the view exists, the versions chain_definitions still holds are copied once
-- (the last statement; those merges compacted away before the upgrade are gone). The copy skips versions
-- the table has already, so a re-run, or another analyzer writing meanwhile, stores no version twice.
CREATE TABLE IF NOT EXISTS chain_definition_versions{on_cluster}
(
    id              String,
    version         UInt32,
    definition      String                  CODEC(ZSTD(3)),
    source          LowCardinality(String),
    updated_at      DateTime64(3, 'UTC'),
    changed_by      String,
    is_deleted      UInt8
)
ENGINE = {replicated_everywhere:MergeTree}
ORDER BY (id, version)
SETTINGS non_replicated_deduplication_window = 100000;

-- On a cluster: like chain_definitions, one replica set over every node. The view fires on the node that takes the
-- registry write (a replica fetching the part does not run views), and the copy replicates to the others.
CREATE MATERIALIZED VIEW IF NOT EXISTS chain_definition_versions_mv{on_cluster} TO chain_definition_versions AS
SELECT id, version, definition, source, updated_at, changed_by, is_deleted
FROM chain_definitions;

INSERT INTO chain_definition_versions (id, version, definition, source, updated_at, changed_by, is_deleted)
SELECT id, version, definition, source, updated_at, changed_by, is_deleted
FROM chain_definitions
WHERE (id, version) NOT IN (SELECT id, version FROM chain_definition_versions);
