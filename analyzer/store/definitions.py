"""The one write of a ``chain_definitions`` (chain registry) row, as a compare-and-set on its version.

Used by the registry API (:class:`chainotel_analyzer.store.queries.ClickHouseChainRegistry`) and the
catalog seed (:mod:`chainotel_analyzer.store.catalog`), so that several analyzers sharing one
ClickHouse server never both write version N + 1 of a chain.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from chainotel_analyzer.model.rows import DEFINITION_COLUMNS


def insert_definition_row(client: Client, row: list, changed_by: str = "") -> bool:
    """Insert one ``chain_definitions`` row (values in :data:`DEFINITION_COLUMNS` order; ``updated_at``
    a datetime with whole milliseconds) as version ``row[1]`` of chain ``row[0]``; ``changed_by`` names
    the writer (its token entry), stored in the ``changed_by`` column.

    The INSERT's ``insert_deduplication_token`` is ``chain-definition:<id>:<version>``: ClickHouse
    stores only the first row written for a version (the table's deduplication window, migration
    0005; on a cluster the replicated table's) and refuses later ones, and so does the version log its
    view fills (migration 0021, deduplicated in dependent views by the same token). Returns True when the stored
    row is this one (same definition, deletion flag and ``updated_at``), False when another writer's
    row won. Raises clickhouse-connect's errors."""
    chain, version = row[0], int(row[1])
    token = f"chain-definition:{chain}:{version}"
    client.insert("chain_definitions", [[*row, changed_by]], column_names=(*DEFINITION_COLUMNS, "changed_by"),
                  settings={"insert_deduplicate": 1, "insert_deduplication_token": token,
                            "deduplicate_blocks_in_dependent_materialized_views": 1})  # fmt: skip
    stored = client.query(
        "SELECT definition, is_deleted, toUnixTimestamp64Milli(updated_at) FROM chain_definitions "
        "WHERE id = {id:String} AND version = {v:UInt32}",
        parameters={"id": chain, "v": version},
    ).result_rows
    mine = (row[6], int(row[10]), round(row[9].timestamp() * 1000))
    return len(stored) == 1 and tuple(stored[0]) == mine
