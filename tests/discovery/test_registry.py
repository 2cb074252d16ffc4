"""The registry's review features through a real analyzer: listing with category, paging and total;
validation without storing (errors, warnings, suggestions); the history of a chain's versions."""

from __future__ import annotations

import time

import pytest

from tests.discovery.traffic import Hop, build, send
from tests.processes import serve

EXPORT = {"id": "E9", "name": "Nightly export", "category": "infrastructure", "max_duration_ms": 500,
          "match": [{"service": "cron", "route": "/jobs/export"}], "expected_services": ["cron", "exporter", "audit"],
          "edges": ["cron -> exporter"]}  # fmt: skip


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("analyzer") / "db") as client:
        send(client, build([(Hop("cron", "/jobs/export", "POST", calls=[Hop("exporter", "/export", "POST")]), 2)],
                           time.time_ns() - 60 * 10**9, 10))  # fmt: skip
        deadline = time.monotonic() + 30
        while len(client.get("/api/v1/analytics/performance/real-time").json()["chains"]) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield client


def test_list_by_category_with_paging_and_total(api):
    everything = api.get("/api/v1/chains").json()
    assert everything["total"] == len(everything["chains"]) == 30 and everything["offset"] == 0
    infra = api.get("/api/v1/chains", params={"category": "infrastructure"}).json()
    assert infra["total"] == 7 and [c["id"] for c in infra["chains"]] == [f"E{i}" for i in range(1, 8)]
    page = api.get("/api/v1/chains", params={"category": "infrastructure", "limit": 3, "offset": 5}).json()
    assert (page["total"], [c["id"] for c in page["chains"]], page["limit"]) == (7, ["E6", "E7"], 3)
    assert api.get("/api/v1/chains", params={"category": "nope"}).status_code == 422
    assert api.get("/api/v1/chains", params={"limit": 0}).status_code == 422


def test_validate_reports_errors_warnings_and_suggestions_without_storing(api):
    ok = api.post("/api/v1/chains/validate", json=EXPORT).json()
    assert ok["valid"] and ok["errors"] == []
    warnings = [w["message"] for w in ok["warnings"]]
    assert any("audit has sent no spans" in m for m in warnings) and any("audit is in no edge" in m for m in warnings)
    assert not any("cron" in m or "exporter" in m for m in warnings)  # observed and linked
    assert api.get("/api/v1/chains/E9").status_code == 404  # nothing stored
    bad = api.post("/api/v1/chains/validate", json={**EXPORT, "category": "data_flow", "max_duration_ms": -1}).json()
    assert not bad["valid"] and {e["field"] for e in bad["errors"]} == {"category", "max_duration_ms"}
    big = {**EXPORT, "expected_services": [f"s{i}" for i in range(12)], "edges": []}
    suggestions = api.post("/api/v1/chains/validate", json=big).json()["suggestions"]
    assert suggestions and "splitting" in suggestions[0]["message"]
    taken = api.post("/api/v1/chains/validate", json={**EXPORT, "id": "E1"}).json()
    assert taken["valid"] and any(w["field"] == "id" and "409" in w["message"] for w in taken["warnings"])


