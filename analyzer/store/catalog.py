"""Seed ``chain_definitions`` from the chainotel chain catalog (``chainotel.catalog.default_catalog``).

Rules at every start, per chain ID of the catalog:

- no row yet → insert version 1, ``source = 'catalog'``;
- the newest row came from the catalog and its JSON differs → insert version + 1 (a package upgrade);
- the newest row came from the API (edited or deleted by a user) → left alone.

``catalog_version`` records the chainotel package version the row came from.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from importlib import metadata

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

DEFINITION_COLUMNS = (
    "id", "version", "name", "category", "description", "max_duration_ms", "definition",
    "source", "catalog_version", "updated_at", "is_deleted",
)  # fmt: skip


def current_definitions(client: Client) -> dict[str, dict]:
    """Newest row per chain ID (deleted ones included, ``is_deleted`` = 1), as dicts keyed by ID."""
    rows = client.query(
        "SELECT id, max(version) AS latest, argMax(source, version) AS latest_source, "
        "argMax(definition, version) AS latest_definition, argMax(is_deleted, version) AS latest_is_deleted "
        "FROM chain_definitions GROUP BY id"
    ).named_results()
    return {
        row["id"]: {
            "id": row["id"], "version": row["latest"], "source": row["latest_source"],
            "definition": row["latest_definition"], "is_deleted": row["latest_is_deleted"],
        }  # fmt: skip
        for row in rows
    }


def seed_definitions(client: Client) -> int:
    """Insert catalog chains that are new or changed (module rules); return how many rows were written.

    A catalog that cannot be imported or loaded is logged and skipped (ingest does not depend on it).
    """
    try:
        from chainotel.catalog import default_catalog

        chains = list(default_catalog().chains)
    except Exception as exc:  # noqa: BLE001 - registry seeding must never stop the analyzer
        log.warning("chain catalog not loaded, chain_definitions not seeded: %s", exc)
        return 0
    try:
        package_version = metadata.version("chainotel")
    except metadata.PackageNotFoundError:
        package_version = ""
    existing = current_definitions(client)
    now = datetime.now(timezone.utc)
    rows = []
    for chain in chains:
        doc = chain.model_dump(mode="json")
        text = json.dumps(doc, sort_keys=True)
        prev = existing.get(chain.id)
        if prev is not None and (prev["source"] != "catalog" or prev["definition"] == text):
            continue
        version = 1 if prev is None else prev["version"] + 1
        rows.append([
            chain.id, version, doc["name"], doc["category"], doc.get("description", ""),
            doc.get("max_duration_ms"), text, "catalog", package_version, now, 0,
        ])  # fmt: skip
    if rows:
        client.insert("chain_definitions", rows, column_names=DEFINITION_COLUMNS)
    return len(rows)
