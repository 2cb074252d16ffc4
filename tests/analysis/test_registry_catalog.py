"""The chain registry is seeded from ``CHAINOTEL_CATALOG`` (else the built-in catalog) at every
start of a real analyzer process; an invalid file stops the start with the file, chain and field
named, and writes nothing."""

from __future__ import annotations

import subprocess

from chainotel.catalog import default_catalog
from tests.processes import Analyzer, analyzer_env, serve

CUSTOM = """\
chains:
  - id: A1
    name: Quote refresh
    category: data_flow
    match: [{span_name: "quote.refresh*"}]
    max_duration_ms: 50
  - id: E9
    name: Nightly export
    category: infrastructure
    match: [{span_name: "export*"}]
    max_duration_ms: 500
"""

INVALID = """\
chains:
  - id: E9
    name: Nightly export
    category: nightly
    match: [{span_name: "export*"}]
"""


def _registry(api) -> dict[str, dict]:
    return {c["id"]: c for c in api.get("/api/v1/chains").json()["chains"]}


def test_registry_follows_the_configured_catalog_and_refuses_an_invalid_one(tmp_path):
    db = tmp_path / "db"
    custom, invalid = tmp_path / "custom.yaml", tmp_path / "invalid.yaml"
    custom.write_text(CUSTOM)
    invalid.write_text(INVALID)
    builtin = {c.id for c in default_catalog().chains}

    with serve(db, {"CHAINOTEL_CATALOG": str(custom)}) as api:
        chains = _registry(api)
        assert set(chains) == {"A1", "E9"}  # the file's chains only, not the built-in ones
        assert chains["A1"]["definition"]["name"] == "Quote refresh" and chains["A1"]["source"] == "catalog"
        # a user's change is never overwritten by the catalog
        edited = {**chains["E9"]["definition"], "max_duration_ms": 900}
        assert api.put("/api/v1/chains/E9", json=edited).status_code == 200

    # an invalid file: the analyzer does not start, says why, and writes nothing
    run = subprocess.run(Analyzer(db, grpc=False).command(), env=analyzer_env({"CHAINOTEL_CATALOG": str(invalid)}),
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2, run.stderr[-3000:]
    assert "error: CHAINOTEL_CATALOG is not a valid chain catalog" in run.stderr
    assert f"{invalid}: chain E9 (chains[0]): field category" in run.stderr

    # back to the built-in catalog: its chains return, the file's A1 is replaced (version 2),
    # the file-only E9 stays as the user left it
    with serve(db) as api:
        chains = _registry(api)
        assert set(chains) == builtin | {"E9"}
        assert chains["A1"]["version"] == 2 and chains["A1"]["definition"] == default_catalog().get("A1").model_dump(mode="json")
        assert chains["E9"]["source"] == "api" and chains["E9"]["definition"]["max_duration_ms"] == 900
        assert chains["B1"]["version"] == 1


def test_chains_dropped_from_the_catalog_are_deleted_and_come_back(tmp_path):
    db = tmp_path / "db"
    custom = tmp_path / "custom.yaml"
    custom.write_text(CUSTOM)
    with serve(db) as api:
        assert "B1" in _registry(api)
    with serve(db, {"CHAINOTEL_CATALOG": str(custom)}) as api:
        chains = _registry(api)
        assert set(chains) == {"A1", "E9"} and chains["A1"]["version"] == 2
        assert api.get("/api/v1/chains/B1").status_code == 404
    with serve(db) as api:  # unchanged built-in definitions are re-created as version 3
        chains = _registry(api)
        assert "E9" not in chains and chains["B1"]["version"] == 3 and chains["A1"]["version"] == 3


def test_a_dropped_chain_that_still_has_spans_is_not_marked_deleted(tmp_path):
    """Each service reads its own CHAINOTEL_CATALOG: a chain missing from the analyzer's catalog but
    still tagged on recent spans stays in the registry; one without spans is marked deleted."""
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.catalog import current_definitions, seed_definitions
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate
    from chainotel.catalog import parse_catalog

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}"))
    try:
        migrate(store.client)
        seed_definitions(store.client, default_catalog())
        store.client.command(
            "INSERT INTO chain_history (trace_id, span_id, service_name, operation, timestamp, duration_ns, chain) "
            "VALUES ('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', 'ai-provider', 'POST /ai/decision', "
            "now64(9), 1000, 'A2')"
        )
        seed_definitions(store.client, parse_catalog(CUSTOM, "custom.yaml"))
        registry = current_definitions(store.client)
    finally:
        store.close()
    assert registry["A2"]["is_deleted"] == 0  # still tagged on spans: kept
    assert registry["B3"]["is_deleted"] == 1  # no spans: the catalog dropped it
    assert registry["E9"]["is_deleted"] == 0 and registry["E9"]["source"] == "catalog"


def test_registry_write_is_a_compare_and_set_across_sessions(tmp_path):
    """Two registries on two sessions (as two analyzers sharing a ClickHouse server would be), each with
    its own process lock, both read version N: ClickHouse stores the first N + 1, the second writer gets
    RegistryConflict (409 in the API); a re-seed by another process leaves a version another writer stored."""
    import pytest

    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.catalog import seed_definitions
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.interfaces import RegistryConflict
    from chainotel_analyzer.store.migrations import migrate
    from chainotel_analyzer.store.queries import ClickHouseChainRegistry

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}"))
    try:
        migrate(store.client)
        first, second = ClickHouseChainRegistry(store.client), ClickHouseChainRegistry(store.new_client())
        doc = default_catalog().chains[0].model_dump(mode="json")
        assert first.seed(default_catalog()) == len(default_catalog().chains)
        n = second.get(doc["id"])["version"]
        real_current = second._current_version
        # the second writer read N before the first wrote N + 1
        second._current_version = lambda chain: n
        assert first.put({**doc, "description": "first writer"})["version"] == n + 1
        with pytest.raises(RegistryConflict, match=f"version {n + 1}"):
            second.put({**doc, "description": "second writer"})
        second._current_version = real_current
        current = second.get(doc["id"])
        assert current["version"] == n + 1 and current["definition"]["description"] == "first writer"
        assert seed_definitions(store.new_client(), default_catalog()) == 0  # the API's row is left alone
    finally:
        store.close()