def test_history_lists_every_version_with_what_changed(api):
    assert api.post("/api/v1/chains", json=EXPORT).status_code == 201
    assert api.put("/api/v1/chains/E9", json={**EXPORT, "max_duration_ms": 800}).status_code == 200
    assert api.put("/api/v1/chains/E9", json={**EXPORT, "max_duration_ms": 800, "name": "Export"}).status_code == 200
    assert api.delete("/api/v1/chains/E9").status_code == 204
    doc = api.get("/api/v1/chains/E9/history").json()
    versions = doc["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4]
    assert [v["changes"] for v in versions] == [["created"], ["max_duration_ms"], ["name"], ["deleted"]]
    assert [v["is_deleted"] for v in versions] == [False, False, False, True]
    assert all(v["source"] == "api" and v["updated_at"] and v["changed_by"] == "unauthenticated" for v in versions)
    seeded = api.get("/api/v1/chains/B3/history").json()["versions"]
    assert seeded[0]["source"] == "catalog" and seeded[0]["changed_by"] == "catalog"
    assert api.get("/api/v1/chains/E77/history").status_code == 404


def test_history_names_the_token_behind_every_api_version(tmp_path):
    from tests.security.test_auth import write_auth_file

    tokens = {"alice": ("alice-admin-token-0123456789", ["read", "admin"]),
              "bob": ("bob-admin-token-0123456789ab", ["read", "admin"])}  # fmt: skip
    auth = {name: {"Authorization": f"Bearer {token}"} for name, (token, _) in tokens.items()}
    env = {"CHAINOTEL_AUTH_FILE": str(write_auth_file(tmp_path / "tokens.yaml", tokens))}
    with serve(tmp_path / "db", env) as api:
        assert api.post("/api/v1/chains", json=EXPORT, headers=auth["alice"]).status_code == 201
        assert api.put("/api/v1/chains/E9", json={**EXPORT, "max_duration_ms": 900}, headers=auth["bob"]).status_code == 200
        assert api.delete("/api/v1/chains/E9", headers=auth["alice"]).status_code == 204
        assert api.get("/api/v1/chains/E9/history").status_code == 401  # reading the history needs a token too
        history = api.get("/api/v1/chains/E9/history", headers=auth["bob"])
        assert history.status_code == 200, history.text
        versions = history.json()["versions"]
        assert [(v["version"], v["changed_by"], v["changes"]) for v in versions] == [
            (1, "alice", ["created"]), (2, "bob", ["max_duration_ms"]), (3, "alice", ["deleted"])]
        assert not any(token in history.text for token, _ in tokens.values())  # names, never the tokens
        seeded = api.get("/api/v1/chains/B3/history", headers=auth["bob"]).json()["versions"]
        assert seeded[0]["changed_by"] == "catalog"


def test_history_keeps_every_version_after_the_registry_table_is_compacted(tmp_path, monkeypatch):
    from chainotel_analyzer.model.rows import DEFINITION_COLUMNS
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store import migrations
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.definitions import insert_definition_row
    from chainotel_analyzer.store.queries import ClickHouseChainRegistry

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}"))
    try:
        every = migrations.load_migrations()
        # a registry written before the version log existed: two versions of E9, then the upgrade
        monkeypatch.setattr(migrations, "load_migrations", lambda layout=migrations.SINGLE_NODE: [m for m in every if m.version < 21])
        migrations.migrate(store.client)
        registry = ClickHouseChainRegistry(store.client)
        registry.create(EXPORT, changed_by="alice")
        registry.put({**EXPORT, "max_duration_ms": 800}, changed_by="bob")
        monkeypatch.undo()
        assert 21 in migrations.migrate(store.client)
        registry.put({**EXPORT, "max_duration_ms": 900}, changed_by="carol")
        registry.delete("E9", changed_by="alice")
        # a writer that lost the compare-and-set for version 4 stores nothing, in either table
        stored = store.client.query(f"SELECT {', '.join(DEFINITION_COLUMNS)} FROM chain_definitions"
                                    " WHERE id = 'E9' AND version = 4").result_rows[0]  # fmt: skip
        assert not insert_definition_row(store.client, [*stored[:6], '{"lost": true}', *stored[7:]], "mallory")
        store.client.command("OPTIMIZE TABLE chain_definitions FINAL")  # what background merges do, at once
        assert store.client.command("SELECT count() FROM chain_definitions WHERE id = 'E9'") == 1
        history = registry.history("E9")
        assert [(v["version"], v["changed_by"], v["is_deleted"]) for v in history] == [
            (1, "alice", False), (2, "bob", False), (3, "carol", False), (4, "alice", True)]
        assert [v["definition"]["max_duration_ms"] for v in history] == [500, 800, 900, 900]
        assert migrations.migrate(store.client) == [] and len(registry.history("E9")) == 4
    finally:
        store.close()
