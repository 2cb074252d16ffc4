"""Catalog models, YAML loading and validation messages (file, chain, field), matching, CLI."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from chainotel.catalog import Catalog, CatalogError, Category, ChainDefinition, default_catalog, load_catalog
from chainotel.cli.app import app

GOOD = {
    "id": "B3",
    "name": "Trading API request",
    "category": "service_communication",
    "match": [{"service": "api-gateway", "route": "/api/v1/trading/*", "method": "post"}, {"span_name": "trading.decision*"}],
    "expected_services": ["api-gateway", "trading-engine", "database-service"],
    "edges": ["api-gateway -> trading-engine", "trading-engine -> database-service"],
    "max_duration_ms": 500,
}


def chain(**changes):
    data = {**GOOD, **changes}
    return {k: v for k, v in data.items() if v is not None}


def errors_of(data):
    with pytest.raises(ValidationError) as info:
        ChainDefinition.model_validate(data)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}


def write(tmp_path, text, name="chains.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_chain():
    c = ChainDefinition.model_validate(GOOD)
    assert c.category is Category.service_communication and c.category.letter == "B"
    assert c.match[0].method == "POST"


@pytest.mark.parametrize("bad_id", ["b3", "B0", "B03", "F1", "B", "BB1", "B3 ", ""])
def test_id_pattern(bad_id):
    assert "id" in errors_of(chain(id=bad_id))


def test_letter_must_equal_category():
    errors = errors_of(chain(category="data_flow"))
    assert "letter B" in errors["category"] and "service_communication" in errors["category"]


def test_unknown_category_and_extra_keys():
    assert "category" in errors_of(chain(category="magic"))
    assert "match.0.methd" in errors_of(chain(match=[{"service": "a", "methd": "GET"}]))
    assert "sla" in errors_of(chain(sla=5))


def test_empty_match_rule_and_bad_sla():
    assert "match.0" in errors_of(chain(match=[{}]))
    assert "max_duration_ms" in errors_of(chain(max_duration_ms=0))


def test_edges_name_known_nodes():
    errors = errors_of(chain(edges=["api-gateway -> billing"]))
    assert "'billing'" in errors["edges"]
    assert "edges.0" in errors_of(chain(edges=["api-gateway trading-engine"]))


def test_cycle_is_an_error():
    errors = errors_of(chain(edges=["api-gateway -> trading-engine", "trading-engine -> database-service",
                                    "database-service -> api-gateway"]))
    assert "cycle" in errors["edges"]
    assert "api-gateway -> trading-engine -> database-service -> api-gateway" in errors["edges"]


def test_more_than_ten_services_is_a_suggestion_not_an_error(tmp_path):
    services = [f"s{i}" for i in range(11)]
    c = ChainDefinition.model_validate(chain(expected_services=services, edges=[]))
    assert "split" in c.suggestions()[0]
    assert not ChainDefinition.model_validate(chain(expected_services=services[:10], edges=[])).suggestions()
    catalog = Catalog([c], source="x.yaml")
    assert [(p.file, p.chain, p.field) for p in catalog.suggestions()] == [("x.yaml", "B3", "expected_services")]


def test_errors_name_file_chain_and_field(tmp_path):
    path = write(tmp_path, """
chains:
  - {id: A1, name: ok, category: data_flow, max_duration_ms: 1}
  - {id: B2, name: x, category: infrastructure, max_duration_ms: 1}
  - {id: A1, name: dup, category: data_flow, max_duration_ms: 1}
  - {name: noid, category: data_flow, max_duration_ms: 1}
""")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    problems = {(p.chain, p.field) for p in info.value.problems}
    assert ("B2 (chains[1])", "category") in problems
    assert ("A1 (chains[2])", "id") in problems  # duplicate
    assert ("chains[3]", "id") in problems  # missing
    for line in str(info.value).splitlines():
        assert line.startswith(f"{path}: chain ") and ": field " in line


def test_file_level_errors(tmp_path):
    for text in ["chains: [", "- a\n- b\n", "other: 1\n"]:
        with pytest.raises(CatalogError) as info:
            load_catalog(write(tmp_path, text))
        assert str(tmp_path) in str(info.value)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")


def test_default_catalog_has_the_thirty_chains():
    catalog = default_catalog()
    expected = {f"{letter}{n}" for letter, count in zip("ABCDE", (6, 8, 5, 4, 7)) for n in range(1, count + 1)}
    assert {c.id for c in catalog.chains} == expected
    for c in catalog.chains:
        assert c.name and c.description and c.match and c.max_duration_ms > 0
    assert catalog.get("A1").name == "Market-data ingestion"
    assert catalog.get("B3").name == "Trading API request"
    assert catalog.get("C1").name == "Market-data WebSocket streaming"
    assert catalog.get("D1").name == "Model inference"
    assert catalog.get("E1").name == "Health checks"
    assert catalog.get("Z9") is None


@pytest.mark.parametrize(
    "service,name,attributes,expected",
    [
        ("api-gateway", "POST /api/v1/trading/orders", {"http.route": "/api/v1/trading/orders", "http.request.method": "POST"}, "B3"),
        ("api-gateway", "GET /api/v1/trading/orders", {"http.route": "/api/v1/trading/orders", "http.method": "GET"}, "B5"),
        ("trading-engine", "trading.decision.evaluate", {}, "B3"),
        ("ml-processing", "POST /api/v1/inference", {"http.route": "/api/v1/inference", "http.method": "POST"}, "D1"),
        ("ai-provider", "POST /api/v1/inference", {"http.route": "/api/v1/inference", "http.method": "POST"}, "D1"),
        ("user-service", "GET", {"url.path": "/healthz"}, "E1"),  # no http.route: url.path
        ("api-gateway", "GET /anything", {"http.route": "/anything"}, "B1"),  # catch-all, last
        ("trading-engine", "GET /anything", {"http.route": "/anything"}, None),
    ],
)
def test_first_matching_rule_wins(service, name, attributes, expected):
    found = default_catalog().match(service=service, span_name=name, attributes=attributes)
    assert (found.id if found else None) == expected


def test_cli_validate_and_list(tmp_path):
    runner = CliRunner()
    good = write(tmp_path, "chains:\n  - {id: E9, name: x, category: infrastructure, max_duration_ms: 1}\n", "good.yaml")
    result = runner.invoke(app, ["catalog", "validate", str(good)])
    assert result.exit_code == 0 and "valid, 1 chains" in result.output
    bad = write(tmp_path, "chains:\n  - {id: E9, name: x, category: data_flow, max_duration_ms: 1}\n", "bad.yaml")
    result = runner.invoke(app, ["catalog", "validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: chain E9 (chains[0]): field category" in result.output
    result = runner.invoke(app, ["catalog", "list"], env={"CHAINOTEL_CATALOG": ""})
    assert result.exit_code == 0 and "30 chains" in result.output and "Trading API request" in result.output
    result = runner.invoke(app, ["catalog", "list"], env={"CHAINOTEL_CATALOG": str(good)})
    assert result.exit_code == 0 and "E9" in result.output and "B3" not in result.output
