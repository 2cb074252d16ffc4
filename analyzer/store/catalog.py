"""Seed ``chain_definitions`` (the chain registry) from the chain catalog at every start.

Which catalog: the YAML file named by ``CHAINOTEL_CATALOG`` (the setting
:attr:`~chainotel_analyzer.settings.AnalyzerSettings.catalog`) — the same variable, and the same
loader (:func:`chainotel.catalog.load_catalog`), as the services' chainotel distribution, so the
registry describes the chains the services tag — else the built-in catalog
(:func:`chainotel.catalog.default_catalog`).

An invalid file stops the start: :func:`seed_definitions` raises :class:`CatalogConfigError`
(one line per problem, naming the file, the chain and the field) and writes nothing;
``chainotel-analyzer serve`` prints it and exits with status 2, as for other store settings. The analyzer neither falls back to the built-in catalog (the registry
would silently describe other chains than the services tag) nor runs on with a stale registry;
like an OpenTelemetry Collector with an invalid configuration, it refuses to start until the file
is fixed or the variable unset. Nothing is lost: the analyzer has received nothing yet, and
senders retry.

Rules, per chain ID:

- in the catalog, no row yet → insert version 1, ``source = 'catalog'``;
- in the catalog, the newest row came from the catalog and differs (other JSON, or a deletion
  marker) → insert version + 1 (a package upgrade, an edited file);
- not in the catalog, the newest row came from the catalog → deletion marker, version + 1 (the
  chain was dropped from the file, or another catalog was configured) — unless spans tagged with that
  chain were ingested in the last :data:`ACTIVE_DAYS` days: each service reads its own
  ``CHAINOTEL_CATALOG``, so a chain the analyzer's catalog lacks may still be tagged by services, and
  hiding it from health, bottlenecks and the graph while its spans arrive would lose it from view
  (a warning says so);
- the newest row came from the API (created, edited or deleted by a user) → left alone.

``catalog_version`` records where a catalog row came from: the chainotel package version for the
built-in catalog, the file's path for ``CHAINOTEL_CATALOG``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from datetime import datetime, timezone
from importlib import metadata

from clickhouse_connect.driver.client import Client

from chainotel_analyzer.store.client import StoreConfigError
from chainotel_analyzer.store.definitions import insert_definition_row
from chainotel.catalog import DEFAULT_CATALOG_SOURCE, Catalog, CatalogError, default_catalog, load_catalog

log = logging.getLogger(__name__)

ACTIVE_DAYS = 7
"""A chain with spans ingested this many days back is not marked deleted by the catalog seed."""


class CatalogConfigError(StoreConfigError):
    """``CHAINOTEL_CATALOG`` names a file that cannot be read or is not a valid catalog. The message
    says so, then one line per problem (file, chain, field); ``problems`` holds them
    (:class:`chainotel.catalog.CatalogProblem`). A :class:`StoreConfigError`: the registry cannot be
    seeded as configured."""

    def __init__(self, error: CatalogError):
        self.problems = error.problems
        super().__init__(f"CHAINOTEL_CATALOG is not a valid chain catalog; fix the file or unset the variable:\n{error}")


def configured_catalog(path: str | Path = "") -> Catalog:
    """``load_catalog(path)`` (the ``catalog`` setting, ``CHAINOTEL_CATALOG``), or
    :func:`~chainotel.catalog.default_catalog` when ``path`` is empty.

    Raises :class:`CatalogConfigError` when the file cannot be read or is invalid.
    """
    path = str(path).strip()
    if not path:
        return default_catalog()
    try:
        return load_catalog(path)
    except CatalogError as exc:
        raise CatalogConfigError(exc) from None


def _origin(catalog: Catalog) -> str:
    """``catalog_version`` of a catalog's rows: the package version (built-in) or the file path."""
    if catalog.source != DEFAULT_CATALOG_SOURCE:
        return catalog.source
    try:
        return metadata.version("chainotel")
    except metadata.PackageNotFoundError:
        return ""


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


def seed_definitions(client: Client, catalog: Catalog | None = None) -> int:
    """Bring the registry in line with ``catalog`` (default: the built-in catalog; the analyzer passes
    :func:`configured_catalog`) by the module rules; return how many rows were written."""
    chains = catalog if catalog is not None else default_catalog()
    origin = _origin(chains)
    existing = current_definitions(client)
    now = datetime.now(timezone.utc)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # DateTime64(3), compared after the write
    rows = []

    def row(doc: dict, text: str, version: int, deleted: int) -> list:
        return [doc["id"], version, doc["name"], doc["category"], doc.get("description", ""),
                doc.get("max_duration_ms"), text, "catalog", origin, now, deleted]  # fmt: skip

    for chain in chains.chains:
        doc = chain.model_dump(mode="json")
        text = json.dumps(doc, sort_keys=True)
        prev = existing.get(chain.id)
        if prev is not None and (prev["source"] != "catalog" or (prev["definition"] == text and not prev["is_deleted"])):
            continue
        rows.append(row(doc, text, 1 if prev is None else prev["version"] + 1, 0))
    listed = {chain.id for chain in chains.chains}
    dropped = [chain for chain, prev in sorted(existing.items())
               if chain not in listed and prev["source"] == "catalog" and not prev["is_deleted"]]  # fmt: skip
    active = _active_chains(client, dropped)
    if active:
        log.warning("chain registry: %s not in catalog %s but still tagged on spans of the last %d days; kept",
                    ", ".join(sorted(active)), chains.source, ACTIVE_DAYS)  # fmt: skip
    for chain in dropped:
        if chain not in active:
            prev = existing[chain]
            rows.append(row(json.loads(prev["definition"]), prev["definition"], prev["version"] + 1, 1))
    # one row per INSERT, each a compare-and-set on its version: another analyzer seeding at the same
    # moment (a rolling update) or an API write that got there first keeps its row
    written = sum(insert_definition_row(client, row) for row in rows)
    if rows:
        log.info("chain registry: %d definition rows written from catalog %s (%d written by another writer first)",
                 written, chains.source, len(rows) - written)  # fmt: skip
    return written


def _active_chains(client: Client, chains: list[str]) -> set[str]:
    """Those of ``chains`` with ``chain_history`` rows ingested in the last :data:`ACTIVE_DAYS`
    days (``ingested_at`` is the partition key, ``chain`` the first sort key: a small read)."""
    if not chains:
        return set()
    rows = client.query(
        "SELECT DISTINCT chain FROM chain_history "
        "WHERE ingested_at >= now() - toIntervalDay({days:UInt32}) AND chain IN {ids:Array(String)}",
        parameters={"days": ACTIVE_DAYS, "ids": chains},
    ).result_rows
    return {chain for (chain,) in rows}
